//! A libcni-like executor: runs a network configuration list for one attachment the way the spec
//! (SPEC.md 1.1.0 §"Section 3: Execution of Network Configurations") and libcni require. It is
//! what `cni-conformance invoke` runs, and the control runtime that must pass runtime mode.
//!
//! - ADD runs the plugins in order, chaining each result into the next plugin's `prevResult`,
//!   stops at the first failure (nothing cached), and caches the final result
//!   (SPEC.md 1.1.0 §"Adding an attachment").
//! - DEL runs them in reverse order, each with the cached result converted to the list's version
//!   (0.4.0+), and removes the cache entry only when every plugin succeeded
//!   (SPEC.md 1.1.0 §"Deleting an attachment").
//! - CHECK is refused below 0.4.0, a no-op with `disableCheck`, else forward order.
//! - GC deletes cached attachments that are not valid, then (1.1.0+) sends GC to every plugin,
//!   carrying on after errors; STATUS (1.1.0+) stops at the first error.
//!
//! Unlike libcni, `capabilities` is removed from what the plugin reads: the spec says so, and the
//! control runtime follows the spec (docs/spec-notes.md#capabilities-left-in-the-request).

pub mod cache;
pub mod conf;
pub mod convert;
pub mod exec;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Map, Value};

pub use cache::Cache;
pub use conf::NetworkList;
pub use exec::{Params, PluginError};

use crate::version::SpecVersion;

/// Everything about one attachment besides the network configuration.
#[derive(Debug, Clone)]
pub struct Attachment {
    /// `CNI_CONTAINERID`.
    pub container_id: String,
    /// `CNI_NETNS`.
    pub netns: String,
    /// `CNI_IFNAME`.
    pub ifname: String,
    /// `CNI_ARGS` pairs.
    pub args: Vec<(String, String)>,
    /// Capability arguments offered to plugins that declare them.
    pub capability_args: Map<String, Value>,
}

/// How plugins are found and run.
#[derive(Debug, Clone)]
pub struct Executor {
    /// `CNI_PATH` directories.
    pub cni_path: Vec<PathBuf>,
    /// The result cache.
    pub cache: Cache,
    /// Limit for one plugin invocation.
    pub timeout: Duration,
}

/// Why an operation failed.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// A plugin failed.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// The request is invalid before any plugin runs.
    #[error("{msg}")]
    Invalid {
        /// The CNI error code.
        code: u64,
        /// What is wrong.
        msg: String,
    },
    /// The cache failed.
    #[error(transparent)]
    Cache(#[from] cache::CacheError),
    /// Several GC errors.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Many(Vec<PluginError>),
}

impl InvokeError {
    /// The error as a CNI error object for stdout. The executor's own failures carry the
    /// spec's well-known codes (5, I/O failure, for the result cache); a plugin's error keeps the
    /// code the plugin printed (0, libcni's "unknown", when it printed no error object).
    pub fn to_json(&self) -> Value {
        match self {
            InvokeError::Plugin(p) => p.to_json(),
            InvokeError::Invalid { code, msg } => json!({"code": code, "msg": msg}),
            InvokeError::Cache(e) => json!({"code": IO_FAILURE, "msg": e.to_string()}),
            InvokeError::Many(v) => json!({"code": v.first().map_or(0, |e| e.code), "msg": self.to_string()}),
        }
    }
}

/// Well-known error code 5: I/O failure.
const IO_FAILURE: u64 = 5;
/// Well-known error code 7: invalid network configuration.
const INVALID_CONFIG: u64 = 7;

fn valid_id(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn valid_ifname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s != "."
        && s != ".."
        && !s.chars().any(|c| c == '/' || c == ':' || c.is_whitespace())
}

/// The request a plugin reads: the stored object with `name` and `cniVersion` injected,
/// `capabilities` removed, `runtimeConfig` for declared and supplied capabilities, `prevResult`.
fn request(list: &NetworkList, plugin: &Map<String, Value>, att: Option<&Attachment>, prev: Option<&Value>) -> Value {
    let mut conf = plugin.clone();
    conf.insert("name".into(), json!(list.name));
    conf.insert("cniVersion".into(), json!(list.cni_version));
    let declared = conf.remove("capabilities");
    conf.remove("runtimeConfig");
    conf.remove("prevResult");
    if let (Some(att), Some(Value::Object(caps))) = (att, declared) {
        let rc: Map<String, Value> = caps
            .iter()
            .filter(|(_, on)| on.as_bool() == Some(true))
            .filter_map(|(k, _)| att.capability_args.get(k).map(|v| (k.clone(), v.clone())))
            .collect();
        if !rc.is_empty() {
            conf.insert("runtimeConfig".into(), Value::Object(rc));
        }
    }
    if let Some(p) = prev {
        conf.insert("prevResult".into(), p.clone());
    }
    Value::Object(conf)
}

