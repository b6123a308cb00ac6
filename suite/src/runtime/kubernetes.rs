//! The Kubernetes rules (`kubernetes/*`): how a CRI runtime turns a pod into CNI calls, judged
//! over the recorder's log and the kubelet stand-in's record ([`crate::cri::record`]).
//!
//! They apply when the runtime is a CRI runtime (`runtime --cri`, a CRI record, or `K8S_POD_*`
//! in `CNI_ARGS`); otherwise, or without a record to compare with, they `skip` with the reason.
//! A rule never passes without having judged at least one call against a record.

use serde_json::Value;

use super::cri_evidence::{cni_args, CriContext};
use super::evidence::{short, ScenarioRun};
use super::log::Entry;
use super::rules::{violation, who, Outcome};
use crate::case::Level;
use crate::cri::record::{CallRecord, CriRecord};

/// One Kubernetes rule.
#[derive(Debug, Clone, Copy)]
pub struct KubeRule {
    /// `kubernetes/<slug>`.
    pub id: &'static str,
    /// One line.
    pub title: &'static str,
    /// MUST or SHOULD, after the words of the reference.
    pub level: Level,
    /// Reference.
    pub spec: &'static str,
    /// The body.
    pub body: fn(&[ScenarioRun], &CriContext) -> Result<(), Outcome>,
}

/// Every Kubernetes rule, in report order.
pub fn all() -> Vec<KubeRule> {
    vec![
        KubeRule {
            id: "kubernetes/pod-args",
            title: "CNI_ARGS carry IgnoreUnknown=1 and K8S_POD_NAMESPACE, K8S_POD_NAME, K8S_POD_INFRA_CONTAINER_ID (and K8S_POD_UID) of the pod",
            level: Level::Must,
            spec: r#"https://github.com/kubernetes/kubernetes/blob/v1.23.0/pkg/kubelet/dockershim/network/cni/cni.go (kubelet's CNI arguments: buildCNIRuntimeConf); SPEC.md 1.1.0 §"Parameters" (CNI_ARGS)"#,
            body: pod_args,
        },
        KubeRule {
            id: "kubernetes/port-mappings",
            title: "the pod's port mappings reach, as runtimeConfig.portMappings, exactly the plugins that declare portMappings",
            level: Level::Should,
            spec: r#"SPEC.md 1.1.0 §"Deriving `runtimeConfig`" (should be inserted); CONVENTIONS.md 1.1.0 §"Well-known Capabilities" (portMappings); https://kubernetes.io/docs/concepts/extend-kubernetes/compute-storage-net/network-plugins/ ("Support hostPort")"#,
            body: port_mappings,
        },
        KubeRule {
            id: "kubernetes/bandwidth",
            title: "the pod's bandwidth annotations reach, as runtimeConfig.bandwidth in bits per second, exactly the plugins that declare bandwidth",
            level: Level::Should,
            spec: r#"SPEC.md 1.1.0 §"Deriving `runtimeConfig`" (should be inserted); CONVENTIONS.md 1.1.0 §"Well-known Capabilities" (bandwidth); https://kubernetes.io/docs/concepts/extend-kubernetes/compute-storage-net/network-plugins/ ("Support traffic shaping")"#,
            body: bandwidth,
        },
        KubeRule {
            id: "kubernetes/pod-ip",
            title: "the pod IP PodSandboxStatus reports is an address of the ADD result the runtime got",
            level: Level::Must,
            spec: r#"https://github.com/kubernetes/cri-api/blob/v0.36.3/pkg/apis/runtime/v1/api.proto (PodSandboxNetworkStatus: "IP address of the PodSandbox"; PodSandboxStatus); SPEC.md 1.1.0 §"ADD Success" (ips)"#,
            body: pod_ip,
        },
        KubeRule {
            id: "kubernetes/del-on-stop",
            title: "StopPodSandbox runs DEL for every plugin ADD reached, before it returns",
            level: Level::Must,
            spec: r#"https://github.com/kubernetes/cri-api/blob/v0.36.3/pkg/apis/runtime/v1/api.proto (StopPodSandbox: "reclaims network resources (e.g., IP addresses) allocated to the sandbox"); SPEC.md 1.1.0 §"Lifecycle & Ordering""#,
            body: del_on_stop,
        },
        KubeRule {
            id: "kubernetes/stop-del-netns",
            title: "the DEL of StopPodSandbox runs while the pod's network namespace still exists",
            level: Level::Should,
            spec: r#"SPEC.md 1.1.0 §"Parameters" (CNI_NETNS); SPEC.md 1.1.0 §"`DEL`: Remove container from network, or un-apply modifications"; https://github.com/kubernetes/cri-api/blob/v0.36.3/pkg/apis/runtime/v1/api.proto (StopPodSandbox)"#,
            body: stop_del_netns,
        },
        KubeRule {
            id: "kubernetes/clean-after-remove",
            title: "after RemovePodSandbox nothing is left: the sandbox is not found or listed, its netns is gone, every ADD had its DEL",
            level: Level::Must,
            spec: r#"https://github.com/kubernetes/cri-api/blob/v0.36.3/pkg/apis/runtime/v1/api.proto (RemovePodSandbox); SPEC.md 1.1.0 §"Lifecycle & Ordering" (add followed by delete; the runtime cleans up the network namespace)"#,
            body: clean_after_remove,
        },
    ]
}

