//! The runtime rules (digest §6 and §9.4), each judged over the recorded logs of every scenario.
//!
//! A rule body returns `Ok(())` when the rule holds in every scenario it applies to, or the first
//! [`Outcome`] that says otherwise, naming the scenario and the invocation.

use serde_json::Value;

use super::evidence::{same_result, short, ScenarioRun};
use super::log::Entry;
use super::scenario::{Purpose, PROBE_KEY};
use crate::case::{Finding, Level};
use crate::schema::{self, DocKind};
use crate::version::SpecVersion;

/// Which invocation a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blame {
    /// Index into the runs.
    pub run: usize,
    /// Index into that run's log; `None` means the runtime command itself.
    pub entry: Option<usize>,
}

/// Why a rule did not simply pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The rule is broken.
    Violation(Finding, Blame),
    /// The runtime follows the reference code where it differs from the spec (digest §10).
    Quirk(Finding, Blame),
    /// Nothing in the logs lets the rule be judged.
    Skip(String),
}

/// One runtime rule.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// `runtime/<slug>`.
    pub id: &'static str,
    /// One line.
    pub title: &'static str,
    /// MUST or SHOULD.
    pub level: Level,
    /// Spec reference.
    pub spec: &'static str,
    /// The body.
    pub body: fn(&[ScenarioRun]) -> Result<(), Outcome>,
}

fn violation(
    run: usize,
    entry: Option<usize>,
    runs: &[ScenarioRun],
    message: impl Into<String>,
    expected: impl Into<String>,
    seen: impl Into<String>,
) -> Outcome {
    let slug = runs.get(run).map_or("?", |r| r.scenario.slug);
    Outcome::Violation(
        Finding {
            message: format!("scenario {slug}: {}", message.into()),
            expected: Some(expected.into()),
            seen: Some(seen.into()),
        },
        Blame { run, entry },
    )
}

fn who(e: &Entry) -> String {
    format!("{} {}", e.command(), e.plugin)
}

