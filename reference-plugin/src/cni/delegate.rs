//! Running a delegated plugin (IPAM) the way spec §4 describes: found through `CNI_PATH`, given
//! the same environment (only `CNI_COMMAND` changes) and the same complete stdin, its stderr
//! passed through to ours.

use super::error::{CniError, DELEGATE_FAILED, INTERNAL};
use super::result::CniResult;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Find `name` in `dirs`: the first regular file `dir/name`. A name with a `/` is refused.
pub fn find_in_path(name: &str, dirs: &[PathBuf]) -> Result<PathBuf, CniError> {
    if name.is_empty() {
        return Err(CniError::config("no plugin name provided"));
    }
    if name.contains('/') {
        return Err(CniError::config(format!(
            "invalid plugin name {name:?}: it must not contain '/'"
        )));
    }
    if dirs.is_empty() {
        return Err(CniError::new(
            super::error::INVALID_ENVIRONMENT_VARIABLES,
            format!("cannot find plugin {name:?}: CNI_PATH is empty"),
        ));
    }
    for dir in dirs {
        let candidate = dir.join(name);
        if candidate.metadata().is_ok_and(|m| m.is_file()) {
            return Ok(candidate);
        }
    }
    Err(CniError::with_details(
        DELEGATE_FAILED,
        format!("failed to find plugin {name:?} in path {dirs:?}"),
        "install the plugin in one of the CNI_PATH directories",
    ))
}

/// Run `plugin` with `CNI_COMMAND=command` and `stdin`; returns its stdout on success and its
/// Error (code kept) on failure.
pub fn exec(plugin: &Path, command: &str, stdin: &[u8]) -> Result<Vec<u8>, CniError> {
    let mut child = Command::new(plugin)
        .env("CNI_COMMAND", command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| {
            CniError::new(
                DELEGATE_FAILED,
                format!("cannot run delegate {}: {e}", plugin.display()),
            )
        })?;
    if let Some(mut input) = child.stdin.take() {
        // A delegate that exits without reading stdin closes the pipe; that is its business.
        let _ = input.write_all(stdin);
    }
    let output = child.wait_with_output().map_err(|e| {
        CniError::new(
            DELEGATE_FAILED,
            format!("waiting for delegate {}: {e}", plugin.display()),
        )
    })?;
    if output.status.success() {
        return Ok(output.stdout);
    }
    Err(parse_error(plugin, &output.stdout, output.status.code()))
}

fn parse_error(plugin: &Path, stdout: &[u8], status: Option<i32>) -> CniError {
    #[derive(serde::Deserialize)]
    struct Wire {
        code: u32,
        #[serde(default)]
        msg: String,
        #[serde(default)]
        details: String,
    }
    match serde_json::from_slice::<Wire>(stdout) {
        Ok(w) => CniError::with_details(w.code, w.msg, w.details),
        Err(_) => CniError::with_details(
            INTERNAL,
            format!(
                "delegate {} failed (exit status {:?}) without an error object",
                plugin.display(),
                status
            ),
            String::from_utf8_lossy(stdout).into_owned(),
        ),
    }
}

/// A delegated ADD: the delegate's result, read in `cni_version`.
pub fn add(plugin_type: &str, dirs: &[PathBuf], stdin: &[u8], cni_version: &str) -> Result<CniResult, CniError> {
    let plugin = find_in_path(plugin_type, dirs)?;
    let stdout = exec(&plugin, "ADD", stdin)?;
    let value: serde_json::Value = serde_json::from_slice(&stdout).map_err(|e| {
        CniError::new(
            DELEGATE_FAILED,
            format!("delegate {plugin_type} printed a result that is not JSON: {e}"),
        )
    })?;
    CniResult::from_json(&value, cni_version).map_err(|e| {
        CniError::with_details(
            DELEGATE_FAILED,
            format!("delegate {plugin_type} printed an invalid result"),
            e.msg,
        )
    })
}

/// A delegated DEL, CHECK, GC or STATUS (no output expected).
pub fn run(plugin_type: &str, dirs: &[PathBuf], command: &str, stdin: &[u8]) -> Result<(), CniError> {
    let plugin = find_in_path(plugin_type, dirs)?;
    exec(&plugin, command, stdin).map(|_| ())
}
