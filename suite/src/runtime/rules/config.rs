//! Rules on the request configuration a plugin reads: name and cniVersion injected, the highest
//! version used, runtimeConfig and capabilities derived, plugin keys passed through, the schema.

use serde_json::Value;

use super::{requests, violation, who, Blame, Outcome};
use crate::case::Finding;
use crate::runtime::evidence::{short, ScenarioRun};
use crate::runtime::scenario::{Purpose, PROBE_KEY};
use crate::schema::{self, DocKind};
use crate::version::SpecVersion;

pub(super) fn name_version(runs: &[ScenarioRun]) -> Result<(), Outcome> {
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

pub(super) fn version_highest(runs: &[ScenarioRun]) -> Result<(), Outcome> {
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

pub(super) fn runtime_config(runs: &[ScenarioRun]) -> Result<(), Outcome> {
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

pub(super) fn capabilities_removed(runs: &[ScenarioRun]) -> Result<(), Outcome> {
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

pub(super) fn passthrough(runs: &[ScenarioRun]) -> Result<(), Outcome> {
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

pub(super) fn stdin_schema(runs: &[ScenarioRun]) -> Result<(), Outcome> {
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