/// Every rule, in report order.
pub fn all() -> Vec<Rule> {
    vec![
        Rule {
            id: "runtime/attach-detach",
            title: "the runtime command ADDs the container to the network and DELs it again",
            level: Level::Must,
            spec: "SPEC 1.1 §3 (lifecycle); DESIGN §6",
            body: attach_detach,
        },
        Rule {
            id: "runtime/add-order",
            title: "ADD runs the plugins in list order",
            level: Level::Must,
            spec: "SPEC 1.1 §3 (ADD of a list)",
            body: add_order,
        },
        Rule {
            id: "runtime/del-reverse-order",
            title: "DEL runs every plugin in reverse list order",
            level: Level::Must,
            spec: "SPEC 1.1 §3 (DEL of a list)",
            body: del_order,
        },
        Rule {
            id: "runtime/check-order",
            title: "CHECK runs the plugins in list order",
            level: Level::Must,
            spec: "SPEC 1.1 §3 (CHECK of a list)",
            body: check_order,
        },
        Rule {
            id: "runtime/name-version-injected",
            title: "every plugin gets the list's name and one cniVersion from the configuration",
            level: Level::Must,
            spec: "SPEC 1.1 §3 (deriving the request configuration)",
            body: name_version,
        },
        Rule {
            id: "runtime/version-highest",
            title: "the highest version of cniVersion ∪ cniVersions the runtime supports is used",
            level: Level::Must,
            spec: "SPEC 1.1 §1 (cniVersions)",
            body: version_highest,
        },
        Rule {
            id: "runtime/prev-result-first-add",
            title: "the first ADD gets no prevResult",
            level: Level::Must,
            spec: "SPEC 1.1 §3 (ADD of a list)",
            body: prev_first,
        },
        Rule {
            id: "runtime/prev-result-chained",
            title: "ADD of plugin N gets plugin N-1's result as prevResult",
            level: Level::Must,
            spec: "SPEC 1.1 §3 (ADD of a list)",
            body: prev_chained,
        },
        Rule {
            id: "runtime/prev-result-check",
            title: "CHECK gets the final ADD result as prevResult, in the request's version",
            level: Level::Must,
            spec: "SPEC 1.1 §3 (CHECK of a list), §4 (CHECK)",
            body: prev_check,
        },
        Rule {
            id: "runtime/prev-result-del",
            title: "DEL (0.4.0+) gets the final ADD result as prevResult, in the request's version",
            level: Level::Must,
            spec: "SPEC 1.1 §3 (DEL of a list); SPEC 0.4.0 (cached result)",
            body: prev_del,
        },
        Rule {
            id: "runtime/same-attachment",
            title: "ADD, CHECK and DEL use the same container id, netns and ifname; CHECK also the same args",
            level: Level::Must,
            spec: "SPEC 1.1 §2 (parameters), §4 (CHECK: same parameters as ADD)",
            body: same_attachment,
        },
        Rule {
            id: "runtime/env-vars",
            title: "ADD/CHECK/DEL set CNI_COMMAND, CNI_CONTAINERID, CNI_IFNAME (and CNI_NETNS for ADD/CHECK)",
            level: Level::Must,
            spec: "SPEC 1.1 §2 (parameters)",
            body: env_vars,
        },
        Rule {
            id: "runtime/cni-path",
            title: "CNI_PATH is set on every call",
            level: Level::Should,
            spec: "SPEC 1.1 §2 (CNI_PATH; required for GC); libcni always sets it",
            body: cni_path,
        },
        Rule {
            id: "runtime/netns-exists-on-add",
            title: "the container's network namespace exists when ADD and CHECK run",
            level: Level::Must,
            spec: "SPEC 1.1 §3 (lifecycle: create the netns first)",
            body: netns_on_add,
        },
        Rule {
            id: "runtime/netns-exists-on-del",
            title: "DEL runs while the container's network namespace still exists",
            level: Level::Should,
            spec: "SPEC 1.1 §2 (CNI_NETNS), §3 (lifecycle)",
            body: netns_on_del,
        },
        Rule {
            id: "runtime/plugin-in-runtime-netns",
            title: "plugins run in the runtime's network namespace, not the container's",
            level: Level::Should,
            spec: "SPEC 1.1 §2 (overview: the runtime's networking domain)",
            body: plugin_netns,
        },
        Rule {
            id: "runtime/check-disabled",
            title: "no CHECK is sent when disableCheck is true",
            level: Level::Must,
            spec: "SPEC 1.1 §1 (disableCheck), §4 (CHECK)",
            body: check_disabled,
        },
        Rule {
            id: "runtime/check-version",
            title: "no CHECK is sent for a configuration below 0.4.0",
            level: Level::Must,
            spec: "SPEC 0.4.0 §2 (CHECK added)",
            body: check_version,
        },
        Rule {
            id: "runtime/check-lifecycle",
            title: "CHECK only runs between a successful ADD and the DEL",
            level: Level::Must,
            spec: "SPEC 1.1 §4 (CHECK: runtime rules)",
            body: check_lifecycle,
        },
        Rule {
            id: "runtime/runtime-config",
            title: "runtimeConfig holds only capabilities the plugin declared true",
            level: Level::Must,
            spec: "SPEC 1.1 §3 (deriving runtimeConfig); CONVENTIONS.md",
            body: runtime_config,
        },
        Rule {
            id: "runtime/capabilities-removed",
            title: "the capabilities key is removed from what the plugin reads",
            level: Level::Must,
            spec: "SPEC 1.1 §3 (deriving runtimeConfig) — libcni keeps it (digest §10.2)",
            body: capabilities_removed,
        },
        Rule {
            id: "runtime/config-passthrough",
            title: "plugin configuration keys reach the plugin unchanged",
            level: Level::Must,
            spec: "SPEC 1.1 §1 (plugin configuration objects: pass through)",
            body: passthrough,
        },
        Rule {
            id: "runtime/stdin-schema",
            title: "every request matches the plugin-configuration schema of its version",
            level: Level::Must,
            spec: "SPEC §1 and §3 of the version sent",
            body: stdin_schema,
        },
        Rule {
            id: "runtime/chain-stops-on-failure",
            title: "when a plugin's ADD fails, the rest of the chain is not run",
            level: Level::Must,
            spec: "SPEC 1.1 §3 (ADD of a list: stop at the first error)",
            body: chain_stops,
        },
        Rule {
            id: "runtime/del-after-failed-add",
            title: "a failed ADD is followed by a DEL",
            level: Level::Should,
            spec: "SPEC 1.1 §3 (lifecycle: every ADD is eventually followed by a DEL)",
            body: del_after_failed,
        },
        Rule {
            id: "runtime/no-overlap",
            title: "operations on one container never overlap, and GC runs alone",
            level: Level::Must,
            spec: "SPEC 1.1 §3 (lifecycle and concurrency)",
            body: no_overlap,
        },
        Rule {
            id: "runtime/gc-status-version",
            title: "GC and STATUS are sent only for configurations of 1.1.0 or later",
            level: Level::Must,
            spec: "SPEC 1.1 §2 (GC, STATUS added in 1.1.0)",
            body: gc_status_version,
        },
        Rule {
            id: "runtime/gc-request",
            title: "GC reaches every plugin in list order with the live attachments as valid, no runtimeConfig or prevResult",
            level: Level::Must,
            spec: "SPEC 1.1 §4 (GC), §3 (GC of a list)",
            body: gc_request,
        },
        Rule {
            id: "runtime/gc-disabled",
            title: "no GC is sent when disableGC is true",
            level: Level::Must,
            spec: "SPEC 1.1 §1 (disableGC)",
            body: gc_disabled,
        },
        Rule {
            id: "runtime/status-request",
            title: "STATUS runs the plugins in list order without runtimeConfig or prevResult",
            level: Level::Must,
            spec: "SPEC 1.1 §4 (STATUS)",
            body: status_request,
        },
        super::hygiene::NO_PROCESS_LEFT,
    ]
}

