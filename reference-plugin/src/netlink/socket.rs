//! A raw netlink socket (any protocol) with request/acknowledge and dump helpers.
//!
//! The socket is created with `NETLINK_CAP_ACK` (acknowledgements do not echo the request) and
//! `NETLINK_EXT_ACK` (errors carry the kernel's message). It is bound to the network namespace of
//! the thread that created it, for its whole life.

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::error::{Error, Result};
use super::wire::{Attrs, Messages, NlMsg, NLMSG_HDRLEN};

const SOL_NETLINK: libc::c_int = 270;
const NETLINK_CAP_ACK: libc::c_int = 10;
const NETLINK_EXT_ACK: libc::c_int = 11;
const NETLINK_GET_STRICT_CHK: libc::c_int = 12;

/// `nlmsg_type` of an error or acknowledgement.
pub(crate) const NLMSG_ERROR: u16 = 2;
/// `nlmsg_type` ending a dump.
pub(crate) const NLMSG_DONE: u16 = 3;
/// Request flag: this is a request.
pub(crate) const NLM_F_REQUEST: u16 = 0x1;
/// Request flag: acknowledge success.
pub(crate) const NLM_F_ACK: u16 = 0x4;
/// Request flag: echo the created object back.
pub(crate) const NLM_F_ECHO: u16 = 0x8;
/// Request flag: dump every object.
pub(crate) const NLM_F_DUMP: u16 = 0x300;
/// New-object flag: replace an existing object.
pub(crate) const NLM_F_REPLACE: u16 = 0x100;
/// New-object flag: fail if the object exists.
pub(crate) const NLM_F_EXCL: u16 = 0x200;
/// New-object flag: create the object if it does not exist.
pub(crate) const NLM_F_CREATE: u16 = 0x400;
/// New-object flag: append (nf_tables rules: at the end of the chain).
pub(crate) const NLM_F_APPEND: u16 = 0x800;

const NLM_F_CAPPED: u16 = 0x100;
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLMSGERR_ATTR_MSG: u16 = 1;

const RX_BUF_LEN: usize = 64 * 1024;

/// What went wrong below the operation level; turned into [`Error`] with the operation's name.
pub(crate) enum Failure {
    /// A system call failed.
    Io(io::Error),
    /// The kernel answered with a negative errno.
    Kernel { errno: i32, ext: Option<String> },
}

impl Failure {
    /// The errno, whichever side it came from.
    pub(crate) fn errno(&self) -> Option<i32> {
        match self {
            Failure::Io(e) => e.raw_os_error(),
            Failure::Kernel { errno, .. } => Some(*errno),
        }
    }

    /// Names the failure after the operation that hit it.
    pub(crate) fn into_error(self, op: String) -> Error {
        match self {
            Failure::Io(source) => Error::Io { op, source },
            Failure::Kernel { errno, ext } => Error::Kernel {
                op,
                source: io::Error::from_raw_os_error(errno),
                ext,
            },
        }
    }
}

/// One netlink socket and its receive buffer.
pub(crate) struct NlSocket {
    fd: OwnedFd,
    seq: Cell<u32>,
    rx: RefCell<Vec<u8>>,
}

