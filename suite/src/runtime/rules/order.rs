//! Rules on the order in which ADD, CHECK and DEL reach the plugins of a list.

use super::{violation, Outcome};
use crate::runtime::evidence::ScenarioRun;

/// Splits one verb's calls into rounds: a new round starts whenever the expected next position
/// does not follow (forward) or precede (reverse) the last one.
pub(super) fn rounds(run: &ScenarioRun, verb: &str, reverse: bool) -> Vec<Vec<(usize, Option<usize>)>> {
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

pub(super) fn order_rule(runs: &[ScenarioRun], verb: &str, reverse: bool, complete: bool) -> Result<(), Outcome> {
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

pub(super) fn add_order(runs: &[ScenarioRun]) -> Result<(), Outcome> {
    order_rule(runs, "ADD", false, true)
}

pub(super) fn del_order(runs: &[ScenarioRun]) -> Result<(), Outcome> {
    order_rule(runs, "DEL", true, true)
}

pub(super) fn check_order(runs: &[ScenarioRun]) -> Result<(), Outcome> {
    order_rule(runs, "CHECK", false, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::rules::fixtures::{chain_del, chain_run, good_chain, good_chain_adds};

    #[test]
    fn order_rules_read_the_log() {
        let runs = chain_run(good_chain());
        assert_eq!(add_order(&runs), Ok(()));
        assert_eq!(del_order(&runs), Ok(()));

        let mut forward = good_chain_adds();
        forward.extend([
            chain_del("recorder-a", 40),
            chain_del("recorder-b", 50),
            chain_del("recorder-c", 60),
        ]);
        assert!(matches!(del_order(&chain_run(forward)), Err(Outcome::Violation(..))));
    }
}
