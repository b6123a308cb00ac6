//! Namespace primitives: the unprivileged bootstrap, namespace work on dedicated threads, and
//! persistent network namespaces as files.
//!
//! Rules this module keeps (the Rust `setns` pitfalls):
//! - A user namespace can only be entered by a single-threaded process, so
//!   [`bootstrap_unprivileged`] runs first thing in `main` (and in the custom test harnesses).
//! - No long-lived thread ever changes namespace. Work that must happen "inside" runs on a fresh
//!   thread ([`run_in`]) that enters the namespaces, does the job and ends. Sockets created there
//!   stay bound to that namespace and can be used from any thread afterwards.
//! - Mount-namespace changes on a thread first `unshare(CLONE_FS)` so the thread stops sharing its
//!   root and working directory with the rest of the process, which `setns(CLONE_NEWNS)` requires.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::mount::{umount2, MntFlags};
use nix::sched::{setns, unshare, CloneFlags};

/// Errors from namespace operations.
#[derive(Debug, thiserror::Error)]
pub enum NsError {
    /// User namespaces are not available to this unprivileged user.
    #[error("cannot create a user namespace as uid {uid}; run as root or enable unprivileged user namespaces")]
    UserNsUnavailable {
        /// The caller's uid.
        uid: u32,
        /// The error from `unshare(CLONE_NEWUSER)` or the id-map write.
        source: io::Error,
    },
    /// A namespace or mount syscall failed.
    #[error("{op}: {source}")]
    Sys {
        /// What was attempted.
        op: String,
        /// The OS error.
        source: io::Error,
    },
    /// The worker thread died.
    #[error("namespace worker thread panicked")]
    ThreadPanicked,
}

/// Builds an `NsError::Sys` from a nix error.
pub(crate) fn sys(op: impl Into<String>) -> impl FnOnce(nix::Error) -> NsError {
    let op = op.into();
    move |e| NsError::Sys {
        op,
        source: io::Error::from(e),
    }
}

/// Builds an `NsError::Sys` from an io error.
pub(crate) fn io_err(op: impl Into<String>) -> impl FnOnce(io::Error) -> NsError {
    let op = op.into();
    move |source| NsError::Sys { op, source }
}

/// How the process holds the privileges the lab needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privilege {
    /// Real root in the initial user namespace.
    Root,
    /// An ordinary user, now root inside a private user namespace (uid and gid mapped to 0).
    UserNamespace {
        /// The uid outside.
        uid: u32,
        /// The gid outside.
        gid: u32,
    },
}

/// When not root, moves the whole (still single-threaded) process into a new user namespace in
/// which it is root. Must be called before any thread is spawned.
pub fn bootstrap_unprivileged() -> Result<Privilege, NsError> {
    let uid = nix::unistd::geteuid().as_raw();
    let gid = nix::unistd::getegid().as_raw();
    if uid == 0 {
        return Ok(Privilege::Root);
    }
    let unavailable = |source: io::Error| NsError::UserNsUnavailable { uid, source };
    unshare(CloneFlags::CLONE_NEWUSER).map_err(|e| unavailable(e.into()))?;
    std::fs::write("/proc/self/setgroups", "deny").map_err(unavailable)?;
    std::fs::write("/proc/self/uid_map", format!("0 {uid} 1")).map_err(unavailable)?;
    std::fs::write("/proc/self/gid_map", format!("0 {gid} 1")).map_err(unavailable)?;
    Ok(Privilege::UserNamespace { uid, gid })
}

/// Opens the calling thread's namespace of the given kind ("net", "mnt", "user").
pub fn open_own(kind: &str) -> Result<OwnedFd, NsError> {
    let path = format!("/proc/thread-self/ns/{kind}");
    File::open(&path)
        .map(OwnedFd::from)
        .map_err(io_err(format!("open {path}")))
}

/// Runs `job` on a fresh thread that first enters `mnt` (if given) and then `net` (if given).
/// The calling thread never changes namespace.
pub fn run_in<T, F>(net: Option<BorrowedFd<'_>>, mnt: Option<BorrowedFd<'_>>, job: F) -> Result<T, NsError>
where
    T: Send,
    F: FnOnce() -> Result<T, NsError> + Send,
{
    std::thread::scope(|scope| {
        scope
            .spawn(move || {
                if let Some(mnt) = mnt {
                    unshare(CloneFlags::CLONE_FS).map_err(sys("unshare(CLONE_FS)"))?;
                    setns(mnt, CloneFlags::CLONE_NEWNS).map_err(sys("setns(mount namespace)"))?;
                }
                if let Some(net) = net {
                    setns(net, CloneFlags::CLONE_NEWNET).map_err(sys("setns(network namespace)"))?;
                }
                job()
            })
            .join()
            .map_err(|_| NsError::ThreadPanicked)?
    })
}

