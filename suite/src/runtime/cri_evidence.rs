//! What a CRI runtime's scenario left besides the recorder's log: the kubelet stand-in's record
//! (`CNI_CONFORMANCE_CRI_RECORD`, see [`crate::cri::record`]), and whether the runtime under test
//! was declared or detected to be a CRI runtime.

use std::path::Path;

use super::evidence::ScenarioRun;
use crate::cri::record::{self, CriRecord};

/// File name of the record in a scenario's directory.
pub const RECORD_FILE: &str = "cri-record.json";

/// The record of one scenario, index-aligned with the runs.
#[derive(Debug, Clone, Default)]
pub struct CriRun {
    /// The record, when the runtime command wrote one.
    pub record: Option<CriRecord>,
    /// Why a record that is there could not be read.
    pub error: Option<String>,
}

impl CriRun {
    /// Reads the scenario's record file.
    pub fn read(path: &Path) -> CriRun {
        match record::read(path) {
            Ok(record) => CriRun { record, error: None },
            Err(e) => CriRun {
                record: None,
                error: Some(e.to_string()),
            },
        }
    }
}

/// Everything the Kubernetes rules read besides the runs.
#[derive(Debug, Clone, Default)]
pub struct CriContext {
    /// `runtime --cri`: the runtime said it is a CRI runtime.
    pub declared: bool,
    /// One per run.
    pub runs: Vec<CriRun>,
}

/// The keys that mark a Kubernetes pod. `K8S_POD_NAME` alone does not: podman passes it (the
/// container's name) without being a CRI runtime.
pub const POD_ONLY_KEYS: [&str; 3] = ["K8S_POD_NAMESPACE", "K8S_POD_INFRA_CONTAINER_ID", "K8S_POD_UID"];

/// `CNI_ARGS` as key/value pairs, in order.
pub fn cni_args(text: &str) -> Vec<(String, String)> {
    text.split(';')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (p.to_string(), String::new()),
        })
        .collect()
}

impl CriContext {
    /// The record of run `r`.
    pub fn record(&self, r: usize) -> Option<&CriRecord> {
        self.runs.get(r).and_then(|c| c.record.as_ref())
    }

    /// Any scenario has a record.
    pub fn any_record(&self) -> bool {
        self.runs.iter().any(|c| c.record.is_some())
    }

    /// Why the Kubernetes rules do not apply, or `None` when they do: the runtime was declared
    /// a CRI runtime, wrote a CRI record, or passed a pod's `K8S_POD_*` arguments.
    pub fn not_applicable(&self, runs: &[ScenarioRun]) -> Option<String> {
        let k8s_args = runs.iter().flat_map(|r| &r.entries).any(|e| {
            e.var("CNI_ARGS")
                .is_some_and(|a| cni_args(a).iter().any(|(k, _)| POD_ONLY_KEYS.contains(&k.as_str())))
        });
        if self.declared || self.any_record() || k8s_args {
            None
        } else {
            Some(
                "not a CRI runtime: no --cri, no CRI record (CNI_CONFORMANCE_CRI_RECORD) and no \
                 K8S_POD_NAMESPACE, K8S_POD_INFRA_CONTAINER_ID or K8S_POD_UID in CNI_ARGS"
                    .into(),
            )
        }
    }

    /// Why there is no CRI evidence at all, or `None` when some scenario has a record.
    pub fn no_record(&self) -> Option<String> {
        if self.any_record() {
            return None;
        }
        let broken = self.runs.iter().find_map(|c| c.error.clone());
        Some(match broken {
            Some(e) => format!("no readable CRI record: {e}"),
            None => "no CRI record: the runtime command did not write CNI_CONFORMANCE_CRI_RECORD \
                     (run the kubelet stand-in, cni-conformance cri, as the runtime command)"
                .into(),
        })
    }
}
