//! Running a delegated plugin (IPAM) the way spec §4 describes: found through `CNI_PATH`, given
//! the same environment (only `CNI_COMMAND` changes) and the same complete stdin, its stderr
//! passed through to ours.

use super::error::{CniError, DELEGATE_FAILED, INTERNAL};
use super::result::CniResult;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
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

/// A pipe already holding `data` (its write end closed) when the pipe can take it all without
/// blocking; `None` otherwise. Given as the delegate's stdin, the delegate finds its whole
/// configuration waiting instead of sleeping until we get to write it after the spawn.
fn prefilled_pipe(data: &[u8]) -> Option<OwnedFd> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: fds is valid for two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return None;
    }
    // SAFETY: two fresh descriptors nobody else owns.
    let (read_end, write_end) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: plain write of a valid buffer to our own pipe.
    let written = unsafe { libc::write(write_end.as_raw_fd(), data.as_ptr().cast(), data.len()) };
    if written != data.len() as isize {
        return None;
    }
    drop(write_end);
    // The delegate reads blocking: clear the O_NONBLOCK pipe2 gave the read end too.
    // SAFETY: fcntl on our own descriptor.
    let ok = unsafe {
        let flags = libc::fcntl(read_end.as_raw_fd(), libc::F_GETFL);
        flags >= 0 && libc::fcntl(read_end.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK) == 0
    };
    ok.then_some(read_end)
}

/// Run `plugin` with `CNI_COMMAND=command` and `stdin`; returns its stdout on success and its
/// Error (code kept) on failure.
///
/// When `plugin` is this crate's own plugin from this very build ([`crate::builtin`]), its
/// code runs in this process instead, through the same dispatcher and with the same inputs.
pub fn exec(plugin: &Path, command: &str, stdin: &[u8]) -> Result<Vec<u8>, CniError> {
    if let Some(builtin) = crate::builtin::same_build_plugin(plugin) {
        return exec_in_process(builtin, plugin, command, stdin);
    }
    let prefilled = prefilled_pipe(stdin);
    let stdin_spec = match prefilled {
        Some(fd) => Stdio::from(fd),
        None => Stdio::piped(),
    };
    let mut child = Command::new(plugin)
        .env("CNI_COMMAND", command)
        .stdin(stdin_spec)
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

/// What [`exec`] does for a plugin of this build: the dispatcher its `main` would run, fed
/// this process's environment with `CNI_COMMAND=command` and `stdin`; its stdout collected
/// and judged like a child's (exit status 0 or an error object). A panic counts as a crash.
fn exec_in_process(
    builtin: &dyn super::dispatch::Plugin,
    plugin: &Path,
    command: &str,
    stdin: &[u8],
) -> Result<Vec<u8>, CniError> {
    super::trace::mark("delegate: in-process");
    let lookup = |key: &str| {
        if key == "CNI_COMMAND" {
            Some(command.to_string())
        } else {
            std::env::var(key).ok()
        }
    };
    let mut stdout = Vec::new();
    let stderr = std::io::stderr();
    let status = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        super::dispatch::dispatch(
            builtin,
            &lookup,
            &mut |_| Ok(stdin.to_vec()),
            &mut stdout,
            &mut stderr.lock(),
        )
    }))
    .unwrap_or(101);
    super::trace::mark("delegate: done");
    if status == 0 {
        return Ok(stdout);
    }
    Err(parse_error(plugin, &stdout, Some(status)))
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
