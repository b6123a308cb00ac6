//! JSON Schemas of the CNI documents, one set per spec version, embedded from `schemas/`.
//!
//! The schema files (draft 2020-12) live in `schemas/<version>/<kind>.schema.json` at the
//! workspace root, with shared value shapes in `schemas/common/defs.schema.json`; see
//! `schemas/README.md`. They are compiled into the binary with `include_str!`, and each
//! (version, kind) validator is compiled once, on first use.
//!
//! [`validate`] checks a document against the schema of one exact spec version and returns every
//! [`Violation`], sorted by JSON pointer. Besides the schema it checks one rule JSON Schema cannot
//! express: each `ips[].interface` of a 0.3.0+ result must index an entry of `interfaces[]`.

mod embedded;
mod formats;
mod messages;

use std::collections::HashMap;
use std::sync::OnceLock;

use jsonschema::{Draft, Registry, Validator};
use serde_json::Value;

/// Which CNI document a schema describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocKind {
    /// The ADD success result (also the IPAM result and `prevResult`).
    AddResult,
    /// The error object a failing plugin prints.
    Error,
    /// The VERSION answer.
    VersionResult,
    /// A plugin configuration object as the plugin receives it on stdin.
    PluginConfig,
    /// A network configuration list (conflist).
    NetworkConfigList,
    /// The GC request (plugin configuration plus the valid-attachments list).
    GcInput,
}

impl DocKind {
    /// Every kind, in declaration order.
    pub const ALL: [DocKind; 6] = [
        DocKind::AddResult,
        DocKind::Error,
        DocKind::VersionResult,
        DocKind::PluginConfig,
        DocKind::NetworkConfigList,
        DocKind::GcInput,
    ];

    /// The schema's file name in `schemas/<version>/`, e.g. `"add-result.schema.json"`.
    pub fn file_name(self) -> &'static str {
        match self {
            DocKind::AddResult => "add-result.schema.json",
            DocKind::Error => "error.schema.json",
            DocKind::VersionResult => "version-result.schema.json",
            DocKind::PluginConfig => "plugin-config.schema.json",
            DocKind::NetworkConfigList => "network-config-list.schema.json",
            DocKind::GcInput => "gc-input.schema.json",
        }
    }

    /// How messages name the whole document, e.g. `"the result"`.
    fn root_name(self) -> &'static str {
        match self {
            DocKind::AddResult => "the result",
            DocKind::Error => "the error",
            DocKind::VersionResult => "the VERSION result",
            DocKind::PluginConfig => "the plugin configuration",
            DocKind::NetworkConfigList => "the network configuration list",
            DocKind::GcInput => "the GC input",
        }
    }

    fn index(self) -> usize {
        match self {
            DocKind::AddResult => 0,
            DocKind::Error => 1,
            DocKind::VersionResult => 2,
            DocKind::PluginConfig => 3,
            DocKind::NetworkConfigList => 4,
            DocKind::GcInput => 5,
        }
    }
}

/// One way a document breaks its schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON pointer to the offending value ("" for the root).
    pub path: String,
    /// What is wrong, in words.
    pub message: String,
}

/// Errors from schema lookup.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The version is not one the spec defines.
    #[error("no schemas for CNI version {0:?}")]
    UnknownVersion(String),
    /// The document kind does not exist in that version (e.g. GC before 1.1.0).
    #[error("{kind:?} does not exist in CNI version {version}")]
    NotInVersion {
        /// The kind asked for.
        kind: DocKind,
        /// The version asked for.
        version: String,
    },
}

