//! Rules on the invocation's environment: the `CNI_*` variables, the same attachment throughout,
//! `CNI_PATH`, and which network namespace exists and which one the plugin runs in.

use serde_json::Value;

use super::{requests, violation, who, Outcome};
use crate::runtime::evidence::{short, ScenarioRun};
use crate::runtime::log::Entry;

pub(super) fn same_attachment(runs: &[ScenarioRun]) -> Result<(), Outcome> {
    for (r, run) in runs.iter().enumerate() {
        let Some((_, add)) = run.calls("ADD").next() else {
            continue;
        };
        let key = |e: &Entry, k: &str| e.var(k).unwrap_or("<unset>").to_string();
        for (i, e) in run.attachment_calls() {
            let mut vars = vec!["CNI_CONTAINERID", "CNI_IFNAME"];
            match e.command() {
                "CHECK" => {
                    vars.extend(["CNI_NETNS", "CNI_ARGS"]);
                    // The capability arguments are attachment parameters too: CHECK gets the same
                    // runtimeConfig as that plugin's ADD.
                    let rc = |x: &Entry| x.stdin_json().and_then(|v| v.get("runtimeConfig").cloned());
                    let plugin_add = run
                        .calls("ADD")
                        .filter(|(j, a)| *j < i && a.plugin == e.plugin)
                        .last()
                        .map(|(_, a)| a);
                    if let Some(a) = plugin_add {
                        if rc(a) != rc(e) {
                            let show = |v: Option<Value>| v.map_or("absent".into(), |v| short(&v, 200));
                            return Err(violation(
                                r,
                                Some(i),
                                runs,
                                format!("{} got another runtimeConfig than its ADD", who(e)),
                                show(rc(a)),
                                show(rc(e)),
                            ));
                        }
                    }
                }
                "ADD" => vars.push("CNI_NETNS"),
                // DEL may come with an empty CNI_NETNS (1.0+); a non-empty one must be the same.
                _ if e.var("CNI_NETNS").is_some_and(|n| !n.is_empty()) => vars.push("CNI_NETNS"),
                _ => {}
            }
            // The same path must still name the same namespace (not a new one at the old path).
            let id = |x: &Entry| x.netns.as_ref().and_then(|n| n.id);
            if vars.contains(&"CNI_NETNS") && e.var("CNI_NETNS") == add.var("CNI_NETNS") {
                if let (Some(a), Some(b)) = (id(add), id(e)) {
                    if a != b {
                        return Err(violation(
                            r,
                            Some(i),
                            runs,
                            format!("{}: CNI_NETNS names another network namespace than at ADD", who(e)),
                            format!("namespace inode {}", a.1),
                            format!("namespace inode {}", b.1),
                        ));
                    }
                }
            }
            for v in vars {
                if key(e, v) != key(add, v) {
                    return Err(violation(
                        r,
                        Some(i),
                        runs,
                        format!("{} used another {v} than the first ADD", who(e)),
                        key(add, v),
                        key(e, v),
                    ));
                }
            }
        }
    }
    Ok(())
}

pub(super) fn env_vars(runs: &[ScenarioRun]) -> Result<(), Outcome> {
    for (r, run) in runs.iter().enumerate() {
        for (i, e) in run.attachment_calls() {
            let mut need = vec!["CNI_CONTAINERID", "CNI_IFNAME"];
            if e.command() != "DEL" {
                need.push("CNI_NETNS");
            }
            let missing: Vec<&str> = need
                .into_iter()
                .filter(|k| e.var(k).is_none_or(str::is_empty))
                .collect();
            if !missing.is_empty() {
                return Err(violation(
                    r,
                    Some(i),
                    runs,
                    format!("{} lacks parameters", who(e)),
                    "set and not empty",
                    format!("missing: {}", missing.join(", ")),
                ));
            }
        }
    }
    Ok(())
}

pub(super) fn cni_path(runs: &[ScenarioRun]) -> Result<(), Outcome> {
    for (r, run) in runs.iter().enumerate() {
        for (i, e, _) in requests(run) {
            if e.var("CNI_PATH").is_none_or(str::is_empty) {
                return Err(violation(
                    r,
                    Some(i),
                    runs,
                    format!("{} has no CNI_PATH", who(e)),
                    "CNI_PATH naming the plugin directories",
                    "unset or empty",
                ));
            }
        }
    }
    Ok(())
}

pub(super) fn netns_on_add(runs: &[ScenarioRun]) -> Result<(), Outcome> {
    for (r, run) in runs.iter().enumerate() {
        for (i, e) in run.attachment_calls().filter(|(_, e)| e.command() != "DEL") {
            let ok = e.netns.as_ref().is_some_and(|n| n.exists && n.is_netns);
            if !ok {
                return Err(violation(
                    r,
                    Some(i),
                    runs,
                    format!("{}: CNI_NETNS is not an existing network namespace", who(e)),
                    "an existing network namespace",
                    format!("{:?}", e.netns),
                ));
            }
        }
    }
    Ok(())
}

pub(super) fn netns_on_del(runs: &[ScenarioRun]) -> Result<(), Outcome> {
    for (r, run) in runs.iter().enumerate() {
        for (i, e) in run.calls("DEL") {
            let ok = e.netns.as_ref().is_some_and(|n| n.exists && n.is_netns);
            if !ok {
                return Err(violation(
                    r,
                    Some(i),
                    runs,
                    format!(
                        "{} ran after the network namespace was gone (or without CNI_NETNS)",
                        who(e)
                    ),
                    "DEL before the namespace is destroyed",
                    match &e.netns {
                        Some(n) => format!("{} exists={} netns={}", n.path, n.exists, n.is_netns),
                        None => "CNI_NETNS empty".into(),
                    },
                ));
            }
        }
    }
    Ok(())
}

pub(super) fn plugin_netns(runs: &[ScenarioRun]) -> Result<(), Outcome> {
    for (r, run) in runs.iter().enumerate() {
        for (i, e) in run.attachment_calls() {
            if let (Some(own), Some(target)) = (e.own_netns, e.netns.as_ref().and_then(|n| n.id)) {
                if own == target {
                    return Err(violation(
                        r,
                        Some(i),
                        runs,
                        format!("{} ran inside the container's namespace", who(e)),
                        "the runtime's own namespace",
                        "CNI_NETNS",
                    ));
                }
            }
        }
    }
    Ok(())
}
