//! Typed access to configuration JSON.
//!
//! Every accessor takes the path of the value (`ipam.ranges[0][1].subnet`) so a wrong type is
//! reported with the exact field, e.g. `ipam.dataDir: expected a string, found a number`. Unknown
//! keys are never looked at, which makes the plugins tolerant of them.

use super::error::CniError;
use serde_json::{Map, Value};

/// A JSON object and the path it was found at.
pub type Object = Map<String, Value>;

/// Serialise with 4-space indentation, like Go's `json.MarshalIndent(v, "", "    ")`.
pub fn to_pretty<T: serde::Serialize>(value: &T) -> String {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    if value.serialize(&mut ser).is_err() {
        return String::from("{}");
    }
    String::from_utf8(out).unwrap_or_else(|_| String::from("{}"))
}

/// A short name for the JSON type of a value, for error messages.
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn wrong(path: &str, key: &str, expected: &str, found: &Value) -> CniError {
    CniError::config(format!(
        "{}: expected {expected}, found {}",
        join(path, key),
        kind(found)
    ))
}

/// `obj[key]` as a string; absent or `null` is `None`.
pub fn opt_str<'a>(obj: &'a Object, path: &str, key: &str) -> Result<Option<&'a str>, CniError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(wrong(path, key, "a string", other)),
    }
}

/// `obj[key]` as a boolean; absent or `null` is `false`.
pub fn opt_bool(obj: &Object, path: &str, key: &str) -> Result<bool, CniError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(wrong(path, key, "a boolean", other)),
    }
}

/// `obj[key]` as an unsigned integer no larger than `max`; absent or `null` is `None`.
pub fn opt_uint(obj: &Object, path: &str, key: &str, max: u64) -> Result<Option<u64>, CniError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v) if v <= max => Ok(Some(v)),
            _ => Err(CniError::config(format!(
                "{}: expected an integer between 0 and {max}, found {n}",
                join(path, key)
            ))),
        },
        Some(other) => Err(wrong(path, key, "an integer", other)),
    }
}

/// `obj[key]` as a signed integer; absent or `null` is `None`.
pub fn opt_int(obj: &Object, path: &str, key: &str) -> Result<Option<i64>, CniError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| CniError::config(format!("{}: expected an integer, found {n}", join(path, key)))),
        Some(other) => Err(wrong(path, key, "an integer", other)),
    }
}

/// `obj[key]` as an array; absent or `null` is `None`.
pub fn opt_array<'a>(obj: &'a Object, path: &str, key: &str) -> Result<Option<&'a Vec<Value>>, CniError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => Ok(Some(a)),
        Some(other) => Err(wrong(path, key, "an array", other)),
    }
}

/// `obj[key]` as an object; absent or `null` is `None`.
pub fn opt_object<'a>(obj: &'a Object, path: &str, key: &str) -> Result<Option<&'a Object>, CniError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(other) => Err(wrong(path, key, "an object", other)),
    }
}

/// An array of strings at `obj[key]`; absent or `null` is empty.
pub fn opt_str_list(obj: &Object, path: &str, key: &str) -> Result<Vec<String>, CniError> {
    let Some(items) = opt_array(obj, path, key)? else {
        return Ok(Vec::new());
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(s) => Ok(s.clone()),
            other => Err(CniError::config(format!(
                "{}[{i}]: expected a string, found {}",
                join(path, key),
                kind(other)
            ))),
        })
        .collect()
}

/// An element of an array that must be an object.
pub fn item_object<'a>(item: &'a Value, path: &str) -> Result<&'a Object, CniError> {
    match item {
        Value::Object(o) => Ok(o),
        other => Err(CniError::config(format!(
            "{path}: expected an object, found {}",
            kind(other)
        ))),
    }
}

/// The path of a key below `path`, for messages built by callers.
pub fn child(path: &str, key: &str) -> String {
    join(path, key)
}
