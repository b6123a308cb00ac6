//! IP addresses with a prefix length (`10.1.2.3/24`) and the little address arithmetic the
//! plugins need: the crate's one `IpNet`, used by the CNI types, host-local, the netlink client
//! and the masquerade alike. Addresses are handled as integers (`u128`, IPv4 in the low 32 bits)
//! together with their family, so ranges of either family use one code path. Hand-written rather
//! than the `ipnet` crate: CNI's rules for IPv4-mapped addresses (Go's) and the integer
//! arithmetic host-local needs are most of the code either way, and the plugins keep their
//! dependencies to libc and serde.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// The family of an address. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) count as IPv4,
    /// like in Go.
    pub fn of(addr: &IpAddr) -> Family {
        match canonical(*addr) {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// Number of bits in an address of this family.
    pub fn bits(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }

    /// `"4"` or `"6"`, as in the 0.3.x/0.4.0 `ips[].version` field.
    pub fn version_str(self) -> &'static str {
        match self {
            Family::V4 => "4",
            Family::V6 => "6",
        }
    }
}

/// An IPv4-mapped IPv6 address becomes plain IPv4; anything else is unchanged.
pub fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// The address as an integer (IPv4 in the low 32 bits).
pub fn to_u128(addr: IpAddr) -> u128 {
    match canonical(addr) {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The address of a family from its integer; IPv4 values are truncated to 32 bits.
pub fn from_u128(family: Family, value: u128) -> IpAddr {
    match family {
        Family::V4 => IpAddr::V4(Ipv4Addr::from(value as u32)),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(value)),
    }
}

/// Parse an address, accepting an optional `/prefix` (which is dropped), as the CNI
/// conventions allow for requested IPs (`IP=10.1.2.3/24`).
pub fn parse_ip_maybe_prefixed(text: &str) -> Option<IpAddr> {
    let addr = text.split_once('/').map_or(text, |(a, _)| a);
    IpAddr::from_str(addr.trim()).ok().map(canonical)
}

/// An address with a prefix length. The address keeps its host bits (`10.1.2.3/24` is the
/// address of an interface); [`IpNet::network`] clears them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNet {
    /// The address.
    pub addr: IpAddr,
    /// The prefix length.
    pub prefix: u8,
}

