//! The pod the kubelet stand-in asks for: its metadata, port mappings, DNS and bandwidth
//! annotations, turned into a CRI `PodSandboxConfig` the way kubelet builds one, and into the
//! CNI forms a CRI runtime must derive from it (CONVENTIONS.md's `portMappings` and `bandwidth`).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::proto::{self, Protocol};

/// Annotation kubelet reads for the pod's ingress limit (Kubernetes' traffic shaping).
pub const INGRESS_ANNOTATION: &str = "kubernetes.io/ingress-bandwidth";
/// Annotation for the egress limit.
pub const EGRESS_ANNOTATION: &str = "kubernetes.io/egress-bandwidth";

/// One port mapping of the pod spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortSpec {
    /// Port on the host.
    pub host_port: i32,
    /// Port in the pod.
    pub container_port: i32,
    /// `TCP`, `UDP` or `SCTP`, as the CRI names them.
    pub protocol: String,
    /// Host address, empty for any.
    #[serde(default)]
    pub host_ip: String,
}

impl PortSpec {
    /// Parses `[HOSTIP:]HOSTPORT:CONTAINERPORT[/PROTO]` (PROTO tcp, udp or sctp; default tcp).
    pub fn parse(text: &str) -> Result<PortSpec, String> {
        let (ports, proto) = text.split_once('/').unwrap_or((text, "tcp"));
        let protocol = match proto.to_ascii_lowercase().as_str() {
            "tcp" => "TCP",
            "udp" => "UDP",
            "sctp" => "SCTP",
            other => return Err(format!("port {text:?}: unknown protocol {other:?} (tcp, udp or sctp)")),
        };
        let (host_ip, host, container) = match ports.rsplitn(3, ':').collect::<Vec<_>>()[..] {
            [c, h] => ("", h, c),
            [c, h, ip] => (ip, h, c),
            _ => {
                return Err(format!(
                    "port {text:?}: expected [HOSTIP:]HOSTPORT:CONTAINERPORT[/PROTO]"
                ))
            }
        };
        let port = |p: &str| {
            p.parse::<u16>()
                .ok()
                .filter(|n| *n > 0)
                .map(i32::from)
                .ok_or_else(|| format!("port {text:?}: {p:?} is not a port number"))
        };
        Ok(PortSpec {
            host_port: port(host)?,
            container_port: port(container)?,
            protocol: protocol.into(),
            host_ip: host_ip.trim_matches(|c| c == '[' || c == ']').to_string(),
        })
    }

    fn proto(&self) -> Protocol {
        match self.protocol.as_str() {
            "UDP" => Protocol::Udp,
            "SCTP" => Protocol::Sctp,
            _ => Protocol::Tcp,
        }
    }

    /// The CNI `portMappings` entry a runtime derives from it (CONVENTIONS.md: lower-case
    /// protocol; `hostIP` only when set).
    pub fn cni(&self) -> Value {
        let mut v = json!({
            "hostPort": self.host_port,
            "containerPort": self.container_port,
            "protocol": self.protocol.to_ascii_lowercase(),
        });
        if !self.host_ip.is_empty() {
            v["hostIP"] = json!(self.host_ip);
        }
        v
    }
}

/// Parses a Kubernetes quantity as used by the bandwidth annotations (`10M`, `1Gi`, `500k`,
/// `1000000`) into a whole number (bits per second).
pub fn parse_quantity(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, suffix) = t.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let factor: u64 = match suffix {
        "" => 1,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(factor)
}

/// The DNS configuration of the pod.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsSpec {
    /// Name servers.
    pub servers: Vec<String>,
    /// Search domains.
    pub searches: Vec<String>,
    /// Options.
    pub options: Vec<String>,
}

