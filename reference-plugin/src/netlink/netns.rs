//! Network namespaces: opening them, and running a short job inside one.
//!
//! A job runs on a fresh scoped thread that enters the namespace with `setns(2)` and ends when
//! the job returns, so no thread ever stays in a foreign namespace. Netlink sockets and
//! `/proc/sys/net` files opened by such a job stay bound to that namespace after the thread is
//! gone.

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

/// Runs `job` on a short-lived thread inside the network namespace `netns` and returns its
/// result. The calling thread never changes namespace. A panic in `job` is re-raised here.
pub fn run_in_netns<T, F>(netns: BorrowedFd<'_>, job: F) -> Result<T>
where
    T: Send,
    F: FnOnce() -> T + Send,
{
    let raw = netns.as_raw_fd();
    std::thread::scope(|scope| {
        let handle = scope.spawn(move || {
            // SAFETY: `raw` stays open for the whole scope (it is borrowed from the caller).
            if unsafe { libc::setns(raw, libc::CLONE_NEWNET) } != 0 {
                return Err(Error::io(
                    "enter network namespace (setns)",
                    std::io::Error::last_os_error(),
                ));
            }
            Ok(job())
        });
        match handle.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}