/// The runs that have a record, with it.
fn with_records<'a>(
    runs: &'a [ScenarioRun],
    cri: &'a CriContext,
) -> impl Iterator<Item = (usize, &'a ScenarioRun, &'a CriRecord)> + 'a {
    runs.iter()
        .enumerate()
        .filter_map(move |(r, run)| cri.record(r).map(|rec| (r, run, rec)))
}

/// Skips unless the rules apply and some scenario has a record.
fn gate(runs: &[ScenarioRun], cri: &CriContext) -> Result<(), Outcome> {
    if let Some(why) = cri.not_applicable(runs) {
        return Err(Outcome::Skip(why));
    }
    if let Some(why) = cri.no_record() {
        return Err(Outcome::Skip(why));
    }
    Ok(())
}

fn judged_or_skip(judged: bool, why: &str) -> Result<(), Outcome> {
    if judged {
        Ok(())
    } else {
        Err(Outcome::Skip(why.into()))
    }
}

fn pod_args(runs: &[ScenarioRun], cri: &CriContext) -> Result<(), Outcome> {
    if let Some(why) = cri.not_applicable(runs) {
        return Err(Outcome::Skip(why));
    }
    let mut judged = false;
    for (r, run) in runs.iter().enumerate() {
        let record = cri.record(r);
        for (i, e) in run.attachment_calls() {
            let args = cni_args(e.var("CNI_ARGS").unwrap_or(""));
            let get = |k: &str| args.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
            let ignore = get("IgnoreUnknown");
            if !matches!(ignore.map(str::to_ascii_lowercase).as_deref(), Some("1" | "true")) {
                return Err(violation(
                    r,
                    Some(i),
                    runs,
                    format!(
                        "{} lacks IgnoreUnknown=1 in CNI_ARGS (plugins that do not know K8S_POD_* would fail)",
                        who(e)
                    ),
                    "IgnoreUnknown=1",
                    format!("CNI_ARGS={}", e.var("CNI_ARGS").unwrap_or("<unset>")),
                ));
            }
            let container = e.var("CNI_CONTAINERID").unwrap_or("");
            let sandbox = record.and_then(|rec| rec.sandbox_id.as_deref()).unwrap_or(container);
            let mut want: Vec<(&str, String)> = vec![("K8S_POD_INFRA_CONTAINER_ID", sandbox.to_string())];
            if let Some(rec) = record {
                want.push(("K8S_POD_NAMESPACE", rec.pod.namespace.clone()));
                want.push(("K8S_POD_NAME", rec.pod.name.clone()));
            }
            for key in ["K8S_POD_NAMESPACE", "K8S_POD_NAME", "K8S_POD_INFRA_CONTAINER_ID"] {
                if get(key).is_none_or(str::is_empty) {
                    return Err(violation(
                        r,
                        Some(i),
                        runs,
                        format!("{} lacks {key} in CNI_ARGS", who(e)),
                        format!("{key}=<the pod's>"),
                        format!("CNI_ARGS={}", e.var("CNI_ARGS").unwrap_or("<unset>")),
                    ));
                }
            }
            // K8S_POD_UID is newer than kubelet's own CNI code: judged when sent.
            if let Some(rec) = record.filter(|_| get("K8S_POD_UID").is_some()) {
                want.push(("K8S_POD_UID", rec.pod.uid.clone()));
            }
            for (key, value) in &want {
                let got = get(key).unwrap_or("");
                if got != value {
                    return Err(violation(
                        r,
                        Some(i),
                        runs,
                        format!("{} got {key} that is not the pod's", who(e)),
                        format!("{key}={value}"),
                        format!("{key}={got}"),
                    ));
                }
            }
            judged |= record.is_some();
        }
    }
    if let Some(why) = cri.no_record() {
        return Err(Outcome::Skip(format!(
            "K8S_POD_* present and consistent, but not compared with a pod: {why}"
        )));
    }
    judged_or_skip(judged, "no ADD, CHECK or DEL in a scenario with a CRI record")
}

