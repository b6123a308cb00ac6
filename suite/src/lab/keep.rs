//! `--keep`: a lab outlives the suite when a process holds its namespaces.

use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use super::{Lab, LabError};

/// A lab kept alive by a holder process.
#[derive(Debug, Clone)]
pub struct KeptLab {
    /// PID of the holder (`sleep infinity` inside the lab's namespaces).
    pub pid: u32,
    /// The command that opens a shell in the lab host.
    pub enter: String,
}

pub(super) fn keep(lab: &Lab) -> Result<KeptLab, LabError> {
    let mnt = lab.mnt().as_raw_fd();
    let net = lab.host_net().as_raw_fd();
    let mut cmd = Command::new("sleep");
    cmd.arg("infinity")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: the closure runs in the forked child before exec and only makes async-signal-safe
    // system calls (setns, setsid) on descriptors the parent keeps open until spawn returns.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(mnt, libc::CLONE_NEWNS) != 0 || libc::setns(net, libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::setsid();
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .map_err(|e| LabError::Other(format!("start lab holder: {e}")))?;
    let pid = child.id();
    let user = if nix::unistd::getuid().is_root() && !in_user_namespace() {
        ""
    } else {
        " --user --preserve-credentials"
    };
    Ok(KeptLab {
        pid,
        enter: format!(
            "nsenter --target {pid} --net --mount{user} -- sh   (containers: ip netns list; remove the lab: kill {pid})"
        ),
    })
}

fn in_user_namespace() -> bool {
    std::fs::read_to_string("/proc/self/uid_map")
        .map(|m| !m.split_whitespace().collect::<Vec<_>>().starts_with(&["0", "0"]))
        .unwrap_or(false)
}
