//! The `CNI_*` environment of one invocation, read and validated in the order the Go `skel`
//! package uses, so that the reference plugins fail with the same codes:
//!
//! 1. the variables are scanned in the order `CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS,
//!    CNI_IFNAME, CNI_ARGS, CNI_PATH, CNI_NETNS_OVERRIDE`; a variable the verb requires that is
//!    present but malformed fails at once (code 4);
//! 2. then all required variables that are missing are reported together (code 4).
//!
//! `CNI_COMMAND` being empty is handled by the caller (the dispatcher prints the "about" text).

use super::error::{CniError, INVALID_ENVIRONMENT_VARIABLES};
use std::path::PathBuf;

/// The operation requested by `CNI_COMMAND`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `ADD`.
    Add,
    /// `DEL`.
    Del,
    /// `CHECK` (0.4.0+).
    Check,
    /// `GC` (1.1.0+).
    Gc,
    /// `STATUS` (1.1.0+).
    Status,
    /// `VERSION`.
    Version,
    /// Anything else; rejected after the configuration was validated, like skel does.
    Unknown(String),
}

impl Command {
    /// The verb for a `CNI_COMMAND` value (exact, case-sensitive).
    pub fn parse(text: &str) -> Command {
        match text {
            "ADD" => Command::Add,
            "DEL" => Command::Del,
            "CHECK" => Command::Check,
            "GC" => Command::Gc,
            "STATUS" => Command::Status,
            "VERSION" => Command::Version,
            other => Command::Unknown(other.to_string()),
        }
    }

    /// The verb as written in `CNI_COMMAND`.
    pub fn as_str(&self) -> &str {
        match self {
            Command::Add => "ADD",
            Command::Del => "DEL",
            Command::Check => "CHECK",
            Command::Gc => "GC",
            Command::Status => "STATUS",
            Command::Version => "VERSION",
            Command::Unknown(s) => s,
        }
    }

    fn is_attachment_verb(&self) -> bool {
        matches!(self, Command::Add | Command::Del | Command::Check)
    }
}

/// The environment of one invocation.
#[derive(Debug, Clone)]
pub struct Environment {
    /// `CNI_COMMAND`.
    pub command: Command,
    /// `CNI_CONTAINERID` (may be empty for verbs that do not use it).
    pub container_id: String,
    /// `CNI_NETNS` (may be empty).
    pub netns: String,
    /// `CNI_IFNAME` (may be empty for verbs that do not use it).
    pub ifname: String,
    /// `CNI_ARGS`, unparsed.
    pub args: String,
    /// `CNI_PATH`, unsplit.
    pub path: String,
    /// `CNI_NETNS_OVERRIDE` is `1` or `true` (any case).
    pub netns_override: bool,
}

impl Environment {
    /// The directories of `CNI_PATH`, in order, empty entries skipped.
    pub fn path_dirs(&self) -> Vec<PathBuf> {
        self.path
            .split(':')
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .collect()
    }

    /// Read the environment through `lookup` (normally `std::env::var`). Returns `Ok(None)` when
    /// `CNI_COMMAND` is empty or unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Option<Environment>, CniError> {
        let get = |name: &str| lookup(name).unwrap_or_default();
        let command_text = get("CNI_COMMAND");
        if command_text.is_empty() {
            return Ok(None);
        }
        let command = Command::parse(&command_text);
        let attach = command.is_attachment_verb();
        let needs_path = matches!(
            command,
            Command::Add | Command::Del | Command::Check | Command::Gc | Command::Status
        );

        let env = Environment {
            container_id: get("CNI_CONTAINERID"),
            netns: get("CNI_NETNS"),
            ifname: get("CNI_IFNAME"),
            args: get("CNI_ARGS"),
            path: get("CNI_PATH"),
            netns_override: {
                let v = get("CNI_NETNS_OVERRIDE").to_ascii_lowercase();
                v == "1" || v == "true"
            },
            command,
        };