/// The capability `cap` the plugin of `e` declares true.
fn declares(run: &ScenarioRun, e: &Entry, cap: &str) -> bool {
    run.stored(e)
        .and_then(|p| p.get("capabilities").and_then(|c| c.get(cap)).and_then(Value::as_bool))
        .unwrap_or(false)
}

fn runtime_config_key(e: &Entry, key: &str) -> Option<Value> {
    e.stdin_json()
        .and_then(|v| v.get("runtimeConfig").and_then(|rc| rc.get(key)).cloned())
}

/// Judges one capability: `expected` is what a declaring plugin must get (None: nothing).
fn capability_rule(
    runs: &[ScenarioRun],
    cri: &CriContext,
    cap: &str,
    expected: fn(&CriRecord) -> Option<Value>,
    matches: fn(&Value, &Value) -> Result<(), String>,
) -> Result<(), Outcome> {
    gate(runs, cri)?;
    let mut judged = false;
    for (r, run, rec) in with_records(runs, cri) {
        let want = expected(rec);
        for (i, e) in run.attachment_calls() {
            let got = runtime_config_key(e, cap);
            if !declares(run, e, cap) {
                if let Some(g) = got {
                    return Err(violation(
                        r,
                        Some(i),
                        runs,
                        format!(
                            "{} got runtimeConfig.{cap} though its plugin does not declare {cap}",
                            who(e)
                        ),
                        format!("no runtimeConfig.{cap}"),
                        short(&g, 200),
                    ));
                }
                continue;
            }
            judged = true;
            match (&want, got) {
                (None, None) => {}
                (None, Some(g)) if g.is_null() || g.as_array().is_some_and(Vec::is_empty) => {}
                (None, Some(g)) => {
                    return Err(violation(
                        r,
                        Some(i),
                        runs,
                        format!("{} got runtimeConfig.{cap} the pod did not ask for", who(e)),
                        "nothing (the pod has none)",
                        short(&g, 200),
                    ))
                }
                (Some(w), None) => {
                    return Err(violation(
                        r,
                        Some(i),
                        runs,
                        format!("{} declares {cap} but got no runtimeConfig.{cap}", who(e)),
                        short(w, 200),
                        "absent",
                    ))
                }
                (Some(w), Some(g)) => {
                    let spelled = conventional_keys(&g);
                    if spelled != g && matches(w, &spelled).is_ok() {
                        return Err(violation(
                            r,
                            Some(i),
                            runs,
                            format!(
                                "{}'s runtimeConfig.{cap} has the pod's values under keys spelled otherwise than \
                                 CONVENTIONS.md (only a case-insensitive decoder, such as Go's encoding/json, reads them)",
                                who(e)
                            ),
                            short(w, 200),
                            short(&g, 200),
                        ));
                    }
                    if let Err(why) = matches(w, &g) {
                        return Err(violation(
                            r,
                            Some(i),
                            runs,
                            format!("{}'s runtimeConfig.{cap} is not the pod's: {why}", who(e)),
                            short(w, 200),
                            short(&g, 200),
                        ));
                    }
                }
            }
        }
    }
    judged_or_skip(
        judged,
        &format!("no ADD, CHECK or DEL reached a plugin that declares {cap} in a scenario with a CRI record"),
    )
}

