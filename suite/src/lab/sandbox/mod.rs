//! The sealed lab: the namespaces and root file system every plugin and runtime runs in.
//!
//! A sandbox is one init process (see [`init`]) that owns a new PID, mount, network, UTS and IPC
//! namespace and a root file system built by [`plan`]: an overlay of each of the machine's
//! directories whose writable layer lives in the sandbox, fresh `/proc`, `/sys`, `/dev`, `/run`
//! and `/var/lib/cni`, and no path back to the machine. Every process the suite starts in a lab
//! (plugins, their daemons, the DHCP server, a runtime command) is forked into the sandbox's PID
//! namespace ([`Sandbox::spawn`]): a plugin's parent, `/proc/1` and every pid it can see are in
//! the lab, and the suite is out of its sight and reach. When the sandbox is dropped, or the
//! suite dies, the init ends and the kernel kills everything left in the lab.
//!
//! What a plugin wrote outside the lab's data directories stays in the writable layer, which
//! [`layer`] reads for the host snapshot; [`procs`] lists and ends processes left in the lab.

mod init;
pub mod layer;
pub mod mountinfo;
pub mod plan;
pub mod procs;

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

pub use init::CTL_KEEP;
use plan::LayerDir;

/// How long dropping a sandbox waits for its init to end.
const END_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors while building a sandbox.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// Reading the mount table or planning failed.
    #[error("planning the lab's root file system: {0}")]
    Plan(String),
    /// The fork or a pipe failed.
    #[error("starting the lab's init: {0}")]
    Start(std::io::Error),
    /// A step of the plan failed in the init.
    #[error("building the lab ({what}): {err}")]
    Step {
        /// The step.
        what: String,
        /// The error the kernel gave.
        err: std::io::Error,
    },
    /// The init ended before it was ready.
    #[error("the lab's init ended during set-up")]
    Died,
    /// Opening one of the init's namespaces or directories failed.
    #[error("opening the lab's {what}: {err}")]
    Open {
        /// What.
        what: String,
        /// The error.
        err: std::io::Error,
    },
}

/// A running sandbox.
#[derive(Debug)]
pub struct Sandbox {
    init: libc::pid_t,
    pidfd: Option<OwnedFd>,
    control: Option<OwnedFd>,
    kept: bool,
    pid_ns: OwnedFd,
    mnt: OwnedFd,
    net: OwnedFd,
    uts: OwnedFd,
    ipc: OwnedFd,
    stage: File,
    view: File,
    layers: Vec<LayerDir>,
    read_only: Vec<PathBuf>,
}

fn open_init(pid: libc::pid_t, rel: &str, what: &str) -> Result<File, SandboxError> {
    File::open(format!("/proc/{pid}/{rel}")).map_err(|err| SandboxError::Open { what: what.into(), err })
}

/// True when the process is in a user namespace other than the machine's (overlayfs then needs
/// `userxattr`).
pub fn in_user_namespace() -> bool {
    std::fs::read_to_string("/proc/self/uid_map")
        .map(|m| m.split_whitespace().collect::<Vec<_>>() != ["0", "0", "4294967295"])
        .unwrap_or(false)
}

