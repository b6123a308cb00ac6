//! `cni-conformance cri`: the kubelet stand-in (the library's [`cni_conformance::cri`] does the
//! work). Exit 0 when the pod went through all four sandbox calls; every failure (endpoint
//! missing, unknown CRI version, the runtime refusing the pod, bad arguments) is one line on
//! stderr and exit 2.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Result};

use super::{limits, output, usage, Usage};
use cni_conformance::cli::CriArgs;
use cni_conformance::cri::pod::{self, DnsSpec, PodSpec, PortSpec};
use cni_conformance::cri::record::RECORD_ENV;
use cni_conformance::cri::standin::{self, Plan};

/// Runs the stand-in.
pub fn run(args: CriArgs) -> Result<u8, Usage> {
    let plan = usage(plan(args))?;
    let outcome = standin::run(&plan);
    if let Some(e) = outcome.error {
        return Err(Usage(anyhow!("cri: {e}")));
    }
    let r = &outcome.record;
    output::stdout(&format!(
        "pod {}/{}: sandbox {}, ip {}; stopped and removed\n",
        r.pod.namespace,
        r.pod.name,
        r.sandbox_id.as_deref().unwrap_or("?"),
        if r.pod_ips.is_empty() {
            "none reported".to_string()
        } else {
            r.pod_ips.join(", ")
        }
    ))?;
    Ok(0)
}

fn plan(args: CriArgs) -> Result<Plan> {
    let timeout = limits::seconds("--timeout", args.timeout).map_err(|Usage(e)| e)?;
    let port_mappings = args
        .ports
        .iter()
        .map(|p| PortSpec::parse(p).map_err(|e| anyhow!("--port: {e}")))
        .collect::<Result<Vec<_>>>()?;
    let mut annotations = BTreeMap::new();
    for (key, value, flag) in [
        (pod::INGRESS_ANNOTATION, &args.ingress_bandwidth, "--ingress-bandwidth"),
        (pod::EGRESS_ANNOTATION, &args.egress_bandwidth, "--egress-bandwidth"),
    ] {
        if value.is_empty() {
            continue;
        }
        if pod::parse_quantity(value).is_none() {
            return Err(anyhow!("{flag}: {value:?} is not a quantity such as 10M or 1Gi"));
        }
        annotations.insert(key.to_string(), value.clone());
    }
    let scenario = std::env::var("CNI_CONFORMANCE_SCENARIO").ok().filter(|s| !s.is_empty());
    let name = args.name.unwrap_or_else(|| match &scenario {
        Some(s) => format!("cni-conformance-{s}"),
        None => "cni-conformance".into(),
    });
    let pod = PodSpec {
        name,
        namespace: args.namespace,
        uid: args.uid.unwrap_or_else(fresh_uid),
        attempt: 0,
        port_mappings,
        annotations,
        dns: DnsSpec {
            servers: args.dns_server,
            searches: args.dns_search,
            options: args.dns_option,
        },
        cgroup_parent: args.cgroup_parent,
        runtime_handler: args.runtime_handler,
    };
    let record = args.record.or_else(|| {
        std::env::var_os(RECORD_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    });
    Ok(Plan {
        endpoint: args.endpoint,
        timeout,
        pod,
        record,
        netns_dir: args.netns_dir,
    })
}

/// A UUID-shaped id from the clock and the process id (unique enough for one pod at a time).
fn fresh_uid() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let mixed = nanos ^ (u128::from(std::process::id()) << 96) ^ (nanos << 64);
    let h = format!("{mixed:032x}");
    format!(
        "{}-{}-4{}-8{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}