/// Everything the stand-in puts into `RunPodSandbox`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    /// Pod name.
    pub name: String,
    /// Pod namespace.
    pub namespace: String,
    /// Pod UID.
    pub uid: String,
    /// Attempt.
    pub attempt: u32,
    /// Port mappings.
    pub port_mappings: Vec<PortSpec>,
    /// Annotations (the bandwidth limits among them).
    pub annotations: std::collections::BTreeMap<String, String>,
    /// DNS.
    pub dns: DnsSpec,
    /// Parent cgroup (empty: the runtime's default).
    #[serde(default)]
    pub cgroup_parent: String,
    /// Runtime handler (empty: the default).
    #[serde(default)]
    pub runtime_handler: String,
}

impl PodSpec {
    /// The CNI `bandwidth` capability argument a runtime derives from the annotations: rates in
    /// bits per second (bursts are the runtime's choice). `None` without annotations.
    pub fn bandwidth_rates(&self) -> Option<Value> {
        let rate = |k: &str| self.annotations.get(k).and_then(|q| parse_quantity(q));
        let (ingress, egress) = (rate(INGRESS_ANNOTATION), rate(EGRESS_ANNOTATION));
        if ingress.is_none() && egress.is_none() {
            return None;
        }
        let mut v = json!({});
        if let Some(i) = ingress {
            v["ingressRate"] = json!(i);
        }
        if let Some(e) = egress {
            v["egressRate"] = json!(e);
        }
        Some(v)
    }

    /// The CNI `portMappings` capability argument a runtime derives from the pod spec.
    pub fn cni_port_mappings(&self) -> Vec<Value> {
        self.port_mappings.iter().map(PortSpec::cni).collect()
    }

    /// The `RunPodSandboxRequest`, with the labels kubelet sets on every sandbox.
    pub fn request(&self) -> proto::RunPodSandboxRequest {
        let labels: HashMap<String, String> = [
            ("io.kubernetes.pod.name", &self.name),
            ("io.kubernetes.pod.namespace", &self.namespace),
            ("io.kubernetes.pod.uid", &self.uid),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
        let config = proto::PodSandboxConfig {
            metadata: Some(proto::PodSandboxMetadata {
                name: self.name.clone(),
                uid: self.uid.clone(),
                namespace: self.namespace.clone(),
                attempt: self.attempt,
            }),
            hostname: self.name.clone(),
            log_directory: String::new(),
            dns_config: Some(proto::DnsConfig {
                servers: self.dns.servers.clone(),
                searches: self.dns.searches.clone(),
                options: self.dns.options.clone(),
            }),
            port_mappings: self
                .port_mappings
                .iter()
                .map(|p| proto::PortMapping {
                    protocol: p.proto() as i32,
                    container_port: p.container_port,
                    host_port: p.host_port,
                    host_ip: p.host_ip.clone(),
                })
                .collect(),
            labels,
            annotations: self.annotations.clone().into_iter().collect(),
            linux: Some(proto::LinuxPodSandboxConfig {
                cgroup_parent: self.cgroup_parent.clone(),
            }),
        };
        proto::RunPodSandboxRequest {
            config: Some(config),
            runtime_handler: self.runtime_handler.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_specs_parse_into_cni_port_mappings() {
        let p = PortSpec::parse("8080:80/udp").unwrap();
        assert_eq!(
            p.cni(),
            json!({"hostPort": 8080, "containerPort": 80, "protocol": "udp"})
        );
        let p = PortSpec::parse("127.0.0.1:8443:443").unwrap();
        assert_eq!(
            p.cni(),
            json!({"hostPort": 8443, "containerPort": 443, "protocol": "tcp", "hostIP": "127.0.0.1"})
        );
        for bad in ["80", "0:80", "8080:80/icmp", "x:80", "ip:x:80"] {
            assert!(PortSpec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn quantities_read_like_kubernetes_reads_them() {
        assert_eq!(parse_quantity("1M"), Some(1_000_000));
        assert_eq!(parse_quantity("10k"), Some(10_000));
        assert_eq!(parse_quantity("1Mi"), Some(1_048_576));
        assert_eq!(parse_quantity("1500"), Some(1500));
        assert_eq!(parse_quantity("1.5M"), None);
        assert_eq!(parse_quantity("M"), None);
    }
}