fn plugin_type(p: &Map<String, Value>) -> String {
    p.get("type").and_then(Value::as_str).unwrap_or("").to_string()
}

impl Executor {
    fn params(&self, command: &'static str, att: &Attachment) -> Params {
        Params {
            command,
            container_id: att.container_id.clone(),
            netns: att.netns.clone(),
            ifname: att.ifname.clone(),
            args: att.args.clone(),
            path: self.cni_path.clone(),
        }
    }

    fn run_one(
        &self,
        plugin: &Map<String, Value>,
        verb: &'static str,
        p: &Params,
        stdin: &Value,
    ) -> Result<Option<Value>, PluginError> {
        let kind = plugin_type(plugin);
        let path = exec::find_in_path(&kind, &self.cni_path).map_err(|msg| PluginError {
            plugin: kind.clone(),
            verb,
            code: INVALID_CONFIG,
            msg,
            details: None,
        })?;
        exec::exec(&path, &kind, verb, p, stdin, self.timeout)
    }

    /// ADD: returns the final result (also cached).
    pub fn add(&self, list: &NetworkList, att: &Attachment) -> Result<Value, InvokeError> {
        if att.container_id.is_empty() {
            return Err(InvokeError::Invalid {
                code: 3,
                msg: "missing containerID".into(),
            });
        }
        if !valid_id(&att.container_id) {
            return Err(InvokeError::Invalid {
                code: 4,
                msg: format!("invalid characters in containerID {:?}", att.container_id),
            });
        }
        if !valid_id(&list.name) {
            return Err(InvokeError::Invalid {
                code: 7,
                msg: format!("invalid characters found in network name {:?}", list.name),
            });
        }
        if !valid_ifname(&att.ifname) {
            return Err(InvokeError::Invalid {
                code: 4,
                msg: format!("invalid interface name {:?}", att.ifname),
            });
        }
        // Everything ADD needs after the plugins ran is checked before the first one runs: an
        // attachment made and then forgotten is worse than none.
        for plugin in &list.plugins {
            let kind = plugin_type(plugin);
            exec::find_in_path(&kind, &self.cni_path).map_err(|msg| InvokeError::Invalid {
                code: INVALID_CONFIG,
                msg: format!("plugin type={kind:?}: {msg}"),
            })?;
        }
        self.cache.ensure_writable()?;
        let p = self.params("ADD", att);
        let mut prev: Option<Value> = None;
        for plugin in &list.plugins {
            let stdin = request(list, plugin, Some(att), prev.as_ref());
            let mut out = self.run_one(plugin, "add", &p, &stdin)?.unwrap_or_else(|| json!({}));
            if let Value::Object(o) = &mut out {
                o.entry("cniVersion").or_insert_with(|| json!(list.cni_version));
            }
            prev = Some(out);
        }
        let result = prev.unwrap_or_else(|| json!({}));
        self.cache.write(
            &cache::Entry {
                container_id: att.container_id.clone(),
                ifname: att.ifname.clone(),
                network: list.name.clone(),
                netns: att.netns.clone(),
                cni_args: att.args.clone(),
                capability_args: att.capability_args.clone(),
                result: Some(result.clone()),
            },
            &list.bytes,
        )?;
        Ok(result)
    }

    fn cached(&self, list: &NetworkList, att: &Attachment) -> Result<Option<Value>, InvokeError> {
        Ok(self
            .cache
            .result(&list.name, &att.container_id, &att.ifname, &list.cni_version)?)
    }

    /// DEL: reverse order, the cached result as `prevResult` (0.4.0+).
    pub fn del(&self, list: &NetworkList, att: &Attachment) -> Result<(), InvokeError> {
        let prev = if list.version().has_check() {
            match self.cached(list, att) {
                Ok(r) => r,
                Err(_) => {
                    // An unreadable entry is dropped and DEL goes on without prevResult (libcni).
                    self.cache.delete(&list.name, &att.container_id, &att.ifname)?;
                    None
                }
            }
        } else {
            None
        };
        let p = self.params("DEL", att);
        for plugin in list.plugins.iter().rev() {
            let stdin = request(list, plugin, Some(att), prev.as_ref());
            self.run_one(plugin, "delete", &p, &stdin)?;
        }
        self.cache.delete(&list.name, &att.container_id, &att.ifname)?;
        Ok(())
    }

