//! Plain data the client takes and returns: prefixes, MAC addresses, links, addresses, routes.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

pub use crate::ipnet::IpNet;

/// Why a string is not a valid [`Mac`].
#[derive(Debug, thiserror::Error)]
#[error("invalid {what} {text:?}")]
pub struct ParseError {
    what: &'static str,
    text: String,
}

/// An Ethernet MAC address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// A random, locally administered, unicast address.
    pub fn random() -> Mac {
        let mut b = [0u8; 6];
        fill_random(&mut b);
        b[0] = (b[0] & 0xfe) | 0x02;
        Mac(b)
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl FromStr for Mac {
    type Err = ParseError;

    /// Parses `aa:bb:cc:dd:ee:ff` (or with `-` separators), any case.
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let bad = || ParseError {
            what: "MAC address",
            text: s.to_string(),
        };
        let mut out = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for byte in out.iter_mut() {
            let part = parts.next().ok_or_else(bad)?;
            if part.len() != 2 {
                return Err(bad());
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(Mac(out))
    }
}

/// Fills `buf` from the kernel's random source (`getrandom(2)`); falls back to a time-based
/// mix if the call is unavailable, which is good enough for names and MAC addresses.
pub(crate) fn fill_random(buf: &mut [u8]) {
    // SAFETY: `buf` is valid and writable for its length.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n == buf.len() as isize {
        return;
    }
    let mut x = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
        ^ u64::from(std::process::id()) << 32;
    for b in buf.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
}

/// RFC 2863 operational state of a link (`IFLA_OPERSTATE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OperState {
    /// Not reported or unknown (`IF_OPER_UNKNOWN`), the usual state of loopback and bridges.
    Unknown,
    /// No carrier or not present.
    NotPresent,
    /// Down.
    Down,
    /// Lower layer down (e.g. a veth whose peer is down).
    LowerLayerDown,
    /// Testing.
    Testing,
    /// Dormant.
    Dormant,
    /// Up and running.
    Up,
}

impl OperState {
    pub(crate) fn from_raw(v: u8) -> Self {
        match v {
            1 => OperState::NotPresent,
            2 => OperState::Down,
            3 => OperState::LowerLayerDown,
            4 => OperState::Testing,
            5 => OperState::Dormant,
            6 => OperState::Up,
            _ => OperState::Unknown,
        }
    }

    /// The kernel's lowercase name (`up`, `down`, `lowerlayerdown` ...), as `ip link` shows it.
    pub fn as_str(&self) -> &'static str {
        match self {
            OperState::Unknown => "unknown",
            OperState::NotPresent => "notpresent",
            OperState::Down => "down",
            OperState::LowerLayerDown => "lowerlayerdown",
            OperState::Testing => "testing",
            OperState::Dormant => "dormant",
            OperState::Up => "up",
        }
    }
}

/// A network interface as the kernel reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// Interface index.
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// `IFLA_INFO_KIND` (`bridge`, `veth` ...), `None` for physical and loopback devices.
    pub kind: Option<String>,
    /// Hardware address, when it is 6 bytes long.
    pub mac: Option<Mac>,
    /// MTU.
    pub mtu: u32,
    /// `ifi_flags` (`IFF_UP`, `IFF_PROMISC` ...).
    pub flags: u32,
    /// Index of the master (bridge) this link is enslaved to.
    pub master: Option<u32>,
    /// Operational state.
    pub oper_state: OperState,
    /// `IFLA_LINK`: for a veth, the index of its peer (in the peer's namespace).
    pub link: Option<u32>,
    /// `IFLA_LINK_NETNSID`: the namespace id of the peer's namespace, if it is elsewhere.
    pub link_netnsid: Option<i32>,
}

impl Link {
    /// Administratively up (`IFF_UP`).
    pub fn is_up(&self) -> bool {
        self.flags & libc::IFF_UP as u32 != 0
    }

    /// Promiscuous mode requested by a user (`IFF_PROMISC` as reported by the kernel).
    pub fn is_promisc(&self) -> bool {
        self.flags & libc::IFF_PROMISC as u32 != 0
    }

