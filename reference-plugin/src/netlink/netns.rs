//! Network namespaces: opening them, and running a short job inside one.
//!
//! A job runs on the calling thread: it enters the namespace with `setns(2)` and goes back to
//! its own namespace when the job returns or panics (a thread that cannot go back aborts the
//! process rather than carry on in the wrong namespace). Netlink sockets and `/proc/sys/net`
//! files opened by the job stay bound to that namespace afterwards. Doing it in place rather
//! than on a fresh thread spares a thread start and join, which cost a plugin two scheduler
//! round trips (milliseconds on a loaded machine) per namespace visit. Only when the calling
//! thread's namespace cannot be opened (no `/proc`) does the job run on a scoped thread.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::Path;

use super::error::{Error, Result};

/// An open network namespace file (`/var/run/netns/x`, `/proc/<pid>/ns/net` ...).
#[derive(Debug)]
pub struct NetNs {
    file: File,
}

impl NetNs {
    /// Opens the namespace file at `path` (for example `CNI_NETNS`).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file =
            File::open(path).map_err(|e| Error::io(format!("open netns {:?}", path.display().to_string()), e))?;
        Ok(Self { file })
    }

    /// The network namespace of the calling thread.
    pub fn current() -> Result<Self> {
        Self::open("/proc/thread-self/ns/net")
    }

    /// `(device, inode)` of the namespace: equal for two handles on the same namespace.
    pub fn id(&self) -> Result<(u64, u64)> {
        let meta = self.file.metadata().map_err(|e| Error::io("stat netns file", e))?;
        use std::os::unix::fs::MetadataExt;
        Ok((meta.dev(), meta.ino()))
    }
}

impl AsFd for NetNs {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

fn enter(netns: libc::c_int) -> Result<()> {
    // SAFETY: setns on a descriptor the caller keeps open for the call.
    if unsafe { libc::setns(netns, libc::CLONE_NEWNET) } != 0 {
        return Err(Error::io(
            "enter network namespace (setns)",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// Takes the calling thread back to its own namespace when dropped.
struct GoBack(File);

impl Drop for GoBack {
    fn drop(&mut self) {
        if enter(self.0.as_raw_fd()).is_err() {
            // Carrying on in a container's namespace would apply later host changes there.
            eprintln!("cannot return to the original network namespace; aborting");
            std::process::abort();
        }
    }
}

/// Runs `job` inside the network namespace `netns`, on the calling thread, and returns its
/// result; the thread is back in its own namespace afterwards, also when `job` panics (the
/// panic goes on). Threads spawned by `job` stay in `netns`.
pub fn run_in_netns<T, F>(netns: BorrowedFd<'_>, job: F) -> Result<T>
where
    T: Send,
    F: FnOnce() -> T + Send,
{
    let Ok(home) = File::open("/proc/thread-self/ns/net") else {
        return run_on_thread(netns, job);
    };
    enter(netns.as_raw_fd())?;
    let _back = GoBack(home);
    Ok(job())
}

/// [`run_in_netns`] on a short-lived scoped thread.
fn run_on_thread<T, F>(netns: BorrowedFd<'_>, job: F) -> Result<T>
where
    T: Send,
    F: FnOnce() -> T + Send,
{
    let raw = netns.as_raw_fd();
    std::thread::scope(|scope| {
        let handle = scope.spawn(move || {
            // `raw` stays open for the whole scope (it is borrowed from the caller).
            enter(raw)?;
            Ok(job())
        });
        match handle.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}
