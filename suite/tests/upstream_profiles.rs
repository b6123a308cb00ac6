//! The built-in profiles of Debian's upstream `dhcp` and `host-device` plugins: the whole suite
//! judges them with exit 0 and real passes, and the labs they need (a DHCP server, the dhcp
//! daemon, a spare device) work and vanish with the lab.

mod common;
mod harness;

use std::path::Path;
use std::time::Duration;

use cni_conformance::case::{Ctx, Target, Verdict};
use cni_conformance::profile;
use common::{host_state, statuses, suite, upstream, upstream_plugin};
use harness::{Need, Test};

fn run_json(args: &[&str], path_env: Option<&str>) -> (i32, serde_json::Value, String) {
    let mut cmd = suite();
    cmd.args(args).args(["--format", "json"]);
    if let Some(p) = path_env {
        cmd.env("PATH", p);
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("no JSON report ({e}); stderr: {stderr}"));
    (out.status.code().unwrap_or(-1), report, stderr)
}

/// The cases that did not pass, with their finding, for assertion messages.
fn not_passed(report: &serde_json::Value) -> String {
    report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] != "pass")
        .map(|c| format!("{} {}: {}\n", c["status"], c["id"], c["message"]))
        .collect()
}

fn assert_passes(st: &std::collections::BTreeMap<String, String>, ids: &[&str], report: &serde_json::Value) {
    for id in ids {
        assert_eq!(
            st.get(*id).map(String::as_str),
            Some("pass"),
            "{id} did not pass; not passed:\n{}",
            not_passed(report)
        );
    }
}

/// dnsmasq, the DHCP server of the dhcp profile's lab.
fn dnsmasq() -> Need {
    Need::program("dnsmasq", "dnsmasq-base", "CNI_CONFORMANCE_SKIP_UPSTREAM")
}

/// Processes whose command line mentions `needle`, other than the one looking.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let me = std::process::id().to_string();
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) || name == me {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) {
            out.push(format!("{name}: {cmdline}"));
        }
    }
    out
}

fn upstream_dhcp_passes_with_a_real_dhcp_server() {
    let dhcp = upstream("dhcp");
    let before = host_state();
    let (code, report, stderr) = run_json(&[dhcp.to_str().unwrap()], None);
    let st = statuses(&report);
    assert_eq!(code, 0, "stderr: {stderr}\nnot passed:\n{}", not_passed(&report));
    assert!(st.values().all(|s| s != "fail"), "{}", not_passed(&report));
    assert_eq!(report["plugin"]["kind"], "ipam");
    assert_passes(
        &st,
        &[
            "add/result-schema",
            "check/after-add",
            "matrix/add-check-del",
            "del/leaves-no-trace",
            "del/idempotent",
            "error/non-json-stdin",
            // The lab's own DHCP server and plugin daemon are not the plugin's leftovers.
            "safety/exits-cleanly",
        ],
        &report,
    );
    // 32 parallel ADDs get 32 different leases from the lab's server.
    assert_passes(&st, &["ipam/unique-parallel"], &report);
    // Cases that carve a small range out of the configuration cannot do so with DHCP: they say so.
    let message = report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "ipam/no-leak-cycles")
        .map(|c| c["message"].to_string())
        .unwrap();
    assert_eq!(st["ipam/no-leak-cycles"], "skip");
    assert!(message.contains("dhcp"), "{message}");
    assert_eq!(before, host_state(), "the dhcp run changed the host");
    let left = processes_mentioning("dnsmasq.leases");
    assert!(left.is_empty(), "DHCP servers outlived the run: {left:?}");
}

fn dhcp_without_dnsmasq_is_unavailable_with_the_package_name() {
    let dhcp = upstream("dhcp");
    // A PATH that holds no dnsmasq (the suite needs nothing else from PATH for this).
    let (code, report, stderr) = run_json(&[dhcp.to_str().unwrap()], Some("/nonexistent"));
    assert_eq!(code, 0, "stderr: {stderr}");
    let cases = report["cases"].as_array().unwrap();
    let version_cases = cases
        .iter()
        .filter(|c| c["id"].as_str().unwrap().starts_with("version/"));
    assert!(cases.len() > 10);
    for c in cases {
        assert_eq!(c["status"], "skip", "{c}");
        assert!(c["message"].as_str().unwrap().contains("dnsmasq-base"), "{c}");
    }
    assert!(version_cases.count() >= 4);
}

