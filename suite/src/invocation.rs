//! Runs a plugin binary once, exactly as a runtime would, and keeps everything it did.
//!
//! The child gets only the environment the case sets, its stdin, a session of its own, and (when
//! a lab is given) the lab's PID, mount and network namespaces. Its parent is a *stand-in*: a
//! small process of the lab, forked before the exec, that waits for the plugin and passes its
//! exit status to the suite on a pipe. So the plugin's `$PPID` is inside the lab, and a plugin
//! that kills or stops its parent is seen and reported, while the suite itself stays out of
//! reach. stdout and stderr are read separately with a size cap, from one thread with `poll(2)`
//! on both pipes, so a plugin that prints 100 MB, never exits, or leaves a daemon holding the pipe
//! open costs at most the timeout plus a short grace period, and is reported, never a hang. When
//! the run ends, whatever it left running in the lab (even a daemon in its own session) is given
//! a short grace, then killed and named in the record.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::lab::Lab;

/// How long pipes may stay open after the plugin exited before a descendant is blamed.
const PIPE_GRACE: Duration = Duration::from_millis(300);

/// How long processes a plugin left in the lab may run on after it exited.
const LINGER_GRACE: Duration = Duration::from_millis(2000);

/// The grace once a call of this run has left a process that had to be killed: the finding is
/// made, and a plugin that starts a daemon on every call must not cost two seconds a call.
const SHORT_LINGER_GRACE: Duration = Duration::from_millis(250);

/// Set when a sweep of this run killed something (see [`SHORT_LINGER_GRACE`]).
static LEFTOVER_KILLED: AtomicBool = AtomicBool::new(false);

/// Default cap on captured stdout and stderr, each.
pub const DEFAULT_OUTPUT_CAP: usize = 1 << 20;

/// Everything needed to run a plugin once.
#[derive(Debug, Clone)]
pub struct Invocation<'a> {
    /// The binary.
    pub program: PathBuf,
    /// The complete environment (nothing is inherited).
    pub env: Vec<(String, String)>,
    /// Bytes written to stdin.
    pub stdin: Vec<u8>,
    /// Limit for the run; past it the process group is killed.
    pub timeout: Duration,
    /// Bytes kept of stdout and of stderr; the rest is read and counted, not kept.
    pub output_cap: usize,
    /// The lab to run in (its PID and mount namespaces and its host network namespace); `None`
    /// runs the plugin in the suite's own namespaces (`cni-conformance invoke`).
    pub lab: Option<&'a Lab>,
}

/// How the note of a call that was not made starts (its verb of the plugin under test already
/// hung, so the suite did not wait for another timeout).
pub const NOT_RUN: &str = "not run:";

/// How the run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum Exit {
    /// Exited with this status.
    Code(i32),
    /// Killed by this signal (not by the suite).
    Signal(i32),
    /// Still running at the timeout; the suite killed it.
    TimedOut,
    /// Its parent (the suite's stand-in) was killed by this signal from inside the lab, so its
    /// own exit status is unknown.
    ParentKilled(i32),
    /// Could not be started.
    NotStarted(String),
}

impl Exit {
    /// True for exit status 0.
    pub fn success(&self) -> bool {
        *self == Exit::Code(0)
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exit {c}"),
            Exit::Signal(s) => write!(f, "killed by signal {s}"),
            Exit::TimedOut => write!(f, "timed out (killed)"),
            Exit::ParentKilled(s) => write!(
                f,
                "its parent process was killed by signal {s} from inside the lab (the plugin's own exit status is lost)"
            ),
            Exit::NotStarted(e) => write!(f, "not started: {e}"),
        }
    }
}

/// One finished invocation, as kept for the report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// The binary.
    pub program: String,
    /// `CNI_COMMAND`, or "-" when unset.
    pub command: String,
    /// The environment it got.
    pub env: Vec<(String, String)>,
    /// stdin as text (lossy UTF-8).
    pub stdin: String,
    /// Captured stdout (lossy UTF-8, at most the cap).
    pub stdout: String,
    /// Captured stderr (lossy UTF-8, at most the cap).
    pub stderr: String,
    /// Bytes of stdout beyond the cap that were read and dropped.
    pub stdout_dropped: u64,
    /// Bytes of stderr beyond the cap that were read and dropped.
    pub stderr_dropped: u64,
    /// How it ended.
    pub exit: Exit,
    /// Wall time in milliseconds.
    pub duration_ms: u64,
    /// Misbehaviour seen while running it (pipes held open, leftover processes).
    pub notes: Vec<String>,
}

