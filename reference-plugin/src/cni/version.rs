//! Spec version strings: parsing, ordering, the versions the plugins support and the shape of
//! result each version uses.

use std::cmp::Ordering;
use std::fmt;

/// Every spec version the reference plugins implement, oldest first.
pub const SUPPORTED_VERSIONS: [&str; 7] = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// The newest spec version implemented.
pub const LATEST: &str = "1.1.0";

/// The version assumed when a configuration has no `cniVersion` (the Go library's choice).
pub const DEFAULT_WHEN_MISSING: &str = "0.1.0";

/// A parsed `major.minor.patch` version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct SpecVersion {
    /// Major number.
    pub major: u64,
    /// Minor number.
    pub minor: u64,
    /// Patch number.
    pub patch: u64,
}

impl SpecVersion {
    /// A version from its three numbers.
    pub const fn new(major: u64, minor: u64, patch: u64) -> Self {
        SpecVersion { major, minor, patch }
    }

    /// Parse like the Go library: `""` is 0.1.0, up to three dot-separated integers, missing
    /// parts are 0, and four or more parts are an error.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Ok(SpecVersion::new(0, 1, 0));
        }
        let parts: Vec<&str> = text.split('.').collect();
        if parts.len() > 3 {
            return Err(format!(
                "invalid version {text:?}: only major, minor and patch are allowed"
            ));
        }
        let mut numbers = [0u64; 3];
        for (slot, part) in numbers.iter_mut().zip(&parts) {
            *slot = part
                .parse::<u64>()
                .map_err(|_| format!("invalid version {text:?}: {part:?} is not a number"))?;
        }
        Ok(SpecVersion::new(numbers[0], numbers[1], numbers[2]))
    }

    /// Compare a version string with another, both parsed with [`SpecVersion::parse`].
    pub fn cmp_str(a: &str, b: &str) -> Result<Ordering, String> {
        Ok(Self::parse(a)?.cmp(&Self::parse(b)?))
    }
}

impl fmt::Display for SpecVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Whether `version` is, character for character, one of [`SUPPORTED_VERSIONS`] (the rule skel
/// uses for ADD and DEL).
pub fn is_supported(version: &str) -> bool {
    SUPPORTED_VERSIONS.contains(&version)
}

/// The shape a result takes in a given version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultFormat {
    /// 0.1.0 and 0.2.0: `ip4` / `ip6` blocks.
    Legacy,
    /// 0.3.0, 0.3.1 and 0.4.0: `interfaces`, `ips[]` with `version`.
    V03,
    /// 1.0.0: `ips[]` without `version`.
    V100,
    /// 1.1.0 and later 1.x: 1.0.0 plus the interface and route extras.
    V110,
}

impl ResultFormat {
    /// The result format for a version string (`""` means 0.1.0).
    pub fn for_version(version: &str) -> Result<Self, String> {
        let v = SpecVersion::parse(version)?;
        Ok(if v < SpecVersion::new(0, 3, 0) {
            ResultFormat::Legacy
        } else if v < SpecVersion::new(1, 0, 0) {
            ResultFormat::V03
        } else if v < SpecVersion::new(1, 1, 0) {
            ResultFormat::V100
        } else {
            ResultFormat::V110
        })
    }
}

/// The VERSION answer: `{"cniVersion": <echo>, "supportedVersions": [...]}` plus a newline.
///
/// The spec says the answer echoes the request's `cniVersion`; skel prints its library version
/// instead. We follow the spec, and fall back to [`LATEST`] when the request carried none.
pub fn version_answer(requested: Option<&str>) -> String {
    #[derive(serde::Serialize)]
    struct Wire<'a> {
        #[serde(rename = "cniVersion")]
        cni_version: &'a str,
        #[serde(rename = "supportedVersions")]
        supported_versions: &'a [&'a str],
    }
    let wire = Wire {
        cni_version: requested.unwrap_or(LATEST),
        supported_versions: &SUPPORTED_VERSIONS,
    };
    let mut text = serde_json::to_string(&wire).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_go() {
        assert_eq!(SpecVersion::parse("").unwrap(), SpecVersion::new(0, 1, 0));
        assert_eq!(SpecVersion::parse("1.0").unwrap(), SpecVersion::new(1, 0, 0));
        assert_eq!(SpecVersion::parse("0.3.1").unwrap(), SpecVersion::new(0, 3, 1));
        assert!(SpecVersion::parse("1.0.0.0").is_err());
        assert!(SpecVersion::parse("abc").is_err());
    }

    #[test]
    fn formats() {
        assert_eq!(ResultFormat::for_version("0.2.0").unwrap(), ResultFormat::Legacy);
        assert_eq!(ResultFormat::for_version("0.4.0").unwrap(), ResultFormat::V03);
        assert_eq!(ResultFormat::for_version("1.0.0").unwrap(), ResultFormat::V100);
        assert_eq!(ResultFormat::for_version("1.1.0").unwrap(), ResultFormat::V110);
    }

    #[test]
    fn version_answer_echoes() {
        let text = version_answer(Some("0.4.0"));
        assert!(text.starts_with("{\"cniVersion\":\"0.4.0\",\"supportedVersions\":[\"0.1.0\""));
        assert!(text.ends_with("\"1.1.0\"]}\n"));
    }
}
