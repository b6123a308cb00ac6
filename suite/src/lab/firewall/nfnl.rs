//! nf_tables over nfnetlink: requests built by hand (`nfgenmsg` + attributes) and their replies,
//! exchanged over the suite's one netlink transport (`net::conn`) on a NETLINK_NETFILTER socket.

use netlink_packet_core::{NetlinkDeserializable, NetlinkHeader, NetlinkSerializable};
use netlink_sys::protocols::NETLINK_NETFILTER;

use super::FirewallError;
use crate::net::conn::{Conn, Exchange};
use crate::net::NetError;

/// nfnetlink subsystem id of nf_tables.
const NFNL_SUBSYS_NFTABLES: u16 = 10;
/// `sizeof(struct nfgenmsg)`.
const NFGENMSG_LEN: usize = 4;

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
pub(crate) struct NfSocket {
    conn: Conn<NfWire>,
}

impl std::fmt::Debug for NfSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NfSocket").finish_non_exhaustive()
    }
}

impl NfSocket {
    /// Opens a socket in the calling thread's network namespace.
    pub fn open() -> Result<Self, FirewallError> {
        let conn = Conn::open(NETLINK_NETFILTER).map_err(|e| FirewallError::Io {
            op: "socket(AF_NETLINK, NETLINK_NETFILTER)".into(),
            source: into_io(e),
        })?;
        Ok(Self { conn })
    }

    /// Dumps all objects answered to nf_tables message `msg` for `family`, with request `attrs`.
    pub fn dump(&mut self, msg: u16, family: u8, attrs: &[u8]) -> Result<Dump, DumpError> {
        self.exchange(msg, family, attrs, Exchange::Dump)
    }

    /// Sends a plain (non-dump) get request and collects its answer up to the acknowledgement.
    pub fn get(&mut self, msg: u16, family: u8, attrs: &[u8]) -> Result<Dump, DumpError> {
        self.exchange(msg, family, attrs, Exchange::Ack(0))
    }

    fn exchange(&mut self, msg: u16, family: u8, attrs: &[u8], exchange: Exchange) -> Result<Dump, DumpError> {
        let request = NfWire {
            message_type: (NFNL_SUBSYS_NFTABLES << 8) | msg,
            family,
            attrs: attrs.to_vec(),
        };
        let answer = self
            .conn
            .exchange(request, exchange, "nf_tables request")
            .map_err(dump_error)?;
        Ok(Dump {
            messages: answer
                .messages
                .into_iter()
                .map(|m| NfMessage {
                    family: m.family,
                    attrs: m.attrs,
                })
                .collect(),
            interrupted: answer.interrupted,
        })
    }
}

/// One nf_tables message as the transport carries it: its type, the `nfgenmsg` family (version
/// NFNETLINK_V0, resource id 0) and the attribute bytes.
#[derive(Debug, Clone)]
struct NfWire {
    message_type: u16,
    family: u8,
    attrs: Vec<u8>,
}

/// A reply too short to hold its `nfgenmsg` header.
#[derive(Debug, thiserror::Error)]
#[error("nfnetlink reply shorter than nfgenmsg")]
struct ShortReply;

impl NetlinkSerializable for NfWire {
    fn message_type(&self) -> u16 {
        self.message_type
    }

    fn buffer_len(&self) -> usize {
        NFGENMSG_LEN + self.attrs.len()
    }

    fn serialize(&self, buffer: &mut [u8]) {
        buffer[..NFGENMSG_LEN].copy_from_slice(&[self.family, 0, 0, 0]);
        buffer[NFGENMSG_LEN..].copy_from_slice(&self.attrs);
    }
}

impl NetlinkDeserializable for NfWire {
    type Error = ShortReply;

    fn deserialize(header: &NetlinkHeader, payload: &[u8]) -> Result<Self, ShortReply> {
        let (nfgenmsg, attrs) = payload.split_at_checked(NFGENMSG_LEN).ok_or(ShortReply)?;
        Ok(NfWire {
            message_type: header.message_type,
            family: nfgenmsg[0],
            attrs: attrs.to_vec(),
        })
    }
}

/// The transport's error as the firewall reader sees it: the kernel's errno, kept apart
/// because callers act on it (`ENOENT`), or a firewall error with its context.
fn dump_error(e: NetError) -> DumpError {
    if let Some(errno) = e.errno() {
        return DumpError::Kernel(errno);
    }
    DumpError::Other(match e {
        NetError::Decode(detail) => FirewallError::Decode {
            what: "nfnetlink reply".into(),
            detail,
        },
        other => FirewallError::Io {
            op: "nfnetlink exchange".into(),
            source: into_io(other),
        },
    })
}

fn into_io(e: NetError) -> std::io::Error {
    match e {
        NetError::Socket(source) | NetError::Namespace(source) | NetError::Kernel { source, .. } => source,
        other => std::io::Error::other(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_the_subsystem_family_and_attributes() {
        let wire = NfWire {
            message_type: (NFNL_SUBSYS_NFTABLES << 8) | 1,
            family: 2,
            attrs: vec![8, 0, 1, 0, 0xaa, 0xbb, 0xcc, 0xdd],
        };
        let mut buffer = vec![0u8; wire.buffer_len()];
        wire.serialize(&mut buffer);
        assert_eq!(wire.message_type(), 0x0a01);
        assert_eq!(buffer, [2, 0, 0, 0, 8, 0, 1, 0, 0xaa, 0xbb, 0xcc, 0xdd]);
        let header = NetlinkHeader::default();
        let back = NfWire::deserialize(&header, &buffer).unwrap();
        assert_eq!((back.family, back.attrs), (2, wire.attrs));
        assert!(NfWire::deserialize(&header, &[2, 0]).is_err());
    }

    #[test]
    fn the_kernel_errno_is_kept_apart() {
        let refused = NetError::Kernel {
            op: "x".into(),
            source: std::io::Error::from_raw_os_error(libc::ENOENT),
        };
        assert!(matches!(dump_error(refused), DumpError::Kernel(libc::ENOENT)));
        let garbled = NetError::Decode("bad".into());
        assert!(matches!(
            dump_error(garbled),
            DumpError::Other(FirewallError::Decode { .. })
        ));
    }
}
