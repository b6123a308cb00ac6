//! `CNI_ARGS`: `K=V` pairs joined by `;` (spec §2, CONVENTIONS "CNI_ARGS").
//!
//! Like the Go library: every pair needs exactly one `=`, keys are case-sensitive, and a key the
//! plugin does not know is an error unless `IgnoreUnknown` is `1` or `true` (any case). Errors
//! carry code 4 because the problem is an environment variable.

use super::error::{CniError, INVALID_ENVIRONMENT_VARIABLES};

/// The parsed pairs of `CNI_ARGS` that the plugin knows, in their order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CniArgs {
    pairs: Vec<(String, String)>,
}

impl CniArgs {
    /// Parse `text`, accepting only the keys in `known` (plus `IgnoreUnknown`).
    pub fn parse(text: &str, known: &[&str]) -> Result<CniArgs, CniError> {
        if text.is_empty() {
            return Ok(CniArgs::default());
        }
        let mut pairs = Vec::new();
        let mut unknown = Vec::new();
        let mut ignore_unknown = false;
        for pair in text.split(';') {
            let parts: Vec<&str> = pair.split('=').collect();
            if parts.len() != 2 {
                return Err(CniError::with_details(
                    INVALID_ENVIRONMENT_VARIABLES,
                    format!("CNI_ARGS: invalid pair {pair:?}"),
                    "CNI_ARGS must be K=V pairs joined by ';', and a value cannot contain '='",
                ));
            }
            let (key, value) = (parts[0], parts[1]);
            if key == "IgnoreUnknown" {
                ignore_unknown = parse_bool(value).ok_or_else(|| {
                    CniError::new(
                        INVALID_ENVIRONMENT_VARIABLES,
                        format!("CNI_ARGS: IgnoreUnknown={value:?} is not a boolean"),
                    )
                })?;
            } else if known.contains(&key) {
                pairs.push((key.to_string(), value.to_string()));
            } else {
                unknown.push(pair.to_string());
            }
        }
        if !unknown.is_empty() && !ignore_unknown {
            return Err(CniError::with_details(
                INVALID_ENVIRONMENT_VARIABLES,
                format!("CNI_ARGS: unknown args {unknown:?}"),
                format!("this plugin understands {known:?}; add IgnoreUnknown=1 to CNI_ARGS to ignore other keys"),
            ));
        }
        Ok(CniArgs { pairs })
    }

    /// The last value given for `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// `1`/`0`/`true`/`false` in any case.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "1" | "true" => Some(true),
        "0" | "false" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_and_rejects_unknown() {
        let a = CniArgs::parse("IP=10.0.0.5", &["IP"]).unwrap();
        assert_eq!(a.get("IP"), Some("10.0.0.5"));
        assert_eq!(CniArgs::parse("FOO=1", &["IP"]).unwrap_err().code, 4);
        let b = CniArgs::parse("FOO=1;IgnoreUnknown=TRUE;IP=1.2.3.4", &["IP"]).unwrap();
        assert_eq!(b.get("IP"), Some("1.2.3.4"));
        assert!(CniArgs::parse("IP=a=b", &["IP"]).is_err());
        assert!(CniArgs::parse("IP=1;", &["IP"]).is_err());
        assert!(CniArgs::parse("ip=1", &["IP"]).is_err());
    }
}