impl IpNet {
    /// An address with a prefix length, which must not exceed the family's bit count.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<IpNet> {
        let addr = canonical(addr);
        if prefix > Family::of(&addr).bits() {
            return None;
        }
        Some(IpNet { addr, prefix })
    }

    /// An address with a prefix length taken as written: an IPv4-mapped IPv6 address stays
    /// IPv6, as the kernel reports and expects it. The prefix must not exceed the written
    /// family's bit count.
    pub fn as_written(addr: IpAddr, prefix: u8) -> Option<IpNet> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(IpNet { addr, prefix })
    }

    /// The address family.
    pub fn family(&self) -> Family {
        Family::of(&self.addr)
    }

    /// Whether the address is written as IPv6 (as the kernel sees it).
    pub fn is_ipv6(&self) -> bool {
        self.addr.is_ipv6()
    }

    fn host_mask(&self) -> u128 {
        let bits = u32::from(self.family().bits());
        // Saturating: an IPv4-mapped address taken as written may carry an IPv6 prefix length.
        let host_bits = bits.saturating_sub(u32::from(self.prefix));
        if host_bits == 0 {
            0
        } else if host_bits >= 128 {
            u128::MAX
        } else {
            (1u128 << host_bits) - 1
        }
    }

    /// The network address (host bits cleared).
    pub fn network_addr(&self) -> IpAddr {
        from_u128(self.family(), to_u128(self.addr) & !self.host_mask())
    }

    /// The same prefix with the host bits cleared.
    pub fn network(&self) -> IpNet {
        IpNet {
            addr: self.network_addr(),
            prefix: self.prefix,
        }
    }

    /// The last address of the prefix (the IPv4 broadcast address).
    pub fn last_addr(&self) -> IpAddr {
        from_u128(self.family(), to_u128(self.network_addr()) | self.host_mask())
    }

    /// Whether the address has no host bits set.
    pub fn is_network(&self) -> bool {
        self.addr == self.network_addr()
    }

    /// Whether `addr` lies inside this prefix (same family, same network bits).
    pub fn contains(&self, addr: &IpAddr) -> bool {
        let addr = canonical(*addr);
        Family::of(&addr) == self.family() && (to_u128(addr) & !self.host_mask()) == to_u128(self.network_addr())
    }

    /// Whether two prefixes share at least one address.
    pub fn overlaps(&self, other: &IpNet) -> bool {
        self.contains(&other.network_addr()) || other.contains(&self.network_addr())
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Why a string is not a valid [`IpNet`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid CIDR address {text:?}: {reason}")]
pub struct IpNetParseError {
    /// The text as given.
    text: String,
    /// What is wrong with it ("missing /prefix", "prefix too long", ...).
    reason: &'static str,
}

impl FromStr for IpNet {
    type Err = IpNetParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = |reason| IpNetParseError {
            text: text.to_string(),
            reason,
        };
        let (addr, prefix) = text.split_once('/').ok_or_else(|| bad("missing /prefix"))?;
        let addr = IpAddr::from_str(addr).map_err(|_| bad("bad IP address"))?;
        let prefix = prefix.parse::<u8>().map_err(|_| bad("bad prefix length"))?;
        // A prefix is checked against the family as written (`::ffff:1.2.3.4/120` is IPv6).
        let written_bits = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > written_bits {
            return Err(bad("prefix too long"));
        }
        let (addr, prefix) = match (addr, canonical(addr)) {
            (IpAddr::V6(_), IpAddr::V4(v4)) => {
                if prefix < 96 {
                    return Err(bad("prefix too short"));
                }
                (IpAddr::V4(v4), prefix - 96)
            }
            (_, same) => (same, prefix),
        };
        Ok(IpNet { addr, prefix })
    }
}

/// The address after `addr` (wrapping inside its family).
pub fn next_ip(addr: IpAddr) -> IpAddr {
    let family = Family::of(&addr);
    let max = match family {
        Family::V4 => u128::from(u32::MAX),
        Family::V6 => u128::MAX,
    };
    let value = to_u128(addr);
    from_u128(family, if value == max { 0 } else { value + 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_arithmetic() {
        let n: IpNet = "10.1.2.3/24".parse().unwrap();
        assert_eq!(n.network_addr().to_string(), "10.1.2.0");
        assert_eq!(n.last_addr().to_string(), "10.1.2.255");
        assert!(!n.is_network());
        assert!(n.contains(&"10.1.2.200".parse().unwrap()));
        assert!(!n.contains(&"10.1.3.1".parse().unwrap()));
        let v6: IpNet = "2001:db8::/64".parse().unwrap();
        assert_eq!(v6.last_addr().to_string(), "2001:db8::ffff:ffff:ffff:ffff");
        let all: IpNet = "::/0".parse().unwrap();
        assert!(all.contains(&"2001:db8::1".parse().unwrap()));
        assert_eq!(next_ip("10.0.0.255".parse().unwrap()).to_string(), "10.0.1.0");
        assert!("10.0.0.0/33".parse::<IpNet>().is_err());
        assert!("10.0.0.0".parse::<IpNet>().is_err());
        let v6: IpNet = "fd00::1:5/64".parse().unwrap();
        assert_eq!(v6.network().to_string(), "fd00::/64");
        assert!(v6.is_ipv6());
    }

    #[test]
    fn parse_errors_name_the_text_and_the_reason() {
        let e = "10.0.0.0".parse::<IpNet>().unwrap_err();
        assert_eq!(e.to_string(), "invalid CIDR address \"10.0.0.0\": missing /prefix");
        let e = "::ffff:1.2.3.4/80".parse::<IpNet>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid CIDR address \"::ffff:1.2.3.4/80\": prefix too short"
        );
    }

    #[test]
    fn as_written_keeps_the_kernel_family() {
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        let n = IpNet::as_written(mapped, 120).unwrap();
        assert!(n.is_ipv6());
        assert_eq!(n.to_string(), "::ffff:10.1.2.3/120");
        assert_eq!(IpNet::new(mapped, 120), None);
        assert!(IpNet::as_written("10.0.0.1".parse().unwrap(), 33).is_none());
    }
}