/// Creates a new network namespace, brings its `lo` up, bind-mounts it at `path` inside the mount
/// namespace `mnt` (so `CNI_NETNS` can be a real file), and returns an open handle.
///
/// The namespace is made on a thread outside the lab's mount namespace: a lab's `/proc` belongs to
/// the lab's PID namespace, where the suite's own threads have no entry. The bind mount is a clone
/// of the namespace file's mount (`open_tree`) moved onto the file (`move_mount`), which needs no
/// `/proc` path.
pub fn create_netns_file(mnt: BorrowedFd<'_>, path: &Path) -> Result<OwnedFd, NsError> {
    let netns = run_in(None, None, || {
        unshare(CloneFlags::CLONE_NEWNET).map_err(sys("unshare(CLONE_NEWNET)"))?;
        bring_lo_up()?;
        open_own("net")
    })?;
    let path = path.to_path_buf();
    let source = netns.as_fd();
    run_in(None, Some(mnt), move || {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io_err(format!("mkdir {}", dir.display())))?;
        }
        File::create(&path).map_err(io_err(format!("create {}", path.display())))?;
        bind_fd(source, &path)?;
        File::open(&path)
            .map(OwnedFd::from)
            .map_err(io_err(format!("open {}", path.display())))
    })
}

/// Bind-mounts what `source` refers to (e.g. a namespace) onto `target`, in the calling thread's
/// mount namespace.
fn bind_fd(source: BorrowedFd<'_>, target: &Path) -> Result<(), NsError> {
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;
    let empty = c"";
    let target_c = std::ffi::CString::new(target.as_os_str().as_encoded_bytes()).map_err(|_| NsError::Sys {
        op: format!("bind onto {}", target.display()),
        source: io::Error::from(io::ErrorKind::InvalidInput),
    })?;
    // SAFETY: plain syscalls with valid C strings; the returned descriptor is owned below.
    let tree = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            source.as_raw_fd(),
            empty.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | libc::AT_EMPTY_PATH as libc::c_uint,
        )
    };
    if tree < 0 {
        return Err(NsError::Sys {
            op: format!("clone the namespace mount for {}", target.display()),
            source: io::Error::last_os_error(),
        });
    }
    // SAFETY: a descriptor we just got and own.
    let tree = unsafe { OwnedFd::from_raw_fd(tree as i32) };
    // SAFETY: as above.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            target_c.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if rc != 0 {
        return Err(NsError::Sys {
            op: format!("bind-mount the namespace at {}", target.display()),
            source: io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// Removes a namespace file made by [`create_netns_file`] (unmount and unlink), inside `mnt`.
/// The namespace itself disappears once nothing else holds it.
pub fn remove_netns_file(mnt: BorrowedFd<'_>, path: &Path) -> Result<(), NsError> {
    let path = path.to_path_buf();
    run_in(None, Some(mnt), move || {
        umount2(&path, MntFlags::MNT_DETACH).map_err(sys(format!("unmount {}", path.display())))?;
        std::fs::remove_file(&path).map_err(io_err(format!("remove {}", path.display())))
    })
}

/// Brings up `lo` in the calling thread's network namespace.
pub(crate) fn bring_lo_up() -> Result<(), NsError> {
    let rtnl = crate::net::Rtnl::new().map_err(|e| NsError::Sys {
        op: "netlink socket for lo".into(),
        source: io::Error::other(e.to_string()),
    })?;
    let lo = rtnl.link_by_name("lo").ok().flatten().ok_or_else(|| NsError::Sys {
        op: "find lo".into(),
        source: io::Error::from(io::ErrorKind::NotFound),
    })?;
    rtnl.set_up(lo.index, true).map_err(|e| NsError::Sys {
        op: "set lo up".into(),
        source: io::Error::other(e.to_string()),
    })
}

/// Identity of a namespace file or fd: (device, inode). Two handles name the same namespace
/// exactly when these match.
pub fn identity(fd: BorrowedFd<'_>) -> Result<(u64, u64), NsError> {
    let st = nix::sys::stat::fstat(fd.as_fd()).map_err(sys("fstat namespace"))?;
    Ok((st.st_dev, st.st_ino))
}