impl Record {
    /// stdout parsed as JSON, if it is JSON.
    pub fn stdout_json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(self.stdout.trim()).ok()
    }
}

struct Capture {
    fd: RawFd,
    kept: Vec<u8>,
    dropped: u64,
    open: bool,
}

impl Capture {
    fn new(fd: RawFd) -> Self {
        Capture {
            fd,
            kept: Vec::new(),
            dropped: 0,
            open: true,
        }
    }

    fn pump(&mut self, reader: &mut impl Read, cap: usize) {
        let mut buf = [0u8; 16384];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => {
                    self.open = false;
                    return;
                }
                Ok(n) => {
                    let room = cap.saturating_sub(self.kept.len()).min(n);
                    self.kept.extend_from_slice(&buf[..room]);
                    self.dropped += (n - room) as u64;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.open = false;
                    return;
                }
            }
        }
    }
}

/// Runs the invocation to the end (or the timeout) and returns its record. Never panics and never
/// blocks past `timeout + PIPE_GRACE + LINGER_GRACE` plus the time to reap a killed process.
pub fn run(inv: &Invocation) -> Record {
    let start = Instant::now();
    let command = inv
        .env
        .iter()
        .find(|(k, _)| k == "CNI_COMMAND")
        .map_or("-".to_string(), |(_, v)| v.clone());
    let mut record = Record {
        program: inv.program.display().to_string(),
        command,
        env: inv.env.clone(),
        stdin: String::from_utf8_lossy(&inv.stdin).into_owned(),
        stdout: String::new(),
        stderr: String::new(),
        stdout_dropped: 0,
        stderr_dropped: 0,
        exit: Exit::NotStarted(String::new()),
        duration_ms: 0,
        notes: Vec::new(),
    };
    let running = inv.lab.map(Lab::running);
    match spawn(inv) {
        Ok((child, status)) => supervise(inv, child, status, start, &mut record),
        Err(e) => record.exit = Exit::NotStarted(e.to_string()),
    }
    drop(running);
    if let Some(lab) = inv.lab {
        sweep(lab, &mut record);
    }
    record.duration_ms = start.elapsed().as_millis() as u64;
    record
}

