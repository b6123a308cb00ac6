//! The lab host's namespaces and private mounts.

use std::os::fd::OwnedFd;
use std::path::Path;

use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};

use crate::ns::{self, io_err, sys, NsError};

/// Directories the plugin under test may write to that must be private to the lab.
const PRIVATE_TMPFS: &[&str] = &["/run", "/var/lib/cni"];

/// Creates the lab host network namespace and the lab mount namespace, with private mounts, on a
/// short-lived thread; returns handles to both.
pub(super) fn new_host_namespaces() -> Result<(OwnedFd, OwnedFd), NsError> {
    ns::run_in(None, None, || {
        unshare(CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWNS)
            .map_err(sys("unshare(CLONE_NEWNET|CLONE_NEWNS)"))?;
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .map_err(sys("make / private"))?;
        for dir in PRIVATE_TMPFS {
            private_tmpfs(Path::new(dir))?;
        }
        std::fs::create_dir_all(super::NETNS_DIR).map_err(io_err("mkdir /run/netns"))?;
        // A fresh sysfs shows the lab's links under /sys/class/net. Some kernels refuse it inside a
        // user namespace; the plugin then sees the old sysfs, which only matters to plugins that
        // read link state from sysfs instead of netlink.
        let _ = mount(
            Some("sysfs"),
            "/sys",
            Some("sysfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV,
            None::<&str>,
        );
        ns::bring_lo_up()?;
        let net = ns::open_own("net")?;
        let mnt = ns::open_own("mnt")?;
        Ok((net, mnt))
    })
}

/// Mounts an empty tmpfs over `dir`. When `dir` does not exist (and cannot be created on the
/// machine without changing it) the tmpfs goes over its parent and `dir` is made inside.
fn private_tmpfs(dir: &Path) -> Result<(), NsError> {
    let opts = Some("mode=0755");
    if dir.is_dir() {
        return mount(Some("tmpfs"), dir, Some("tmpfs"), MsFlags::empty(), opts)
            .map_err(sys(format!("mount tmpfs on {}", dir.display())));
    }
    let parent = dir.parent().ok_or_else(|| NsError::Sys {
        op: format!("no parent for {}", dir.display()),
        source: std::io::Error::from(std::io::ErrorKind::NotFound),
    })?;
    if !parent.is_dir() {
        private_tmpfs(parent)?;
    } else {
        mount(Some("tmpfs"), parent, Some("tmpfs"), MsFlags::empty(), opts)
            .map_err(sys(format!("mount tmpfs on {}", parent.display())))?;
    }
    std::fs::create_dir_all(dir).map_err(io_err(format!("mkdir {}", dir.display())))
}