fn attach_detach(runs: &[ScenarioRun]) -> Result<(), Outcome> {
    for (r, run) in runs.iter().enumerate() {
        if let Some(e) = &run.log_error {
            return Err(violation(
                r,
                None,
                runs,
                "the recorder's log is unreadable",
                "a log",
                e.clone(),
            ));
        }
        let Some((first_add, _)) = run.calls("ADD").next() else {
            return Err(violation(
                r,
                None,
                runs,
                "the runtime never sent ADD to any plugin of the network",
                "ADD of every plugin, then DEL",
                run.command_outcome(),
            ));
        };
        // After a failed ADD, the DEL is runtime/del-after-failed-add's business (a should).
        let fail_scenario = run.scenario.purpose == Purpose::FailMidChain;
        if !fail_scenario && !run.calls("DEL").any(|(i, _)| i > first_add) {
            return Err(violation(
                r,
                None,
                runs,
                "the runtime sent ADD but never DEL",
                "DEL after ADD (the container is detached again)",
                run.command_outcome(),
            ));
        }
        if !fail_scenario && !run.command.exit.success() {
            return Err(violation(
                r,
                None,
                runs,
                "the runtime command failed to attach and detach the container",
                "exit 0",
                run.command_outcome(),
            ));
        }
        let full = run.final_result().is_some();
        if run.scenario.purpose != Purpose::FailMidChain && !full {
            let failed = run.calls("ADD").find(|(_, e)| e.exit_code != 0);
            return Err(violation(
                r,
                failed.map(|(i, _)| i),
                runs,
                "ADD never reached the last plugin of the list",
                format!("ADD of all {} plugins", run.len()),
                match failed {
                    Some((_, e)) => format!("{} failed: {}", who(e), e.stdout.trim()),
                    None => run.command_outcome(),
                },
            ));
        }
    }
    Ok(())
}

/// Splits one verb's calls into rounds: a new round starts whenever the expected next position
/// does not follow (forward) or precede (reverse) the last one.
fn rounds(run: &ScenarioRun, verb: &str, reverse: bool) -> Vec<Vec<(usize, Option<usize>)>> {
    let mut out: Vec<Vec<(usize, Option<usize>)>> = Vec::new();
    for (i, e) in run.calls(verb) {
        let pos = run.index(e);
        let continues = out
            .last()
            .and_then(|r| r.last())
            .is_some_and(|(_, last)| match (last, pos) {
                (Some(l), Some(p)) if reverse => p < *l,
                (Some(l), Some(p)) => p > *l,
                _ => false,
            });
        if continues {
            if let Some(r) = out.last_mut() {
                r.push((i, pos));
            }
        } else {
            out.push(vec![(i, pos)]);
        }
    }
    out
}

fn order_rule(runs: &[ScenarioRun], verb: &str, reverse: bool, complete: bool) -> Result<(), Outcome> {
    for (r, run) in runs.iter().enumerate() {
        let n = run.len();
        let expected: Vec<Option<usize>> = if reverse {
            (0..n).rev().map(Some).collect()
        } else {
            (0..n).map(Some).collect()
        };
        let types = run.scenario.types();
        let name = |p: &Option<usize>| p.and_then(|i| types.get(i).cloned()).unwrap_or_else(|| "?".into());
        for round in rounds(run, verb, reverse) {
            let seen: Vec<Option<usize>> = round.iter().map(|(_, p)| *p).collect();
            let failed_add = verb == "ADD"
                && round
                    .last()
                    .is_some_and(|(i, _)| run.entries.get(*i).is_some_and(|e| e.exit_code != 0));
            let ok = if complete && !failed_add && run.command.exit.success() {
                seen == expected
            } else {
                expected.starts_with(&seen)
            };
            if !ok {
                return Err(violation(
                    r,
                    round.first().map(|(i, _)| *i),
                    runs,
                    format!(
                        "{verb} did not run the plugins in {}list order",
                        if reverse { "reverse " } else { "" }
                    ),
                    expected.iter().map(name).collect::<Vec<_>>().join(", "),
                    seen.iter().map(name).collect::<Vec<_>>().join(", "),
                ));
            }
        }
    }
    Ok(())
}

fn add_order(runs: &[ScenarioRun]) -> Result<(), Outcome> {
    order_rule(runs, "ADD", false, true)
}

fn del_order(runs: &[ScenarioRun]) -> Result<(), Outcome> {
    order_rule(runs, "DEL", true, true)
}

fn check_order(runs: &[ScenarioRun]) -> Result<(), Outcome> {
    order_rule(runs, "CHECK", false, true)
}

fn requests(run: &ScenarioRun) -> impl Iterator<Item = (usize, &Entry, Value)> + '_ {
    run.entries
        .iter()
        .enumerate()
        .filter(|(_, e)| e.command() != "VERSION")
        .map(|(i, e)| (i, e, e.stdin_json().unwrap_or(Value::Null)))
}

fn name_version(runs: &[ScenarioRun]) -> Result<(), Outcome> {
    for (r, run) in runs.iter().enumerate() {
        let name = run.scenario.network();
        let allowed = run.scenario.versions();
        let mut first: Option<String> = None;
        for (i, e, v) in requests(run) {
            let got_name = v.get("name").and_then(Value::as_str).unwrap_or("<absent>");
            if got_name != name {
                return Err(violation(
                    r,
                    Some(i),
                    runs,
                    format!("{} got the wrong network name", who(e)),
                    &name,
                    got_name,
                ));
            }
            let got = v
                .get("cniVersion")
                .and_then(Value::as_str)
                .unwrap_or("<absent>")
                .to_string();
            if !allowed.contains(&got) {
                return Err(violation(
                    r,
                    Some(i),
                    runs,
                    format!("{} got a cniVersion the configuration does not name", who(e)),
                    allowed.join(" or "),
                    got,
                ));
            }
            match &first {
                Some(f) if *f != got => {
                    return Err(violation(
                        r,
                        Some(i),
                        runs,
                        format!("{} got another cniVersion than earlier calls", who(e)),
                        f.clone(),
                        got,
                    ))
                }
                None => first = Some(got),
                _ => {}
            }
        }
    }
    Ok(())
}

