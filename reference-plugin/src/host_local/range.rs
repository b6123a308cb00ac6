//! Address ranges and range sets (host-local's `ranges`) and the round-robin walk over a set.

use crate::ipnet::{self, Family, IpNet};
use std::fmt;
use std::net::IpAddr;

/// One range: a subnet, the inclusive `[start, end]` slice of it that may be handed out, and the
/// gateway that is never handed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    /// The subnet (network address, prefix length).
    pub subnet: IpNet,
    /// First address that may be allocated (inclusive).
    pub start: IpAddr,
    /// Last address that may be allocated (inclusive).
    pub end: IpAddr,
    /// The gateway returned in results; never allocated.
    pub gateway: IpAddr,
}

impl Range {
    /// Build and validate a range. Defaults: gateway and start = network + 1; end = last
    /// address − 1 for IPv4 (the broadcast is excluded), last address for IPv6.
    pub fn new(
        subnet: IpNet,
        start: Option<IpAddr>,
        end: Option<IpAddr>,
        gateway: Option<IpAddr>,
    ) -> Result<Range, String> {
        if !subnet.is_network() {
            return Err(format!(
                "network {subnet} has host bits set; for a prefix length of {} the network address is {}",
                subnet.prefix,
                subnet.network_addr()
            ));
        }
        let bits = subnet.family().bits();
        if subnet.prefix > bits - 2 {
            return Err(format!("Network {subnet} too small to allocate from"));
        }
        let first = ipnet::next_ip(subnet.addr);
        let gateway = match gateway.map(ipnet::canonical) {
            None => first,
            Some(gw) if subnet.contains(&gw) => gw,
            Some(gw) => return Err(format!("gateway {gw} not in network {subnet}")),
        };
        let mut range = Range {
            subnet,
            start: first,
            end: {
                let last = subnet.last_addr();
                match subnet.family() {
                    Family::V4 => ipnet::from_u128(Family::V4, ipnet::to_u128(last) - 1),
                    Family::V6 => last,
                }
            },
            gateway,
        };
        if let Some(s) = start.map(ipnet::canonical) {
            range.check_inside(&s, "rangeStart")?;
            range.start = s;
        }
        if let Some(e) = end.map(ipnet::canonical) {
            range.check_inside(&e, "rangeEnd")?;
            range.end = e;
        }
        Ok(range)
    }

    fn check_inside(&self, addr: &IpAddr, what: &str) -> Result<(), String> {
        if Family::of(addr) != self.subnet.family() {
            return Err(format!(
                "{what} {addr} is not of the same address family as subnet {}",
                self.subnet
            ));
        }
        if !self.subnet.contains(addr) {
            return Err(format!("{what} {addr} not in network {}", self.subnet));
        }
        let v = ipnet::to_u128(*addr);
        if v < ipnet::to_u128(self.start) {
            return Err(format!(
                "{what} {addr} is in network {} but before start {}",
                self.subnet, self.start
            ));
        }
        if v > ipnet::to_u128(self.end) {
            return Err(format!(
                "{what} {addr} is in network {} but after end {}",
                self.subnet, self.end
            ));
        }
        Ok(())
    }

    /// The address family.
    pub fn family(&self) -> Family {
        self.subnet.family()
    }

    /// Whether `addr` lies inside `[start, end]` of this range's subnet.
    pub fn contains(&self, addr: &IpAddr) -> bool {
        let addr = ipnet::canonical(*addr);
        if !self.subnet.contains(&addr) {
            return false;
        }
        let v = ipnet::to_u128(addr);
        v >= ipnet::to_u128(self.start) && v <= ipnet::to_u128(self.end)
    }

    /// Whether two ranges share an allocatable address.
    pub fn overlaps(&self, other: &Range) -> bool {
        self.family() == other.family()
            && (self.contains(&other.start)
                || self.contains(&other.end)
                || other.contains(&self.start)
                || other.contains(&self.end))
    }

