//! Plain data the netlink client returns. These are the suite's own types: nothing here is shared
//! with the reference plugins.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An IP address with a prefix length, e.g. `10.1.2.3/24`. The address keeps its host bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpNet {
    /// The address.
    pub addr: IpAddr,
    /// Prefix length in bits (0..=32 for IPv4, 0..=128 for IPv6).
    pub prefix: u8,
}

impl IpNet {
    /// Builds a prefix, checking the length against the family.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Self> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(Self { addr, prefix })
    }

    /// The network address (host bits cleared).
    pub fn network(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(a) => {
                let bits = u32::from(a);
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - self.prefix)
                };
                IpAddr::V4((bits & mask).into())
            }
            IpAddr::V6(a) => {
                let bits = u128::from(a);
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - self.prefix)
                };
                IpAddr::V6((bits & mask).into())
            }
        }
    }

    /// True when `ip` lies inside this prefix.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
                IpNet {
                    addr: ip,
                    prefix: self.prefix,
                }
                .network()
                    == self.network()
            }
            _ => false,
        }
    }

    /// True for IPv6.
    pub fn is_ipv6(&self) -> bool {
        self.addr.is_ipv6()
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Error for [`IpNet::from_str`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an address/prefix (CIDR)")]
pub struct BadCidr(pub String);

impl FromStr for IpNet {
    type Err = BadCidr;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadCidr(s.to_string());
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let addr: IpAddr = a.parse().map_err(|_| bad())?;
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.len() > 3 {
            return Err(bad());
        }
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        IpNet::new(addr, prefix).ok_or_else(bad)
    }
}

/// One link as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    /// Interface index.
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// `IFLA_INFO_KIND` (e.g. "veth", "bridge"), `None` for devices without one (lo, physical).
    pub kind: Option<String>,
    /// Hardware address as lower-case `aa:bb:cc:dd:ee:ff`, when the link has one.
    pub mac: Option<String>,
    /// MTU.
    pub mtu: u32,
    /// `IFF_UP` is set.
    pub admin_up: bool,
    /// `IFF_PROMISC` is set.
    pub promisc: bool,
    /// Operational state as the kernel names it ("up", "down", "lowerlayerdown", "unknown", ...).
    pub oper_state: String,
    /// Index of the master device (bridge), if enslaved.
    pub master: Option<u32>,
    /// `IFLA_LINK`: the peer's index for veth (in the peer's namespace), the parent for vlan/macvlan.
    pub link: Option<u32>,
    /// `IFLA_LINK_NETNSID`: set when the peer/parent lives in another namespace.
    pub link_netnsid: Option<i32>,
}

/// One address on a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrInfo {
    /// Interface index the address sits on.
    pub index: u32,
    /// Address and prefix length.
    pub addr: IpNet,
    /// Address scope (0 global, 253 link, 254 host).
    pub scope: u8,
}

/// One route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteInfo {
    /// Routing table id (254 main, 255 local).
    pub table: u32,
    /// Destination; `None` for a default route.
    pub dst: Option<IpNet>,
    /// True for IPv6 routes (needed when `dst` is `None`).
    pub ipv6: bool,
    /// Gateway (`RTA_GATEWAY`), if any.
    pub gateway: Option<IpAddr>,
    /// Output interface index.
    pub oif: Option<u32>,
    /// `RTA_PRIORITY` (metric).
    pub priority: Option<u32>,
    /// Route scope.
    pub scope: u8,
    /// Route type (1 unicast, 2 local, 3 broadcast, ...).
    pub kind: u8,
    /// Route protocol (2 kernel, 3 boot, 4 static, ...).
    pub protocol: u8,
    /// `RTAX_MTU` metric, if set.
    pub mtu: Option<u32>,
    /// `RTAX_ADVMSS` metric, if set.
    pub advmss: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises_cidrs() {
        let n: IpNet = "10.1.2.3/24".parse().unwrap();
        assert_eq!(n.network().to_string(), "10.1.2.0");
        assert!(n.contains("10.1.2.200".parse().unwrap()));
        assert!(!n.contains("10.1.3.1".parse().unwrap()));
        let v6: IpNet = "2001:db8::5/64".parse().unwrap();
        assert_eq!(v6.network().to_string(), "2001:db8::");
        for bad in ["10.1.2.3", "10.1.2.3/33", "10.1.2.3/", "x/24", "10.1.2.3/+4", "::/129"] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn edges_of_prefixes_and_families() {
        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.9".parse().unwrap()));
        assert!(!all.contains("::1".parse().unwrap()), "families never mix");
        let host: IpNet = "10.0.0.1/32".parse().unwrap();
        assert_eq!(host.network(), host.addr);
        assert!(!host.contains("10.0.0.2".parse().unwrap()));
        let v6_all: IpNet = "::/0".parse().unwrap();
        assert_eq!(v6_all.network().to_string(), "::");
        assert!(v6_all.is_ipv6() && !host.is_ipv6());
        assert_eq!("10.1.2.3/24".parse::<IpNet>().unwrap().to_string(), "10.1.2.3/24");
        assert_eq!(IpNet::new("::1".parse().unwrap(), 129), None);
        assert_eq!(
            "bad".parse::<IpNet>().unwrap_err().to_string(),
            "\"bad\" is not an address/prefix (CIDR)"
        );
    }
}
