//! Rules on when CHECK may be sent: not when disabled, not below 0.4.0, only between ADD and DEL.

use serde_json::Value;

use super::{requests, violation, who, Outcome};
use crate::runtime::evidence::ScenarioRun;
use crate::runtime::scenario::Purpose;
use crate::version::SpecVersion;

pub(super) fn check_disabled(runs: &[ScenarioRun]) -> Result<(), Outcome> {
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

pub(super) fn check_version(runs: &[ScenarioRun]) -> Result<(), Outcome> {
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

pub(super) fn check_lifecycle(runs: &[ScenarioRun]) -> Result<(), Outcome> {
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
