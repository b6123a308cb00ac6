//! `runtime/no-process-left`: the runtime command attaches and detaches a container and ends;
//! whatever it started is gone by then. Each run of the command is followed by a sweep of its lab
//! (see [`crate::invocation`]); what the sweep had to kill, or a descendant that kept the
//! command's output open, is noted in the command's record.

use super::evidence::ScenarioRun;
use super::rules::{Blame, Outcome, Rule};
use crate::case::{Finding, Level};

/// Notes of a record that say the command did not end cleanly.
const UNCLEAN: &[&str] = &[
    "processes were still running in the lab",
    "stdout/stderr still held open",
];

/// The rule.
pub const NO_PROCESS_LEFT: Rule = Rule {
    id: "runtime/no-process-left",
    title: "the runtime command leaves no process running (no daemon, no descendant holding its output) when it ends",
    level: Level::Should,
    spec: r#"docs/lab.md#what-the-report-shows (what a runtime command may leave in its lab)"#,
    body: no_process_left,
};

fn no_process_left(runs: &[ScenarioRun]) -> Result<(), Outcome> {
    for (i, run) in runs.iter().enumerate() {
        let unclean: Vec<&String> = run
            .command
            .notes
            .iter()
            .filter(|n| UNCLEAN.iter().any(|u| n.starts_with(u)))
            .collect();
        if !unclean.is_empty() {
            return Err(Outcome::Violation(
                Finding {
                    message: format!(
                        "scenario {}: the runtime command left processes running in its lab (the suite killed them)",
                        run.scenario.slug
                    ),
                    expected: Some("every process the command started has ended when it exits".into()),
                    seen: Some(unclean.iter().map(|n| n.as_str()).collect::<Vec<_>>().join("; ")),
                },
                Blame { run: i, entry: None },
            ));
        }
    }
    Ok(())
}
