//! Rules on the lifecycle as a whole: the runtime command attaches and detaches, a failed ADD
//! stops the chain and is followed by DEL, and calls for one container never overlap.

use super::{violation, who, Outcome};
use crate::runtime::evidence::ScenarioRun;
use crate::runtime::log::Entry;
use crate::runtime::scenario::Purpose;

pub(super) fn attach_detach(runs: &[ScenarioRun]) -> Result<(), Outcome> {
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

pub(super) fn chain_stops(runs: &[ScenarioRun]) -> Result<(), Outcome> {
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

pub(super) fn del_after_failed(runs: &[ScenarioRun]) -> Result<(), Outcome> {
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

pub(super) fn no_overlap(runs: &[ScenarioRun]) -> Result<(), Outcome> {
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

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::runtime::rules::fixtures::{chain_run, entry};

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
