//! Turns `jsonschema` validation errors into [`Violation`]s a plugin author can act on.
//!
//! A message names the offending value in JavaScript-like notation (`ips[0].version`), then says
//! what is wrong. Where the schema carries an `errorMessage` for the failing keyword (a string,
//! or an object keyed by keyword, as ajv-errors reads it), that text states the schema's intent
//! and is used; `{value}` in it stands for the offending value. Otherwise a generic sentence is
//! built from the error kind.

use std::collections::{HashMap, HashSet};

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{ValidationError, Validator};
use serde_json::Value;

use super::Violation;

/// The longest rendering of a value quoted in a message, in characters.
const MAX_VALUE_CHARS: usize = 80;

/// Values nested deeper than this are not rendered (serializing them recurses once per level).
const MAX_VALUE_DEPTH: usize = 32;

/// Validates `doc` and describes every error. `schemas` maps `$id` to schema document, to find
/// the `errorMessage` of the failing subschema; `root_uri` is the schema validated against;
/// `root_name` names the whole document ("the result").
pub(super) fn violations(
    validator: &Validator,
    doc: &Value,
    schemas: &HashMap<String, Value>,
    root_uri: &str,
    root_name: &str,
) -> Vec<Violation> {
    let mut described: Vec<(Violation, &'static str)> = validator
        .iter_errors(doc)
        .map(|error| describe(&error, doc, schemas, root_uri, root_name))
        .collect();
    // A value that is not even well-formed needs no second message about its pattern (the
    // IP-family checks are patterns on top of the `ip`/`cidr` formats).
    let malformed: HashSet<String> = described
        .iter()
        .filter(|(_, keyword)| *keyword == "format")
        .map(|(v, _)| v.path.clone())
        .collect();
    described.retain(|(v, keyword)| *keyword != "pattern" || !malformed.contains(&v.path));
    described.into_iter().map(|(v, _)| v).collect()
}

/// One error as a violation, with the keyword that failed.
fn describe(
    error: &ValidationError<'_>,
    doc: &Value,
    schemas: &HashMap<String, Value>,
    root_uri: &str,
    root_name: &str,
) -> (Violation, &'static str) {
    let path = error.instance_path().as_str().to_string();
    let subject = render_path(&path, doc, root_name);
    let keyword = keyword_of(error.kind());
    let value = render_value(error.instance());
    let text = match schema_message(error, schemas, root_uri) {
        Some(custom) => custom.replace("{value}", &value),
        None => generic_text(error, &value),
    };
    let message = format!("{subject} {text}");
    (Violation { path, message }, keyword)
}

/// The keyword that failed, as a static string (custom keywords are not used by these schemas).
fn keyword_of(kind: &ValidationErrorKind) -> &'static str {
    match kind {
        ValidationErrorKind::Format { .. } => "format",
        ValidationErrorKind::Pattern { .. } => "pattern",
        ValidationErrorKind::Required { .. } => "required",
        _ => "other",
    }
}

/// The `errorMessage` that the failing subschema carries for the failing keyword, if any.
fn schema_message<'s>(
    error: &ValidationError<'_>,
    schemas: &'s HashMap<String, Value>,
    root_uri: &str,
) -> Option<&'s str> {
    let (resource, pointer) = match error.absolute_keyword_location() {
        Some(uri) => {
            let (base, fragment) = uri.as_str().split_once('#').unwrap_or((uri.as_str(), ""));
            (base.to_string(), percent_decode(fragment))
        }
        None => (root_uri.to_string(), error.schema_path().as_str().to_string()),
    };
    let schema = schemas.get(&resource)?;
    let (parent, keyword) = pointer.rsplit_once('/')?;
    let node = schema.pointer(parent)?;
    match node.get("errorMessage")? {
        Value::String(text) => Some(text),
        Value::Object(by_keyword) => by_keyword.get(&unescape(keyword))?.as_str(),
        _ => None,
    }
}

/// A sentence for errors whose subschema carries no `errorMessage`.
fn generic_text(error: &ValidationError<'_>, value: &str) -> String {
    let instance = error.instance();
    match error.kind() {
        ValidationErrorKind::Required { property } => {
            format!("is missing the required key {property}")
        }
        ValidationErrorKind::Type { kind } => {
            format!(
                "must be {}, not {} ({value})",
                expected_types(kind),
                type_name(instance)
            )
        }
        ValidationErrorKind::Format { format } => format_text(format, value),
        ValidationErrorKind::Minimum { limit } => format!("must be at least {limit}, not {value}"),
        ValidationErrorKind::Maximum { limit } => format!("must be at most {limit}, not {value}"),
        ValidationErrorKind::MinItems { limit } => match limit {
            1 => "must not be an empty list".to_string(),
            n => format!("must have at least {n} entries"),
        },
        ValidationErrorKind::MinLength { limit } => match limit {
            1 => "must not be an empty string".to_string(),
            n => format!("must be at least {n} characters long"),
        },
        ValidationErrorKind::Pattern { pattern } => {
            format!("({value}) does not match the pattern {pattern}")
        }
        ValidationErrorKind::Enum { options } => {
            format!("must be one of {}, not {value}", render_value(options))
        }
        ValidationErrorKind::Constant { expected_value } => {
            format!("must be {}, not {value}", render_value(expected_value))
        }
        ValidationErrorKind::Not { .. } | ValidationErrorKind::FalseSchema => "is not allowed here".to_string(),
        ValidationErrorKind::AnyOf { .. } | ValidationErrorKind::OneOfNotValid { .. } => {
            format!("({value}) matches none of the allowed forms")
        }
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            format!("has keys that are not allowed: {}", unexpected.join(", "))
        }
        _ => format!("is invalid: {error}"),
    }
}

