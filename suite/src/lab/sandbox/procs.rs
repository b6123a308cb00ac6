//! Processes inside a lab, seen through the lab's own `/proc` (its PID namespace): what a
//! plugin or runtime left running, and ending it.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use super::Sandbox;
use crate::ns::{self, NsError};

/// A process of the lab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabProcess {
    /// Its pid inside the lab.
    pub pid: i32,
    /// Its parent's pid inside the lab (0: a process the suite started).
    pub ppid: i32,
    /// `comm` (the kernel's short name).
    pub comm: String,
    /// Its arguments.
    pub argv: Vec<String>,
}

impl std::fmt::Display for LabProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} ({}): {}", self.pid, self.comm, self.argv.join(" "))
    }
}

/// `comm` and parent from `/proc/<pid>/stat` (comm may hold spaces and parentheses).
fn parse_stat(stat: &str) -> Option<(String, i32, char)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_string();
    let mut rest = stat.get(close + 1..)?.split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some((comm, ppid, state))
}

fn read_process(pid: i32) -> Option<LabProcess> {
    let dir = Path::new("/proc").join(pid.to_string());
    let (comm, ppid, state) = parse_stat(&std::fs::read_to_string(dir.join("stat")).ok()?)?;
    if matches!(state, 'Z' | 'X') {
        return None;
    }
    let argv = std::fs::read(dir.join("cmdline"))
        .map(|b| {
            b.split(|c| *c == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default();
    Some(LabProcess { pid, ppid, comm, argv })
}

/// Live processes of the lab, except its init (pid 1) and the pids in `except`.
pub fn list(sandbox: &Sandbox, except: &[i32]) -> Result<Vec<LabProcess>, NsError> {
    let except = except.to_vec();
    ns::run_in(None, Some(sandbox.mnt()), move || {
        let entries = std::fs::read_dir("/proc").map_err(ns::io_err("read the lab's /proc"))?;
        let mut found: Vec<LabProcess> = entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| *pid != 1 && !except.contains(pid))
            .filter_map(read_process)
            .collect();
        found.sort_by_key(|p| p.pid);
        Ok(found)
    })
}

/// Sends SIGKILL to processes of the lab (by their lab pids).
pub fn kill(sandbox: &Sandbox, pids: &[i32]) -> Result<(), NsError> {
    let pids = pids.to_vec();
    ns::run_in(None, Some(sandbox.mnt()), move || {
        for pid in pids {
            // A /proc/<pid> directory of the lab's procfs names the lab's process, whatever
            // number it has in the suite's PID namespace.
            let Ok(dir) = std::fs::File::open(Path::new("/proc").join(pid.to_string())) else {
                continue;
            };
            let dir: OwnedFd = dir.into();
            // SAFETY: plain syscall on a descriptor we own; a failure means it is gone.
            unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    dir.as_raw_fd(),
                    libc::SIGKILL,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                )
            };
        }
        Ok(())
    })
}

/// The pid a process of the suite's PID namespace has in the innermost namespace it lives in
/// (the lab's, for the processes the suite starts there).
pub fn lab_pid(pid: u32) -> Option<i32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("NSpid:"))?;
    line.split_whitespace().last()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_spaces_and_parentheses_in_comm() {
        let (comm, ppid, state) = parse_stat("42 (a b) c)) S 7 42 42 0").expect("parses");
        assert_eq!(comm, "a b) c)");
        assert_eq!(ppid, 7);
        assert_eq!(state, 'S');
    }
}
