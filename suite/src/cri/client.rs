//! A CRI v1 client over gRPC: the five sandbox calls and `Version`, each under a time limit, with
//! errors that say which endpoint and which call.

use std::path::PathBuf;
use std::time::Duration;

use http::uri::PathAndQuery;
use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

use super::proto::{
    Empty, ListPodSandboxRequest, ListPodSandboxResponse, PodSandboxFilter, PodSandboxIdRequest,
    PodSandboxStatusRequest, PodSandboxStatusResponse, RunPodSandboxRequest, RunPodSandboxResponse, VersionRequest,
    VersionResponse,
};

/// The CRI version the stand-in speaks.
pub const CRI_VERSION: &str = "v1";
/// The gRPC service of that version.
const SERVICE: &str = "runtime.v1.RuntimeService";

/// Why a CRI call did not give an answer.
#[derive(Debug, thiserror::Error)]
pub enum CriError {
    /// The endpoint is not a `unix://`, `tcp://` or `http://` address.
    #[error("CRI endpoint {endpoint:?}: {reason}")]
    BadEndpoint {
        /// As given.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Nothing listens there.
    #[error("cannot reach the CRI endpoint {endpoint}: {reason}")]
    Unreachable {
        /// The endpoint.
        endpoint: String,
        /// The OS's or transport's words.
        reason: String,
    },
    /// Something answers, but not CRI v1.
    #[error("the CRI endpoint {endpoint} does not answer CRI {CRI_VERSION} ({detail})")]
    UnknownVersion {
        /// The endpoint.
        endpoint: String,
        /// What it answered.
        detail: String,
    },
    /// No answer in time.
    #[error("{rpc} got no answer from {endpoint} within {secs} s")]
    Timeout {
        /// The call.
        rpc: &'static str,
        /// The endpoint.
        endpoint: String,
        /// The limit.
        secs: f64,
    },
    /// The runtime answered with an error status.
    #[error("{rpc} failed: {message} (gRPC {code:?})")]
    Rpc {
        /// The call.
        rpc: &'static str,
        /// The status code.
        code: tonic::Code,
        /// The status message and its causes.
        message: String,
    },
}

impl CriError {
    /// The runtime answered "not found".
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            CriError::Rpc {
                code: tonic::Code::NotFound,
                ..
            }
        )
    }
}

/// Where the endpoint is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Address {
    /// A unix socket.
    Unix(PathBuf),
    /// `http://host:port`.
    Http(String),
}

fn parse_endpoint(endpoint: &str) -> Result<Address, CriError> {
    let bad = |reason: &str| CriError::BadEndpoint {
        endpoint: endpoint.to_string(),
        reason: reason.to_string(),
    };
    if let Some(path) = endpoint.strip_prefix("unix://") {
        if !path.starts_with('/') {
            return Err(bad("a unix endpoint needs an absolute path (unix:///run/.../x.sock)"));
        }
        return Ok(Address::Unix(PathBuf::from(path)));
    }
    if endpoint.starts_with('/') {
        return Ok(Address::Unix(PathBuf::from(endpoint)));
    }
    for scheme in ["tcp://", "http://"] {
        if let Some(rest) = endpoint.strip_prefix(scheme) {
            if rest.is_empty() {
                return Err(bad("no host:port"));
            }
            return Ok(Address::Http(format!("http://{rest}")));
        }
    }
    Err(bad(
        "expected unix:///path/to.sock, tcp://host:port or http://host:port",
    ))
}

/// An error and its causes on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text = format!("{text}: {s_text}");
        }
        cur = s.source();
    }
    text
}

/// A gRPC status as its message and causes on one line (tonic's own Display adds metadata).
fn status_text(status: &tonic::Status) -> String {
    let mut text = status.message().to_string();
    let mut cur = std::error::Error::source(status);
    while let Some(s) = cur {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text = format!("{text}: {s_text}");
        }
        cur = s.source();
    }
    text
}

/// A connected CRI v1 runtime service client.
pub struct CriClient {
    grpc: tonic::client::Grpc<Channel>,
    endpoint: String,
    timeout: Duration,
}

impl CriClient {
    /// Connects to `endpoint`; every later call is limited to `timeout`.
    pub async fn connect(endpoint: &str, timeout: Duration) -> Result<Self, CriError> {
        let unreachable = |reason: String| CriError::Unreachable {
            endpoint: endpoint.to_string(),
            reason,
        };
        let channel = match parse_endpoint(endpoint)? {
            Address::Unix(path) => {
                if !path.exists() {
                    return Err(unreachable(format!("{} does not exist", path.display())));
                }
                // The URI is required by the API and unused: the connector dials the socket.
                let ep = Endpoint::from_static("http://cri.invalid")
                    .connect_timeout(timeout)
                    .timeout(timeout);
                let dial = tower::service_fn(move |_: Uri| {
                    let path = path.clone();
                    async move { tokio::net::UnixStream::connect(path).await.map(TokioIo::new) }
                });
                tokio::time::timeout(timeout, ep.connect_with_connector(dial))
                    .await
                    .map_err(|_| unreachable("connecting timed out".into()))?
                    .map_err(|e| unreachable(chain(&e)))?
            }
            Address::Http(uri) => {
                let ep = Endpoint::from_shared(uri.clone())
                    .map_err(|e| CriError::BadEndpoint {
                        endpoint: endpoint.to_string(),
                        reason: chain(&e),
                    })?
                    .connect_timeout(timeout)
                    .timeout(timeout);
                tokio::time::timeout(timeout, ep.connect())
                    .await
                    .map_err(|_| unreachable("connecting timed out".into()))?
                    .map_err(|e| unreachable(chain(&e)))?
            }
        };
        Ok(CriClient {
            grpc: tonic::client::Grpc::new(channel),
            endpoint: endpoint.to_string(),
            timeout,
        })
    }

