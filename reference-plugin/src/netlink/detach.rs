//! Deleting a link without waiting for the kernel's slow tail.
//!
//! Unregistering a veth takes the kernel ~20 ms here, and almost all of it comes *after* the link
//! has left its namespace: `RTM_DELLINK` is acknowledged only once the kernel has waited for an
//! RCU grace period and for the last device references to drop. [`Rtnl::delete_link_detached`]
//! lets a forked child carry that wait: the caller returns as soon as the link is gone from the
//! namespace (~4 ms), and the child exits when the kernel acknowledges.
//! [`Rtnl::delete_link_in_background`] does not even wait for that: it is meant for a link the
//! caller has already made inert (down, detached, renamed out of the way).

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
        let pid = self.fork_deleter(index)?;
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

impl Rtnl {
    /// Forks the child that deletes the link `index` (see [`Rtnl::delete_link_detached`]) and
    /// returns its pid.
    fn fork_deleter(&self, index: u32) -> Result<libc::pid_t> {
        let op = || format!("delete link #{index}");
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
        Ok(pid)
    }

    /// Deletes the link `index` from a forked child (as [`Rtnl::delete_link_detached`] does)
    /// and returns at once, without waiting for the link to leave the namespace. The kernel
    /// takes tens of milliseconds to unregister a veth pair; the caller should first make the
    /// link inert and free its name (down, released from its master, renamed), since it stays
    /// visible until the child is done. The child is not reaped (it is re-parented when this
    /// short-lived process exits); if the kernel refuses, nobody hears of it.
    pub fn delete_link_in_background(&self, index: u32) -> Result<()> {
        self.fork_deleter(index).map(|_| ())
    }
}

/// A prepared `RTM_DELLINK` of every link of one device group in one namespace, to be sent
/// from a forked child ([`GroupDelete::run_in_forked_child`]): the kernel unregisters them
/// together, paying its RCU waits under the RTNL lock once for the whole batch instead of once
/// per link.
pub struct GroupDelete {
    ns: OwnedFd,
    request: Vec<u8>,
    seq: u32,
}

impl Rtnl {
    /// Prepares the deletion of every link in device group `group` (not 0) of this client's
    /// namespace. Nothing is sent yet.
    pub fn prepare_group_delete(&self, group: u32) -> Result<GroupDelete> {
        if group == 0 {
            return Err(Error::invalid("delete link group 0", "group 0 holds every link"));
        }
        let ns = self.netns_fd()?;
        let mut buf = MsgBuf::new();
        let seq = self.begin(&mut buf, RTM_DELLINK, Rtnl::ACK);
        buf.put(&[0u8; 16]);
        buf.attr_u32(super::link::IFLA_GROUP, group);
        buf.finish();
        Ok(GroupDelete {
            ns,
            request: buf.bytes().to_vec(),
            seq,
        })
    }
}

impl Rtnl {
    /// Deletes every link of device group `group` (not 0) now and waits for the kernel.
    /// Returns `false` when the group was empty.
    pub fn delete_link_group(&self, group: u32) -> Result<bool> {
        if group == 0 {
            return Err(Error::invalid("delete link group 0", "group 0 holds every link"));
        }
        let mut buf = MsgBuf::new();
        let seq = self.begin(&mut buf, RTM_DELLINK, Rtnl::ACK);
        buf.put(&[0u8; 16]);
        buf.attr_u32(super::link::IFLA_GROUP, group);
        buf.finish();
        match self.ack(&mut buf, seq, || format!("delete link group {group}")) {
            Ok(()) => Ok(true),
            Err(e) if e.errno() == Some(libc::ENODEV) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

impl GroupDelete {
    /// Sends the request from the namespace it was prepared for and waits for the answer:
    /// `0`, or the errno (`ENODEV` when the group was empty, e.g. because another batch took
    /// its links first).
    ///
    /// # Safety
    /// Meant for a freshly forked child of a single-threaded process: it makes raw system
    /// calls only, allocates nothing, takes no lock, and moves the calling thread to the
    /// prepared namespace.
    pub unsafe fn run_in_forked_child(&self) -> i32 {
        if libc::setns(self.ns.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
            return 255;
        }
        let sock = libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        );
        if sock < 0 {
            return 255;
        }
        let code = send_and_wait(sock, &self.request, self.seq);
        libc::close(sock);
        code
    }
}

/// Sends `request` on the netlink socket `sock` and returns the errno of the kernel's answer
/// to `seq` (0 on success, 255 on a local failure). Raw system calls only.
unsafe fn send_and_wait(sock: libc::c_int, request: &[u8], seq: u32) -> i32 {
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
        return 255;
    }
    let mut answer = [0u8; 1024];
    loop {
        let n = libc::recv(sock, answer.as_mut_ptr().cast(), answer.len(), 0);
        if n < 20 {
            return 255;
        }
        let kind = u16::from_ne_bytes([answer[4], answer[5]]);
        let got_seq = u32::from_ne_bytes([answer[8], answer[9], answer[10], answer[11]]);
        if kind == 2 && got_seq == seq {
            let code = i32::from_ne_bytes([answer[16], answer[17], answer[18], answer[19]]);
            return (-code).clamp(0, 254);
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
    libc::_exit(send_and_wait(sock, request, seq))
}