fn version_highest(runs: &[ScenarioRun]) -> Result<(), Outcome> {
    let Some(r) = runs.iter().position(|x| x.scenario.purpose == Purpose::VersionChoice) else {
        return Err(Outcome::Skip("no version-choice scenario ran".into()));
    };
    let run = &runs[r];
    let Some(sent) = run.version_sent() else {
        return Err(Outcome::Skip(
            "the runtime sent no ADD in the version-choice scenario".into(),
        ));
    };
    let sent_v: SpecVersion = sent
        .parse()
        .map_err(|_| violation(r, None, runs, "cniVersion is not a version", "a version", sent.clone()))?;
    if !sent_v.is_released() {
        return Err(violation(
            r,
            run.calls("ADD").next().map(|(i, _)| i),
            runs,
            "the runtime chose a version no spec defines (versions above the runtime's own must be ignored)",
            "a released version, at most 1.1.0",
            sent,
        ));
    }
    // What the runtime showed it supports: every version it sent in a single-version scenario.
    let supported: Vec<SpecVersion> = runs
        .iter()
        .filter(|x| x.scenario.purpose != Purpose::VersionChoice && x.accepted())
        .filter_map(|x| x.version_sent()?.parse().ok())
        .collect();
    let best = run
        .scenario
        .versions()
        .iter()
        .filter_map(|v| v.parse::<SpecVersion>().ok())
        .filter(|v| v.is_released())
        .filter(|v| *v == sent_v || supported.contains(v))
        .max();
    match best {
        Some(b) if b > sent_v => Err(violation(
            r,
            run.calls("ADD").next().map(|(i, _)| i),
            runs,
            "the runtime chose a lower version than the highest one both it and the configuration support",
            format!("{b} (the runtime ran a {b} configuration in another scenario)"),
            sent,
        )),
        _ => Ok(()),
    }
}

fn prev_first(runs: &[ScenarioRun]) -> Result<(), Outcome> {
    for (r, run) in runs.iter().enumerate() {
        for (i, e) in run.calls("ADD").filter(|(_, e)| run.index(e) == Some(0)) {
            if let Some(p) = e.stdin_json().and_then(|v| v.get("prevResult").cloned()) {
                return Err(violation(
                    r,
                    Some(i),
                    runs,
                    "the first plugin's ADD carried a prevResult",
                    "no prevResult",
                    short(&p, 200),
                ));
            }
        }
    }
    Ok(())
}

fn prev_chained(runs: &[ScenarioRun]) -> Result<(), Outcome> {
    let mut judged = false;
    for (r, run) in runs.iter().enumerate() {
        for round in rounds(run, "ADD", false) {
            for w in round.windows(2) {
                let (Some(prev), Some(cur)) = (run.entries.get(w[0].0), run.entries.get(w[1].0)) else {
                    continue;
                };
                judged = true;
                let expected = prev.stdout_json().unwrap_or(Value::Null);
                let got = cur.stdin_json().and_then(|v| v.get("prevResult").cloned());
                match got {
                    Some(g) if same_result(&g, &expected) => {}
                    Some(g) => {
                        return Err(violation(
                            r,
                            Some(w[1].0),
                            runs,
                            format!("{}'s prevResult is not {}'s result", who(cur), prev.plugin),
                            short(&expected, 300),
                            short(&g, 300),
                        ))
                    }
                    None => {
                        return Err(violation(
                            r,
                            Some(w[1].0),
                            runs,
                            format!("{} got no prevResult", who(cur)),
                            short(&expected, 300),
                            "no prevResult",
                        ))
                    }
                }
            }
        }
    }
    if judged {
        Ok(())
    } else {
        Err(Outcome::Skip("no chained ADD was recorded".into()))
    }
}

