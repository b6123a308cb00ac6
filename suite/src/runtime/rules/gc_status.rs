//! Rules on GC and STATUS (1.1.0): the versions they are sent for, what GC carries, disableGC.

use serde_json::Value;

use super::order::order_rule;
use super::{requests, violation, who, Blame, Outcome};
use crate::case::Finding;
use crate::runtime::evidence::{short, ScenarioRun};
use crate::runtime::scenario::Purpose;
use crate::version::SpecVersion;

pub(super) fn gc_status_version(runs: &[ScenarioRun]) -> Result<(), Outcome> {
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

pub(super) fn gc_request(runs: &[ScenarioRun]) -> Result<(), Outcome> {
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

pub(super) fn gc_disabled(runs: &[ScenarioRun]) -> Result<(), Outcome> {
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

pub(super) fn status_request(runs: &[ScenarioRun]) -> Result<(), Outcome> {
    if verb_order_and_clean(runs, "STATUS", false)? {
        Ok(())
    } else {
        Err(Outcome::Skip("the runtime never sent STATUS".into()))
    }
}