/// Ends what the call left running in the lab (after a grace period for brief background work,
/// such as a helper finishing a deletion) and names it in the record.
fn sweep(lab: &Lab, record: &mut Record) {
    let grace = if LEFTOVER_KILLED.load(Ordering::Relaxed) {
        SHORT_LINGER_GRACE
    } else {
        LINGER_GRACE
    };
    match lab.sweep_leftovers(grace) {
        Ok(left) if left.is_empty() => {}
        Ok(left) => {
            LEFTOVER_KILLED.store(true, Ordering::Relaxed);
            record.notes.push(format!(
                "processes were still running in the lab {} ms after the call returned; the suite killed them: {}",
                grace.as_millis(),
                left.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
            ))
        }
        Err(e) => record
            .notes
            .push(format!("could not look for processes left in the lab: {e}")),
    }
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid array of two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Runs in the forked child after the namespaces are entered: forks again; the grandchild goes
/// on to exec the plugin, the child stays as its parent (the stand-in), passes the plugin's wait
/// status on `status_w` and exits. Only async-signal-safe system calls.
///
/// # Safety
/// Must only be called between fork and exec.
unsafe fn become_stand_in(status_w: RawFd, die_with_parent: bool) -> std::io::Result<()> {
    let pid = libc::fork();
    if pid < 0 {
        return Err(std::io::Error::last_os_error());
    }
    if pid == 0 {
        if die_with_parent {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        }
        return Ok(());
    }
    // The stand-in holds nothing of the plugin's: no pipes (EOF must mean the plugin is done),
    // and not std's exec-error pipe (spawn returns once the plugin's exec closes it).
    if status_w > 0 {
        libc::syscall(
            libc::SYS_close_range,
            0 as libc::c_uint,
            (status_w - 1) as libc::c_uint,
            0 as libc::c_uint,
        );
    }
    libc::syscall(
        libc::SYS_close_range,
        (status_w + 1) as libc::c_uint,
        libc::c_uint::MAX,
        0 as libc::c_uint,
    );
    let mut status: libc::c_int = 0;
    loop {
        let r = libc::waitpid(pid, &mut status, 0);
        if r == pid {
            break;
        }
        if r < 0 && *libc::__errno_location() != libc::EINTR {
            libc::_exit(2);
        }
    }
    let bytes = status.to_le_bytes();
    libc::write(status_w, bytes.as_ptr().cast(), bytes.len());
    libc::_exit(0)
}

fn spawn(inv: &Invocation) -> std::io::Result<(Child, OwnedFd)> {
    let (status_r, status_w) = pipe()?;
    let mut cmd = Command::new(&inv.program);
    cmd.env_clear()
        .envs(inv.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .current_dir("/");
    let entry = inv.lab.map(|lab| lab.sandbox().entry(lab.host_net()));
    let status_fd = status_w.as_raw_fd();
    // Outside a lab the plugin dies with the suite by PDEATHSIG (its parent, the stand-in, is
    // forked on the calling thread); in a lab the end of the PID namespace does it.
    let die_with_parent = entry.is_none();
    // SAFETY: runs in the forked child before exec; only async-signal-safe syscalls on
    // descriptors that stay open in the parent until spawn returns.
    unsafe {
        cmd.pre_exec(move || {
            if let Some(entry) = entry {
                entry.enter()?;
            } else {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            }
            // A session of its own: no terminal, and one process group to kill on timeout.
            libc::setsid();
            become_stand_in(status_fd, die_with_parent)
        });
    }
    let child = match inv.lab {
        Some(lab) => lab.sandbox().spawn(&mut cmd)?,
        None => cmd.spawn()?,
    };
    drop(cmd);
    drop(status_w);
    Ok((child, status_r))
}

fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    // SAFETY: plain syscall; a negative result means unsupported.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    // SAFETY: a descriptor we just got and own.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

fn set_nonblocking(fd: RawFd) {
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
    }
}

fn kill_group(pgid: u32) -> bool {
    // SAFETY: sending a signal; ESRCH (nobody left) is the normal case.
    unsafe { libc::kill(-(pgid as libc::pid_t), libc::SIGKILL) == 0 }
}

/// What `waitid` said about the stand-in.
enum StandIn {
    Running,
    Stopped(i32),
    /// Exited (with the status it passed on) or was killed by a signal.
    Ended {
        killed_by: Option<i32>,
    },
}

fn poll_stand_in(pid: u32) -> StandIn {
    // SAFETY: zeroed siginfo is a valid out-parameter for waitid.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waitid on our own child with a valid siginfo pointer.
    let r = unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WSTOPPED | libc::WNOHANG,
        )
    };
    // SAFETY: reading fields waitid filled in.
    let (who, code, status) = unsafe { (info.si_pid(), info.si_code, info.si_status()) };
    if r != 0 {
        return StandIn::Ended { killed_by: None };
    }
    if who == 0 {
        return StandIn::Running;
    }
    match code {
        libc::CLD_STOPPED => StandIn::Stopped(status),
        libc::CLD_KILLED | libc::CLD_DUMPED => StandIn::Ended {
            killed_by: Some(status),
        },
        _ => StandIn::Ended { killed_by: None },
    }
}

