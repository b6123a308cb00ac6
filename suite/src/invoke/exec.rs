//! Finding a plugin on the search path (`CNI_PATH`) and running it once.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::cni::ErrorDoc;
use crate::invocation::{self, Exit, Invocation, Record};

/// A plugin failure, as the executor reports it to its caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("plugin type={plugin:?} failed ({verb}): {msg}{}", details.as_deref().map(|d| format!("; {d}")).unwrap_or_default())]
pub struct PluginError {
    /// The plugin type.
    pub plugin: String,
    /// "add", "delete", "check", "gc", "status".
    pub verb: &'static str,
    /// The error code (0 when the plugin printed no usable error).
    pub code: u64,
    /// The message.
    pub msg: String,
    /// Details, if any.
    pub details: Option<String>,
}

impl PluginError {
    /// The error as a CNI error object.
    pub fn to_json(&self) -> Value {
        let mut v = serde_json::json!({"code": self.code, "msg": self.to_string()});
        if let Some(d) = &self.details {
            v["details"] = Value::String(d.clone());
        }
        v
    }
}

/// Finds `name` in `dirs`: the first regular file `dir/name`. Names with `/` are refused.
pub fn find_in_path(name: &str, dirs: &[PathBuf]) -> Result<PathBuf, String> {
    if name.is_empty() {
        return Err("no plugin name provided".into());
    }
    if name.contains('/') {
        return Err(format!("invalid plugin name: {name}"));
    }
    if dirs.is_empty() {
        return Err("no paths provided".into());
    }
    dirs.iter()
        .map(|d| d.join(name))
        .find(|p| p.metadata().is_ok_and(|m| m.is_file()))
        .ok_or_else(|| format!("failed to find plugin {name:?} in path {dirs:?}"))
}

/// The `CNI_*` parameters of one invocation.
#[derive(Debug, Clone, Default)]
pub struct Params {
    /// `CNI_COMMAND`.
    pub command: &'static str,
    /// `CNI_CONTAINERID`.
    pub container_id: String,
    /// `CNI_NETNS`.
    pub netns: String,
    /// `CNI_IFNAME`.
    pub ifname: String,
    /// `CNI_ARGS` pairs.
    pub args: Vec<(String, String)>,
    /// `CNI_PATH`.
    pub path: Vec<PathBuf>,
}

/// Runs a plugin with the caller's environment plus the six `CNI_*` variables (all always set);
/// copies its stderr to ours; returns stdout parsed as JSON (`None` when empty) or the error.
pub fn exec(
    plugin: &Path,
    kind: &str,
    verb: &'static str,
    p: &Params,
    stdin: &Value,
    timeout: Duration,
) -> Result<Option<Value>, PluginError> {
    let mut env: Vec<(String, String)> = std::env::vars().filter(|(k, _)| !k.starts_with("CNI_")).collect();
    let args: Vec<String> = p.args.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let path: Vec<String> = p.path.iter().map(|d| d.display().to_string()).collect();
    env.extend([
        ("CNI_COMMAND".to_string(), p.command.to_string()),
        ("CNI_CONTAINERID".into(), p.container_id.clone()),
        ("CNI_NETNS".into(), p.netns.clone()),
        ("CNI_ARGS".into(), args.join(";")),
        ("CNI_IFNAME".into(), p.ifname.clone()),
        ("CNI_PATH".into(), path.join(":")),
    ]);
    let inv = Invocation {
        program: plugin.to_path_buf(),
        env,
        stdin: serde_json::to_vec(stdin).unwrap_or_default(),
        timeout,
        output_cap: invocation::DEFAULT_OUTPUT_CAP,
        lab: None,
    };
    let rec = invocation::run(&inv);
    // The plugin's stderr is passed on as libcni does; a closed stderr is no reason to fail.
    let _ = std::io::Write::write_all(&mut std::io::stderr(), rec.stderr.as_bytes());
    outcome(&rec, kind, verb)
}

fn outcome(rec: &Record, kind: &str, verb: &'static str) -> Result<Option<Value>, PluginError> {
    let fail = |code: u64, msg: String, details: Option<String>| PluginError {
        plugin: kind.to_string(),
        verb,
        code,
        msg,
        details,
    };
    match &rec.exit {
        Exit::Code(0) => {
            let out = rec.stdout.trim();
            if out.is_empty() {
                return Ok(None);
            }
            match serde_json::from_str::<Value>(out) {
                Ok(Value::Null) => Ok(Some(Value::Object(Default::default()))),
                Ok(v) => Ok(Some(v)),
                Err(e) => Err(fail(0, format!("cannot parse the plugin's output: {e}"), None)),
            }
        }
        Exit::Code(_) => match ErrorDoc::parse(&rec.stdout) {
            Some(doc) => Err(fail(
                doc.code.unwrap_or(0),
                doc.msg.unwrap_or_else(|| "no msg".into()),
                doc.details,
            )),
            None if rec.stdout.trim().is_empty() && rec.stderr.trim().is_empty() => Err(fail(
                0,
                format!("netplugin failed with no error message: {}", rec.exit),
                None,
            )),
            None => Err(fail(
                0,
                format!("netplugin failed: {:?}: {}", rec.stderr.trim(), rec.exit),
                None,
            )),
        },
        other => Err(fail(0, format!("netplugin did not finish: {other}"), None)),
    }
}