/// What is wrong with a value that fails one of the custom formats.
fn format_text(format: &str, value: &str) -> String {
    match format {
        "semver" => format!("({value}) is not a SemVer 2.0 version such as \"1.0.0\""),
        "ip" => format!("({value}) is not an IPv4 or IPv6 address (without prefix length)"),
        "cidr" => format!("({value}) is not an IP address with prefix length (CIDR) such as \"10.1.0.5/16\""),
        "mac" => format!("({value}) is not a MAC address: 6, 8 or 20 colon-separated pairs of hex digits"),
        other => format!("({value}) is not a valid {other}"),
    }
}

/// "a string", "an integer or a string", ...
fn expected_types(kind: &TypeKind) -> String {
    match kind {
        TypeKind::Single(t) => with_article(t.as_str()),
        TypeKind::Multiple(set) => set
            .iter()
            .map(|t| with_article(t.as_str()))
            .collect::<Vec<_>>()
            .join(" or "),
    }
}

fn with_article(type_name: &str) -> String {
    let article = if type_name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {type_name}")
}

/// The JSON type of a value, with an article.
fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Compact JSON of a value, shortened to [`MAX_VALUE_CHARS`].
fn render_value(value: &Value) -> String {
    if nested_deeper_than(value, MAX_VALUE_DEPTH) {
        return format!("a value nested more than {MAX_VALUE_DEPTH} levels deep");
    }
    let text = value.to_string();
    if text.chars().count() <= MAX_VALUE_CHARS {
        return text;
    }
    let short: String = text.chars().take(MAX_VALUE_CHARS).collect();
    format!("{short}…")
}

/// Whether `value` has containers nested more than `limit` levels deep (a lone array or object is
/// one level), found without recursion.
fn nested_deeper_than(value: &Value, limit: usize) -> bool {
    let mut pending = vec![(value, 0usize)];
    while let Some((value, depth)) = pending.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match value {
            Value::Array(items) => Box::new(items.iter()),
            Value::Object(map) => Box::new(map.values()),
            _ => continue,
        };
        if depth >= limit {
            return true;
        }
        pending.extend(children.map(|child| (child, depth + 1)));
    }
    false
}

/// A JSON pointer into `doc` as `ips[0].address`; the root is `root_name`.
pub(super) fn render_path(pointer: &str, doc: &Value, root_name: &str) -> String {
    if pointer.is_empty() {
        return root_name.to_string();
    }
    let mut out = String::new();
    let mut current = Some(doc);
    for raw in pointer.split('/').skip(1) {
        let segment = unescape(raw);
        let index = match current {
            Some(Value::Array(items)) => segment.parse::<usize>().ok().map(|i| (i, items.get(i))),
            _ => None,
        };
        match index {
            Some((i, next)) => {
                out.push_str(&format!("[{i}]"));
                current = next;
            }
            None => {
                if is_plain_key(&segment) {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(&segment);
                } else {
                    out.push_str(&format!("[{}]", Value::String(segment.clone())));
                }
                current = current.and_then(|v| v.get(&segment));
            }
        }
    }
    out
}

/// Keys that read well after a dot: letters, digits, `_` and `-`, not starting with a digit.
fn is_plain_key(key: &str) -> bool {
    let mut chars = key.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Undoes JSON pointer escaping (`~1` is `/`, `~0` is `~`).
fn unescape(segment: &str) -> String {
    segment.replace("~1", "/").replace("~0", "~")
}

/// Undoes URI percent-encoding in a fragment; malformed escapes are kept as they are.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match (bytes.get(i), bytes.get(i + 1), bytes.get(i + 2)) {
            (Some(b'%'), Some(&h), Some(&l)) => hex_value(h).zip(hex_value(l)),
            _ => None,
        };
        match escaped {
            Some((h, l)) => {
                out.push(h * 16 + l);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_read_like_javascript() {
        let doc = json!({"ips": [{"address": "x"}], "cni.dev/attachments": [{"ifname": 1}], "0": {"1": 2}});
        assert_eq!(render_path("", &doc, "the result"), "the result");
        assert_eq!(render_path("/ips/0/address", &doc, "r"), "ips[0].address");
        assert_eq!(
            render_path("/cni.dev~1attachments/0/ifname", &doc, "r"),
            "[\"cni.dev/attachments\"][0].ifname"
        );
        assert_eq!(render_path("/0/1", &doc, "r"), "[\"0\"][\"1\"]");
        assert_eq!(render_path("/missing/3", &doc, "r"), "missing[\"3\"]");
    }

    #[test]
    fn percent_decoding_keeps_malformed_escapes() {
        assert_eq!(percent_decode("/%24defs/x"), "/$defs/x");
        assert_eq!(percent_decode("/a%2"), "/a%2");
        assert_eq!(percent_decode("%zz%"), "%zz%");
    }

    #[test]
    fn deep_values_are_not_rendered() {
        let mut deep = json!(1);
        for _ in 0..40 {
            deep = json!([deep]);
        }
        assert!(render_value(&deep).starts_with("a value nested"));
        assert_eq!(render_value(&json!([[[1]]])), "[[[1]]]");
        let three_levels = json!({"a": [1, {"b": 2}]});
        assert!(!nested_deeper_than(&three_levels, 3));
        assert!(nested_deeper_than(&three_levels, 2));
        assert!(nested_deeper_than(&json!({"a": [1, {"b": []}]}), 3));
        assert!(!nested_deeper_than(&json!("scalar"), 0));
    }

    #[test]
    fn long_values_are_shortened() {
        let long = Value::String("x".repeat(200));
        assert!(render_value(&long).chars().count() <= MAX_VALUE_CHARS + 1);
    }
}
