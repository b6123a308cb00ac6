//! Address operations: add, delete, list.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::error::Result;
use super::rtnl::Rtnl;
use super::socket::{NLM_F_CREATE, NLM_F_EXCL};
use super::types::{Address, Family, IpNet};
use super::wire::{ne_u32, Attrs, MsgBuf, NlMsg};

const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const RTM_GETADDR: u16 = 22;

const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
const IFA_FLAGS: u16 = 8;

/// Writes a `struct ifaddrmsg`.
fn ifaddrmsg(buf: &mut MsgBuf, family: u8, prefix: u8, flags: u8, index: u32) {
    let mut h = [0u8; 8];
    h[0] = family;
    h[1] = prefix;
    h[2] = flags;
    h[4..8].copy_from_slice(&index.to_ne_bytes());
    buf.put(&h);
}

/// The address bytes of `ip` and its family number.
pub(crate) fn ip_bytes(ip: &IpAddr) -> ([u8; 16], usize, u8) {
    let mut b = [0u8; 16];
    match ip {
        IpAddr::V4(a) => {
            b[..4].copy_from_slice(&a.octets());
            (b, 4, libc::AF_INET as u8)
        }
        IpAddr::V6(a) => {
            b.copy_from_slice(&a.octets());
            (b, 16, libc::AF_INET6 as u8)
        }
    }
}

/// Reads an address attribute of the given family.
pub(crate) fn parse_ip(family: u8, value: &[u8]) -> Option<IpAddr> {
    if family == libc::AF_INET as u8 {
        let b: [u8; 4] = value.get(..4)?.try_into().ok()?;
        Some(IpAddr::V4(Ipv4Addr::from(b)))
    } else if family == libc::AF_INET6 as u8 {
        let b: [u8; 16] = value.get(..16)?.try_into().ok()?;
        Some(IpAddr::V6(Ipv6Addr::from(b)))
    } else {
        None
    }
}

fn parse_addr(msg: &NlMsg<'_>) -> Option<Address> {
    let p = msg.payload;
    if p.len() < 8 {
        return None;
    }
    let (family, prefix, flags8, scope) = (p[0], p[1], p[2], p[3]);
    let index = u32::from_ne_bytes([p[4], p[5], p[6], p[7]]);
    let mut address = None;
    let mut local = None;
    let mut flags = u32::from(flags8);
    for (kind, value) in Attrs(&p[8..]) {
        match kind {
            IFA_ADDRESS => address = parse_ip(family, value),
            IFA_LOCAL => local = parse_ip(family, value),
            IFA_FLAGS => flags = ne_u32(value).unwrap_or(flags),
            _ => {}
        }
    }
    // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer on point-to-point
    // links. IPv6 only sends IFA_ADDRESS.
    let addr = local.or(address)?;
    Some(Address {
        index,
        net: IpNet::as_written(addr, prefix)?,
        scope,
        flags,
    })
}

impl Rtnl {
    /// Adds `net` (address and prefix length) to the link `index`. IPv4 addresses get the
    /// subnet broadcast address. `nodad` sets `IFA_F_NODAD` (IPv6: usable at once).
    /// Fails with `EEXIST` when the address is already there.
    pub fn add_address(&self, index: u32, net: IpNet, nodad: bool) -> Result<()> {
        let (bytes, len, family) = ip_bytes(&net.addr);
        let mut buf = MsgBuf::new();
        let seq = self.begin(&mut buf, RTM_NEWADDR, Rtnl::ACK | NLM_F_CREATE | NLM_F_EXCL);
        let flags = if nodad { Address::NODAD as u8 } else { 0 };
        ifaddrmsg(&mut buf, family, net.prefix, flags, index);
        buf.attr(IFA_LOCAL, &bytes[..len]);
        buf.attr(IFA_ADDRESS, &bytes[..len]);
        if let IpAddr::V4(a) = net.addr {
            if net.prefix < 31 {
                let host_mask = u32::MAX >> net.prefix;
                let brd = Ipv4Addr::from(u32::from(a) | host_mask);
                buf.attr(IFA_BROADCAST, &brd.octets());
            }
        }
        self.ack(&mut buf, seq, || format!("add address {net} to link #{index}"))
    }

    /// Removes `net` from the link `index`. Returns `false` when it was not there.
    pub fn del_address(&self, index: u32, net: IpNet) -> Result<bool> {
        let (bytes, len, family) = ip_bytes(&net.addr);
        let mut buf = MsgBuf::new();
        let seq = self.begin(&mut buf, RTM_DELADDR, Rtnl::ACK);
        ifaddrmsg(&mut buf, family, net.prefix, 0, index);
        buf.attr(IFA_LOCAL, &bytes[..len]);
        buf.attr(IFA_ADDRESS, &bytes[..len]);
        match self.ack(&mut buf, seq, || format!("delete address {net} from link #{index}")) {
            Ok(()) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The addresses of `family` on the link `index` (every link when `None`).
    pub fn addresses(&self, index: Option<u32>, family: Family) -> Result<Vec<Address>> {
        let mut buf = MsgBuf::new();
        let seq = self.begin(&mut buf, RTM_GETADDR, Rtnl::DUMP);
        ifaddrmsg(&mut buf, family.raw(), 0, 0, index.unwrap_or(0));
        let mut out = Vec::new();
        self.collect(
            &mut buf,
            seq,
            |m| {
                if let Some(a) = parse_addr(m) {
                    if index.is_none_or(|i| i == a.index) {
                        out.push(a);
                    }
                }
            },
            || match index {
                Some(i) => format!("list addresses of link #{i}"),
                None => "list addresses".to_string(),
            },
        )?;
        Ok(out)
    }
}
