//! Self-test by mutation: every case is failed by at least one deliberately broken plugin
//! (`tests/mutants/m_<area>.py` hold them, one file per catalogue area; `mutant.py` runs them and
//! prints the table), and the unmodified upstream plugin fails none.

mod common;
mod harness;

use std::collections::BTreeSet;

use common::{fixture, mutant_script, reference_plugins, statuses, suite, tempdir, upstream, upstream_plugin};
use harness::Test;

/// One row of the mutant table.
struct Row {
    name: String,
    case: String,
    want: String,
    config: String,
    uses_reference: bool,
}

fn table() -> Vec<Row> {
    let out = std::process::Command::new(mutant_script())
        .arg("--table")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Vec<&str> = l.split_whitespace().collect();
            Row {
                name: v[0].into(),
                case: v[1].into(),
                want: v[2].into(),
                config: v[3].into(),
                uses_reference: v[4] == "yes",
            }
        })
        .collect()
}

fn every_case_is_killed_by_a_mutant() {
    let out = suite().arg("--list").output().unwrap();
    let ids: BTreeSet<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect();
    let killed: BTreeSet<String> = table().into_iter().map(|r| r.case).collect();
    let unkilled: Vec<&String> = ids.difference(&killed).collect();
    assert!(unkilled.is_empty(), "cases no mutant fails: {unkilled:?}");
}

fn each_mutant_is_caught_by_its_case() {
    let dir = tempdir("mutants");
    let rows = table();
    let reference = rows.iter().any(|r| r.uses_reference).then(reference_plugins);
    let mut missed = Vec::new();
    for chunk in rows.chunks(4) {
        std::thread::scope(|s| {
            let handles: Vec<_> = chunk
                .iter()
                .map(
                    |Row {
                         name,
                         case,
                         want,
                         config,
                         uses_reference,
                     }| {
                        let plugin = dir.join(name);
                        // Delegates and chain members come from the reference build when the mutant
                        // wraps a reference plugin, so the whole network speaks 1.1.0.
                        let cni_path = match (&reference, uses_reference) {
                            (Some(r), true) => format!("{}:{}:/usr/lib/cni", dir.display(), r.display()),
                            _ => format!("{}:/usr/lib/cni", dir.display()),
                        };
                        std::os::unix::fs::symlink(mutant_script(), &plugin).unwrap();
                        s.spawn(move || {
                            let out = suite()
                                .args([plugin.to_str().unwrap(), "--config", fixture(config).to_str().unwrap()])
                                .args(["--cni-path", &cni_path, "--timeout", "5"])
                                .args(["--filter", &format!("^{case}$"), "--format", "json", "--jobs", "1"])
                                .output()
                                .unwrap();
                            let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
                            let got = statuses(&report)
                                .get(case.as_str())
                                .cloned()
                                .unwrap_or_else(|| "absent".into());
                            let want_code = if want == "fail" { 1 } else { 0 };
                            (
                                name.clone(),
                                case.clone(),
                                want.clone(),
                                got,
                                out.status.code() == Some(want_code),
                            )
                        })
                    },
                )
                .collect();
            for h in handles {
                let (name, case, want, got, code_ok) = h.join().unwrap();
                if got != want || !code_ok {
                    missed.push(format!(
                        "{name}: {case} was {got}, want {want} (exit code ok: {code_ok})"
                    ));
                }
            }
        });
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(missed.is_empty(), "mutants not caught:\n{}", missed.join("\n"));
}

/// The upstream plugins judged unmodified. loopback and sbr are left out on purpose: they have
/// real must-level findings (loopback prints 1.0.0-shaped results for 0.x requests; sbr's DEL
/// fails when the interface is gone).
const UNMODIFIED: [&str; 9] = [
    "bridge",
    "ptp",
    "host-local",
    "static",
    "macvlan",
    "tuning",
    "portmap",
    "bandwidth",
    "firewall",
];

fn unmodified_upstream_plugins_raise_no_must_failure() {
    for name in UNMODIFIED {
        let p = upstream(name);
        let out = suite()
            .args([p.to_str().unwrap(), "--format", "json"])
            .output()
            .unwrap();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let failed: Vec<String> = statuses(&report)
            .into_iter()
            .filter(|(_, s)| s == "fail")
            .map(|(id, _)| id)
            .collect();
        assert!(
            failed.is_empty() && out.status.code() == Some(0),
            "{name}: failed {failed:?}"
        );
    }
}

fn main() {
    let unmodified = UNMODIFIED.iter().fold(
        Test::new(
            "unmodified_upstream_plugins_raise_no_must_failure",
            unmodified_upstream_plugins_raise_no_must_failure,
        ),
        |test, name| test.needs(upstream_plugin(name)),
    );
    harness::run(vec![
        Test::new("every_case_is_killed_by_a_mutant", every_case_is_killed_by_a_mutant),
        Test::new("each_mutant_is_caught_by_its_case", each_mutant_is_caught_by_its_case)
            .needs(upstream_plugin("bridge")),
        unmodified,
    ])
}
