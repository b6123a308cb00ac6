//! The CNI Error object (spec §5 "Error") and the error codes the reference plugins use.
//!
//! Codes 0–99 are reserved by the spec for well-known errors; the plugins use them only with their
//! documented meaning. Plugin-specific codes start at 100 and are listed here so that a runtime or
//! a person can tell the failures apart.

use std::fmt;

/// Incompatible CNI version.
pub const INCOMPATIBLE_CNI_VERSION: u32 = 1;
/// Unsupported field in the network configuration.
pub const UNSUPPORTED_FIELD: u32 = 2;
/// The container is unknown or does not exist.
pub const UNKNOWN_CONTAINER: u32 = 3;
/// Necessary environment variables are missing or invalid.
pub const INVALID_ENVIRONMENT_VARIABLES: u32 = 4;
/// I/O failure (reading stdin, the on-disk store, ...).
pub const IO_FAILURE: u32 = 5;
/// Content could not be decoded (JSON, version string).
pub const DECODING_FAILURE: u32 = 6;
/// The network configuration failed validation.
pub const INVALID_NETWORK_CONFIG: u32 = 7;
/// `CNI_NETNS` is the plugin's own network namespace (skel's `ErrInvalidNetNS`).
pub const INVALID_NETNS: u32 = 8;
/// A transient condition: the runtime should retry later.
pub const TRY_AGAIN_LATER: u32 = 11;
/// STATUS: the plugin cannot serve ADD requests.
pub const PLUGIN_NOT_AVAILABLE: u32 = 50;
/// STATUS: unavailable, and existing containers may have limited connectivity.
pub const LIMITED_CONNECTIVITY: u32 = 51;
/// Plugin-specific: no address is available (pool exhausted, requested address taken).
pub const ADDRESS_UNAVAILABLE: u32 = 100;
/// Plugin-specific: the attachment already holds an address (a second ADD without DEL).
pub const DUPLICATE_ALLOCATION: u32 = 101;
/// Plugin-specific: CHECK found a resource missing or in the wrong state.
pub const CHECK_FAILED: u32 = 102;
/// Plugin-specific: a kernel operation (netlink, sysctl, nftables) failed.
pub const KERNEL_OPERATION_FAILED: u32 = 103;
/// Plugin-specific: a delegated plugin could not be run or answered garbage.
pub const DELEGATE_FAILED: u32 = 104;
/// Plugin-specific: `CNI_IFNAME` already exists in the container (spec 1.0: ADD MUST fail).
pub const INTERFACE_EXISTS: u32 = 105;
/// Internal error (skel's `ErrInternal`).
pub const INTERNAL: u32 = 999;

/// A CNI Error: printed as JSON on stdout, followed by a non-zero exit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CniError {
    /// The error code (see the constants of this module).
    pub code: u32,
    /// A short message.
    pub msg: String,
    /// Longer details; left out of the JSON when empty.
    pub details: String,
}

impl CniError {
    /// An error with a code and a message.
    pub fn new(code: u32, msg: impl Into<String>) -> Self {
        CniError {
            code,
            msg: msg.into(),
            details: String::new(),
        }
    }

    /// An error with a code, a message and details.
    pub fn with_details(code: u32, msg: impl Into<String>, details: impl Into<String>) -> Self {
        CniError {
            code,
            msg: msg.into(),
            details: details.into(),
        }
    }

    /// Code 7: the network configuration failed validation.
    pub fn config(msg: impl Into<String>) -> Self {
        Self::new(INVALID_NETWORK_CONFIG, msg)
    }

    /// Code 5: an I/O failure.
    pub fn io(msg: impl Into<String>) -> Self {
        Self::new(IO_FAILURE, msg)
    }

    /// Prefix the message with some context, keeping the code.
    pub fn context(mut self, ctx: impl fmt::Display) -> Self {
        self.msg = format!("{ctx}: {}", self.msg);
        self
    }

    /// The JSON document printed on stdout, indented by 4 spaces like the Go plugins.
    ///
    /// `cni_version` is the protocol version in use (spec 1.1 §5); it is left out when the
    /// request's version is not known (for example when stdin was not JSON).
    pub fn to_json(&self, cni_version: Option<&str>) -> String {
        #[derive(serde::Serialize)]
        struct Wire<'a> {
            #[serde(rename = "cniVersion", skip_serializing_if = "Option::is_none")]
            cni_version: Option<&'a str>,
            code: u32,
            msg: &'a str,
            #[serde(skip_serializing_if = "str::is_empty")]
            details: &'a str,
        }
        super::json::to_pretty(&Wire {
            cni_version,
            code: self.code,
            msg: &self.msg,
            details: &self.details,
        })
    }
}

impl fmt::Display for CniError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.details.is_empty() {
            write!(f, "{} (code {})", self.msg, self.code)
        } else {
            write!(f, "{}: {} (code {})", self.msg, self.details, self.code)
        }
    }
}

impl std::error::Error for CniError {}