/// The keys of the portMappings and bandwidth conventions.
const CONVENTION_KEYS: [&str; 8] = [
    "hostPort",
    "containerPort",
    "protocol",
    "hostIP",
    "ingressRate",
    "ingressBurst",
    "egressRate",
    "egressBurst",
];

/// `v` with every object key that matches a convention key but for case spelled the convention's
/// way (to tell a spelling problem from wrong values).
fn conventional_keys(v: &Value) -> Value {
    match v {
        Value::Array(a) => Value::Array(a.iter().map(conventional_keys).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| {
                    let key = CONVENTION_KEYS
                        .iter()
                        .find(|c| c.eq_ignore_ascii_case(k))
                        .map_or_else(|| k.clone(), |c| c.to_string());
                    (key, conventional_keys(x))
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A port mapping with an empty `hostIP` is the same as one without.
fn normal_port(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        if o.get("hostIP").is_some_and(|h| h.as_str() == Some("")) {
            o.remove("hostIP");
        }
    }
    v
}

fn same_ports(want: &Value, got: &Value) -> Result<(), String> {
    let list = |v: &Value| -> Option<Vec<String>> {
        let mut l: Vec<String> = v.as_array()?.iter().map(|p| normal_port(p).to_string()).collect();
        l.sort();
        Some(l)
    };
    match (list(want), list(got)) {
        (Some(w), Some(g)) if w == g => Ok(()),
        (_, None) => Err("not a list".into()),
        _ => Err("other mappings".into()),
    }
}

fn port_mappings(runs: &[ScenarioRun], cri: &CriContext) -> Result<(), Outcome> {
    capability_rule(
        runs,
        cri,
        "portMappings",
        |rec| {
            let p = rec.pod.cni_port_mappings();
            (!p.is_empty()).then_some(Value::Array(p))
        },
        same_ports,
    )
}

fn same_rates(want: &Value, got: &Value) -> Result<(), String> {
    for (rate, burst) in [("ingressRate", "ingressBurst"), ("egressRate", "egressBurst")] {
        let w = want.get(rate).and_then(Value::as_u64);
        let g = got.get(rate).and_then(Value::as_u64);
        if w != g {
            let show = |v: Option<u64>| v.map_or_else(|| "absent".to_string(), |n| n.to_string());
            return Err(format!("{rate} {}, the annotation says {}", show(g), show(w)));
        }
        if w.is_some() && got.get(burst).and_then(Value::as_u64).is_none_or(|b| b == 0) {
            return Err(format!("{rate} without a positive {burst}"));
        }
    }
    Ok(())
}

fn bandwidth(runs: &[ScenarioRun], cri: &CriContext) -> Result<(), Outcome> {
    capability_rule(runs, cri, "bandwidth", |rec| rec.pod.bandwidth_rates(), same_rates)
}

/// The addresses (without prefix length) of an ADD result.
fn result_ips(result: &Value) -> Vec<String> {
    result
        .get("ips")
        .and_then(Value::as_array)
        .map(|ips| {
            ips.iter()
                .filter_map(|ip| ip.get("address").and_then(Value::as_str))
                .map(|a| a.split('/').next().unwrap_or(a).to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn pod_ip(runs: &[ScenarioRun], cri: &CriContext) -> Result<(), Outcome> {
    gate(runs, cri)?;
    let mut judged = false;
    for (r, run, rec) in with_records(runs, cri) {
        let status_ok = rec.first_call("PodSandboxStatus").is_some_and(CallRecord::ok);
        if !rec.sandbox_ran() || !status_ok {
            continue;
        }
        let Some((at, result)) = run.final_result() else {
            continue;
        };
        judged = true;
        let have = result_ips(&result);
        if rec.pod_ips.is_empty() && !have.is_empty() {
            return Err(violation(
                r,
                Some(at),
                runs,
                "PodSandboxStatus reported no pod IP though the ADD result has addresses",
                have.join(", "),
                "no IP",
            ));
        }
        if let Some(stray) = rec.pod_ips.iter().find(|ip| !have.contains(ip)) {
            return Err(violation(
                r,
                Some(at),
                runs,
                format!("PodSandboxStatus reported {stray}, which is not in the ADD result the runtime got"),
                format!("one of {}", have.join(", ")),
                rec.pod_ips.join(", "),
            ));
        }
    }
    judged_or_skip(judged, "no scenario brought a sandbox up and read its PodSandboxStatus")
}

/// The plugins a successful ADD reached, by name, with the ADD's index.
fn added(run: &ScenarioRun) -> Vec<(usize, &Entry)> {
    let mut seen: Vec<(usize, &Entry)> = Vec::new();
    for (i, e) in run.calls("ADD").filter(|(_, e)| e.exit_code == 0) {
        if !seen.iter().any(|(_, s)| s.plugin == e.plugin) {
            seen.push((i, e));
        }
    }
    seen
}

/// The runs where the sandbox came up and `StopPodSandbox` was called, with that call.
fn stopped<'a>(
    runs: &'a [ScenarioRun],
    cri: &'a CriContext,
) -> impl Iterator<Item = (usize, &'a ScenarioRun, &'a CriRecord, &'a CallRecord)> + 'a {
    with_records(runs, cri).filter_map(|(r, run, rec)| {
        let stop = rec.first_call("StopPodSandbox")?;
        rec.sandbox_ran().then_some((r, run, rec, stop))
    })
}

fn del_on_stop(runs: &[ScenarioRun], cri: &CriContext) -> Result<(), Outcome> {
    gate(runs, cri)?;
    let mut judged = false;
    for (r, run, _, stop) in stopped(runs, cri) {
        judged = true;
        if let Some(err) = &stop.error {
            return Err(violation(
                r,
                None,
                runs,
                "StopPodSandbox failed",
                "success, after DEL of every plugin",
                err.clone(),
            ));
        }
        for (i, add) in added(run) {
            let dels: Vec<(usize, &Entry)> = run
                .calls("DEL")
                .filter(|(j, d)| *j > i && d.plugin == add.plugin)
                .collect();
            let during = dels
                .iter()
                .any(|(_, d)| d.start_ns >= stop.start_ns && d.end_ns <= stop.end_ns);
            if during {
                continue;
            }
            let seen = match dels.first() {
                None => "no DEL at all".to_string(),
                Some((_, d)) if d.start_ns < stop.start_ns => {
                    "DEL before StopPodSandbox was called (the pod's network went while it ran)".into()
                }
                Some(_) => "DEL only after StopPodSandbox returned".into(),
            };
            return Err(violation(
                r,
                dels.first().map(|(j, _)| *j).or(Some(i)),
                runs,
                format!("{} was not undone by StopPodSandbox", who(add)),
                format!("DEL {} while StopPodSandbox runs", add.plugin),
                seen,
            ));
        }
    }
    judged_or_skip(judged, "no scenario brought a sandbox up and stopped it")
}

fn stop_del_netns(runs: &[ScenarioRun], cri: &CriContext) -> Result<(), Outcome> {
    gate(runs, cri)?;
    let mut judged = false;
    for (r, run, _, stop) in stopped(runs, cri) {
        let add_ns = run.calls("ADD").find_map(|(_, e)| e.netns.as_ref().and_then(|n| n.id));
        for (i, d) in run
            .calls("DEL")
            .filter(|(_, d)| d.start_ns >= stop.start_ns && d.end_ns <= stop.end_ns)
        {
            judged = true;
            let fine = d
                .netns
                .as_ref()
                .is_some_and(|n| n.exists && n.is_netns && (add_ns.is_none() || n.id == add_ns));
            if !fine {
                let seen = match &d.netns {
                    None => "CNI_NETNS empty or unset".to_string(),
                    Some(n) if !n.exists => format!("{} no longer exists", n.path),
                    Some(n) if !n.is_netns => format!("{} is not a network namespace", n.path),
                    Some(n) => format!("{} is another network namespace than ADD's", n.path),
                };
                return Err(violation(
                    r,
                    Some(i),
                    runs,
                    format!("{} ran after the pod's network namespace was gone", who(d)),
                    "CNI_NETNS naming the pod's network namespace, still there",
                    seen,
                ));
            }
        }
    }
    judged_or_skip(judged, "no DEL ran during a StopPodSandbox")
}

fn clean_after_remove(runs: &[ScenarioRun], cri: &CriContext) -> Result<(), Outcome> {
    gate(runs, cri)?;
    let mut judged = false;
    for (r, run, rec) in with_records(runs, cri) {
        if !rec.sandbox_ran() {
            continue;
        }
        let Some(remove) = rec.first_call("RemovePodSandbox") else {
            continue;
        };
        judged = true;
        if let Some(err) = &remove.error {
            return Err(violation(
                r,
                None,
                runs,
                "RemovePodSandbox failed",
                "success",
                err.clone(),
            ));
        }
        let Some(after) = &rec.after_remove else {
            return Err(violation(
                r,
                None,
                runs,
                "the CRI record has no look after RemovePodSandbox",
                "PodSandboxStatus and ListPodSandbox after RemovePodSandbox",
                "nothing recorded",
            ));
        };
        if !after.status_not_found {
            return Err(violation(
                r,
                None,
                runs,
                "PodSandboxStatus still answers for the removed sandbox",
                "NOT_FOUND",
                after.status_answer.clone().unwrap_or_default(),
            ));
        }
        if after.listed {
            return Err(violation(
                r,
                None,
                runs,
                "ListPodSandbox still lists the removed sandbox",
                "not listed",
                rec.sandbox_id.clone().unwrap_or_default(),
            ));
        }
        let left: Vec<&String> = after.netns.iter().filter(|n| !rec.netns_before.contains(n)).collect();
        if !left.is_empty() {
            return Err(violation(
                r,
                None,
                runs,
                format!(
                    "network namespaces are left in {} after RemovePodSandbox",
                    rec.netns_dir
                ),
                "none new",
                left.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
            ));
        }
        for (i, add) in added(run) {
            let undone = run
                .calls("DEL")
                .any(|(j, d)| j > i && d.plugin == add.plugin && d.end_ns <= remove.end_ns);
            if !undone {
                return Err(violation(
                    r,
                    Some(i),
                    runs,
                    format!("{} had no DEL by the time RemovePodSandbox returned", who(add)),
                    format!("DEL {}", add.plugin),
                    "none",
                ));
            }
        }
    }
    judged_or_skip(judged, "no scenario brought a sandbox up and removed it")
}