fn set_opt(fd: &OwnedFd, opt: libc::c_int, on: bool) -> io::Result<()> {
    let value: libc::c_int = on.into();
    // SAFETY: the option value is a valid c_int that lives across the call.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            SOL_NETLINK,
            opt,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl NlSocket {
    /// Opens a socket of `protocol` (`NETLINK_ROUTE`, `NETLINK_NETFILTER`) in the calling
    /// thread's network namespace. `strict` asks the kernel to filter dumps by the request's
    /// header fields (rtnetlink only).
    pub(crate) fn open(protocol: libc::c_int, strict: bool) -> io::Result<Self> {
        // SAFETY: plain socket(2) call; the result is checked before use.
        let raw = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, protocol) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // Older kernels lack these options; the socket still works without them.
        let _ = set_opt(&fd, NETLINK_CAP_ACK, true);
        let _ = set_opt(&fd, NETLINK_EXT_ACK, true);
        if strict {
            let _ = set_opt(&fd, NETLINK_GET_STRICT_CHK, true);
        }
        // Start sequence numbers somewhere arbitrary so replies to another socket's requests
        // are not mistaken for ours.
        let seed = std::process::id().wrapping_mul(2_654_435_761);
        Ok(Self {
            fd,
            seq: Cell::new(seed),
            rx: RefCell::new(vec![0u8; RX_BUF_LEN]),
        })
    }

    /// The raw descriptor, for ioctls.
    pub(crate) fn raw_fd(&self) -> libc::c_int {
        self.fd.as_raw_fd()
    }

    /// The next sequence number.
    pub(crate) fn next_seq(&self) -> u32 {
        let s = self.seq.get().wrapping_add(1);
        self.seq.set(s);
        s
    }

    fn send(&self, bytes: &[u8]) -> io::Result<()> {
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        loop {
            // SAFETY: `bytes` and `addr` are valid for the duration of the call.
            let rc = unsafe {
                libc::sendto(
                    self.fd.as_raw_fd(),
                    bytes.as_ptr().cast(),
                    bytes.len(),
                    0,
                    (&addr as *const libc::sockaddr_nl).cast(),
                    std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
                )
            };
            if rc >= 0 {
                return Ok(());
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }

    fn recv(&self, buf: &mut [u8], nonblocking: bool) -> io::Result<usize> {
        let flags = if nonblocking { libc::MSG_DONTWAIT } else { 0 };
        loop {
            // SAFETY: `buf` is valid and writable for its whole length.
            let rc = unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), flags) };
            if rc >= 0 {
                return Ok(rc as usize);
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }

    /// Sends one request (which must carry `NLM_F_ACK` or `NLM_F_DUMP`) and feeds every
    /// reply message with its sequence number to `on_msg` until the acknowledgement or the end
    /// of the dump.
    pub(crate) fn transact(&self, request: &[u8], seq: u32, mut on_msg: impl FnMut(&NlMsg<'_>)) -> Result<(), Failure> {
        self.send(request).map_err(Failure::Io)?;
        let mut rx = self.rx.borrow_mut();
        loop {
            let n = self.recv(&mut rx, false).map_err(Failure::Io)?;
            for msg in Messages(&rx[..n]) {
                if msg.seq != seq {
                    continue;
                }
                match msg.kind {
                    NLMSG_ERROR => return error_result(&msg),
                    NLMSG_DONE => {
                        let code = msg
                            .payload
                            .get(..4)
                            .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                            .unwrap_or(0);
                        if code < 0 {
                            return Err(Failure::Kernel {
                                errno: -code,
                                ext: None,
                            });
                        }
                        return Ok(());
                    }
                    _ => on_msg(&msg),
                }
            }
        }
    }

    /// Sends an nfnetlink batch whose messages (sequence numbers `first..=last`, all with
    /// `NLM_F_ACK`) are processed by the kernel while `send` runs, then reads the answers.
    /// Returns the first error and the sequence number of the message that caused it.
    pub(crate) fn transact_batch(&self, request: &[u8], first: u32, last: u32) -> Result<(), (u32, Failure)> {
        self.send(request).map_err(|e| (first, Failure::Io(e)))?;
        let expected = last.wrapping_sub(first).wrapping_add(1) as usize;
        let mut acked = 0usize;
        let mut first_error: Option<(u32, Failure)> = None;
        let mut rx = self.rx.borrow_mut();
        while acked < expected {
            // Everything is queued by the time send returns; after an error the kernel may
            // skip answers, so only drain what is there.
            let nonblocking = first_error.is_some();
            let n = match self.recv(&mut rx, nonblocking) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err((first, Failure::Io(e))),
            };
            for msg in Messages(&rx[..n]) {
                let in_batch = msg.seq.wrapping_sub(first) <= last.wrapping_sub(first);
                if msg.kind != NLMSG_ERROR || !in_batch {
                    continue;
                }
                acked += 1;
                if let Err(f) = error_result(&msg) {
                    if first_error.is_none() {
                        first_error = Some((msg.seq, f));
                    }
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Turns an `NLMSG_ERROR` message into success (errno 0) or a failure with the extended-ack
/// text.
fn error_result(msg: &NlMsg<'_>) -> Result<(), Failure> {
    let p = msg.payload;
    let Some(code) = p.get(..4).map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]])) else {
        return Err(Failure::Io(io::Error::new(
            io::ErrorKind::InvalidData,
            "short netlink error message",
        )));
    };
    if code == 0 {
        return Ok(());
    }
    let mut ext = None;
    if msg.flags & NLM_F_ACK_TLVS != 0 && p.len() >= 4 + NLMSG_HDRLEN {
        let inner_len = if msg.flags & NLM_F_CAPPED != 0 {
            NLMSG_HDRLEN
        } else {
            u32::from_ne_bytes([p[4], p[5], p[6], p[7]]) as usize
        };
        if let Some(tlvs) = p.get(4 + super::wire::align4(inner_len)..) {
            for (kind, value) in Attrs(tlvs) {
                if kind == NLMSGERR_ATTR_MSG {
                    ext = Some(super::wire::string(value));
                }
            }
        }
    }
    Err(Failure::Kernel { errno: -code, ext })
}
