//! The command line end to end: bad input, reports, exit codes, unprivileged runs, host hygiene.

mod common;
mod harness;

use std::time::Duration;

use assert_cmd::Command as AssertCommand;
use common::{fixture, host_state, kill_at_progress, statuses, suite, tempdir, upstream, upstream_plugin};
use harness::Test;

fn assert_cmd() -> AssertCommand {
    AssertCommand::cargo_bin("cni-conformance").unwrap()
}

/// What `--list` prints.
fn list_text() -> String {
    let out = assert_cmd()
        .arg("--list")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    String::from_utf8(out).unwrap()
}

fn list_prints_area_slug_ids() {
    let text = list_text();
    let ids: Vec<&str> = text.lines().map(|l| l.split_whitespace().next().unwrap()).collect();
    assert!(ids.len() >= 10, "only {} cases", ids.len());
    let re = regex::Regex::new(r"^[a-z0-9]+/[a-z0-9-]+$").unwrap();
    assert!(ids.iter().all(|i| re.is_match(i)), "{ids:?}");
    insta::assert_snapshot!("case_list", text);
}

/// `--list --format json` is the same catalogue as the text list, each case with its spec
/// reference and links; JUnit has no list form and is refused.
fn list_as_json_matches_the_text_list() {
    let ids: Vec<String> = list_text()
        .lines()
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect();
    let json = assert_cmd()
        .args(["--list", "--format", "json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let list: Vec<serde_json::Value> = serde_json::from_slice(&json).unwrap();
    let json_ids: Vec<String> = list.iter().map(|c| c["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids, json_ids);
    for c in &list {
        assert!(c["level"] == "must" || c["level"] == "should", "{c}");
        assert!(!c["spec"].as_str().unwrap().is_empty(), "{c}");
        assert!(!c["links"].as_array().unwrap().is_empty(), "{c}");
    }
    let line = usage_error(&["--list", "--format", "junit"]);
    assert!(line.contains("--list"), "{line}");
}

/// Runs the CLI with `args`, expects exit 2 and exactly one line on stderr; returns that line.
fn usage_error(args: &[&str]) -> String {
    let out = assert_cmd().args(args).assert().code(2).get_output().clone();
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "want one line, got: {err}");
    assert!(out.stdout.is_empty());
    err.trim_end().to_string()
}

fn bad_input_exits_2_with_one_clear_line() {
    let dir = tempdir("bad-input");
    let not_exec = dir.join("bridge");
    std::fs::write(&not_exec, "#!/bin/sh\n").unwrap();
    let garbage = dir.join("garbage.json");
    std::fs::write(&garbage, "{ not json").unwrap();
    // Any executable does for these refusals; upstream's bridge when it is there.
    let plugin = upstream("bridge");
    let plugin = if plugin.is_file() {
        plugin.to_str().unwrap()
    } else {
        "/bin/true"
    };
    let lines = [
        usage_error(&["/nonexistent/plugin"]),
        usage_error(&[not_exec.to_str().unwrap()]),
        usage_error(&[dir.to_str().unwrap()]),
        usage_error(&["--config", "/nonexistent/conf.json", plugin]),
        usage_error(&["--config", garbage.to_str().unwrap(), plugin]),
        usage_error(&["/bin/true"]),
        usage_error(&["--timeout", "0", plugin]),
        usage_error(&["--filter", "(", plugin]),
    ];
    let shown: Vec<String> = lines
        .iter()
        .map(|l| l.replace(dir.to_str().unwrap(), "<tmp>"))
        .collect();
    insta::assert_snapshot!("bad_input", shown.join("\n"));
    let _ = std::fs::remove_dir_all(dir);
}

fn run_json(args: &[&str]) -> (i32, serde_json::Value) {
    let out = suite().args(args).args(["--format", "json"]).output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}); stderr: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap_or(-1), report)
}

