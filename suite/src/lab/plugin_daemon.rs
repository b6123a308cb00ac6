//! A plugin's own daemon (e.g. `dhcp daemon`), started for one lab in the lab host's network
//! namespace and the lab's mount namespace, so its socket lands in the lab's private `/run`.

use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};

use super::sandbox::Sandbox;
use super::service::{Service, ServiceSpec};
use super::LabError;
use crate::ns;

/// What to start and how to tell it is ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonSpec {
    /// The plugin binary.
    pub program: PathBuf,
    /// Its arguments (e.g. `["daemon"]`).
    pub args: Vec<String>,
    /// The Unix socket it serves on, inside the lab; the daemon is ready once it exists.
    pub socket: PathBuf,
}

/// Starts the daemon and waits for its socket.
pub(super) fn start(sandbox: &Sandbox, spec: &DaemonSpec) -> Result<Service, LabError> {
    let mnt = sandbox.mnt();
    let name = spec
        .program
        .file_name()
        .map(|n| format!("{}-daemon", n.to_string_lossy()))
        .unwrap_or_else(|| "plugin-daemon".into());
    let mut service = Service::start(
        &ServiceSpec {
            name,
            program: spec.program.clone(),
            args: spec.args.clone(),
        },
        sandbox,
        sandbox.net(),
    )?;
    let socket = spec.socket.clone();
    service.wait_ready(mnt, || accepts(mnt, &socket))?;
    Ok(service)
}

/// True once a connection to the socket succeeds (the file alone may exist before `listen`).
fn accepts(mnt: BorrowedFd<'_>, socket: &Path) -> Result<bool, LabError> {
    let socket = socket.to_path_buf();
    Ok(ns::run_in(None, Some(mnt), move || {
        Ok(std::os::unix::net::UnixStream::connect(&socket).is_ok())
    })?)
}