/// DEL cases upstream host-device 1.1.1 fails: its DEL looks the device up in the container and
/// fails when it is not there (a second DEL, a DEL without ADD, a DEL after the netns is gone)
/// and, after a failed ADD, tries to move out an interface it never moved in. The spec makes DEL
/// of an attachment whose interface is already gone succeed (MUST), so these are real findings.
const HOST_DEVICE_1_1_1_DEL_FAILURES: &[&str] = &[
    "del/after-failed-add",
    "del/idempotent",
    "del/netns-gone",
    "del/without-add",
];

fn upstream_host_device_is_judged_with_a_lab_device() {
    let hd = upstream("host-device");
    let before = host_state();
    let (code, report, stderr) = run_json(&[hd.to_str().unwrap()], None);
    let st = statuses(&report);
    assert_passes(
        &st,
        &[
            "add/result-matches-kernel",
            "add/interface-exists",
            "check/after-add",
            "check/missing-interface",
            "matrix/add-check-del",
            "del/leaves-no-trace",
            "del/without-prevresult-leaves-no-trace",
            "connectivity/container-to-gateway",
            "connectivity/host-to-container",
            // The device comes back under its name (down, which is host-device's choice).
            "del/host-state-kept",
        ],
        &report,
    );
    let failed: Vec<&str> = st
        .iter()
        .filter(|(_, s)| *s == "fail")
        .map(|(id, _)| id.as_str())
        .collect();
    assert_eq!(
        failed,
        HOST_DEVICE_1_1_1_DEL_FAILURES,
        "not passed:\n{}",
        not_passed(&report)
    );
    for c in report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "fail")
    {
        let msg = c["message"].as_str().unwrap();
        assert!(msg.starts_with("DEL"), "{c}");
    }
    assert_eq!(code, 1, "stderr: {stderr}");
    // One device: cases that need two attachments say so instead of failing.
    assert!(st["connectivity/container-to-container"] == "skip");
    assert_eq!(before, host_state(), "the host-device run changed the host");
}

/// A target for a built-in profile of an upstream plugin, as plugin mode builds it.
fn target(plugin: &Path) -> Target {
    let name = plugin.file_name().unwrap().to_string_lossy().into_owned();
    let mut t = Target {
        plugin: plugin.to_path_buf(),
        plugin_name: name.clone(),
        cni_path: vec![plugin.parent().unwrap().to_path_buf()],
        profile: profile::builtin(&name).unwrap(),
        supported: Vec::new(),
        version: None,
        common_versions: Vec::new(),
        timeout: Duration::from_secs(30),
        strict: false,
        path_env: std::env::var("PATH").unwrap(),
        hangs: Default::default(),
        add_premise: Default::default(),
    };
    cni_conformance::preflight::versions(&mut t).unwrap();
    t
}

/// The lab's DHCP server hands out a lease on ADD and, after DEL, holds it no more; the daemon
/// and the server die with the lab.
fn dhcp_lab_leases_follow_add_and_del_and_die_with_the_lab() {
    let dhcp = upstream("dhcp");
    assert!(
        std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0")),
        "this test builds labs in-process and needs root (the CLI tests cover unprivileged runs)"
    );
    let t = target(&dhcp);
    let mut ctx = Ctx::new(&t).unwrap();
    assert!(ctx.lab.dhcp_leases().unwrap().is_empty());
    let logs = ctx.lab.service_logs();
    assert_eq!(logs.len(), 2, "{logs:?}");
    let pids: Vec<String> = logs
        .iter()
        .map(|l| l.split("(pid ").nth(1).unwrap().split(')').next().unwrap().to_string())
        .collect();
    for pid in &pids {
        assert!(Path::new("/proc").join(pid).exists(), "service {pid} is not running");
    }

    let att = ctx.attachment().unwrap();
    let added = ctx.add(&att).unwrap();
    let leases = ctx.lab.dhcp_leases().unwrap();
    assert_eq!(leases.len(), 1, "{leases:?}");
    let ip = added.result["ips"][0]["address"].as_str().unwrap().to_string();
    let ip = ip.split('/').next().unwrap();
    assert!(leases[0].contains(&format!("lease {ip} ")), "{leases:?} vs {ip}");
    assert!(ip.starts_with("10.91.0."), "{ip}");

    ctx.del(&att, Some(&added.result)).unwrap();
    // The daemon sends DHCPRELEASE when it stops the lease; give the server a moment.
    let mut leases = ctx.lab.dhcp_leases().unwrap();
    for _ in 0..100 {
        if leases.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
        leases = ctx.lab.dhcp_leases().unwrap();
    }
    assert!(leases.is_empty(), "lease kept after DEL: {leases:?}");

    // A failing ADD shows what the daemon said: here the interface is gone before the ADD.
    let broken = ctx.attachment_named("net1").unwrap();
    let rtnl = ctx.lab.container_rtnl(&broken.container).unwrap();
    rtnl.delete_link(rtnl.index_of("net1").unwrap()).unwrap();
    match ctx.add(&broken) {
        Err(Verdict::Violation(f)) => {
            let seen = f.seen.unwrap_or_default();
            assert!(seen.contains("dhcp-daemon (pid "), "{seen}");
            assert!(seen.contains("dnsmasq (pid "), "{seen}");
        }
        other => panic!("ADD without the interface: {other:?}"),
    }

    drop(ctx);
    for pid in &pids {
        let status = std::fs::read_to_string(Path::new("/proc").join(pid).join("status")).unwrap_or_default();
        assert!(status.is_empty(), "service {pid} outlived its lab: {status}");
    }
}

