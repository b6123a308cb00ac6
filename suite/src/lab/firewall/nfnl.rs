//! A minimal nfnetlink client: one NETLINK_NETFILTER socket, dump requests built by hand
//! (`nlmsghdr` + `nfgenmsg` + attributes) and a receive loop collecting the replies.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::FirewallError;

/// nfnetlink subsystem id of nf_tables.
const NFNL_SUBSYS_NFTABLES: u16 = 10;
/// `NLMSG_ERROR` message type.
const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE` message type.
const NLMSG_DONE: u16 = 3;
/// Request flag.
const NLM_F_REQUEST: u16 = 0x1;
/// Ask for an acknowledgement.
const NLM_F_ACK: u16 = 0x4;
/// Dump flags (`NLM_F_ROOT | NLM_F_MATCH`).
const NLM_F_DUMP: u16 = 0x300;
/// Set by the kernel when the dumped state changed while dumping.
const NLM_F_DUMP_INTR: u16 = 0x10;
/// `sizeof(struct nlmsghdr)`.
const NLMSG_HDRLEN: usize = 16;
/// `sizeof(struct nfgenmsg)`.
const NFGENMSG_LEN: usize = 4;
/// Receive buffer; nfnetlink dump batches fit well below this.
const RECV_BUF: usize = 256 * 1024;

/// One reply message of a dump.
#[derive(Debug, Clone)]
pub(crate) struct NfMessage {
    /// `nfgen_family` of the object (NFPROTO_*).
    pub family: u8,
    /// Attribute bytes following the `nfgenmsg` header.
    pub attrs: Vec<u8>,
}

/// The result of a dump.
#[derive(Debug, Clone)]
pub(crate) struct Dump {
    /// Reply messages in kernel order.
    pub messages: Vec<NfMessage>,
    /// True when the kernel flagged the dump as interrupted by a concurrent change.
    pub interrupted: bool,
}

/// Outcome of a dump that the kernel refused.
#[derive(Debug)]
pub(crate) enum DumpError {
    /// The kernel answered with this errno.
    Kernel(i32),
    /// Anything else (socket failure, malformed reply).
    Other(FirewallError),
}

/// A NETLINK_NETFILTER socket.
#[derive(Debug)]
pub(crate) struct NfSocket {
    fd: OwnedFd,
    seq: u32,
}

impl NfSocket {
    /// Opens a socket in the calling thread's network namespace.
    pub fn open() -> Result<Self, FirewallError> {
        // SAFETY: plain socket(2) call; the result is checked before use.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_NETFILTER,
            )
        };
        if raw < 0 {
            return Err(FirewallError::Io {
                op: "socket(AF_NETLINK, NETLINK_NETFILTER)".into(),
                source: std::io::Error::last_os_error(),
            });
        }
        // SAFETY: `raw` is a fresh descriptor owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        Ok(Self { fd, seq: 0 })
    }

    /// Dumps all objects answered to nf_tables message `msg` for `family`, with request `attrs`.
    pub fn dump(&mut self, msg: u16, family: u8, attrs: &[u8]) -> Result<Dump, DumpError> {
        self.exchange(msg, family, attrs, NLM_F_REQUEST | NLM_F_DUMP)
    }

    /// Sends a plain (non-dump) get request and collects its answer up to the acknowledgement.
    pub fn get(&mut self, msg: u16, family: u8, attrs: &[u8]) -> Result<Dump, DumpError> {
        self.exchange(msg, family, attrs, NLM_F_REQUEST | NLM_F_ACK)
    }

    fn exchange(&mut self, msg: u16, family: u8, attrs: &[u8], flags: u16) -> Result<Dump, DumpError> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let request = build_request(msg, family, seq, flags, attrs);
        self.send(&request).map_err(DumpError::Other)?;
        let mut dump = Dump {
            messages: Vec::new(),
            interrupted: false,
        };
        let mut buf = vec![0u8; RECV_BUF];
        loop {
            let len = self.recv(&mut buf).map_err(DumpError::Other)?;
            if self.collect(&buf[..len], seq, &mut dump)? {
                return Ok(dump);
            }
        }
    }

    /// Parses one datagram into `dump`; returns true once `NLMSG_DONE` was seen.
    fn collect(&self, mut bytes: &[u8], seq: u32, dump: &mut Dump) -> Result<bool, DumpError> {
        while bytes.len() >= NLMSG_HDRLEN {
            let len = u32_at(bytes, 0) as usize;
            let kind = u16::from_ne_bytes([bytes[4], bytes[5]]);
            let flags = u16::from_ne_bytes([bytes[6], bytes[7]]);
            let msg_seq = u32_at(bytes, 8);
            if len < NLMSG_HDRLEN || len > bytes.len() {
                return Err(DumpError::Other(decode_error(format!(
                    "netlink message length {len} with {} bytes left",
                    bytes.len()
                ))));
            }
            let payload = &bytes[NLMSG_HDRLEN..len];
            bytes = bytes.get((len + 3) & !3..).unwrap_or_default();
            if msg_seq != seq {
                continue;
            }
            if flags & NLM_F_DUMP_INTR != 0 {
                dump.interrupted = true;
            }
            match kind {
                NLMSG_DONE => {
                    let code = payload.get(..4).map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                    return match code {
                        Some(code) if code < 0 => Err(DumpError::Kernel(-code)),
                        _ => Ok(true),
                    };
                }
                NLMSG_ERROR => {
                    let code = payload
                        .get(..4)
                        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                        .unwrap_or(0);
                    if code < 0 {
                        return Err(DumpError::Kernel(-code));
                    }
                    // An acknowledgement ends a plain (non-dump) request.
                    return Ok(true);
                }
                _ => {
                    if payload.len() < NFGENMSG_LEN {
                        return Err(DumpError::Other(decode_error(
                            "nfnetlink reply shorter than nfgenmsg".into(),
                        )));
                    }
                    dump.messages.push(NfMessage {
                        family: payload[0],
                        attrs: payload[NFGENMSG_LEN..].to_vec(),
                    });
                }
            }
        }
        Ok(false)
    }

    fn send(&self, request: &[u8]) -> Result<(), FirewallError> {
        // SAFETY: sockaddr_nl is plain data; zeroed means "the kernel" (pid 0, no groups).
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: buffer and address pointers are valid for the given lengths.
        let sent = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                request.as_ptr().cast(),
                request.len(),
                0,
                (&addr as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if sent < 0 {
            return Err(FirewallError::Io {
                op: "sending an nfnetlink dump request".into(),
                source: std::io::Error::last_os_error(),
            });
        }
        Ok(())
    }

    fn recv(&self, buf: &mut [u8]) -> Result<usize, FirewallError> {
        loop {
            // SAFETY: `buf` is valid for writes of its length.
            let got = unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if got >= 0 {
                return Ok(got as usize);
            }
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                return Err(FirewallError::Io {
                    op: "receiving an nfnetlink dump".into(),
                    source: err,
                });
            }
        }
    }
}

/// Builds `nlmsghdr` + `nfgenmsg` + `attrs` for nf_tables message `msg`.
fn build_request(msg: u16, family: u8, seq: u32, flags: u16, attrs: &[u8]) -> Vec<u8> {
    let len = NLMSG_HDRLEN + NFGENMSG_LEN + attrs.len();
    let mut buf = Vec::with_capacity(len);
    buf.extend_from_slice(&(len as u32).to_ne_bytes());
    buf.extend_from_slice(&((NFNL_SUBSYS_NFTABLES << 8) | msg).to_ne_bytes());
    buf.extend_from_slice(&flags.to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes());
    // nfgenmsg: family, version NFNETLINK_V0, res_id (big-endian) 0.
    buf.extend_from_slice(&[family, 0, 0, 0]);
    buf.extend_from_slice(attrs);
    buf
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn decode_error(detail: String) -> FirewallError {
    FirewallError::Decode {
        what: "nfnetlink reply".into(),
        detail,
    }
}
