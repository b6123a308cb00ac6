//! Runs a plugin binary once, exactly as a runtime would, and keeps everything it did.
//!
//! The child gets only the environment the case sets, its stdin, a process group of its own, and
//! (when a lab is given) the lab's mount and network namespaces. stdout and stderr are read
//! separately with a size cap, from one thread with `poll(2)` on both pipes and a pidfd, so a
//! plugin that prints 100 MB, never exits, or leaves a daemon holding the pipe open costs at most
//! the timeout plus a short grace period — and is reported, never a hang. When the run ends the
//! whole process group is killed, so nothing the plugin started outlives its invocation.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How long pipes may stay open after the plugin exited before a descendant is blamed.
const PIPE_GRACE: Duration = Duration::from_millis(300);

/// How long processes a plugin left in its process group may run on after it exited.
const LINGER_GRACE: Duration = Duration::from_millis(2000);

/// Default cap on captured stdout and stderr, each.
pub const DEFAULT_OUTPUT_CAP: usize = 1 << 20;

/// Everything needed to run a plugin once.
#[derive(Debug, Clone)]
pub struct Invocation {
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
    /// Mount and network namespace descriptors to enter before exec (the lab).
    pub namespaces: Option<(RawFd, RawFd)>,
}

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
/// blocks past `timeout + PIPE_GRACE` plus the time to reap a killed process.
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
    match spawn(inv) {
        Ok(child) => supervise(inv, child, start, &mut record),
        Err(e) => record.exit = Exit::NotStarted(e.to_string()),
    }
    record.duration_ms = start.elapsed().as_millis() as u64;
    record
}

fn spawn(inv: &Invocation) -> std::io::Result<Child> {
    let mut cmd = Command::new(&inv.program);
    cmd.env_clear()
        .envs(inv.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .current_dir("/")
        .process_group(0);
    let ns = inv.namespaces;
    // SAFETY: runs in the forked child before exec; only async-signal-safe syscalls on
    // descriptors that stay open in the parent until spawn returns.
    unsafe {
        cmd.pre_exec(move || {
            if let Some((mnt, net)) = ns {
                if libc::setns(mnt, libc::CLONE_NEWNS) != 0 || libc::setns(net, libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            // Die with the suite: a SIGKILLed suite leaves no plugin running.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd.spawn()
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

fn pidfd_open(pid: u32) -> Option<RawFd> {
    // SAFETY: plain syscall; a negative result means unsupported.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    (fd >= 0).then_some(fd as RawFd)
}

/// True when a process that is not a zombie is still in process group `pgid`. Zombies count as
/// gone: orphans are reparented to PID 1, which does not always reap them.
fn live_members(pgid: u32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    if unsafe { libc::kill(-(pgid as libc::pid_t), 0) } != 0 {
        return false;
    }
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return true;
    };
    dir.flatten().any(|e| {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            return false;
        };
        // Fields after the command (which may contain spaces) start after the last ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            return false;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next().unwrap_or("Z");
        let pgrp = fields.nth(1).and_then(|f| f.parse::<u32>().ok());
        pgrp == Some(pgid) && state != "Z" && state != "X"
    })
}

fn kill_group(pgid: u32) -> bool {
    // SAFETY: sending a signal; ESRCH (nobody left) is the normal case.
    unsafe { libc::kill(-(pgid as libc::pid_t), libc::SIGKILL) == 0 }
}

fn supervise(inv: &Invocation, mut child: Child, start: Instant, record: &mut Record) {
    let pid = child.id();
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
    let pidfd = pidfd_open(pid);
    let mut out = Capture::new(stdout.as_raw_fd());
    let mut err = Capture::new(stderr.as_raw_fd());
    let mut to_write: &[u8] = &inv.stdin;
    // The plugin sees EOF as soon as everything is written (dropping the pipe closes it).
    let mut stdin = (!to_write.is_empty()).then_some(stdin_pipe);
    let deadline = start + inv.timeout;
    let mut exited_at: Option<Instant> = None;
    let mut status = None;
    let mut timed_out = false;

    loop {
        if status.is_none() {
            if let Ok(Some(s)) = child.try_wait() {
                status = Some(s);
                exited_at = Some(Instant::now());
            }
        }
        if let Some(at) = exited_at {
            if !out.open && !err.open {
                break;
            }
            if at.elapsed() >= PIPE_GRACE {
                record.notes.push(format!(
                    "stdout/stderr still held open {} ms after the plugin exited (a descendant kept the pipe); the suite stopped reading",
                    PIPE_GRACE.as_millis()
                ));
                break;
            }
        } else if Instant::now() >= deadline {
            kill_group(pid);
            let _ = child.kill();
            timed_out = true;
            status = child.wait().ok();
            exited_at = Some(Instant::now());
            continue;
        }
        if to_write.is_empty() {
            stdin = None;
        }
        let mut fds = Vec::with_capacity(4);
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
        if let (Some(p), None) = (pidfd, status) {
            fds.push(libc::pollfd {
                fd: p,
                events: libc::POLLIN,
                revents: 0,
            });
        }
        let wait = match exited_at {
            Some(at) => PIPE_GRACE.saturating_sub(at.elapsed()),
            None => deadline.saturating_duration_since(Instant::now()),
        };
        let ms = if pidfd.is_some() {
            wait.as_millis().min(1000)
        } else {
            wait.as_millis().min(20)
        } as i32;
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
    // Brief background work (a helper finishing a deletion) is allowed to end on its own; what is
    // still running after the grace period is killed and reported.
    let linger_until = Instant::now() + LINGER_GRACE;
    while live_members(pid) && Instant::now() < linger_until {
        std::thread::sleep(Duration::from_millis(5));
    }
    if live_members(pid) && kill_group(pid) {
        record.notes.push(format!(
            "processes of the plugin's process group were still running {} ms after it exited; the suite killed them",
            LINGER_GRACE.as_millis()
        ));
    }
    if let Some(p) = pidfd {
        // SAFETY: closing the pidfd we opened.
        unsafe { libc::close(p) };
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
    record.exit = if timed_out {
        Exit::TimedOut
    } else {
        match status {
            Some(s) => match (s.code(), s.signal()) {
                (Some(c), _) => Exit::Code(c),
                (None, Some(sig)) => Exit::Signal(sig),
                _ => Exit::NotStarted("unknown status".into()),
            },
            None => Exit::NotStarted("lost track of the process".into()),
        }
    };
}
