//! Rules on `prevResult`: none for the first ADD, the previous plugin's result down the chain,
//! the final ADD result for CHECK and DEL.

use serde_json::Value;

use super::order::rounds;
use super::{violation, who, Outcome};
use crate::runtime::evidence::{same_result, short, ScenarioRun};
use crate::version::SpecVersion;

pub(super) fn prev_first(runs: &[ScenarioRun]) -> Result<(), Outcome> {
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

pub(super) fn prev_chained(runs: &[ScenarioRun]) -> Result<(), Outcome> {
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

pub(super) fn prev_check(runs: &[ScenarioRun]) -> Result<(), Outcome> {
    prev_final(runs, "CHECK")
}

pub(super) fn prev_del(runs: &[ScenarioRun]) -> Result<(), Outcome> {
    prev_final(runs, "DEL")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::rules::fixtures::{chain_add, chain_run, good_chain, good_chain_adds, result};

    #[test]
    fn prev_result_rules_read_the_log() {
        let runs = chain_run(good_chain());
        assert_eq!(prev_chained(&runs), Ok(()));
        assert_eq!(prev_first(&runs), Ok(()));

        let mut stale = good_chain_adds();
        stale[2] = chain_add("recorder-c", 30, Some(result(1)), result(3));
        assert!(matches!(prev_chained(&chain_run(stale)), Err(Outcome::Violation(..))));
    }
}
