//! The kubelet stand-in: what kubelet does over the CRI for one pod, and nothing else.
//! `Version`, `RunPodSandbox`, `PodSandboxStatus` (the pod IP), `StopPodSandbox`,
//! `RemovePodSandbox`, then a look at what is left (`PodSandboxStatus` must say not found,
//! `ListPodSandbox` must not list it, the netns directory). Every step is written to the
//! [`CriRecord`] as it happens.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::client::{CriClient, CriError};
use super::pod::PodSpec;
use super::record::{AfterRemove, CallRecord, CriRecord, RuntimeVersion};

/// What to do.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The CRI endpoint.
    pub endpoint: String,
    /// Limit for connecting and for each call.
    pub timeout: Duration,
    /// The pod.
    pub pod: PodSpec,
    /// Where to write the record, if anywhere.
    pub record: Option<PathBuf>,
    /// Where runtimes keep named network namespaces.
    pub netns_dir: PathBuf,
}

/// Why the stand-in stopped short.
#[derive(Debug, thiserror::Error)]
pub enum StandInError {
    /// A CRI call failed.
    #[error(transparent)]
    Cri(#[from] CriError),
    /// The runtime refused the pod.
    #[error("the runtime refused the pod {pod}: {source}")]
    Refused {
        /// namespace/name.
        pod: String,
        /// The failed call.
        source: CriError,
    },
    /// The record could not be written.
    #[error("cannot write the CRI record {path}: {source}")]
    Record {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// No async runtime.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

/// What the run observed, and the first error (later steps still run after one, as kubelet
/// still stops and removes a sandbox whose status it could not read).
pub struct Outcome {
    /// The record.
    pub record: CriRecord,
    /// The first failure.
    pub error: Option<StandInError>,
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Names in `dir` (none when it does not exist).
fn netns_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|it| {
            it.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

struct Session<'a> {
    plan: &'a Plan,
    record: CriRecord,
}

impl Session<'_> {
    /// Runs one call, logging it with its times; the record is saved after each call.
    async fn step<T, F>(&mut self, rpc: &str, call: F) -> Result<T, CriError>
    where
        F: Future<Output = Result<T, CriError>>,
    {
        let start_ns = now_ns();
        let result = call.await;
        let (error, not_found) = match &result {
            Ok(_) => (None, false),
            Err(e) => (Some(e.to_string()), e.is_not_found()),
        };
        self.record.calls.push(CallRecord {
            rpc: rpc.into(),
            start_ns,
            end_ns: now_ns(),
            error,
            not_found,
        });
        self.save_quietly();
        result
    }

    fn save_quietly(&self) {
        if let Some(p) = &self.plan.record {
            let _ = self.record.save(p);
        }
    }

    async fn run(&mut self) -> Option<StandInError> {
        let plan = self.plan;
        let mut client = match CriClient::connect(&plan.endpoint, plan.timeout).await {
            Ok(c) => c,
            Err(e) => return Some(e.into()),
        };
        match client.version().await {
            Ok(v) => {
                self.record.runtime = Some(RuntimeVersion {
                    name: v.runtime_name,
                    version: v.runtime_version,
                    api_version: v.runtime_api_version,
                })
            }
            Err(e) => return Some(e.into()),
        }
        self.record.netns_before = netns_names(&plan.netns_dir);
        self.save_quietly();
        let pod = format!("{}/{}", plan.pod.namespace, plan.pod.name);
        let id = match self
            .step("RunPodSandbox", client.run_pod_sandbox(plan.pod.request()))
            .await
        {
            Ok(id) => id,
            Err(source) => return Some(StandInError::Refused { pod, source }),
        };
        self.record.sandbox_id = Some(id.clone());
        let mut first: Option<StandInError> = None;
        match self.step("PodSandboxStatus", client.pod_sandbox_status(&id)).await {
            Ok(status) => {
                let net = status.status.and_then(|s| s.network).unwrap_or_default();
                self.record.pod_ips = std::iter::once(net.ip)
                    .chain(net.additional_ips.into_iter().map(|p| p.ip))
                    .filter(|ip| !ip.is_empty())
                    .collect();
            }
            Err(e) => first = first.or(Some(e.into())),
        }
        if let Err(e) = self.step("StopPodSandbox", client.stop_pod_sandbox(&id)).await {
            first = first.or(Some(e.into()));
        }
        if let Err(e) = self.step("RemovePodSandbox", client.remove_pod_sandbox(&id)).await {
            return first.or(Some(e.into()));
        }
        let mut after = AfterRemove::default();
        match self.step("PodSandboxStatus", client.pod_sandbox_status(&id)).await {
            Err(e) if e.is_not_found() => after.status_not_found = true,
            Err(e) => after.status_answer = Some(e.to_string()),
            Ok(s) => {
                after.status_answer = Some(format!(
                    "the sandbox is still there (state {})",
                    s.status.map_or(-1, |s| s.state)
                ))
            }
        }
        match self.step("ListPodSandbox", client.list_pod_sandbox(&id)).await {
            Ok(ids) => after.listed = ids.contains(&id),
            Err(e) => first = first.or(Some(e.into())),
        }
        after.netns = netns_names(&plan.netns_dir);
        self.record.after_remove = Some(after);
        first
    }
}

/// Runs the plan on a single-threaded tokio runtime made for it (no other mode starts one).
pub fn run(plan: &Plan) -> Outcome {
    let record = CriRecord::new(&plan.endpoint, plan.pod.clone(), &plan.netns_dir.display().to_string());
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            return Outcome {
                record,
                error: Some(StandInError::Runtime(e)),
            }
        }
    };
    let mut session = Session { plan, record };
    let mut error = runtime.block_on(session.run());
    if let Some(p) = &plan.record {
        if let Err(source) = session.record.save(p) {
            error = error.or(Some(StandInError::Record {
                path: p.display().to_string(),
                source,
            }));
        }
    }
    Outcome {
        record: session.record,
        error,
    }
}
