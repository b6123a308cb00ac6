//! Helpers shared by the CLI integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::Need;

/// Debian's upstream plugins.
pub const UPSTREAM: &str = "/usr/lib/cni";

/// An upstream plugin as something a test needs (see `harness::Need`): missing, the test fails
/// with the install command, or is ignored with the reason when CNI_CONFORMANCE_SKIP_UPSTREAM=1.
pub fn upstream_plugin(name: &str) -> Need {
    let path = Path::new(UPSTREAM).join(name);
    Need::new(
        path.display().to_string(),
        path.is_file(),
        "apt-get install containernetworking-plugins",
        "CNI_CONFORMANCE_SKIP_UPSTREAM",
    )
}

/// Path to an upstream plugin; a test that calls it declares `upstream_plugin(name)` as a need,
/// so the harness has made sure it is there.
pub fn upstream(name: &str) -> PathBuf {
    Path::new(UPSTREAM).join(name)
}

/// The suite binary built by cargo for this test run.
pub fn suite() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cni-conformance"))
}

/// A fixture file path.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// The mutant script.
pub fn mutant_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mutants/mutant.py")
}

/// A fresh directory under /tmp that any user can read.
pub fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cni-conformance-{tag}-{}-{}", std::process::id(), nanos()));
    std::fs::create_dir_all(&d).unwrap();
    let _ = Command::new("chmod").arg("0755").arg(&d).status();
    d
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// Parses a JSON report and returns (case id -> status).
pub fn statuses(report: &serde_json::Value) -> std::collections::BTreeMap<String, String> {
    report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The machine's own network state, as text, to prove a run left it unchanged.
pub fn host_state() -> String {
    let run = |args: &[&str]| {
        let out = Command::new(args[0]).args(&args[1..]).output();
        match out {
            Ok(o) => String::from_utf8_lossy(&o.stdout).into_owned(),
            Err(e) => format!("{} unavailable: {e}", args[0]),
        }
    };
    let mut s = String::new();
    s += &run(&["ip", "-o", "link", "show"]);
    s += &run(&["ip", "-o", "addr", "show"]);
    s += &run(&["ip", "route", "show", "table", "all"]);
    s += &run(&["ip", "-6", "route", "show", "table", "all"]);
    s += &run(&["ip", "netns", "list"]);
    s += &run(&["nft", "list", "ruleset"]);
    // iptables-save prints counters and a timestamp; keep only rules and chain names.
    for tool in ["iptables-save", "ip6tables-save", "iptables-legacy-save"] {
        let text = run(&[tool]);
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let line = line.split(" [").next().unwrap_or(line);
            s += line;
            s.push('\n');
        }
    }
    // Link statistics and operstate can change on their own; drop them.
    s.lines()
        .map(|l| {
            l.split(" link/")
                .next()
                .unwrap_or(l)
                .replace("state UP", "")
                .replace("state DOWN", "")
                .replace("state UNKNOWN", "")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Builds this workspace's reference plugins (release) into target/mutant-reference and returns
/// the directory holding `bridge` and `host-local`. A target dir of its own keeps the build from
/// waiting on the lock of the running `cargo test`.
pub fn reference_plugins() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let target = root.join("target/mutant-reference");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "cni-reference-plugins",
            "--target-dir",
        ])
        .arg(&target)
        .current_dir(&root)
        .status()
        .unwrap();
    assert!(status.success(), "building the reference plugins failed");
    target.join("release")
}

/// Starts `cmd` (the suite, progress on stderr), waits until a progress line starts with
/// `progress` (or `limit` passed), runs `meanwhile` while the run still goes, then SIGKILLs it and
/// reaps it: a run killed half way.
pub fn kill_at_progress(mut cmd: Command, progress: &str, limit: std::time::Duration, meanwhile: impl FnOnce()) {
    use std::io::{BufRead, BufReader};
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let start = std::time::Instant::now();
    while let Some(Ok(line)) = lines.next() {
        if line.starts_with(progress) || start.elapsed() > limit {
            break;
        }
    }
    meanwhile();
    child.kill().unwrap();
    let _ = child.wait();
}