    /// True when [`Link::kind`] is `kind`.
    pub fn is_kind(&self, kind: &str) -> bool {
        self.kind.as_deref() == Some(kind)
    }
}

/// An address on a link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Address {
    /// Index of the link holding it.
    pub index: u32,
    /// The address and its prefix length.
    pub net: IpNet,
    /// `ifa_scope` (0 global, 253 link, 254 host).
    pub scope: u8,
    /// Address flags (`IFA_F_*`, from `IFA_FLAGS` when present).
    pub flags: u32,
}

impl Address {
    /// `IFA_F_TENTATIVE`: IPv6 duplicate address detection has not finished.
    pub const TENTATIVE: u32 = 0x40;
    /// `IFA_F_DADFAILED`: duplicate address detection failed.
    pub const DADFAILED: u32 = 0x08;
    /// `IFA_F_NODAD`: no duplicate address detection.
    pub const NODAD: u32 = 0x02;
}

/// The main routing table.
pub const RT_TABLE_MAIN: u32 = 254;
/// Route scope: global.
pub const RT_SCOPE_UNIVERSE: u8 = 0;
/// Route scope: directly attached (no gateway).
pub const RT_SCOPE_LINK: u8 = 253;
/// Route scope: host-local.
pub const RT_SCOPE_HOST: u8 = 254;

/// A route. Used both to ask for one and to report one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// Destination; `0.0.0.0/0` or `::/0` for a default route.
    pub dst: IpNet,
    /// Gateway.
    pub gw: Option<IpAddr>,
    /// Output interface index.
    pub oif: Option<u32>,
    /// Preferred source address (`RTA_PREFSRC`).
    pub src: Option<IpAddr>,
    /// Metric (`RTA_PRIORITY`).
    pub priority: Option<u32>,
    /// Routing table; [`RT_TABLE_MAIN`] by default.
    pub table: u32,
    /// Scope; `None` when asking means "link" without a gateway and "universe" with one.
    pub scope: Option<u8>,
    /// Route type (`RTN_UNICAST` = 1, `RTN_LOCAL` = 2 ...); 1 when asking.
    pub kind: u8,
    /// Routing protocol (`RTPROT_BOOT` = 3, `RTPROT_KERNEL` = 2 ...); 3 when asking.
    pub protocol: u8,
    /// `RTAX_MTU` metric.
    pub mtu: Option<u32>,
    /// `RTAX_ADVMSS` metric.
    pub advmss: Option<u32>,
}

impl Route {
    /// A unicast route to `dst` in the main table, with nothing else set.
    pub fn to(dst: IpNet) -> Route {
        Route {
            dst,
            gw: None,
            oif: None,
            src: None,
            priority: None,
            table: RT_TABLE_MAIN,
            scope: None,
            kind: 1,
            protocol: 3,
            mtu: None,
            advmss: None,
        }
    }

    /// The default route of `gw`'s family through `gw`.
    pub fn default_via(gw: IpAddr) -> Route {
        let dst = match gw {
            IpAddr::V4(_) => IpNet {
                addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                prefix: 0,
            },
            IpAddr::V6(_) => IpNet {
                addr: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                prefix: 0,
            },
        };
        Route {
            gw: Some(gw),
            ..Route::to(dst)
        }
    }

    /// True for `0.0.0.0/0` and `::/0`.
    pub fn is_default(&self) -> bool {
        self.dst.prefix == 0
    }
}

/// Address family filter for listings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// IPv4 only.
    V4,
    /// IPv6 only.
    V6,
    /// Both.
    All,
}

impl Family {
    pub(crate) fn raw(self) -> u8 {
        match self {
            Family::V4 => libc::AF_INET as u8,
            Family::V6 => libc::AF_INET6 as u8,
            Family::All => libc::AF_UNSPEC as u8,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_round_trip() {
        let m: Mac = "0A:58:0a:01:00:05".parse().unwrap();
        assert_eq!(m.to_string(), "0a:58:0a:01:00:05");
        assert!("0a:58:0a:01:00".parse::<Mac>().is_err());
        let r = Mac::random();
        assert_eq!(r.0[0] & 0x03, 0x02);
    }
}