fn prev_final(runs: &[ScenarioRun], verb: &str) -> Result<(), Outcome> {
    let mut judged = false;
    for (r, run) in runs.iter().enumerate() {
        let version_ok = run
            .version_sent()
            .and_then(|v| v.parse::<SpecVersion>().ok())
            .is_some_and(|v| v.has_check());
        if !version_ok {
            continue;
        }
        if !run.accepted() {
            continue;
        }
        let Some((add_at, fin)) = run.final_result() else {
            continue;
        };
        for (i, e) in run.calls(verb).filter(|(i, _)| *i > add_at) {
            judged = true;
            let req = e.stdin_json().unwrap_or(Value::Null);
            let want_version = req.get("cniVersion").cloned().unwrap_or(Value::Null);
            match req.get("prevResult") {
                None => {
                    return Err(violation(
                        r,
                        Some(i),
                        runs,
                        format!("{} got no prevResult", who(e)),
                        short(&fin, 300),
                        "no prevResult",
                    ))
                }
                Some(p) if !same_result(p, &fin) => {
                    return Err(violation(
                        r,
                        Some(i),
                        runs,
                        format!("{}'s prevResult is not the final ADD result", who(e)),
                        short(&fin, 300),
                        short(p, 300),
                    ))
                }
                Some(p) if p.get("cniVersion").is_some_and(|v| *v != want_version) => {
                    return Err(violation(
                        r,
                        Some(i),
                        runs,
                        format!("{}'s prevResult is not in the request's version", who(e)),
                        want_version.to_string(),
                        p["cniVersion"].to_string(),
                    ))
                }
                Some(_) => {}
            }
        }
    }
    if judged {
        Ok(())
    } else {
        Err(Outcome::Skip(format!(
            "the runtime sent no {verb} after a complete ADD at 0.4.0 or later"
        )))
    }
}

fn prev_check(runs: &[ScenarioRun]) -> Result<(), Outcome> {
    prev_final(runs, "CHECK")
}

fn prev_del(runs: &[ScenarioRun]) -> Result<(), Outcome> {
    prev_final(runs, "DEL")
}

