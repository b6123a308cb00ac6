//! Reading a network configuration the way libcni does: a conflist, or a single plugin object
//! turned into a one-plugin list; version selection from `cniVersion` ∪ `cniVersions`;
//! boolean-or-string flags (docs/spec-notes.md#disablecheck-as-a-string); plugin objects appended
//! from `<dir>/<name>/*.conf` unless `loadOnlyInlinedPlugins` (docs/spec-notes.md#loadonlyinlinedplugins).

use std::path::Path;

use serde_json::{Map, Value};

use crate::version::SpecVersion;

/// The highest spec version this executor speaks.
pub const MAX_VERSION: SpecVersion = SpecVersion(1, 1, 0);

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file or a key is unusable.
    #[error("error parsing configuration list: {0}")]
    Invalid(String),
}

fn invalid(msg: impl Into<String>) -> ConfError {
    ConfError::Invalid(msg.into())
}

/// A parsed network configuration list.
#[derive(Debug, Clone)]
pub struct NetworkList {
    /// `name`.
    pub name: String,
    /// The version every plugin gets: the highest of `cniVersion` ∪ `cniVersions` that this executor
    /// supports (`"0.1.0"` when neither is given).
    pub cni_version: String,
    /// `disableCheck`.
    pub disable_check: bool,
    /// `disableGC`.
    pub disable_gc: bool,
    /// Plugin objects in order.
    pub plugins: Vec<Map<String, Value>>,
    /// The bytes the list was read from (kept in the result cache).
    pub bytes: Vec<u8>,
}

impl NetworkList {
    /// The selected version, parsed.
    pub fn version(&self) -> SpecVersion {
        self.cni_version.parse().unwrap_or(SpecVersion(0, 1, 0))
    }

    /// Reads a configuration file; plugin objects from `<dir>/<name>/*.conf` are appended unless
    /// `loadOnlyInlinedPlugins` is true.
    pub fn from_file(path: &Path) -> Result<Self, ConfError> {
        let bytes = std::fs::read(path).map_err(|source| ConfError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let mut list = Self::from_bytes(&bytes)?;
        let doc: Value = serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
        let only_inline = flag(doc.get("loadOnlyInlinedPlugins"), "loadOnlyInlinedPlugins")?;
        let is_list = doc.get("plugins").is_some() || doc.get("type").is_none();
        if is_list && !only_inline {
            if let Some(dir) = path.parent() {
                list.plugins.extend(sibling_plugins(&dir.join(&list.name))?);
            }
        }
        if list.plugins.is_empty() {
            return Err(invalid("no plugin configs found"));
        }
        Ok(list)
    }

    /// Parses configuration bytes (no sibling folder).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ConfError> {
        let doc: Value = serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
        let obj = doc.as_object().ok_or_else(|| invalid("not a JSON object"))?;
        let name = match obj.get("name") {
            // The name is a file name in the cache and names the folder of sibling plugins, so a
            // name the spec forbids (`a/b/../c`) is refused before it is used as a path.
            Some(Value::String(s)) if crate::profile::valid_network_name(s) => s.clone(),
            Some(Value::String(s)) if !s.is_empty() => {
                return Err(invalid(format!(
                    "network name {s:?} is not one the spec allows (an ASCII letter or digit, then letters, digits, '_', '.' or '-')"
                )))
            }
            Some(Value::String(_)) | None => return Err(invalid("no name")),
            Some(_) => return Err(invalid("name is not a string")),
        };
        let declared = match obj.get("cniVersion") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(invalid("cniVersion is not a string")),
        };
        let cni_version = select_version(declared.as_deref(), obj.get("cniVersions"))?;
        let disable_check = flag(obj.get("disableCheck"), "disableCheck")?;
        let disable_gc = flag(obj.get("disableGC"), "disableGC")?;
        let only_inline = flag(obj.get("loadOnlyInlinedPlugins"), "loadOnlyInlinedPlugins")?;
        let plugins = match obj.get("plugins") {
            Some(Value::Array(a)) if a.is_empty() => return Err(invalid("no plugins in list")),
            Some(Value::Array(a)) => a
                .iter()
                .enumerate()
                .map(|(i, p)| plugin_object(p, i))
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => return Err(invalid("plugins is not an array")),
            None if obj.contains_key("type") => vec![plugin_object(&doc, 0)?],
            None if only_inline => return Err(invalid("loadOnlyInlinedPlugins is true but plugins is missing")),
            None => Vec::new(),
        };
        Ok(NetworkList {
            name,
            cni_version,
            disable_check,
            disable_gc,
            plugins,
            bytes: bytes.to_vec(),
        })
    }
}

