//! Long-running processes a lab starts for its whole life (a DHCP server, a plugin's daemon).
//!
//! A service runs in the lab's PID and mount namespaces and a network namespace of the lab, in a
//! session of its own, with its stderr (and stdout) in a log file inside the lab's private
//! `/run`. It dies with the lab: dropping the [`Service`] kills its process group and reaps it,
//! and the end of the lab's PID namespace kills it when the suite dies first, even by SIGKILL.

use std::os::fd::BorrowedFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::sandbox::{procs, Sandbox};
use super::LabError;
use crate::ns::{self, io_err};

/// Directory inside the lab (on its private `/run`) that holds service logs and state.
pub const SERVICE_DIR: &str = "/run/lab-services";

/// How long a service may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// What to start.
#[derive(Debug, Clone)]
pub struct ServiceSpec {
    /// Short name for messages and the log file (`<SERVICE_DIR>/<name>.log`).
    pub name: String,
    /// The binary.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
}

/// A running service; dropping it kills and reaps it.
#[derive(Debug)]
pub struct Service {
    name: String,
    child: Child,
    lab_pid: i32,
    log: PathBuf,
}

impl Service {
    /// Starts `spec` in the sandbox, in the network namespace `net` (one of the lab's).
    pub(super) fn start(spec: &ServiceSpec, sandbox: &Sandbox, net: BorrowedFd<'_>) -> Result<Self, LabError> {
        let mnt = sandbox.mnt();
        let log = Path::new(SERVICE_DIR).join(format!("{}.log", spec.name));
        let log_file = {
            let log = log.clone();
            ns::run_in(None, Some(mnt), move || {
                std::fs::create_dir_all(SERVICE_DIR).map_err(io_err(format!("mkdir {SERVICE_DIR}")))?;
                std::fs::File::create(&log).map_err(io_err(format!("create {}", log.display())))
            })?
        };
        let out = log_file
            .try_clone()
            .map_err(|e| LabError::Other(format!("{}: dup log file: {e}", spec.name)))?;
        let entry = sandbox.entry(net);
        let mut cmd = Command::new(&spec.program);
        cmd.args(&spec.args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(log_file))
            .current_dir("/");
        // SAFETY: runs in the forked child before exec; only async-signal-safe system calls on
        // descriptors the parent keeps open until spawn returns.
        unsafe {
            cmd.pre_exec(move || {
                entry.enter()?;
                libc::setsid();
                Ok(())
            });
        }
        let child = sandbox
            .spawn(&mut cmd)
            .map_err(|e| LabError::Other(format!("start {} ({}): {e}", spec.name, spec.program.display())))?;
        let lab_pid = procs::lab_pid(child.id()).unwrap_or(-1);
        Ok(Service {
            name: spec.name.clone(),
            child,
            lab_pid,
            log,
        })
    }

    /// Where its output goes, inside the lab.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The service's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its process id (in the suite's PID namespace).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its process id inside the lab.
    pub fn lab_pid(&self) -> i32 {
        self.lab_pid
    }

    /// Waits until `ready()` holds; an error with the service's log when it exits first or
    /// does not get ready in time.
    pub(super) fn wait_ready(
        &mut self,
        mnt: BorrowedFd<'_>,
        mut ready: impl FnMut() -> Result<bool, LabError>,
    ) -> Result<(), LabError> {
        let start = Instant::now();
        loop {
            if ready()? {
                return Ok(());
            }
            let problem = match self.child.try_wait() {
                Ok(Some(status)) => Some(format!("exited ({status}) before it was ready")),
                Ok(None) if start.elapsed() > READY_TIMEOUT => {
                    Some(format!("not ready after {} s", READY_TIMEOUT.as_secs()))
                }
                Ok(None) => None,
                Err(e) => Some(format!("cannot be waited for: {e}")),
            };
            if let Some(problem) = problem {
                let log = read_tail(mnt, &self.log);
                return Err(LabError::Other(format!("{} {problem}; its output: {log}", self.name)));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: signals our own child's process group (it is the group leader).
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// The last lines of a log file inside the lab, on one line.
pub(super) fn read_tail(mnt: BorrowedFd<'_>, path: &Path) -> String {
    let path = path.to_path_buf();
    let text = ns::run_in(None, Some(mnt), move || {
        Ok(std::fs::read_to_string(&path).unwrap_or_default())
    })
    .unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return "(nothing)".into();
    }
    lines[lines.len().saturating_sub(8)..].join(" | ")
}