fn same_attachment(runs: &[ScenarioRun]) -> Result<(), Outcome> {
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

fn env_vars(runs: &[ScenarioRun]) -> Result<(), Outcome> {
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

fn cni_path(runs: &[ScenarioRun]) -> Result<(), Outcome> {
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

fn netns_on_add(runs: &[ScenarioRun]) -> Result<(), Outcome> {
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

fn netns_on_del(runs: &[ScenarioRun]) -> Result<(), Outcome> {
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

fn plugin_netns(runs: &[ScenarioRun]) -> Result<(), Outcome> {
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

fn check_disabled(runs: &[ScenarioRun]) -> Result<(), Outcome> {
    for (r, run) in runs.iter().enumerate() {
        if run.scenario.purpose != Purpose::DisableCheck {
            continue;
        }
        if let Some((i, e)) = run.calls("CHECK").next() {
            return Err(violation(
                r,
                Some(i),
                runs,
                format!("{} was sent although disableCheck is true", who(e)),
                "no CHECK",
                "CHECK",
            ));
        }
    }
    Ok(())
}

fn check_version(runs: &[ScenarioRun]) -> Result<(), Outcome> {
    for (r, run) in runs.iter().enumerate() {
        for (i, e, v) in requests(run).filter(|(_, e, _)| e.command() == "CHECK") {
            let ver = v.get("cniVersion").and_then(Value::as_str).unwrap_or("0.1.0");
            if ver.parse::<SpecVersion>().is_ok_and(|x| !x.has_check()) {
                return Err(violation(
                    r,
                    Some(i),
                    runs,
                    format!("{} was sent for a {ver} configuration", who(e)),
                    "no CHECK below 0.4.0",
                    "CHECK",
                ));
            }
        }
    }
    Ok(())
}

fn check_lifecycle(runs: &[ScenarioRun]) -> Result<(), Outcome> {
    for (r, run) in runs.iter().enumerate() {
        // State per attachment: Some(true) after a complete successful ADD, false after DEL.
        let last = run.len().saturating_sub(1);
        let mut added = false;
        for (i, e) in run.attachment_calls() {
            match e.command() {
                "ADD" if run.index(e) == Some(last) && e.exit_code == 0 => added = true,
                "ADD" if e.exit_code != 0 => added = false,
                "DEL" => added = false,
                "CHECK" if !added => {
                    return Err(violation(
                        r,
                        Some(i),
                        runs,
                        format!(
                            "{} was sent for an attachment that was not (or no longer) added",
                            who(e)
                        ),
                        "CHECK only after a successful ADD and before DEL",
                        "CHECK",
                    ))
                }
                _ => {}
            }
        }
    }
    Ok(())
}

fn runtime_config(runs: &[ScenarioRun]) -> Result<(), Outcome> {
    for (r, run) in runs.iter().enumerate() {
        for (i, e, v) in requests(run) {
            let Some(rc) = v.get("runtimeConfig") else { continue };
            let Some(rc) = rc.as_object() else {
                return Err(violation(
                    r,
                    Some(i),
                    runs,
                    format!("{}: runtimeConfig is not an object", who(e)),
                    "an object",
                    short(rc, 200),
                ));
            };
            if matches!(e.command(), "GC" | "STATUS") && !rc.is_empty() {
                return Err(violation(
                    r,
                    Some(i),
                    runs,
                    format!("{} carried runtimeConfig", who(e)),
                    "no runtimeConfig on GC/STATUS",
                    short(&Value::Object(rc.clone()), 200),
                ));
            }
            let stored = run.stored(e).unwrap_or_default();
            let declared: Vec<&String> = stored
                .get("capabilities")
                .and_then(Value::as_object)
                .map(|c| {
                    c.iter()
                        .filter(|(_, on)| on.as_bool() == Some(true))
                        .map(|(k, _)| k)
                        .collect()
                })
                .unwrap_or_default();
            let extra: Vec<&String> = rc.keys().filter(|k| !declared.contains(k)).collect();
            if !extra.is_empty() {
                return Err(violation(
                    r,
                    Some(i),
                    runs,
                    format!("{} got runtimeConfig keys its plugin did not declare", who(e)),
                    format!(
                        "only declared capabilities: [{}]",
                        declared.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                    format!(
                        "undeclared: [{}]",
                        extra.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn capabilities_removed(runs: &[ScenarioRun]) -> Result<(), Outcome> {
    for (r, run) in runs.iter().enumerate() {
        for (i, e, v) in requests(run) {
            if let Some(c) = v.get("capabilities") {
                return Err(Outcome::Quirk(
                    Finding {
                        message: format!(
                            "scenario {}: {} still carried the capabilities key (libcni keeps it; the spec removes it)",
                            run.scenario.slug,
                            who(e)
                        ),
                        expected: Some("no capabilities key".into()),
                        seen: Some(short(c, 200)),
                    },
                    Blame { run: r, entry: Some(i) },
                ));
            }
        }
    }
    Ok(())
}

fn passthrough(runs: &[ScenarioRun]) -> Result<(), Outcome> {
    const INJECTED: [&str; 5] = ["name", "cniVersion", "capabilities", "runtimeConfig", "prevResult"];
    for (r, run) in runs.iter().enumerate() {
        for (i, e, v) in requests(run) {
            let Some(stored) = run.stored(e) else { continue };
            for (k, want) in stored.iter().filter(|(k, _)| !INJECTED.contains(&k.as_str())) {
                let got = v.get(k);
                if got != Some(want) {
                    let msg = if k == PROBE_KEY {
                        format!("{} did not get the plugin's own key {k} unchanged", who(e))
                    } else {
                        format!("{} did not get key {k} unchanged", who(e))
                    };
                    return Err(violation(
                        r,
                        Some(i),
                        runs,
                        msg,
                        short(want, 200),
                        got.map_or("absent".into(), |g| short(g, 200)),
                    ));
                }
            }
        }
    }
    Ok(())
}

fn stdin_schema(runs: &[ScenarioRun]) -> Result<(), Outcome> {
    for (r, run) in runs.iter().enumerate() {
        for (i, e, v) in requests(run) {
            let version = v.get("cniVersion").and_then(Value::as_str).unwrap_or("0.1.0");
            let kind = if e.command() == "GC" {
                DocKind::GcInput
            } else {
                DocKind::PluginConfig
            };
            let Ok(problems) = schema::validate(version, kind, &v) else {
                continue; // an unknown version is name-version-injected's finding
            };
            if let Some(p) = problems.first() {
                return Err(violation(
                    r,
                    Some(i),
                    runs,
                    format!("{}'s request does not match the {version} schema", who(e)),
                    format!("a valid {version} request"),
                    format!(
                        "{}: {} ({} problem(s))",
                        if p.path.is_empty() { "/" } else { &p.path },
                        p.message,
                        problems.len()
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn chain_stops(runs: &[ScenarioRun]) -> Result<(), Outcome> {
    let mut judged = false;
    for (r, run) in runs.iter().enumerate() {
        let adds: Vec<(usize, &Entry)> = run.calls("ADD").collect();
        for (n, (_, e)) in adds.iter().enumerate() {
            if e.exit_code == 0 {
                continue;
            }
            judged = true;
            if let Some((j, next)) = adds.get(n + 1) {
                let later = run.index(next).zip(run.index(e)).is_some_and(|(a, b)| a > b);
                if later {
                    return Err(violation(
                        r,
                        Some(*j),
                        runs,
                        format!("{} ran after {} failed", who(next), who(e)),
                        "the chain stops at the first failing ADD",
                        format!("ADD {} ran", next.plugin),
                    ));
                }
            }
        }
    }
    if judged {
        Ok(())
    } else {
        Err(Outcome::Skip(
            "no ADD failed (the failing-plugin scenario did not reach its failing plugin)".into(),
        ))
    }
}

fn del_after_failed(runs: &[ScenarioRun]) -> Result<(), Outcome> {
    let mut judged = false;
    for (r, run) in runs.iter().enumerate() {
        for (i, e) in run.calls("ADD").filter(|(_, e)| e.exit_code != 0) {
            judged = true;
            if !run.calls("DEL").any(|(j, _)| j > i) {
                return Err(violation(
                    r,
                    Some(i),
                    runs,
                    format!("no DEL followed the failed {}", who(e)),
                    "DEL of the list after the failed ADD",
                    "no DEL",
                ));
            }
        }
    }
    if judged {
        Ok(())
    } else {
        Err(Outcome::Skip("no ADD failed".into()))
    }
}

fn no_overlap(runs: &[ScenarioRun]) -> Result<(), Outcome> {
    for (r, run) in runs.iter().enumerate() {
        let ops: Vec<(usize, &Entry)> = run
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| matches!(e.command(), "ADD" | "DEL" | "CHECK" | "GC"))
            .collect();
        for (a, (i, x)) in ops.iter().enumerate() {
            for (j, y) in ops.iter().skip(a + 1) {
                let overlap = y.start_ns < x.end_ns && x.start_ns < y.end_ns;
                let same_container = x.var("CNI_CONTAINERID") == y.var("CNI_CONTAINERID");
                let gc = x.command() == "GC" || y.command() == "GC";
                if overlap && (same_container || gc) {
                    return Err(violation(
                        r,
                        Some(*j),
                        runs,
                        format!("{} ran while {} was still running", who(y), who(x)),
                        "one operation at a time per container; GC alone",
                        format!("entries {i} and {j} overlap"),
                    ));
                }
            }
        }
    }
    Ok(())
}

fn gc_status_version(runs: &[ScenarioRun]) -> Result<(), Outcome> {
    for (r, run) in runs.iter().enumerate() {
        for (i, e, v) in requests(run).filter(|(_, e, _)| matches!(e.command(), "GC" | "STATUS")) {
            let ver = v.get("cniVersion").and_then(Value::as_str).unwrap_or("0.1.0");
            if ver.parse::<SpecVersion>().is_ok_and(|x| !x.has_gc_status()) {
                return Err(violation(
                    r,
                    Some(i),
                    runs,
                    format!("{} was sent for a {ver} configuration", who(e)),
                    "GC/STATUS only at 1.1.0+",
                    e.command().to_string(),
                ));
            }
        }
    }
    Ok(())
}

/// `verb` never carries runtimeConfig or prevResult and runs in list order; GC must reach every
/// plugin even after one fails (`complete`), STATUS may stop at the first failure.
fn verb_order_and_clean(runs: &[ScenarioRun], verb: &str, complete: bool) -> Result<bool, Outcome> {
    let mut seen_any = false;
    for (r, run) in runs.iter().enumerate() {
        for (i, e, v) in requests(run).filter(|(_, e, _)| e.command() == verb) {
            seen_any = true;
            for k in ["runtimeConfig", "prevResult"] {
                if let Some(x) = v.get(k) {
                    return Err(violation(
                        r,
                        Some(i),
                        runs,
                        format!("{} carried {k}", who(e)),
                        format!("no {k}"),
                        short(x, 200),
                    ));
                }
            }
        }
    }
    if seen_any {
        order_rule(runs, verb, false, complete)?;
    }
    Ok(seen_any)
}

fn gc_request(runs: &[ScenarioRun]) -> Result<(), Outcome> {
    if !verb_order_and_clean(runs, "GC", true)? {
        return Err(Outcome::Skip("the runtime never sent GC".into()));
    }
    for (r, run) in runs.iter().enumerate() {
        for (i, e, v) in requests(run).filter(|(_, e, _)| e.command() == "GC") {
            if e.var("CNI_PATH").is_none_or(str::is_empty) {
                return Err(violation(
                    r,
                    Some(i),
                    runs,
                    format!("{} has no CNI_PATH", who(e)),
                    "CNI_PATH (required for GC)",
                    "unset",
                ));
            }
            let valid = v.get("cni.dev/valid-attachments");
            let legacy = v.get("cni.dev/attachments");
            let shape_ok = |x: &Value| {
                x.as_array().is_some_and(|a| {
                    a.iter().all(|o| {
                        o.get("containerID").is_some_and(Value::is_string)
                            && o.get("ifname").is_some_and(Value::is_string)
                    })
                })
            };
            match (valid, legacy) {
                (Some(x), _) if !shape_ok(x) => {
                    return Err(violation(r, Some(i), runs, format!("{}: cni.dev/valid-attachments has the wrong shape", who(e)), "[{\"containerID\",\"ifname\"}]", short(x, 200)))
                }
                (None, Some(_)) => {
                    return Err(Outcome::Quirk(
                        Finding {
                            message: format!(
                                "scenario {}: {} carried only cni.dev/attachments (the 1.1.0 tag's name), not cni.dev/valid-attachments",
                                run.scenario.slug,
                                who(e)
                            ),
                            expected: Some("cni.dev/valid-attachments".into()),
                            seen: Some("cni.dev/attachments".into()),
                        },
                        Blame { run: r, entry: Some(i) },
                    ))
                }
                _ => {}
            }
            if let Some((cid, ifname)) = live_attachment(run, i) {
                let listed = valid.and_then(Value::as_array).is_some_and(|a| {
                    a.iter().any(|o| {
                        o.get("containerID").and_then(Value::as_str) == Some(cid.as_str())
                            && o.get("ifname").and_then(Value::as_str) == Some(ifname.as_str())
                    })
                });
                if !listed {
                    return Err(violation(
                        r,
                        Some(i),
                        runs,
                        format!(
                            "{} ran while the container was attached, but did not list it as valid",
                            who(e)
                        ),
                        format!(
                            "cni.dev/valid-attachments containing {{\"containerID\":{cid:?},\"ifname\":{ifname:?}}}"
                        ),
                        valid.map_or("no cni.dev/valid-attachments".into(), |v| short(v, 200)),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The attachment that is live at entry `at` (completely ADDed and not DELeted since), if any.
fn live_attachment(run: &ScenarioRun, at: usize) -> Option<(String, String)> {
    let last = run.len().checked_sub(1)?;
    let mut live = None;
    for (i, e) in run.attachment_calls() {
        if i >= at {
            break;
        }
        match e.command() {
            "ADD" if e.exit_code == 0 && run.index(e) == Some(last) => {
                live = Some((
                    e.var("CNI_CONTAINERID").unwrap_or("").to_string(),
                    e.var("CNI_IFNAME").unwrap_or("").to_string(),
                ))
            }
            "DEL" => live = None,
            _ => {}
        }
    }
    live
}

fn gc_disabled(runs: &[ScenarioRun]) -> Result<(), Outcome> {
    if !runs.iter().any(|r| r.calls("GC").next().is_some()) {
        return Err(Outcome::Skip(
            "the runtime never sent GC, so disableGC is not exercised".into(),
        ));
    }
    for (r, run) in runs.iter().enumerate() {
        if run.scenario.purpose != Purpose::DisableGc {
            continue;
        }
        if let Some((i, e)) = run.calls("GC").next() {
            return Err(violation(
                r,
                Some(i),
                runs,
                format!("{} was sent although disableGC is true", who(e)),
                "no GC",
                "GC",
            ));
        }
    }
    Ok(())
}

fn status_request(runs: &[ScenarioRun]) -> Result<(), Outcome> {
    if verb_order_and_clean(runs, "STATUS", false)? {
        Ok(())
    } else {
        Err(Outcome::Skip("the runtime never sent STATUS".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invocation::{Exit, Record};
    use crate::runtime::scenario;
    use serde_json::json;

    fn entry(plugin: &str, verb: &str, at: u64, stdin: Value, stdout: Value) -> Entry {
        let env = [
            ("CNI_COMMAND", verb),
            ("CNI_CONTAINERID", "c1"),
            ("CNI_IFNAME", "eth0"),
            ("CNI_NETNS", "/run/netns/x"),
            ("CNI_PATH", "/bin"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        Entry {
            plugin: plugin.into(),
            argv: vec![plugin.into()],
            env,
            stdin: stdin.to_string(),
            stdout: if stdout.is_null() {
                String::new()
            } else {
                stdout.to_string()
            },
            stderr: String::new(),
            exit_code: 0,
            start_ns: at,
            end_ns: at + 1,
            pid: 1,
            netns: None,
            own_netns: None,
        }
    }

    fn chain_run(entries: Vec<Entry>) -> Vec<ScenarioRun> {
        let s = scenario::all().into_iter().find(|s| s.slug == "chain").unwrap();
        let command = Record {
            program: "rt".into(),
            command: "runtime".into(),
            env: vec![],
            stdin: String::new(),
            stdout: String::new(),
            stderr: String::new(),
            stdout_dropped: 0,
            stderr_dropped: 0,
            exit: Exit::Code(0),
            duration_ms: 0,
            notes: vec![],
        };
        vec![ScenarioRun {
            scenario: s,
            command,
            entries,
            log_error: None,
        }]
    }

    fn result(routes: usize) -> Value {
        let r: Vec<Value> = (0..routes).map(|i| json!({"dst": format!("10.{i}.0.0/16")})).collect();
        json!({"cniVersion":"1.0.0","interfaces":[{"name":"eth0"}],"ips":[{"address":"10.222.0.2/24"}],"routes": r})
    }

    #[test]
    fn order_and_prev_result_rules_read_the_log() {
        let add = |p: &str, at: u64, prev: Option<Value>, out: Value| {
            let mut stdin = json!({"name":"cnicf-chain","cniVersion":"1.0.0","type":p});
            if let Some(prev) = prev {
                stdin["prevResult"] = prev;
            }
            entry(p, "ADD", at, stdin, out)
        };
        let good_adds = vec![
            add("recorder-a", 10, None, result(1)),
            add("recorder-b", 20, Some(result(1)), result(2)),
            add("recorder-c", 30, Some(result(2)), result(3)),
        ];
        let del = |p: &str, at: u64| {
            entry(
                p,
                "DEL",
                at,
                json!({"name":"cnicf-chain","cniVersion":"1.0.0","type":p,"prevResult":result(3)}),
                Value::Null,
            )
        };
        let mut good = good_adds.clone();
        good.extend([del("recorder-c", 40), del("recorder-b", 50), del("recorder-a", 60)]);
        let runs = chain_run(good);
        assert_eq!(add_order(&runs), Ok(()));
        assert_eq!(del_order(&runs), Ok(()));
        assert_eq!(prev_chained(&runs), Ok(()));
        assert_eq!(prev_first(&runs), Ok(()));

        let mut forward = good_adds.clone();
        forward.extend([del("recorder-a", 40), del("recorder-b", 50), del("recorder-c", 60)]);
        assert!(matches!(del_order(&chain_run(forward)), Err(Outcome::Violation(..))));

        let mut stale = good_adds;
        stale[2] = add("recorder-c", 30, Some(result(1)), result(3));
        assert!(matches!(prev_chained(&chain_run(stale)), Err(Outcome::Violation(..))));
    }

    #[test]
    fn overlapping_calls_for_one_container_are_caught() {
        let mut a = entry("recorder-a", "CHECK", 10, json!({}), Value::Null);
        a.end_ns = 100;
        let b = entry("recorder-b", "CHECK", 50, json!({}), Value::Null);
        assert!(matches!(
            no_overlap(&chain_run(vec![a, b])),
            Err(Outcome::Violation(..))
        ));
    }
}