/// A plugin object needs a non-empty `type` without path separators.
fn plugin_object(p: &Value, index: usize) -> Result<Map<String, Value>, ConfError> {
    let obj = p
        .as_object()
        .ok_or_else(|| invalid(format!("plugin {index} is not an object")))?;
    match obj.get("type") {
        Some(Value::String(t)) if !t.is_empty() => Ok(obj.clone()),
        _ => Err(invalid(format!("plugin {index}: missing 'type'"))),
    }
}

/// `true`, `false`, or the strings "true"/"false" in any case; absent is false.
fn flag(v: Option<&Value>, key: &str) -> Result<bool, ConfError> {
    match v {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(false),
        Some(other) => Err(invalid(format!("{key}: {other} is not a boolean"))),
    }
}

/// The highest version in `cniVersion` ∪ `cniVersions` not above [`MAX_VERSION`].
fn select_version(declared: Option<&str>, list: Option<&Value>) -> Result<String, ConfError> {
    let mut best: Option<SpecVersion> = None;
    if let Some(list) = list {
        let arr = list.as_array().ok_or_else(|| invalid("cniVersions is not an array"))?;
        for v in arr {
            let s = v
                .as_str()
                .ok_or_else(|| invalid("cniVersions entries must be strings"))?;
            let parsed: SpecVersion = s.parse().map_err(|e| invalid(format!("cniVersions: {e}")))?;
            if parsed <= MAX_VERSION && best.is_none_or(|b| parsed > b) {
                best = Some(parsed);
            }
        }
    }
    match (declared, best) {
        (Some(d), Some(b)) => match d.parse::<SpecVersion>() {
            Ok(dv) if dv > b => Ok(d.to_string()),
            Ok(_) => Ok(b.to_string()),
            Err(e) => Err(invalid(format!("cniVersion: {e}"))),
        },
        (Some(d), None) => Ok(d.to_string()),
        (None, Some(b)) => Ok(b.to_string()),
        (None, None) => Ok("0.1.0".into()),
    }
}

/// `<dir>/*.conf` plugin objects, in file-name order; none when the folder does not exist.
fn sibling_plugins(dir: &Path) -> Result<Vec<Map<String, Value>>, ConfError> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    files.sort();
    files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let bytes = std::fs::read(f).map_err(|source| ConfError::Read {
                path: f.display().to_string(),
                source,
            })?;
            let v: Value = serde_json::from_slice(&bytes).map_err(|e| invalid(format!("{}: {e}", f.display())))?;
            plugin_object(&v, i)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selects_highest_supported_version_and_reads_flags() {
        let l = NetworkList::from_bytes(
            br#"{"name":"n","cniVersion":"0.4.0","cniVersions":["1.0.0","1.1.0","9.9.9"],"disableCheck":"TRUE","plugins":[{"type":"a"}]}"#,
        )
        .unwrap();
        assert_eq!(l.cni_version, "1.1.0");
        assert!(l.disable_check);
        assert!(!l.disable_gc);
        for bad in [
            r#"{"cniVersion":"1.0.0","plugins":[{"type":"a"}]}"#,
            r#"{"name":"n","plugins":[]}"#,
            r#"{"name":"n","plugins":[{"x":1}]}"#,
            r#"{"name":"n","disableCheck":"yes","plugins":[{"type":"a"}]}"#,
            r#"{"name":"n","cniVersions":["1.0"],"plugins":[{"type":"a"}]}"#,
            r#"{"name":"n","loadOnlyInlinedPlugins":true}"#,
        ] {
            assert!(NetworkList::from_bytes(bad.as_bytes()).is_err(), "{bad}");
        }
        let single = NetworkList::from_bytes(br#"{"name":"n","cniVersion":"0.3.1","type":"a"}"#).unwrap();
        assert_eq!(single.plugins.len(), 1);
    }
}