/// The spec versions that have schemas, oldest first.
pub const VERSIONS: &[&str] = &["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// Kinds of 0.1.0: no VERSION verb, no lists.
const KINDS_0_1: &[DocKind] = &[DocKind::AddResult, DocKind::Error, DocKind::PluginConfig];
/// Kinds of 0.2.0: VERSION appears.
const KINDS_0_2: &[DocKind] = &[
    DocKind::AddResult,
    DocKind::Error,
    DocKind::VersionResult,
    DocKind::PluginConfig,
];
/// Kinds of 0.3.0 to 1.0.0: network configuration lists appear.
const KINDS_0_3: &[DocKind] = &[
    DocKind::AddResult,
    DocKind::Error,
    DocKind::VersionResult,
    DocKind::PluginConfig,
    DocKind::NetworkConfigList,
];
/// Kinds of 1.1.0: GC appears.
const KINDS_1_1: &[DocKind] = &DocKind::ALL;

/// The document kinds that spec `version` defines, in [`DocKind::ALL`] order; empty for a version
/// not in [`VERSIONS`].
///
/// 0.1.0 has results, errors and plugin configurations; 0.2.0 adds the VERSION result; 0.3.0
/// adds network configuration lists; 1.1.0 adds the GC input.
pub fn kinds_in(version: &str) -> &'static [DocKind] {
    match version {
        "0.1.0" => KINDS_0_1,
        "0.2.0" => KINDS_0_2,
        "0.3.0" | "0.3.1" | "0.4.0" | "1.0.0" => KINDS_0_3,
        "1.1.0" => KINDS_1_1,
        _ => &[],
    }
}

/// The text of the schema for `kind` in spec `version`, as embedded from `schemas/`.
pub fn schema_text(version: &str, kind: DocKind) -> Result<&'static str, SchemaError> {
    let path = schema_path(version, kind)?;
    embedded::FILES
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, text)| *text)
        .ok_or_else(|| SchemaError::NotInVersion {
            kind,
            version: version.to_string(),
        })
}

/// Validates `doc` as a `kind` document of spec `version`. `Ok(vec![])` means valid.
///
/// Violations are sorted by path (byte order of the JSON pointer), then message, without duplicates. A schema that fails to compile (a bug in
/// `schemas/`, caught by the tests) is reported as a violation at the root rather than a panic.
pub fn validate(version: &str, kind: DocKind, doc: &Value) -> Result<Vec<Violation>, SchemaError> {
    let path = schema_path(version, kind)?;
    let uri = format!("{}{path}", embedded::BASE_URI);
    let schemas = match parsed_schemas() {
        Ok(schemas) => schemas,
        Err(e) => return Ok(vec![internal_violation(version, kind, e)]),
    };
    let validator = match compiled(version, kind, &uri, schemas) {
        Ok(validator) => validator,
        Err(e) => return Ok(vec![internal_violation(version, kind, e)]),
    };
    let mut violations = messages::violations(validator, doc, schemas, &uri, kind.root_name());
    if has_interfaces_list(version) {
        match kind {
            DocKind::AddResult => violations.extend(interface_index_violations(doc, "", doc)),
            DocKind::PluginConfig | DocKind::GcInput => {
                if let Some(prev) = doc.get("prevResult") {
                    violations.extend(interface_index_violations(prev, "/prevResult", doc));
                }
            }
            _ => {}
        }
    }
    violations.sort_by(|a, b| (&a.path, &a.message).cmp(&(&b.path, &b.message)));
    violations.dedup();
    Ok(violations)
}

/// `<version>/<file>` of the schema, or why there is none.
fn schema_path(version: &str, kind: DocKind) -> Result<String, SchemaError> {
    if !VERSIONS.contains(&version) {
        return Err(SchemaError::UnknownVersion(version.to_string()));
    }
    if !kinds_in(version).contains(&kind) {
        return Err(SchemaError::NotInVersion {
            kind,
            version: version.to_string(),
        });
    }
    Ok(format!("{version}/{}", kind.file_name()))
}

/// Whether results of `version` have `interfaces[]` and `ips[].interface` (0.3.0 and later).
fn has_interfaces_list(version: &str) -> bool {
    !matches!(version, "0.1.0" | "0.2.0")
}