/// Decodes the wait status the stand-in passed on.
fn exit_from_status(status: i32) -> Exit {
    if libc::WIFEXITED(status) {
        Exit::Code(libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        Exit::Signal(libc::WTERMSIG(status))
    } else {
        Exit::NotStarted("unknown status".into())
    }
}

fn read_status(status: &OwnedFd) -> Option<i32> {
    let mut buf = [0u8; 4];
    // SAFETY: reading into a valid buffer from a descriptor we own.
    let n = unsafe { libc::read(status.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    (n == 4).then(|| i32::from_le_bytes(buf))
}

fn supervise(inv: &Invocation, child: Child, status_pipe: OwnedFd, start: Instant, record: &mut Record) {
    let pid = child.id();
    let mut child = child;
    let (Some(stdin_pipe), Some(mut stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        kill_group(pid);
        let _ = child.wait();
        record.exit = Exit::NotStarted("pipes missing".into());
        return;
    };
    for fd in [stdin_pipe.as_raw_fd(), stdout.as_raw_fd(), stderr.as_raw_fd()] {
        set_nonblocking(fd);
    }
    // Wakes the poll below when the stand-in exits (a stop is looked for at every wake-up).
    let pidfd = pidfd_open(pid);
    let mut out = Capture::new(stdout.as_raw_fd());
    let mut err = Capture::new(stderr.as_raw_fd());
    let mut to_write: &[u8] = &inv.stdin;
    // The plugin sees EOF as soon as everything is written (dropping the pipe closes it).
    let mut stdin = (!to_write.is_empty()).then_some(stdin_pipe);
    let deadline = start + inv.timeout;
    let mut exited_at: Option<Instant> = None;
    let mut exit: Option<Exit> = None;
    // Set when the stand-in was killed: the plugin may still be running, so its pipes are read
    // until they close or the deadline passes.
    let mut orphaned = false;

    loop {
        if exit.is_none() {
            match poll_stand_in(pid) {
                StandIn::Running => {}
                StandIn::Stopped(sig) => {
                    let note = format!(
                        "the plugin's parent process was stopped by signal {sig} from inside the lab; the suite resumed it"
                    );
                    if !record.notes.contains(&note) {
                        record.notes.push(note);
                    }
                    // SAFETY: continuing our own stopped child.
                    unsafe { libc::kill(pid as libc::pid_t, libc::SIGCONT) };
                }
                StandIn::Ended { killed_by } => {
                    exit = Some(match (read_status(&status_pipe), killed_by) {
                        (Some(status), _) => exit_from_status(status),
                        (None, Some(sig)) => {
                            orphaned = true;
                            Exit::ParentKilled(sig)
                        }
                        (None, None) => Exit::NotStarted("the plugin's parent ended without its status".into()),
                    });
                    exited_at = Some(Instant::now());
                }
            }
        }
        let pipes_open = out.open || err.open;
        if let (Some(at), false) = (exited_at, orphaned) {
            if !pipes_open {
                break;
            }
            if at.elapsed() >= PIPE_GRACE {
                record.notes.push(format!(
                    "stdout/stderr still held open {} ms after the plugin exited (a descendant kept the pipe); the suite stopped reading",
                    PIPE_GRACE.as_millis()
                ));
                break;
            }
        } else if orphaned && !pipes_open {
            break;
        } else if Instant::now() >= deadline {
            kill_group(pid);
            if exit.is_none() {
                // SAFETY: reaping our own child after SIGKILL.
                unsafe { libc::waitpid(pid as libc::pid_t, std::ptr::null_mut(), 0) };
            }
            exit = Some(Exit::TimedOut);
            break;
        }
        if to_write.is_empty() {
            stdin = None;
        }
        let mut fds = Vec::with_capacity(4);
        if let (Some(p), None) = (&pidfd, &exit) {
            fds.push(libc::pollfd {
                fd: p.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        if out.open {
            fds.push(libc::pollfd {
                fd: out.fd,
                events: libc::POLLIN,
                revents: 0,
            });
        }
        if err.open {
            fds.push(libc::pollfd {
                fd: err.fd,
                events: libc::POLLIN,
                revents: 0,
            });
        }
        if let Some(pipe) = &stdin {
            fds.push(libc::pollfd {
                fd: pipe.as_raw_fd(),
                events: libc::POLLOUT,
                revents: 0,
            });
        }
        let wait = match (exited_at, orphaned) {
            (Some(at), false) => PIPE_GRACE.saturating_sub(at.elapsed()),
            _ => deadline.saturating_duration_since(Instant::now()),
        };
        // Without a pidfd the stand-in's end is looked for every 5 ms; with one, a stopped
        // stand-in is noticed within 50 ms.
        let ms = wait.as_millis().min(if pidfd.is_some() { 50 } else { 5 }) as i32;
        // SAFETY: fds is a valid array of pollfd for the given length.
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms.max(1)) };
        if out.open {
            out.pump(&mut stdout, inv.output_cap);
        }
        if err.open {
            err.pump(&mut stderr, inv.output_cap);
        }
        if let Some(pipe) = stdin.as_mut() {
            match pipe.write(to_write) {
                Ok(n) => to_write = &to_write[n..],
                Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {}
                Err(_) => to_write = &[],
            }
            if to_write.is_empty() {
                stdin = None;
            }
        }
    }
    drop(stdin);
    // Outside a lab no sweep follows: what is left of the call's process group ends now.
    if inv.lab.is_none() {
        kill_group(pid);
    }
    record.stdout = String::from_utf8_lossy(&out.kept).into_owned();
    record.stderr = String::from_utf8_lossy(&err.kept).into_owned();
    record.stdout_dropped = out.dropped;
    record.stderr_dropped = err.dropped;
    if out.dropped > 0 || err.dropped > 0 {
        record.notes.push(format!(
            "output beyond the {} byte cap was dropped (stdout {} bytes, stderr {} bytes)",
            inv.output_cap, out.dropped, err.dropped
        ));
    }
    record.exit = exit.unwrap_or_else(|| Exit::NotStarted("lost track of the process".into()));
}