    /// CHECK: refused below 0.4.0; nothing runs with `disableCheck`.
    pub fn check(&self, list: &NetworkList, att: &Attachment) -> Result<(), InvokeError> {
        if !list.version().has_check() {
            return Err(InvokeError::Invalid {
                code: 1,
                msg: format!(
                    "configuration version {:?} does not support the CHECK command",
                    list.cni_version
                ),
            });
        }
        if list.disable_check {
            return Ok(());
        }
        let prev = self.cached(list, att)?;
        let p = self.params("CHECK", att);
        for plugin in &list.plugins {
            let stdin = request(list, plugin, Some(att), prev.as_ref());
            self.run_one(plugin, "check", &p, &stdin)?;
        }
        Ok(())
    }

    /// GC: DEL of every cached attachment of the network not in `valid` (all of them when `valid`
    /// is `None`), then, at 1.1.0+, GC to every plugin in order; all errors are returned.
    pub fn gc(&self, list: &NetworkList, valid: Option<&[(String, String)]>) -> Result<(), InvokeError> {
        if list.disable_gc {
            return Ok(());
        }
        let mut errors = Vec::new();
        for e in self.cache.entries(&list.name) {
            let keep = valid.is_some_and(|v| v.iter().any(|(c, i)| *c == e.container_id && *i == e.ifname));
            if keep {
                continue;
            }
            let att = Attachment {
                container_id: e.container_id,
                netns: e.netns,
                ifname: e.ifname,
                args: e.cni_args,
                capability_args: e.capability_args,
            };
            match self.del(list, &att) {
                Ok(()) => {}
                Err(InvokeError::Plugin(p)) => errors.push(p),
                Err(other) => return Err(other),
            }
        }
        if list.version() >= SpecVersion(1, 1, 0) {
            let p = Params {
                command: "GC",
                path: self.cni_path.clone(),
                ..Default::default()
            };
            for plugin in &list.plugins {
                let mut stdin = request(list, plugin, None, None);
                if let (Some(v), Value::Object(o)) = (valid, &mut stdin) {
                    let atts: Vec<Value> = v.iter().map(|(c, i)| json!({"containerID": c, "ifname": i})).collect();
                    o.insert("cni.dev/valid-attachments".into(), Value::Array(atts.clone()));
                    o.insert("cni.dev/attachments".into(), Value::Array(atts));
                }
                if let Err(e) = self.run_one(plugin, "gc", &p, &stdin) {
                    errors.push(e);
                }
            }
        }
        match errors.len() {
            0 => Ok(()),
            1 => Err(InvokeError::Plugin(errors.remove(0))),
            _ => Err(InvokeError::Many(errors)),
        }
    }

    /// STATUS: a no-op below 1.1.0; stops at the first error and keeps its code.
    pub fn status(&self, list: &NetworkList) -> Result<(), InvokeError> {
        if list.version() < SpecVersion(1, 1, 0) {
            return Ok(());
        }
        let p = Params {
            command: "STATUS",
            path: self.cni_path.clone(),
            ..Default::default()
        };
        for plugin in &list.plugins {
            let stdin = request(list, plugin, None, None);
            self.run_one(plugin, "status", &p, &stdin)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_injects_strips_and_filters_capabilities() {
        let list = NetworkList::from_bytes(
            br#"{"name":"n","cniVersion":"1.0.0","plugins":[{"type":"a","cniVersion":"0.1.0","name":"x","keep":{"deep":[1]},
                "capabilities":{"portMappings":true,"mac":false},"runtimeConfig":{"stale":1}}]}"#,
        )
        .unwrap();
        let att = Attachment {
            container_id: "c".into(),
            netns: "/n".into(),
            ifname: "eth0".into(),
            args: vec![],
            capability_args: serde_json::from_str(r#"{"portMappings":[1],"mac":"x","ips":["y"]}"#).unwrap(),
        };
        let r = request(
            &list,
            &list.plugins[0],
            Some(&att),
            Some(&json!({"cniVersion":"1.0.0"})),
        );
        assert_eq!(r["name"], "n");
        assert_eq!(r["cniVersion"], "1.0.0");
        assert_eq!(r["keep"], json!({"deep":[1]}));
        assert!(r.get("capabilities").is_none());
        assert_eq!(r["runtimeConfig"], json!({"portMappings":[1]}));
        assert_eq!(r["prevResult"]["cniVersion"], "1.0.0");
        let gc = request(&list, &list.plugins[0], None, None);
        assert!(gc.get("runtimeConfig").is_none() && gc.get("prevResult").is_none());
        assert!(valid_ifname("eth0") && !valid_ifname("a/b") && !valid_ifname("0123456789abcdef"));
        assert!(valid_id("abc-1.2_3") && !valid_id("-x") && !valid_id(""));
    }
}
