//! Deleting a link without waiting for the kernel's slow tail.
//!
//! Unregistering a veth takes the kernel ~20 ms here, and almost all of it comes *after* the link
//! has left its namespace: `RTM_DELLINK` is acknowledged only once the kernel has waited for an
//! RCU grace period and for the last device references to drop. [`Rtnl::delete_link_detached`]
//! lets a forked child carry that wait: the caller returns as soon as the link is gone from the
//! namespace (~4 ms), and the child exits when the kernel acknowledges.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use super::error::{Error, Result};
use super::rtnl::Rtnl;
use super::wire::MsgBuf;

const RTM_DELLINK: u16 = 17;
const SIOCGSKNS: libc::c_ulong = 0x894C;

impl Rtnl {
    /// An open file for the network namespace this client's socket is bound to.
    fn netns_fd(&self) -> Result<OwnedFd> {
        // SAFETY: SIOCGSKNS takes no argument and returns a new descriptor or -1.
        let raw = unsafe { libc::ioctl(self.sock.raw_fd(), SIOCGSKNS as _) };
        if raw < 0 {
            return Err(Error::io(
                "get the socket's network namespace (SIOCGSKNS)",
                std::io::Error::last_os_error(),
            ));
        }
        // SAFETY: a fresh descriptor nobody else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(raw) })
    }

    /// Deletes the link `index` and returns once it has left the namespace, without waiting for
    /// the kernel to finish freeing it: a forked child (stdin/stdout/stderr on `/dev/null`, every
    /// other descriptor closed, so it holds no lock and no pipe) sends the request and waits for
    /// the acknowledgement; this process polls until the link is gone. Returns `false` when
    /// the link did not exist. If the kernel refuses, the child's errno is reported.
    ///
    /// Meant for a short-lived, single-threaded plugin process: the child is not reaped if it
    /// is still running when this returns (it is re-parented when the plugin exits).
    pub fn delete_link_detached(&self, index: u32, timeout: Duration) -> Result<bool> {
        let op = || format!("delete link #{index}");
        if self.link_by_index(index)?.is_none() {
            return Ok(false);
        }
        let ns = self.netns_fd()?;
        let devnull = std::fs::File::open("/dev/null").map_err(|e| Error::io(op(), e))?;
        let mut buf = MsgBuf::new();
        let seq = self.begin(&mut buf, RTM_DELLINK, Rtnl::ACK);
        let mut h = [0u8; 16];
        h[4..8].copy_from_slice(&index.to_ne_bytes());
        buf.put(&h);
        buf.finish();
        let request = buf.bytes();

        // SAFETY: the child only makes raw system calls on memory prepared above and leaves
        // with _exit; it allocates nothing and takes no lock.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(Error::io(op(), std::io::Error::last_os_error()));
        }
        if pid == 0 {
            // SAFETY: see above; every pointer refers to live memory owned by this frame.
            unsafe { child_delete(ns.as_raw_fd(), devnull.as_raw_fd(), request, seq) }
        }
        drop(ns);
        drop(devnull);

        let start = Instant::now();
        let mut pause = Duration::from_micros(100);
        loop {
            if self.link_by_index(index)?.is_none() {
                reap_if_done(pid);
                return Ok(true);
            }
            let mut status = 0;
            // SAFETY: waitpid on our own child with a valid status pointer.
            let done = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if done == pid {
                let code = if libc::WIFEXITED(status) {
                    libc::WEXITSTATUS(status)
                } else {
                    255
                };
                if self.link_by_index(index)?.is_none() {
                    return Ok(true);
                }
                let source = if code > 0 && code < 255 {
                    std::io::Error::from_raw_os_error(code)
                } else {
                    std::io::Error::other("deleting child failed")
                };
                return Err(Error::Kernel {
                    op: op(),
                    source,
                    ext: None,
                });
            }
            if start.elapsed() > timeout {
                return Err(Error::invalid(op(), format!("link still present after {timeout:?}")));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(2));
        }
    }
}

fn reap_if_done(pid: libc::pid_t) {
    let mut status = 0;
    // SAFETY: waitpid on our own child with a valid status pointer.
    unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
}

/// The forked child: enter the namespace, shed every descriptor, send the request, wait for
/// the answer, exit with 0 or the errno.
unsafe fn child_delete(ns: libc::c_int, devnull: libc::c_int, request: &[u8], seq: u32) -> ! {
    for target in 0..3 {
        libc::dup2(devnull, target);
    }
    if libc::setns(ns, libc::CLONE_NEWNET) != 0 {
        libc::_exit(255);
    }
    // Close everything else (lock files, pipes, the parent's sockets).
    if libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) != 0 {
        for fd in 3..4096 {
            libc::close(fd);
        }
    }
    let sock = libc::socket(
        libc::AF_NETLINK,
        libc::SOCK_RAW | libc::SOCK_CLOEXEC,
        libc::NETLINK_ROUTE,
    );
    if sock < 0 {
        libc::_exit(255);
    }
    let mut addr: libc::sockaddr_nl = std::mem::zeroed();
    addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    let sent = libc::sendto(
        sock,
        request.as_ptr().cast(),
        request.len(),
        0,
        (&addr as *const libc::sockaddr_nl).cast(),
        std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
    );
    if sent < 0 {
        libc::_exit(255);
    }
    let mut answer = [0u8; 1024];
    loop {
        let n = libc::recv(sock, answer.as_mut_ptr().cast(), answer.len(), 0);
        if n < 20 {
            libc::_exit(255);
        }
        let kind = u16::from_ne_bytes([answer[4], answer[5]]);
        let got_seq = u32::from_ne_bytes([answer[8], answer[9], answer[10], answer[11]]);
        if kind == 2 && got_seq == seq {
            let code = i32::from_ne_bytes([answer[16], answer[17], answer[18], answer[19]]);
            libc::_exit((-code).clamp(0, 254));
        }
    }
}