impl Sandbox {
    /// Builds a new sandbox and waits until it is ready.
    pub fn start() -> Result<Self, SandboxError> {
        let mounts = mountinfo::read().map_err(|e| SandboxError::Plan(format!("/proc/self/mountinfo: {e}")))?;
        let plan = plan::build(&mounts, in_user_namespace()).map_err(|e| SandboxError::Plan(e.to_string()))?;
        let forked = init::fork(&plan).map_err(SandboxError::Start)?;
        let pid = forked.pid;
        // From here on the init is ours to end: on any error, closing the control pipe ends it.
        let mut sandbox_parts = Partial {
            pid,
            control: Some(forked.control),
        };
        let fallbacks = read_report(forked.report, &plan)?;
        let pid_ns = open_init(pid, "ns/pid", "PID namespace")?.into();
        let mnt = open_init(pid, "ns/mnt", "mount namespace")?.into();
        let net = open_init(pid, "ns/net", "network namespace")?.into();
        let uts = open_init(pid, "ns/uts", "UTS namespace")?.into();
        let ipc = open_init(pid, "ns/ipc", "IPC namespace")?.into();
        let stage = open_init(pid, &format!("fd/{}", plan::FD_STAGE), "writable layer")?;
        let view = open_init(pid, &format!("fd/{}", plan::FD_VIEW), "root view")?;
        // SAFETY: plain syscall; a negative result means unsupported (then the drop polls).
        let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        let pidfd = (pidfd >= 0).then(|| {
            // SAFETY: a descriptor we just got and own.
            unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(pidfd as i32) }
        });
        let (layers, read_only): (Vec<LayerDir>, Vec<LayerDir>) =
            plan.layers.iter().cloned().partition(|l| !fallbacks.contains(&l.op));
        Ok(Sandbox {
            init: pid,
            pidfd,
            control: sandbox_parts.control.take(),
            kept: false,
            pid_ns,
            mnt,
            net,
            uts,
            ipc,
            stage,
            view,
            layers,
            read_only: read_only.into_iter().map(|l| l.path).collect(),
        })
    }

    /// The init's pid (in the suite's PID namespace).
    pub fn init_pid(&self) -> u32 {
        self.init as u32
    }

    /// The lab's mount namespace.
    pub fn mnt(&self) -> BorrowedFd<'_> {
        self.mnt.as_fd()
    }

    /// The lab host's network namespace (the init's).
    pub fn net(&self) -> BorrowedFd<'_> {
        self.net.as_fd()
    }

    /// The lab's PID namespace.
    pub fn pid_ns(&self) -> BorrowedFd<'_> {
        self.pid_ns.as_fd()
    }

    /// The overlaid directories and where their writable layers are.
    pub fn layers(&self) -> &[LayerDir] {
        &self.layers
    }

    /// Directories overlayfs refused: shown read-only in the lab (writes there fail).
    pub fn read_only_dirs(&self) -> &[PathBuf] {
        &self.read_only
    }

    /// The stage (upper layers under `up/<n>`), for reading.
    pub fn stage(&self) -> &File {
        &self.stage
    }

    /// The root view (the lab's `/` without its mounts), for reading.
    pub fn view(&self) -> &File {
        &self.view
    }

    /// What a process forked for the lab enters before it execs (see [`Entry::enter`]): the lab's
    /// UTS, IPC and mount namespaces and the network namespace `net` (one of the lab's).
    pub fn entry(&self, net: BorrowedFd<'_>) -> Entry {
        Entry {
            uts: self.uts.as_raw_fd(),
            ipc: self.ipc.as_raw_fd(),
            mnt: self.mnt.as_raw_fd(),
            net: net.as_raw_fd(),
        }
    }

    /// Spawns `cmd` as a process of the lab's PID namespace (its parent is the suite, out of the
    /// lab's sight). The command's `pre_exec` must call [`Entry::enter`] to enter the rest of
    /// the lab.
    pub fn spawn(&self, cmd: &mut Command) -> std::io::Result<Child> {
        let pid_ns = self.pid_ns.as_raw_fd();
        std::thread::scope(|s| {
            s.spawn(|| {
                // SAFETY: changes where this short-lived thread's children are created.
                if unsafe { libc::setns(pid_ns, libc::CLONE_NEWPID) } != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                cmd.spawn().map_err(|e| {
                    if e.raw_os_error() == Some(libc::ENOMEM) {
                        std::io::Error::other("the lab's PID namespace has ended (its init is gone)")
                    } else {
                        e
                    }
                })
            })
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the spawning thread panicked")))
        })
    }

    /// Keeps the lab alive after the suite exits; the init then ends only on SIGTERM from
    /// outside the lab.
    pub fn keep(&mut self) -> std::io::Result<()> {
        let Some(control) = &self.control else {
            return Err(std::io::Error::other("the lab has ended"));
        };
        let byte = [CTL_KEEP];
        // SAFETY: writing one byte from a valid buffer to a descriptor we own.
        if unsafe { libc::write(control.as_raw_fd(), byte.as_ptr().cast(), 1) } != 1 {
            return Err(std::io::Error::last_os_error());
        }
        self.kept = true;
        Ok(())
    }
}