fn internal_violation(version: &str, kind: DocKind, error: &str) -> Violation {
    Violation {
        path: String::new(),
        message: format!(
            "internal error: the {kind:?} schema of CNI {version} is unusable, so nothing was checked: {error}"
        ),
    }
}

/// Every embedded schema, parsed, by `$id`.
fn parsed_schemas() -> Result<&'static HashMap<String, Value>, &'static str> {
    static SCHEMAS: OnceLock<Result<HashMap<String, Value>, String>> = OnceLock::new();
    SCHEMAS
        .get_or_init(|| {
            embedded::FILES
                .iter()
                .map(|(path, text)| {
                    let value: Value =
                        serde_json::from_str(text).map_err(|e| format!("schemas/{path} is not JSON: {e}"))?;
                    Ok((format!("{}{path}", embedded::BASE_URI), value))
                })
                .collect()
        })
        .as_ref()
        .map_err(String::as_str)
}

/// The validator for (version, kind), compiled on first use.
fn compiled(
    version: &str,
    kind: DocKind,
    uri: &str,
    schemas: &'static HashMap<String, Value>,
) -> Result<&'static Validator, &'static str> {
    type Slot = OnceLock<Result<Validator, String>>;
    static VALIDATORS: [[Slot; 6]; 7] = [const { [const { OnceLock::new() }; 6] }; 7];
    let version_index = VERSIONS.iter().position(|v| *v == version).unwrap_or(0);
    let slot = VALIDATORS
        .get(version_index)
        .and_then(|row| row.get(kind.index()))
        .ok_or("no validator slot")?;
    slot.get_or_init(|| compile(uri, schemas))
        .as_ref()
        .map_err(String::as_str)
}

/// Compiles the schema `uri` with every embedded schema available to `$ref` and the custom
/// formats switched on. Nothing is fetched from the network or the file system.
fn compile(uri: &str, schemas: &'static HashMap<String, Value>) -> Result<Validator, String> {
    let root = schemas.get(uri).ok_or_else(|| format!("{uri} is not embedded"))?;
    let registry = Registry::new()
        .extend(schemas.iter().map(|(id, value)| (id.as_str(), value)))
        .and_then(|builder| builder.prepare())
        .map_err(|e| format!("cannot index the embedded schemas: {e}"))?;
    let mut options = jsonschema::options()
        .with_draft(Draft::Draft202012)
        .with_registry(&registry)
        .with_base_uri(uri)
        .should_validate_formats(true)
        .should_ignore_unknown_formats(false);
    for (name, check) in formats::ALL {
        options = options.with_format(*name, *check);
    }
    options.build(root).map_err(|e| format!("{uri} does not compile: {e}"))
}

/// `ips[N].interface` values of `result` that do not index an entry of `interfaces[]`.
/// `prefix` is the JSON pointer of `result` inside `doc`.
fn interface_index_violations(result: &Value, prefix: &str, doc: &Value) -> Vec<Violation> {
    let Some(ips) = result.get("ips").and_then(Value::as_array) else {
        return Vec::new();
    };
    let count = match result.get("interfaces") {
        None => 0,
        Some(Value::Array(interfaces)) => interfaces.len(),
        Some(_) => return Vec::new(), // the schema already reports a non-array
    };
    ips.iter()
        .enumerate()
        .filter_map(|(i, ip)| {
            let index = ip.get("interface")?.as_u64()?;
            if usize::try_from(index).is_ok_and(|index| index < count) {
                return None;
            }
            let path = format!("{prefix}/ips/{i}/interface");
            let subject = messages::render_path(&path, doc, "");
            let message = match count {
                0 => format!(
                    "{subject} is {index}, but the result lists no interfaces; it must index an entry of interfaces[]"
                ),
                1 => format!("{subject} is {index}, but interfaces[] has 1 entry; it must be 0"),
                n => format!("{subject} is {index}, but interfaces[] has {n} entries; it must be below {n}"),
            };
            Some(Violation { path, message })
        })
        .collect()
}