/// Parent pid and state of a process, from /proc (None once it is gone).
fn ppid_and_state(pid: &str) -> Option<(String, String)> {
    let status = std::fs::read_to_string(Path::new("/proc").join(pid).join("status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("")
            .to_string()
    };
    Some((field("PPid:"), field("State:")))
}

/// A SIGKILLed suite leaves no DHCP server and no dhcp daemon running.
fn sigkill_of_the_suite_kills_the_lab_services() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let dhcp = upstream("dhcp");
    let mut child = suite()
        .args([dhcp.to_str().unwrap(), "--jobs", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let suite_pid = child.id().to_string();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    // Wait until cases with labs are running, then look for the suite's service children.
    let start = std::time::Instant::now();
    let mut services: Vec<String> = Vec::new();
    while let Some(Ok(_)) = lines.next() {
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let pid = entry.file_name().to_string_lossy().into_owned();
            let Some((ppid, _)) = ppid_and_state(&pid) else {
                continue;
            };
            let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            if ppid == suite_pid && (comm.trim() == "dnsmasq" || comm.trim() == "dhcp") && !services.contains(&pid) {
                // A plugin invocation is also called dhcp: only daemons have "daemon" as argument.
                let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
                if comm.trim() == "dnsmasq" || cmdline.ends_with(b"daemon\0") {
                    services.push(pid);
                }
            }
        }
        if services.len() >= 2 || start.elapsed() > Duration::from_secs(30) {
            break;
        }
    }
    assert!(services.len() >= 2, "saw no lab services of the running suite");
    child.kill().unwrap();
    let _ = child.wait();
    std::thread::sleep(Duration::from_millis(500));
    for pid in &services {
        if let Some((_, state)) = ppid_and_state(pid) {
            assert_eq!(state, "Z", "lab service {pid} survived the SIGKILLed suite");
        }
    }
}

fn main() {
    harness::run(vec![
        Test::new(
            "upstream_dhcp_passes_with_a_real_dhcp_server",
            upstream_dhcp_passes_with_a_real_dhcp_server,
        )
        .needs(upstream_plugin("dhcp"))
        .needs(dnsmasq()),
        Test::new(
            "dhcp_without_dnsmasq_is_unavailable_with_the_package_name",
            dhcp_without_dnsmasq_is_unavailable_with_the_package_name,
        )
        .needs(upstream_plugin("dhcp")),
        Test::new(
            "upstream_host_device_is_judged_with_a_lab_device",
            upstream_host_device_is_judged_with_a_lab_device,
        )
        .needs(upstream_plugin("host-device")),
        Test::new(
            "dhcp_lab_leases_follow_add_and_del_and_die_with_the_lab",
            dhcp_lab_leases_follow_add_and_del_and_die_with_the_lab,
        )
        .needs(upstream_plugin("dhcp"))
        .needs(dnsmasq()),
        Test::new(
            "sigkill_of_the_suite_kills_the_lab_services",
            sigkill_of_the_suite_kills_the_lab_services,
        )
        .needs(upstream_plugin("dhcp"))
        .needs(dnsmasq()),
    ])
}