/// The lab's namespaces, as raw descriptors a forked child can enter before exec. The sandbox
/// must outlive the spawn.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    uts: i32,
    ipc: i32,
    mnt: i32,
    net: i32,
}

impl Entry {
    /// Enters the lab's UTS, IPC, mount and network namespaces.
    ///
    /// # Safety
    /// Only between fork and exec (it makes only async-signal-safe system calls), while the
    /// sandbox that made the entry is alive.
    pub unsafe fn enter(&self) -> std::io::Result<()> {
        for (fd, kind) in [
            (self.uts, libc::CLONE_NEWUTS),
            (self.ipc, libc::CLONE_NEWIPC),
            (self.mnt, libc::CLONE_NEWNS),
            (self.net, libc::CLONE_NEWNET),
        ] {
            if libc::setns(fd, kind) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    }
}

/// An init that is ended when set-up fails half-way.
struct Partial {
    pid: libc::pid_t,
    control: Option<OwnedFd>,
}

impl Drop for Partial {
    fn drop(&mut self) {
        if self.control.take().is_some() {
            reap(self.pid, None);
        }
    }
}

/// Reads the init's set-up report: the ops that fell back, or the error that stopped it.
fn read_report(report: OwnedFd, plan: &plan::Plan) -> Result<Vec<usize>, SandboxError> {
    let mut bytes = Vec::new();
    File::from(report)
        .read_to_end(&mut bytes)
        .map_err(SandboxError::Start)?;
    let mut fallbacks = Vec::new();
    let mut rest = bytes.as_slice();
    let index = |b: &[u8]| {
        b.get(1..5)
            .map(|x| u32::from_le_bytes([x[0], x[1], x[2], x[3]]) as usize)
    };
    while let Some(&msg) = rest.first() {
        match msg {
            init::MSG_READY => return Ok(fallbacks),
            init::MSG_FALLBACK => {
                fallbacks.extend(index(rest));
                rest = rest.get(5..).unwrap_or_default();
            }
            init::MSG_ERROR => {
                let at = index(rest).unwrap_or(usize::MAX);
                let errno = rest
                    .get(5..9)
                    .map_or(0, |x| i32::from_le_bytes([x[0], x[1], x[2], x[3]]));
                return Err(SandboxError::Step {
                    what: plan.describe.get(at).cloned().unwrap_or_else(|| format!("step {at}")),
                    err: std::io::Error::from_raw_os_error(errno),
                });
            }
            _ => break,
        }
    }
    Err(SandboxError::Died)
}

/// Waits (up to [`END_TIMEOUT`]) for the init to end and reaps it.
fn reap(pid: libc::pid_t, pidfd: Option<&OwnedFd>) {
    if let Some(fd) = pidfd {
        let mut p = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut p, 1, END_TIMEOUT.as_millis() as i32) };
        // SAFETY: reaping our own child; WNOHANG never blocks.
        unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
        return;
    }
    let deadline = std::time::Instant::now() + END_TIMEOUT;
    // SAFETY: as above.
    while unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) } == 0 {
        if std::time::Instant::now() >= deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // Closing the control pipe ends the init (unless the lab is kept), and with it the lab.
        self.control.take();
        if !self.kept {
            reap(self.init, self.pidfd.as_ref());
        }
    }
}