        let required: [(&str, &str, bool); 5] = [
            ("CNI_CONTAINERID", &env.container_id, attach),
            (
                "CNI_NETNS",
                &env.netns,
                matches!(env.command, Command::Add | Command::Check),
            ),
            ("CNI_IFNAME", &env.ifname, attach),
            ("CNI_ARGS", &env.args, false),
            ("CNI_PATH", &env.path, needs_path),
        ];
        let mut missing = Vec::new();
        for (name, value, is_required) in required {
            if !is_required {
                continue;
            }
            if value.is_empty() {
                missing.push(name);
                continue;
            }
            match name {
                "CNI_CONTAINERID" => validate_container_id(value)?,
                "CNI_IFNAME" => validate_interface_name(value)?,
                _ => {}
            }
        }
        if !missing.is_empty() {
            return Err(CniError::new(
                INVALID_ENVIRONMENT_VARIABLES,
                format!("required env variables [{}] missing", missing.join(",")),
            ));
        }
        Ok(Some(env))
    }
}

/// Whether `text` matches `^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`, the pattern for container IDs and
/// network names.
pub fn is_valid_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphanumeric() => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Container ID rule (code 4 on failure).
pub fn validate_container_id(id: &str) -> Result<(), CniError> {
    if id.is_empty() {
        return Err(CniError::new(INVALID_ENVIRONMENT_VARIABLES, "missing containerID"));
    }
    if !is_valid_identifier(id) {
        return Err(CniError::with_details(
            INVALID_ENVIRONMENT_VARIABLES,
            "invalid characters in containerID",
            id,
        ));
    }
    Ok(())
}

/// Interface name rules (code 4 on failure): not empty, at most 15 bytes, not `.` or `..`, and
/// no `/`, `:` or whitespace.
pub fn validate_interface_name(name: &str) -> Result<(), CniError> {
    let fail = |msg: &str, details: &str| Err(CniError::with_details(INVALID_ENVIRONMENT_VARIABLES, msg, details));
    if name.is_empty() {
        return fail("interface name is empty", "");
    }
    if name.len() > 15 {
        return fail(
            "interface name is too long",
            "interface name should be less than 16 characters",
        );
    }
    if name == "." || name == ".." {
        return fail("interface name is . or ..", "");
    }
    if name.chars().any(|c| c == '/' || c == ':' || c.is_whitespace()) {
        return fail("interface name contains / or : or whitespace characters", "");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> Result<Option<Environment>, CniError> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Environment::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn missing_vars_are_listed_in_scan_order() {
        let err = env(&[("CNI_COMMAND", "ADD"), ("CNI_CONTAINERID", "abc")]).unwrap_err();
        assert_eq!(err.code, 4);
        assert_eq!(
            err.msg,
            "required env variables [CNI_NETNS,CNI_IFNAME,CNI_PATH] missing"
        );
    }

    #[test]
    fn invalid_value_fails_before_missing_ones() {
        let err = env(&[("CNI_COMMAND", "ADD"), ("CNI_IFNAME", "a/b")]).unwrap_err();
        assert_eq!(err.msg, "interface name contains / or : or whitespace characters");
        let err = env(&[("CNI_COMMAND", "DEL"), ("CNI_CONTAINERID", "-x")]).unwrap_err();
        assert_eq!(err.msg, "invalid characters in containerID");
    }

    #[test]
    fn del_does_not_need_netns_and_version_needs_nothing() {
        let ok = env(&[
            ("CNI_COMMAND", "DEL"),
            ("CNI_CONTAINERID", "abc"),
            ("CNI_IFNAME", "eth0"),
            ("CNI_PATH", "/x"),
        ]);
        assert!(ok.unwrap().is_some());
        assert!(env(&[("CNI_COMMAND", "VERSION")]).unwrap().is_some());
        assert!(env(&[]).unwrap().is_none());
    }

    #[test]
    fn interface_names() {
        assert!(validate_interface_name("eth0").is_ok());
        assert!(validate_interface_name("0123456789abcde").is_ok());
        assert!(validate_interface_name("0123456789abcdef").is_err());
        assert!(validate_interface_name("..").is_err());
        assert!(validate_interface_name("a b").is_err());
    }
}
