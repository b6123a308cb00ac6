//! The CRI record: what the kubelet stand-in asked a CRI runtime for and what it observed, written
//! as JSON so runtime mode's Kubernetes rules can judge the CNI calls the runtime made against it.
//!
//! The contract (see `docs/runtimes.md`): runtime mode sets [`RECORD_ENV`] to a file path for
//! every scenario; `cni-conformance cri` writes its record there (after every step, so a stand-in
//! that is killed still leaves what it saw). Any other tool may write the same JSON to be judged
//! as a CRI runtime: the format is versioned by [`FORMAT`].

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::pod::PodSpec;

/// Environment variable naming the record file (set by runtime mode for every scenario).
pub const RECORD_ENV: &str = "CNI_CONFORMANCE_CRI_RECORD";
/// The value of the `format` key.
pub const FORMAT: &str = "cni-conformance/cri-record/1";

/// The runtime's answer to `Version`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeVersion {
    /// e.g. `containerd`.
    pub name: String,
    /// e.g. `1.6.20~ds1`.
    pub version: String,
    /// e.g. `v1`.
    pub api_version: String,
}

/// One CRI call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallRecord {
    /// `RunPodSandbox`, `PodSandboxStatus`, `StopPodSandbox`, `RemovePodSandbox`, ...
    pub rpc: String,
    /// Start, nanoseconds since the Unix epoch (the recorder's clock).
    pub start_ns: u64,
    /// End, likewise.
    pub end_ns: u64,
    /// The error, when the call failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The call failed with gRPC `NOT_FOUND`.
    #[serde(default)]
    pub not_found: bool,
}

impl CallRecord {
    /// The call succeeded.
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

/// What the stand-in saw after `RemovePodSandbox` returned.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AfterRemove {
    /// `PodSandboxStatus` of the removed sandbox answered `NOT_FOUND`.
    pub status_not_found: bool,
    /// What it answered otherwise (an error text, or the sandbox's state).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_answer: Option<String>,
    /// `ListPodSandbox` still listed the sandbox.
    pub listed: bool,
    /// Names in the netns directory.
    pub netns: Vec<String>,
}

/// The whole record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CriRecord {
    /// [`FORMAT`].
    pub format: String,
    /// The endpoint.
    pub endpoint: String,
    /// The runtime's `Version` answer, once it came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<RuntimeVersion>,
    /// The pod asked for.
    pub pod: PodSpec,
    /// The sandbox id `RunPodSandbox` returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox_id: Option<String>,
    /// The IPs `PodSandboxStatus` reported (`network.ip`, then `additionalIps`).
    #[serde(default)]
    pub pod_ips: Vec<String>,
    /// Every CRI call in order.
    pub calls: Vec<CallRecord>,
    /// The directory where runtimes keep named network namespaces (listed before and after).
    pub netns_dir: String,
    /// Its names before `RunPodSandbox`.
    #[serde(default)]
    pub netns_before: Vec<String>,
    /// What was seen after `RemovePodSandbox` succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_remove: Option<AfterRemove>,
}

impl CriRecord {
    /// A record with nothing observed yet.
    pub fn new(endpoint: &str, pod: PodSpec, netns_dir: &str) -> CriRecord {
        CriRecord {
            format: FORMAT.into(),
            endpoint: endpoint.into(),
            runtime: None,
            pod,
            sandbox_id: None,
            pod_ips: Vec::new(),
            calls: Vec::new(),
            netns_dir: netns_dir.into(),
            netns_before: Vec::new(),
            after_remove: None,
        }
    }

    /// The last call of `rpc`.
    pub fn call(&self, rpc: &str) -> Option<&CallRecord> {
        self.calls.iter().rev().find(|c| c.rpc == rpc)
    }

    /// The first call of `rpc`.
    pub fn first_call(&self, rpc: &str) -> Option<&CallRecord> {
        self.calls.iter().find(|c| c.rpc == rpc)
    }

    /// The sandbox came up: `RunPodSandbox` succeeded.
    pub fn sandbox_ran(&self) -> bool {
        self.sandbox_id.is_some() && self.call("RunPodSandbox").is_some_and(CallRecord::ok)
    }

    /// Writes the record (in place: the file may be a bind mount).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(path, text)
    }
}

/// Errors reading a record.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// Unreadable.
    #[error("CRI record {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Not a record.
    #[error("CRI record {path}: {problem}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        problem: String,
    },
}

/// Reads a record; `Ok(None)` when the file is missing or empty (no CRI runtime wrote one).
pub fn read(path: &Path) -> Result<Option<CriRecord>, RecordError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(RecordError::Io {
                path: path.display().to_string(),
                source,
            })
        }
    };
    if text.trim().is_empty() {
        return Ok(None);
    }
    let invalid = |problem: String| RecordError::Invalid {
        path: path.display().to_string(),
        problem,
    };
    let record: CriRecord = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    if record.format != FORMAT {
        return Err(invalid(format!("format {:?}, expected {FORMAT:?}", record.format)));
    }
    Ok(Some(record))
}
