//! Per-namespace and per-link IP settings over netlink, where `/proc/sys/net` would otherwise
//! be used: reading a namespace's forwarding switch (`RTM_GETNETCONF`) and setting IPv4
//! per-link options (`IFLA_INET_CONF`).
//!
//! Why not `/proc/sys/net`: every network namespace whose `/proc/sys/net/ipv4` (or `ipv6`) was
//! ever opened leaves a dentry of that name under the one shared `/proc/sys/net` directory,
//! and a path lookup compares against all of them. With a thousand containers a single open
//! costs hundreds of microseconds, and each open through the container's namespace adds one
//! more. Netlink requests cost the same with 1 or 1,000 namespaces.

use super::error::Result;
use super::link::LinkChange;
use super::rtnl::Rtnl;
use super::types::Family;
use super::wire::{ne_i32, Attrs, MsgBuf};

const RTM_NEWNETCONF: u16 = 80;
const RTM_GETNETCONF: u16 = 82;
const NETCONFA_IFINDEX: u16 = 1;
const NETCONFA_FORWARDING: u16 = 2;
const NETCONFA_IFINDEX_ALL: i32 = -1;

/// `IPV4_DEVCONF_ARP_NOTIFY`: announce the link's addresses (gratuitous ARP) when it comes up
/// or changes its hardware address.
pub const IPV4_DEVCONF_ARP_NOTIFY: u16 = 22;

impl Rtnl {
    /// The namespace-wide forwarding switch of `family` (`net.ipv4.ip_forward`, or
    /// `net.ipv6.conf.all.forwarding`): `None` when the kernel does not report it.
    pub fn forwarding(&self, family: Family) -> Result<Option<bool>> {
        let af = match family {
            Family::V6 => libc::AF_INET6 as u8,
            _ => libc::AF_INET as u8,
        };
        let mut buf = MsgBuf::new();
        let seq = self.begin(&mut buf, RTM_GETNETCONF, Rtnl::ACK);
        // struct netconfmsg is one byte, padded to four.
        buf.put(&[af, 0, 0, 0]);
        buf.attr(NETCONFA_IFINDEX, &NETCONFA_IFINDEX_ALL.to_ne_bytes());
        let mut forwarding = None;
        self.collect(
            &mut buf,
            seq,
            |m| {
                if m.kind != RTM_NEWNETCONF {
                    return;
                }
                for (kind, value) in Attrs(m.payload.get(4..).unwrap_or_default()) {
                    if kind == NETCONFA_FORWARDING {
                        forwarding = ne_i32(value).map(|v| v != 0);
                    }
                }
            },
            || format!("read the {family:?} forwarding switch"),
        )?;
        Ok(forwarding)
    }

    /// Sets IPv4 per-link options (`(IPV4_DEVCONF_*, value)`) on the link `index`: the netlink
    /// equivalent of writing `/proc/sys/net/ipv4/conf/<link>/<option>`.
    pub fn set_ipv4_devconf(&self, index: u32, options: &[(u16, u32)]) -> Result<()> {
        self.set_link(
            index,
            &LinkChange {
                ipv4_devconf: options,
                ..LinkChange::default()
            },
        )
    }
}