    /// One unary call of the runtime service.
    async fn call<Req, Resp>(&mut self, rpc: &'static str, request: Req) -> Result<Resp, CriError>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        let path = PathAndQuery::try_from(format!("/{SERVICE}/{rpc}")).map_err(|e| CriError::Rpc {
            rpc,
            code: tonic::Code::Internal,
            message: e.to_string(),
        })?;
        let grpc = &mut self.grpc;
        let exchange = async move {
            grpc.ready().await.map_err(|e| tonic::Status::unavailable(chain(&e)))?;
            let codec = tonic::codec::ProstCodec::<Req, Resp>::default();
            grpc.unary(tonic::Request::new(request), path, codec).await
        };
        let timeout = || CriError::Timeout {
            rpc,
            endpoint: self.endpoint.clone(),
            secs: self.timeout.as_secs_f64(),
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Err(_) => Err(timeout()),
            // The channel's own limit ends the call this way.
            Ok(Err(status)) if status.code() == tonic::Code::Cancelled && status.message().contains("Timeout") => {
                Err(timeout())
            }
            Ok(Err(status)) => Err(CriError::Rpc {
                rpc,
                code: status.code(),
                message: status_text(&status),
            }),
            Ok(Ok(response)) => Ok(response.into_inner()),
        }
    }

    /// `Version`: fails with [`CriError::UnknownVersion`] unless the endpoint speaks CRI v1.
    pub async fn version(&mut self) -> Result<VersionResponse, CriError> {
        let unknown = |endpoint: &str, detail: String| CriError::UnknownVersion {
            endpoint: endpoint.to_string(),
            detail,
        };
        let request = VersionRequest {
            version: CRI_VERSION.into(),
        };
        match self.call::<_, VersionResponse>("Version", request).await {
            Ok(v) if v.runtime_api_version == CRI_VERSION => Ok(v),
            Ok(v) => Err(unknown(
                &self.endpoint,
                format!("it reports API version {:?}", v.runtime_api_version),
            )),
            Err(CriError::Rpc {
                code: tonic::Code::Unimplemented,
                message,
                ..
            }) => Err(unknown(
                &self.endpoint,
                format!("{SERVICE}/Version is unimplemented: {message}"),
            )),
            Err(CriError::Rpc { message, .. }) => Err(CriError::Unreachable {
                endpoint: self.endpoint.clone(),
                reason: format!("Version: {message}"),
            }),
            Err(e) => Err(e),
        }
    }

    /// `RunPodSandbox`: the sandbox id.
    pub async fn run_pod_sandbox(&mut self, request: RunPodSandboxRequest) -> Result<String, CriError> {
        let r: RunPodSandboxResponse = self.call("RunPodSandbox", request).await?;
        Ok(r.pod_sandbox_id)
    }

    /// `PodSandboxStatus`.
    pub async fn pod_sandbox_status(&mut self, id: &str) -> Result<PodSandboxStatusResponse, CriError> {
        let request = PodSandboxStatusRequest {
            pod_sandbox_id: id.to_string(),
            verbose: false,
        };
        self.call("PodSandboxStatus", request).await
    }

    /// `StopPodSandbox`.
    pub async fn stop_pod_sandbox(&mut self, id: &str) -> Result<(), CriError> {
        let request = PodSandboxIdRequest {
            pod_sandbox_id: id.to_string(),
        };
        self.call::<_, Empty>("StopPodSandbox", request).await.map(|_| ())
    }

    /// `RemovePodSandbox`.
    pub async fn remove_pod_sandbox(&mut self, id: &str) -> Result<(), CriError> {
        let request = PodSandboxIdRequest {
            pod_sandbox_id: id.to_string(),
        };
        self.call::<_, Empty>("RemovePodSandbox", request).await.map(|_| ())
    }

    /// `ListPodSandbox` filtered by id: the ids listed.
    pub async fn list_pod_sandbox(&mut self, id: &str) -> Result<Vec<String>, CriError> {
        let request = ListPodSandboxRequest {
            filter: Some(PodSandboxFilter { id: id.to_string() }),
        };
        let r: ListPodSandboxResponse = self.call("ListPodSandbox", request).await?;
        Ok(r.items.into_iter().map(|p| p.id).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_like_crictl_takes_them() {
        assert_eq!(
            parse_endpoint("unix:///run/containerd/containerd.sock").ok(),
            Some(Address::Unix("/run/containerd/containerd.sock".into()))
        );
        assert_eq!(
            parse_endpoint("/run/crio/crio.sock").ok(),
            Some(Address::Unix("/run/crio/crio.sock".into()))
        );
        assert_eq!(
            parse_endpoint("tcp://127.0.0.1:1234").ok(),
            Some(Address::Http("http://127.0.0.1:1234".into()))
        );
        for bad in ["unix://relative.sock", "npipe:////./pipe/x", "tcp://", ""] {
            assert!(parse_endpoint(bad).is_err(), "{bad}");
        }
    }
}
