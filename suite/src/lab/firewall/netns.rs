//! Running a short piece of code inside another network namespace on a throw-away thread, so the
//! calling thread never changes namespace. Sockets opened there stay bound to that namespace.

use std::os::fd::{AsRawFd, BorrowedFd};

use super::FirewallError;

/// Runs `job` on a new thread that first joins the network namespace `netns`; returns its result.
pub(crate) fn run_in_netns<T, F>(netns: BorrowedFd<'_>, job: F) -> Result<T, FirewallError>
where
    T: Send,
    F: FnOnce() -> Result<T, FirewallError> + Send,
{
    let raw = netns.as_raw_fd();
    std::thread::scope(|scope| {
        let worker = scope.spawn(move || {
            // SAFETY: `raw` is a valid descriptor borrowed for the whole scope; setns only reads it
            // and changes the namespace of this (temporary) thread.
            let rc = unsafe { libc::setns(raw, libc::CLONE_NEWNET) };
            if rc != 0 {
                return Err(FirewallError::Io {
                    op: "setns(CLONE_NEWNET) on the snapshot thread".into(),
                    source: std::io::Error::last_os_error(),
                });
            }
            job()
        });
        worker.join().unwrap_or_else(|_| {
            Err(FirewallError::Decode {
                what: "namespace worker thread".into(),
                detail: "the thread panicked".into(),
            })
        })
    })
}
