//! The custom string formats the CNI schemas use: `semver`, `ip`, `cidr` and `mac`.
//!
//! Each check takes any string and answers yes or no; none of them can panic.

use std::net::IpAddr;

/// A format check: does this string have the format?
pub(super) type Check = fn(&str) -> bool;

/// The formats registered with every validator, by the name the schemas use.
pub(super) const ALL: &[(&str, Check)] = &[("semver", is_semver), ("ip", is_ip), ("cidr", is_cidr), ("mac", is_mac)];

/// A Semantic Versioning 2.0.0 version: `MAJOR.MINOR.PATCH`, optionally followed by
/// `-prerelease` and `+build`. Numeric identifiers have no leading zeros.
pub fn is_semver(s: &str) -> bool {
    let (rest, build) = match s.split_once('+') {
        Some((rest, build)) => (rest, Some(build)),
        None => (s, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (rest, None),
    };
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() != 3 || !parts.iter().all(|p| is_numeric_identifier(p)) {
        return false;
    }
    let pre_ok = pre.is_none_or(|pre| {
        pre.split('.').all(|id| {
            is_alphanumeric_identifier(id) && (!id.bytes().all(|b| b.is_ascii_digit()) || is_numeric_identifier(id))
        })
    });
    let build_ok = build.is_none_or(|build| build.split('.').all(is_alphanumeric_identifier));
    pre_ok && build_ok
}

/// Digits only, and no leading zero unless the number is zero itself.
fn is_numeric_identifier(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
}

/// Non-empty, made of ASCII letters, digits and hyphens.
fn is_alphanumeric_identifier(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// An IPv4 address in dotted-quad form (no leading zeros) or an IPv6 address (no zone).
pub fn is_ip(s: &str) -> bool {
    s.parse::<IpAddr>().is_ok()
}

/// An address with prefix length, `address/prefix`: the prefix is decimal without leading
/// zeros and at most 32 (IPv4) or 128 (IPv6). Host bits may be set.
pub fn is_cidr(s: &str) -> bool {
    let Some((addr, prefix)) = s.rsplit_once('/') else {
        return false;
    };
    let Ok(addr) = addr.parse::<IpAddr>() else {
        return false;
    };
    if !is_numeric_identifier(prefix) || prefix.len() > 3 {
        return false;
    }
    let Ok(prefix) = prefix.parse::<u8>() else {
        return false;
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    prefix <= max
}

/// A hardware address as colon-separated pairs of hex digits, 6, 8 or 20 octets long
/// (Ethernet, EUI-64/InfiniBand GUID, IP-over-InfiniBand), the form Go's
/// `net.HardwareAddr.String()` prints.
pub fn is_mac(s: &str) -> bool {
    let octets: Vec<&str> = s.split(':').collect();
    matches!(octets.len(), 6 | 8 | 20)
        && octets
            .iter()
            .all(|o| o.len() == 2 && o.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver_accepts_spec_versions_and_full_grammar() {
        for ok in [
            "0.1.0",
            "1.0.0",
            "1.1.0",
            "10.20.30",
            "1.0.0-rc.1",
            "1.0.0-alpha+001",
            "1.0.0+exp.sha.5114f85",
        ] {
            assert!(is_semver(ok), "{ok}");
        }
        for bad in [
            "",
            "1",
            "1.0",
            "1.0.0.0",
            "01.0.0",
            "1.00.0",
            "v1.0.0",
            "1.0.0-",
            "1.0.0-01",
            "1.0.0+",
            "1.0.0-a..b",
            " 1.0.0",
            "1.0.x",
        ] {
            assert!(!is_semver(bad), "{bad}");
        }
    }

    #[test]
    fn ip_accepts_both_families_without_prefix() {
        for ok in ["10.1.0.1", "0.0.0.0", "::", "fd00::1", "::ffff:10.0.0.1"] {
            assert!(is_ip(ok), "{ok}");
        }
        for bad in [
            "",
            "10.1.0.256",
            "010.1.0.1",
            "10.1.0",
            "10.1.0.1/24",
            "fe80::1%eth0",
            "fd00:::1",
            "host",
        ] {
            assert!(!is_ip(bad), "{bad}");
        }
    }

    #[test]
    fn cidr_needs_prefix_in_range() {
        for ok in [
            "10.1.0.5/16",
            "0.0.0.0/0",
            "10.0.0.1/32",
            "::/0",
            "fd00::5/64",
            "::1/128",
        ] {
            assert!(is_cidr(ok), "{ok}");
        }
        for bad in [
            "10.1.0.5",
            "10.1.0.5/33",
            "10.1.0.5/",
            "10.1.0.5/016",
            "10.1.0.5/-1",
            "fd00::/129",
            "fd00::/1000",
            "10.1.0.300/24",
            "/24",
            "10.1.0.5/24/1",
        ] {
            assert!(!is_cidr(bad), "{bad}");
        }
    }

    #[test]
    fn mac_needs_6_8_or_20_colon_separated_octets() {
        let twenty = vec!["a0"; 20].join(":");
        for ok in [
            "00:00:00:00:00:00",
            "c2:11:22:33:44:55",
            "C2:11:22:33:44:5F",
            "c2:11:22:33:44:55:66:77",
            twenty.as_str(),
        ] {
            assert!(is_mac(ok), "{ok}");
        }
        for bad in [
            "",
            "c2:11:22:33:44",
            "c2-11-22-33-44-55",
            "c211.2233.4455",
            "c2:11:22:33:44:5",
            "c2:11:22:33:44:555",
            "c2:11:22:33:44:55:66",
            "g2:11:22:33:44:55",
        ] {
            assert!(!is_mac(bad), "{bad}");
        }
    }
}
