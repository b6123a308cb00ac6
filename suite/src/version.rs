//! CNI spec versions: parsing, ordering, and what each version allows.

use std::fmt;
use std::str::FromStr;

/// A spec version `major.minor.patch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SpecVersion(pub u32, pub u32, pub u32);

/// Every version the spec has released, oldest first.
pub const RELEASED: &[SpecVersion] = &[
    SpecVersion(0, 1, 0),
    SpecVersion(0, 2, 0),
    SpecVersion(0, 3, 0),
    SpecVersion(0, 3, 1),
    SpecVersion(0, 4, 0),
    SpecVersion(1, 0, 0),
    SpecVersion(1, 1, 0),
];

/// Error for an unparseable version string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a version of the form MAJOR.MINOR.PATCH")]
pub struct BadVersion(pub String);

impl FromStr for SpecVersion {
    type Err = BadVersion;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadVersion(s.to_string());
        let parts: Vec<&str> = s.split('.').collect();
        if parts.len() != 3 {
            return Err(bad());
        }
        let num = |p: &str| -> Result<u32, BadVersion> {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || (p.len() > 1 && p.starts_with('0')) {
                return Err(bad());
            }
            p.parse().map_err(|_| bad())
        };
        Ok(SpecVersion(num(parts[0])?, num(parts[1])?, num(parts[2])?))
    }
}

impl fmt::Display for SpecVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

impl SpecVersion {
    /// True when the spec defines this exact version.
    pub fn is_released(&self) -> bool {
        RELEASED.contains(self)
    }
    /// CHECK exists (0.4.0+).
    pub fn has_check(&self) -> bool {
        *self >= SpecVersion(0, 4, 0)
    }
    /// GC and STATUS exist (1.1.0+).
    pub fn has_gc_status(&self) -> bool {
        *self >= SpecVersion(1, 1, 0)
    }
    /// Results use `ip4`/`ip6` blocks (0.1.0, 0.2.0).
    pub fn legacy_result(&self) -> bool {
        *self < SpecVersion(0, 3, 0)
    }
    /// Results carry `interfaces` and `ips` with `version` (0.3.0 .. 0.4.0).
    pub fn ips_have_version(&self) -> bool {
        !self.legacy_result() && *self < SpecVersion(1, 0, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_orders_and_rejects() {
        let v: SpecVersion = "0.3.1".parse().unwrap();
        assert_eq!(v, SpecVersion(0, 3, 1));
        assert!(v < "0.4.0".parse().unwrap());
        assert!("1.1.0".parse::<SpecVersion>().unwrap().has_gc_status());
        for bad in ["1.0", "1.0.0.0", "a.b.c", "01.0.0", "", "1..0"] {
            assert!(bad.parse::<SpecVersion>().is_err(), "{bad}");
        }
    }
}