fn upstream_bridge_passes_in_every_format() {
    let bridge = upstream("bridge");
    let bridge = bridge.to_str().unwrap();
    let dir = tempdir("formats");
    let json_file = dir.join("report.json");
    let (code, report) = run_json(&[bridge, "--output", json_file.to_str().unwrap()]);
    let st = statuses(&report);
    assert_eq!(code, 0, "statuses: {st:?}");
    assert!(st.values().all(|s| s != "fail"));
    assert!(
        st.get("add/result-matches-kernel").is_some_and(|s| s == "pass"),
        "{st:?}"
    );
    assert!(st.get("del/leaves-no-trace").is_some_and(|s| s == "pass"), "{st:?}");
    assert!(
        st.get("connectivity/container-to-gateway").is_some_and(|s| s == "pass"),
        "{st:?}"
    );
    assert!(report["summary"]["duration_ms"].as_u64().is_some());
    assert_eq!(report["tool"]["name"], "cni-conformance");
    assert!(report["plugin"]["versions"].as_array().is_some_and(|v| !v.is_empty()));
    let written: serde_json::Value = serde_json::from_slice(&std::fs::read(&json_file).unwrap()).unwrap();
    assert_eq!(
        written["cases"].as_array().unwrap().len(),
        report["cases"].as_array().unwrap().len()
    );

    let junit = suite().args([bridge, "--format", "junit"]).output().unwrap();
    assert_eq!(junit.status.code(), Some(0));
    let xml = String::from_utf8(junit.stdout).unwrap();
    assert!(xml.starts_with("<?xml"));
    assert_eq!(xml.matches("<testcase ").count(), st.len());
    assert!(!xml.contains("<failure"));

    let human = suite().args([bridge, "--jobs", "2"]).output().unwrap();
    assert_eq!(human.status.code(), Some(0));
    let text = String::from_utf8(human.stdout).unwrap();
    assert!(text.contains(" passed, 0 failed"), "{text}");
    let progress = String::from_utf8(human.stderr).unwrap();
    assert!(
        progress.contains(&format!("/{}] ", st.len())),
        "no progress on stderr: {progress}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

fn failures_print_expected_seen_and_the_invocation() {
    let dir = tempdir("human-failure");
    let plugin = dir.join("add-lies-mac");
    std::os::unix::fs::symlink(common::mutant_script(), &plugin).unwrap();
    let out = suite()
        .args([
            plugin.to_str().unwrap(),
            "--config",
            fixture("bridge.json").to_str().unwrap(),
            "--filter",
            "^add/result-matches-kernel$",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    for want in [
        "FAIL add/result-matches-kernel",
        "expected:",
        "seen:",
        "02:00:00:00:be:ef",
        "invocation:",
        "CNI_COMMAND=ADD",
        "stdin:",
        "stdout:",
        "stderr:",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

fn runs_unprivileged_as_nobody() {
    let bridge = upstream("bridge");
    if !nix_is_root() {
        eprintln!("running as non-root already: the plain run covers the unprivileged path");
    }
    let exe = env!("CARGO_BIN_EXE_cni-conformance");
    let out = std::process::Command::new("setpriv")
        .args([
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            exe,
            bridge.to_str().unwrap(),
            "--format",
            "json",
        ])
        .env("HOME", "/")
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no report as uid 65534 ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    let st = statuses(&report);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{st:?}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        st.get("connectivity/container-to-gateway").is_some_and(|s| s == "pass"),
        "{st:?}"
    );
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

fn host_is_unchanged_after_a_run_and_after_sigkill() {
    let bridge = upstream("bridge");
    let before = host_state();
    let ok = suite().arg(&bridge).output().unwrap();
    assert_eq!(ok.status.code(), Some(0));
    assert_eq!(before, host_state(), "a normal run changed the host");

    // Through a symlink in a directory of its own, so this run's plugin processes can be told
    // apart from those of tests running at the same time.
    let dir = tempdir("sigkill");
    let linked = dir.join("bridge");
    std::os::unix::fs::symlink(&bridge, &linked).unwrap();
    let mut cmd = suite();
    cmd.args([linked.to_str().unwrap(), "--cni-path", "/usr/lib/cni", "--jobs", "2"]);
    // Kill it in the middle of the run, once a few cases have finished.
    kill_at_progress(cmd, "[  3/", Duration::from_secs(20), || {});
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(before, host_state(), "a SIGKILLed run changed the host");
    let leftover = std::process::Command::new("pgrep")
        .args(["-f", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        leftover.stdout.is_empty(),
        "plugin processes survived: {}",
        String::from_utf8_lossy(&leftover.stdout)
    );
    let _ = std::fs::remove_dir_all(dir);
}

fn no_namespace_support_exits_2() {
    let bridge = upstream("bridge");
    // An unprivileged user where creating user namespaces is forbidden (max_user_namespaces=0 in
    // an enclosing user namespace, so the machine's own setting is untouched).
    let out = std::process::Command::new(fixture("nouserns.sh"))
        .args([env!("CARGO_BIN_EXE_cni-conformance"), bridge.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("cannot create a user namespace as uid 65534"), "{err}");
}

fn gateway_of_an_l2_only_network_is_skipped_not_failed() {
    // Without isGateway the IPAM gateway is a router outside the node: the lab has none, so the
    // case says why it cannot judge instead of blaming the plugin. With isGateway (the built-in
    // profile) the same case passes on upstream bridge (upstream_bridge_passes_in_every_format)
    // and fails a bridge that lies about its gateway (mutant add-lies-gateway).
    let bridge = upstream("bridge");
    let config = fixture("bridge-l2.conflist");
    let (code, report) = run_json(&[
        bridge.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--filter",
        "^connectivity/container-to-gateway$",
    ]);
    assert_eq!(code, 0);
    let case = &report["cases"][0];
    assert_eq!(case["status"], "skip", "{case}");
    assert!(case["message"].as_str().unwrap().contains("isGateway"), "{case}");
}

/// The main job (no plugin: the bundled reference pair) without the test packages: the upstream
/// plugins and the administration programs (`ip`, `nft`, `iptables`, `dnsmasq` in /usr/sbin) are
/// hidden behind empty tmpfs in a mount namespace of the test's own, and `PATH` names nothing, so
/// no program of the machine can be found. The reference plugins and the suite need none.
fn the_bundled_run_needs_no_system_package() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let script = format!(
        "for d in /usr/lib/cni /usr/sbin; do [ -d $d ] && mount -t tmpfs none $d; done; \
         exec /usr/bin/env -i PATH=/nonexistent CARGO={cargo} {} --format json",
        env!("CARGO_BIN_EXE_cni-conformance")
    );
    let out = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let reports: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    for report in reports.as_array().unwrap() {
        let st = statuses(report);
        let failed: Vec<&String> = st
            .iter()
            .filter(|(_, s)| *s == "fail" || *s == "warn")
            .map(|(id, _)| id)
            .collect();
        assert!(failed.is_empty(), "{}: {failed:?}", report["plugin"]["path"]);
        assert!(
            st.values().filter(|s| *s == "pass").count() > 40,
            "{}",
            report["plugin"]["path"]
        );
    }
}

fn main() {
    harness::run(vec![
        Test::new(
            "the_bundled_run_needs_no_system_package",
            the_bundled_run_needs_no_system_package,
        ),
        Test::new("list_prints_area_slug_ids", list_prints_area_slug_ids),
        Test::new("list_as_json_matches_the_text_list", list_as_json_matches_the_text_list),
        Test::new(
            "bad_input_exits_2_with_one_clear_line",
            bad_input_exits_2_with_one_clear_line,
        ),
        Test::new(
            "upstream_bridge_passes_in_every_format",
            upstream_bridge_passes_in_every_format,
        )
        .needs(upstream_plugin("bridge")),
        Test::new(
            "failures_print_expected_seen_and_the_invocation",
            failures_print_expected_seen_and_the_invocation,
        )
        .needs(upstream_plugin("bridge")),
        Test::new("runs_unprivileged_as_nobody", runs_unprivileged_as_nobody).needs(upstream_plugin("bridge")),
        Test::new(
            "host_is_unchanged_after_a_run_and_after_sigkill",
            host_is_unchanged_after_a_run_and_after_sigkill,
        )
        .needs(upstream_plugin("bridge")),
        Test::new("no_namespace_support_exits_2", no_namespace_support_exits_2).needs(upstream_plugin("bridge")),
        Test::new(
            "gateway_of_an_l2_only_network_is_skipped_not_failed",
            gateway_of_an_l2_only_network_is_skipped_not_failed,
        )
        .needs(upstream_plugin("bridge")),
    ])
}