    /// How many addresses can be allocated (the gateway excluded), saturating.
    pub fn capacity(&self) -> u128 {
        let size = (ipnet::to_u128(self.end) - ipnet::to_u128(self.start)).saturating_add(1);
        if self.contains(&self.gateway) {
            size - 1
        } else {
            size
        }
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

/// A range set: disjoint ranges of one family; one address is allocated per set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeSet(pub Vec<Range>);

impl RangeSet {
    /// Validate a set: not empty, one family, no overlaps.
    pub fn new(ranges: Vec<Range>) -> Result<RangeSet, String> {
        let Some(first) = ranges.first() else {
            return Err("empty range set".to_string());
        };
        let family = first.family();
        if ranges.iter().any(|r| r.family() != family) {
            return Err("mixed address families".to_string());
        }
        for (i, a) in ranges.iter().enumerate() {
            for b in &ranges[i + 1..] {
                if a.overlaps(b) {
                    return Err(format!("subnets {a} and {b} overlap"));
                }
            }
        }
        Ok(RangeSet(ranges))
    }

    /// The family of the set.
    pub fn family(&self) -> Family {
        self.0.first().map_or(Family::V4, Range::family)
    }

    /// The range holding `addr`, if any.
    pub fn range_for(&self, addr: &IpAddr) -> Option<&Range> {
        self.0.iter().find(|r| r.contains(addr))
    }

    /// Whether any range of the set holds `addr`.
    pub fn contains(&self, addr: &IpAddr) -> bool {
        self.range_for(addr).is_some()
    }

    /// Whether any range of this set overlaps any range of `other`.
    pub fn overlaps(&self, other: &RangeSet) -> bool {
        self.0.iter().any(|a| other.0.iter().any(|b| a.overlaps(b)))
    }

    /// Total allocatable addresses, saturating at `u128::MAX`.
    pub fn capacity(&self) -> u128 {
        self.0.iter().fold(0u128, |acc, r| acc.saturating_add(r.capacity()))
    }

    /// The round-robin walk: starts after `last` when `last` lies in the set, otherwise at the
    /// first range's start; visits every address of every range once, cycling from a range's
    /// end to the next range's start, skipping each range's gateway.
    pub fn walk(&self, last: Option<IpAddr>) -> Walk<'_> {
        let position = last.and_then(|ip| {
            self.0
                .iter()
                .position(|r| r.contains(&ip))
                .map(|i| (i, ipnet::to_u128(ip)))
        });
        Walk {
            set: self,
            cursor: position,
            first: None,
            done: self.0.is_empty(),
        }
    }
}

impl fmt::Display for RangeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(Range::to_string).collect();
        f.write_str(&parts.join(","))
    }
}

/// Iterator returned by [`RangeSet::walk`]: yields `(range index, address)`.
#[derive(Debug)]
pub struct Walk<'a> {
    set: &'a RangeSet,
    /// The last position yielded (or the starting point, exclusive).
    cursor: Option<(usize, u128)>,
    /// The first position yielded; reaching it again ends the walk.
    first: Option<(usize, u128)>,
    done: bool,
}

impl Walk<'_> {
    fn advance(&self, from: Option<(usize, u128)>) -> (usize, u128) {
        let ranges = &self.set.0;
        match from {
            None => (0, ipnet::to_u128(ranges[0].start)),
            Some((i, v)) if v >= ipnet::to_u128(ranges[i].end) => {
                let next = (i + 1) % ranges.len();
                (next, ipnet::to_u128(ranges[next].start))
            }
            Some((i, v)) => (i, v + 1),
        }
    }
}

impl Iterator for Walk<'_> {
    type Item = (usize, IpAddr);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            let pos = self.advance(self.cursor);
            match self.first {
                None => self.first = Some(pos),
                Some(first) if first == pos => {
                    self.done = true;
                    return None;
                }
                Some(_) => {}
            }
            self.cursor = Some(pos);
            let range = &self.set.0[pos.0];
            let addr = ipnet::from_u128(range.family(), pos.1);
            if addr != range.gateway {
                return Some((pos.0, addr));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(subnet: &str, start: Option<&str>, end: Option<&str>) -> Range {
        Range::new(
            subnet.parse().unwrap(),
            start.map(|s| s.parse().unwrap()),
            end.map(|s| s.parse().unwrap()),
            None,
        )
        .unwrap()
    }

    #[test]
    fn defaults() {
        let r = range("10.1.2.0/24", None, None);
        assert_eq!(r.start.to_string(), "10.1.2.1");
        assert_eq!(r.end.to_string(), "10.1.2.254");
        assert_eq!(r.gateway.to_string(), "10.1.2.1");
        assert_eq!(r.capacity(), 253);
        let v6 = range("2001:db8::/120", None, None);
        assert_eq!(v6.end.to_string(), "2001:db8::ff");
    }

    #[test]
    fn rejects_bad_ranges() {
        let bad = |s: &str| Range::new(s.parse().unwrap(), None, None, None).unwrap_err();
        assert!(bad("10.1.2.5/24").contains("host bits"));
        assert!(bad("10.1.2.0/31").contains("too small"));
        assert!(Range::new(
            "10.1.2.0/24".parse().unwrap(),
            Some("10.1.3.5".parse().unwrap()),
            None,
            None
        )
        .unwrap_err()
        .contains("not in network"));
        assert!(Range::new(
            "10.1.2.0/24".parse().unwrap(),
            Some("10.1.2.100".parse().unwrap()),
            Some("10.1.2.50".parse().unwrap()),
            None
        )
        .unwrap_err()
        .contains("before start"));
    }

    #[test]
    fn walk_round_robin_and_wraps_across_ranges() {
        let set = RangeSet::new(vec![
            range("10.0.0.0/29", Some("10.0.0.5"), None),
            range("10.0.1.0/29", None, Some("10.0.1.3")),
        ])
        .unwrap();
        let all: Vec<String> = set.walk(None).map(|(_, ip)| ip.to_string()).collect();
        assert_eq!(all, ["10.0.0.5", "10.0.0.6", "10.0.1.2", "10.0.1.3"]);
        let after: Vec<String> = set
            .walk(Some("10.0.0.6".parse().unwrap()))
            .map(|(_, ip)| ip.to_string())
            .collect();
        assert_eq!(after, ["10.0.1.2", "10.0.1.3", "10.0.0.5", "10.0.0.6"]);
        assert_eq!(set.capacity(), 4);
    }
}
