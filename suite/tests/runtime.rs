//! Runtime mode end to end: the control runtime (`cni-conformance invoke`) passes; hand-written
//! runtimes that each break one rule are caught; real runtimes (podman, containerd) are judged
//! when installed.

mod common;
mod harness;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{host_state, statuses, suite, tempdir, upstream, upstream_plugin};
use harness::{Need, Test};

fn runtimes_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/runtimes")
}

/// Runs runtime mode on `cmd` with extra options; returns (exit code, JSON report).
fn judge(opts: &[&str], cmd: &[&str]) -> (i32, serde_json::Value) {
    let out = suite()
        .arg("runtime")
        .args(["--format", "json"])
        .args(opts)
        .arg("--")
        .args(cmd)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}); exit {:?}; stderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), report)
}

fn control() -> Vec<String> {
    vec![
        "sh".into(),
        runtimes_dir().join("invoke-runtime.sh").display().to_string(),
    ]
}

fn control_runtime_passes_every_rule_and_leaves_the_host_alone() {
    let before = host_state();
    let cmd = control();
    let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
    let (code, report) = judge(&["--strict"], &cmd);
    let st = statuses(&report);
    let (kubernetes, general): (Vec<_>, Vec<_>) = st.iter().partition(|(k, _)| k.starts_with("kubernetes/"));
    let not_passed: Vec<_> = general.iter().filter(|(_, s)| *s != "pass").collect();
    assert!(not_passed.is_empty(), "{not_passed:?}\n{report:#}");
    // It passes kubelet's K8S_POD_* arguments but is no CRI runtime: no record, so every
    // Kubernetes rule skips (never passes) and says why.
    assert!(kubernetes.len() >= 7, "{kubernetes:?}");
    assert!(kubernetes.iter().all(|(_, s)| *s == "skip"), "{kubernetes:?}");
    assert!(report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"].as_str().unwrap().starts_with("kubernetes/"))
        .all(|c| c["message"].as_str().unwrap().contains("no CRI record")));
    assert_eq!(code, 0);
    assert!(general.len() >= 25, "only {} rules", general.len());
    assert!(general.iter().all(|(k, _)| k.starts_with("runtime/")));
    assert_eq!(report["summary"]["failed"], 0);
    assert_eq!(before, host_state(), "runtime mode changed the machine's network state");
}

fn hand_written_runtime_without_breakage_passes() {
    let script = runtimes_dir().join("broken.py");
    let (code, report) = judge(&[], &["python3", script.to_str().unwrap()]);
    let st = statuses(&report);
    let not_passed: Vec<_> = st
        .iter()
        .filter(|(k, s)| *s != "pass" && !k.starts_with("kubernetes/"))
        .collect();
    assert!(not_passed.is_empty(), "{not_passed:?}");
    let k8s: Vec<_> = st.iter().filter(|(k, _)| k.starts_with("kubernetes/")).collect();
    assert!(k8s.iter().all(|(_, s)| *s == "skip"), "not a CRI runtime: {k8s:?}");
    assert_eq!(code, 0);
}

/// Each breakage of `broken.py` breaks one rule; runtime mode must name it. `must` rules fail the
/// run (exit 1); `should` rules warn (exit 0) and fail under --strict.
#[rustfmt::skip]
const BREAKAGES: &[Breakage] = &[
    Breakage { label: "del_forward", breakage: "del-forward", rule: "runtime/del-reverse-order", status: "fail" },
    Breakage { label: "add_reverse", breakage: "add-reverse", rule: "runtime/add-order", status: "fail" },
    Breakage { label: "no_name", breakage: "no-name", rule: "runtime/name-version-injected", status: "fail" },
    Breakage { label: "wrong_version", breakage: "wrong-version", rule: "runtime/name-version-injected", status: "fail" },
    Breakage { label: "lowest_version", breakage: "lowest-version", rule: "runtime/version-highest", status: "fail" },
    Breakage { label: "prev_on_first", breakage: "prev-on-first", rule: "runtime/prev-result-first-add", status: "fail" },
    Breakage { label: "no_chain", breakage: "no-chain", rule: "runtime/prev-result-chained", status: "fail" },
    Breakage { label: "del_no_prev", breakage: "del-no-prev", rule: "runtime/prev-result-del", status: "fail" },
    Breakage { label: "check_reverse", breakage: "check-reverse", rule: "runtime/check-order", status: "fail" },
    Breakage { label: "status_with_prev", breakage: "status-with-prev", rule: "runtime/status-request", status: "fail" },
    Breakage { label: "check_stale_prev", breakage: "check-stale-prev", rule: "runtime/prev-result-check", status: "fail" },
    Breakage { label: "check_despite_disable", breakage: "check-despite-disable", rule: "runtime/check-disabled", status: "fail" },
    Breakage { label: "check_old_version", breakage: "check-old-version", rule: "runtime/check-version", status: "fail" },
    Breakage { label: "check_before_add", breakage: "check-before-add", rule: "runtime/check-lifecycle", status: "fail" },
    Breakage { label: "undeclared_caps", breakage: "undeclared-caps", rule: "runtime/runtime-config", status: "fail" },
    Breakage { label: "drop_keys", breakage: "drop-keys", rule: "runtime/config-passthrough", status: "fail" },
    Breakage { label: "bad_args", breakage: "bad-args", rule: "runtime/stdin-schema", status: "fail" },
    Breakage { label: "continue_after_failure", breakage: "continue-after-failure", rule: "runtime/chain-stops-on-failure", status: "fail" },
    Breakage { label: "new_netns_same_path", breakage: "new-netns-same-path", rule: "runtime/same-attachment", status: "fail" },
    Breakage { label: "check_other_caps", breakage: "check-other-caps", rule: "runtime/same-attachment", status: "fail" },
    Breakage { label: "change_ifname", breakage: "change-ifname-on-del", rule: "runtime/same-attachment", status: "fail" },
    Breakage { label: "no_ifname", breakage: "no-ifname", rule: "runtime/env-vars", status: "fail" },
    Breakage { label: "gc_low_version", breakage: "gc-low-version", rule: "runtime/gc-status-version", status: "fail" },
    Breakage { label: "gc_with_prev", breakage: "gc-with-prev", rule: "runtime/gc-request", status: "fail" },
    Breakage { label: "gc_stop_on_error", breakage: "gc-stop-on-error", rule: "runtime/gc-request", status: "fail" },
    Breakage { label: "gc_forget_live", breakage: "gc-forget-live", rule: "runtime/gc-request", status: "fail" },
    Breakage { label: "gc_deletes_live", breakage: "gc-deletes-live", rule: "runtime/gc-not-del", status: "fail" },
    Breakage { label: "gc_ignore_disable", breakage: "gc-ignore-disable", rule: "runtime/gc-disabled", status: "fail" },
    Breakage { label: "future_version", breakage: "future-version", rule: "runtime/version-highest", status: "fail" },
    Breakage { label: "parallel", breakage: "parallel", rule: "runtime/no-overlap", status: "fail" },
    Breakage { label: "no_netns", breakage: "no-netns", rule: "runtime/netns-exists-on-add", status: "fail" },
    Breakage { label: "never_del", breakage: "never-del", rule: "runtime/attach-detach", status: "fail" },
    Breakage { label: "keep_capabilities", breakage: "keep-capabilities", rule: "runtime/capabilities-removed", status: "warn" },
    Breakage { label: "no_del_after_failure", breakage: "no-del-after-failure", rule: "runtime/del-after-failed-add", status: "fail" },
    Breakage { label: "del_after_netns_gone", breakage: "del-after-netns-gone", rule: "runtime/netns-exists-on-del", status: "warn" },
    Breakage { label: "plugin_in_container", breakage: "plugin-in-container", rule: "runtime/plugin-in-runtime-netns", status: "fail" },
    Breakage { label: "no_cni_path", breakage: "no-cni-path", rule: "runtime/cni-path", status: "fail" },
    Breakage { label: "k8s_no_ignore_unknown", breakage: "k8s-no-ignore-unknown", rule: "kubernetes/pod-args", status: "fail" },
    Breakage { label: "k8s_wrong_pod_name", breakage: "k8s-wrong-pod-name", rule: "kubernetes/pod-args", status: "fail" },
    Breakage { label: "k8s_no_ports", breakage: "k8s-no-ports", rule: "kubernetes/port-mappings", status: "warn" },
    Breakage { label: "k8s_capitalized_ports", breakage: "k8s-capitalized-ports", rule: "kubernetes/port-mappings", status: "warn" },
    Breakage { label: "k8s_wrong_bandwidth", breakage: "k8s-wrong-bandwidth", rule: "kubernetes/bandwidth", status: "warn" },
    Breakage { label: "k8s_wrong_pod_ip", breakage: "k8s-wrong-pod-ip", rule: "kubernetes/pod-ip", status: "fail" },
    Breakage { label: "k8s_del_after_stop", breakage: "k8s-del-after-stop", rule: "kubernetes/del-on-stop", status: "fail" },
    Breakage { label: "k8s_netns_gone_on_stop", breakage: "k8s-netns-gone-on-stop", rule: "kubernetes/stop-del-netns", status: "warn" },
    Breakage { label: "k8s_sandbox_left", breakage: "k8s-sandbox-left", rule: "kubernetes/clean-after-remove", status: "fail" },
];

/// Rules proven by a test other than a `broken.py` breakage, and where.
const PROVEN_ELSEWHERE: &[(&str, &str)] = &[(
    "runtime/no-process-left",
    "suite/tests/sealing.rs: a_runtime_that_forks_a_daemon_is_named_and_sigkill_leaves_nothing",
)];

/// Every runtime and Kubernetes rule has a broken runtime that it catches.
fn every_rule_has_a_breakage() {
    use cni_conformance::runtime::{kubernetes, rules};
    let ids = rules::all()
        .into_iter()
        .map(|r| r.id)
        .chain(kubernetes::all().into_iter().map(|r| r.id));
    let missing: Vec<&str> = ids
        .filter(|id| !BREAKAGES.iter().any(|b| b.rule == *id))
        .filter(|id| !PROVEN_ELSEWHERE.iter().any(|(r, _)| r == id))
        .collect();
    assert!(
        missing.is_empty(),
        "rules without a breakage in broken.py and BREAKAGES: {missing:?}"
    );
}

/// One breakage of `broken.py` and the finding it must give.
#[derive(Clone, Copy)]
struct Breakage {
    /// The test's name after `case_NN_` (as rstest named it).
    label: &'static str,
    /// The argument to `broken.py`.
    breakage: &'static str,
    /// The rule it breaks.
    rule: &'static str,
    /// "fail" (must) or "warn" (should).
    status: &'static str,
}

fn broken_runtime_is_caught(
    Breakage {
        breakage, rule, status, ..
    }: Breakage,
) {
    let script = runtimes_dir().join("broken.py");
    let (code, report) = judge(&[], &["python3", script.to_str().unwrap(), breakage]);
    let st = statuses(&report);
    assert_eq!(st.get(rule).map(String::as_str), Some(status), "{breakage}: {st:?}");
    let case = report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == rule)
        .unwrap();
    assert!(case["message"].as_str().unwrap().starts_with("scenario "), "{case:#}");
    assert!(
        !case["invocations"].as_array().unwrap().is_empty(),
        "the finding shows the calls"
    );
    if status == "fail" {
        assert_eq!(code, 1, "{breakage}");
    } else if st.values().all(|s| s != "fail") {
        assert_eq!(code, 0, "{breakage}: a should-rule alone does not fail the run");
        let (strict_code, _) = judge(&["--strict"], &["python3", script.to_str().unwrap(), breakage]);
        assert_eq!(strict_code, 1, "{breakage}: --strict fails on a warning");
    }
}

/// `broken.py cri` plays a CRI runtime and its kubelet without a fault: every Kubernetes rule is
/// judged and passes, which is what makes each `k8s-*` breakage above a proof.
fn hand_written_cri_runtime_passes_every_kubernetes_rule() {
    let script = runtimes_dir().join("broken.py");
    let (code, report) = judge(&[], &["python3", script.to_str().unwrap(), "cri"]);
    let st = statuses(&report);
    let k8s: Vec<_> = st.iter().filter(|(k, _)| k.starts_with("kubernetes/")).collect();
    assert!(k8s.len() >= 7, "{k8s:?}");
    assert!(k8s.iter().all(|(_, s)| *s == "pass"), "{k8s:?}");
    assert!(st.values().all(|s| s == "pass" || s == "skip"), "{st:?}");
    assert_eq!(code, 0);
}

/// Without a record the Kubernetes rules never pass: with neither --cri nor K8S_POD_* they say
/// the runtime is no CRI runtime; with --cri they say there is no record, except that a CRI
/// runtime whose calls carry no K8S_POD_* arguments fails kubernetes/pod-args on the log alone.
fn kubernetes_rules_skip_with_the_reason_without_a_cri_record() {
    let script = runtimes_dir().join("broken.py");
    for (opts, why) in [(&["--cri"][..], "no CRI record"), (&[][..], "not a CRI runtime")] {
        let (_, report) = judge(opts, &["python3", script.to_str().unwrap()]);
        for c in report["cases"].as_array().unwrap() {
            let id = c["id"].as_str().unwrap();
            if !id.starts_with("kubernetes/") {
                continue;
            }
            if id == "kubernetes/pod-args" && opts == ["--cri"] {
                assert_eq!(c["status"], "fail", "{c:#}");
                assert!(c["message"].as_str().unwrap().contains("IgnoreUnknown"), "{c:#}");
                continue;
            }
            assert_eq!(c["status"], "skip", "{c:#}");
            assert!(c["message"].as_str().unwrap().contains(why), "{c:#}");
        }
    }
}

fn a_command_that_does_nothing_fails_attach_detach_and_reports_in_every_format() {
    let dir = tempdir("runtime-formats");
    let junit = dir.join("report.xml");
    let out = suite()
        .args([
            "runtime",
            "--format",
            "junit",
            "--output",
            junit.to_str().unwrap(),
            "--",
            "true",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("runtime/attach-detach") && xml.contains("<failure"),
        "{xml}"
    );
    let human = suite().args(["runtime", "--", "true"]).output().unwrap();
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(text.contains("FAIL runtime/attach-detach"), "{text}");
    assert!(text.contains("never sent ADD"), "{text}");
    let _ = std::fs::remove_dir_all(dir);
}

fn runtime_without_a_command_or_recorder_is_a_usage_error() {
    let out = suite().arg("runtime").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = suite()
        .args(["runtime", "--", "true"])
        .env("CNI_CONFORMANCE_RECORDER", "/nonexistent/recorder")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("recording plugin") && err.trim_end().lines().count() == 1,
        "{err}"
    );
}

fn invoke_runs_a_conflist_with_upstream_plugins_in_a_private_namespace() {
    let bridge = upstream("bridge");
    let dir = tempdir("invoke-upstream");
    let conf = dir.join("net.conflist");
    std::fs::write(
        &conf,
        r#"{"cniVersion":"1.0.0","name":"inv","plugins":[{"type":"bridge","bridge":"cnitest0","isGateway":true,
            "ipam":{"type":"host-local","subnet":"10.99.0.0/24"}},{"type":"tuning","sysctl":{}}]}"#,
    )
    .unwrap();
    let suite_bin = env!("CARGO_BIN_EXE_cni-conformance");
    let cni_path = bridge.parent().unwrap().display().to_string();
    let script = format!(
        "set -e; mount --make-rprivate /; mount -t tmpfs tmpfs /run; mount -t tmpfs tmpfs /var/lib; ip netns add c1
         s={suite_bin}; a='--config {conf} --cni-path {cni_path} --container-id ctr1 --netns /run/netns/c1 --cache-dir {cache}'
         $s invoke add $a > {dir}/result.json
         ls {cache}/results > {dir}/cache.txt
         $s invoke check $a
         $s invoke del $a
         ls {cache}/results > {dir}/cache-after.txt
         ip -n c1 -o link show > {dir}/links.txt",
        conf = conf.display(),
        cache = dir.join("cache").display(),
        dir = dir.display()
    );
    let st = Command::new("unshare")
        .args(["--net", "--mount", "--propagation", "private", "sh", "-c", &script])
        .status()
        .unwrap();
    assert!(st.success());
    let result: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("result.json")).unwrap()).unwrap();
    assert_eq!(result["cniVersion"], "1.0.0");
    assert!(result["ips"][0]["address"].as_str().unwrap().starts_with("10.99.0."));
    assert_eq!(
        std::fs::read_to_string(dir.join("cache.txt")).unwrap().trim(),
        "inv-ctr1-eth0"
    );
    assert_eq!(std::fs::read_to_string(dir.join("cache-after.txt")).unwrap().trim(), "");
    assert!(!std::fs::read_to_string(dir.join("links.txt")).unwrap().contains("eth0"));
    let _ = std::fs::remove_dir_all(dir);
}

/// A real runtime's program, needed unless CNI_CONFORMANCE_SKIP_RUNTIMES=1.
fn real_runtime(tool: &str, package: &str) -> Need {
    Need::program(tool, package, "CNI_CONFORMANCE_SKIP_RUNTIMES")
}

/// What every libcni-based runtime gets right (and one spec-versus-libcni difference).
const LIBCNI_RIGHT: &[&str] = &[
    "runtime/add-order",
    "runtime/del-reverse-order",
    "runtime/name-version-injected",
    "runtime/prev-result-first-add",
    "runtime/prev-result-chained",
    "runtime/prev-result-del",
    "runtime/same-attachment",
    "runtime/env-vars",
    "runtime/cni-path",
    "runtime/netns-exists-on-add",
    "runtime/plugin-in-runtime-netns",
    "runtime/check-disabled",
    "runtime/check-version",
    "runtime/runtime-config",
    "runtime/config-passthrough",
    "runtime/stdin-schema",
    "runtime/chain-stops-on-failure",
    "runtime/no-overlap",
    "runtime/gc-status-version",
];

fn judge_real_runtime(script: &str) -> std::collections::BTreeMap<String, String> {
    let before = host_state();
    let path = runtimes_dir().join(script);
    let (code, report) = judge(&[], &["sh", path.to_str().unwrap()]);
    let st = statuses(&report);
    eprintln!("{script}: {st:#?}");
    for rule in LIBCNI_RIGHT {
        assert_eq!(
            st.get(*rule).map(String::as_str),
            Some("pass"),
            "{script}: {rule}\n{report:#}"
        );
    }
    // libcni leaves `capabilities` in the plugin's stdin (docs/spec-notes.md#capabilities-left-in-the-request):
    // a warning, not a failure.
    assert_eq!(st["runtime/capabilities-removed"], "warn");
    let failed = st.values().any(|s| s == "fail");
    assert_eq!(code, i32::from(failed));
    assert_eq!(before, host_state(), "{script} changed the machine's network state");
    st
}

fn podman_with_the_cni_backend_is_judged() {
    let st = judge_real_runtime("podman.sh");
    // podman passes IgnoreUnknown=1;K8S_POD_NAME=<container name> but is no CRI runtime.
    assert_eq!(st["kubernetes/pod-args"], "skip");
    assert_eq!(st["runtime/del-after-failed-add"], "pass");
    assert_eq!(st["runtime/netns-exists-on-del"], "pass");
}

fn containerd_ctr_run_cni_is_judged() {
    let st = judge_real_runtime("containerd.sh");
    // ctr deletes the task first and then sends DEL with an empty CNI_NETNS.
    assert_eq!(st["runtime/netns-exists-on-del"], "warn");
}

/// Runs `script` under `unshare --net --mount` with a private /run and /var/lib (plugins write
/// /var/lib/cni, which may not exist on the machine and must not be created there).
fn in_private_namespaces(script: &str) -> bool {
    let full =
        format!("set -e; mount --make-rprivate /; mount -t tmpfs tmpfs /run; mount -t tmpfs tmpfs /var/lib; {script}");
    Command::new("unshare")
        .args(["--net", "--mount", "sh", "-c", &full])
        .status()
        .unwrap()
        .success()
}

fn recorder_bin_dir(dir: &Path, types: &[&str]) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for t in types {
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_cni-conformance-recorder"), bin.join(t)).unwrap();
    }
    let log = dir.join("log.jsonl");
    std::fs::write(bin.join(".recorder.json"), serde_json::json!({"log": log}).to_string()).unwrap();
    bin
}

fn logged(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("log.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn invoke_gc_deletes_stale_attachments_and_check_obeys_version_and_disable_check() {
    let dir = tempdir("invoke-gc");
    let bin = recorder_bin_dir(&dir, &["rec-a"]);
    let conf = |name: &str, body: &str| {
        let p = dir.join(format!("{name}.conflist"));
        std::fs::write(&p, body).unwrap();
        p.display().to_string()
    };
    let gc = conf(
        "gc",
        r#"{"cniVersion":"1.1.0","name":"gcnet","plugins":[{"type":"rec-a"}]}"#,
    );
    let old = conf(
        "old",
        r#"{"cniVersion":"0.3.1","name":"oldnet","plugins":[{"type":"rec-a"}]}"#,
    );
    let nocheck = conf(
        "nocheck",
        r#"{"cniVersion":"1.0.0","name":"nocheck","disableCheck":"true","plugins":[{"type":"rec-a"}]}"#,
    );
    let s = env!("CARGO_BIN_EXE_cni-conformance");
    let common = format!("--cni-path {} --cache-dir {}/cache", bin.display(), dir.display());
    let script = format!(
        "ip netns add n1; ip netns add n2
         {s} invoke add --config {gc} {common} --container-id c1 --netns /run/netns/n1 >/dev/null
         {s} invoke add --config {gc} {common} --container-id c2 --netns /run/netns/n2 >/dev/null
         {s} invoke gc --config {gc} {common} --valid-attachments '[{{\"containerID\":\"c1\",\"ifname\":\"eth0\"}}]'
         ls {d}/cache/results > {d}/after-gc.txt
         {s} invoke add --config {old} {common} --container-id c3 --netns /run/netns/n2 >/dev/null
         if {s} invoke check --config {old} {common} --container-id c3 --netns /run/netns/n2 > {d}/old-check.json; then exit 3; fi
         {s} invoke del --config {old} {common} --container-id c3 --netns /run/netns/n2
         {s} invoke add --config {nocheck} {common} --container-id c4 --netns /run/netns/n2 >/dev/null
         {s} invoke check --config {nocheck} {common} --container-id c4 --netns /run/netns/n2
         {s} invoke del --config {nocheck} {common} --container-id c4 --netns /run/netns/n2",
        d = dir.display()
    );
    assert!(in_private_namespaces(&script));
    assert_eq!(
        std::fs::read_to_string(dir.join("after-gc.txt")).unwrap().trim(),
        "gcnet-c1-eth0"
    );
    let log = logged(&dir);
    let calls: Vec<(String, String)> = log
        .iter()
        .map(|e| {
            (
                e["env"]["CNI_COMMAND"].as_str().unwrap().to_string(),
                e["env"]["CNI_CONTAINERID"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("ADD", "c1"),
        ("ADD", "c2"),
        ("DEL", "c2"),
        ("GC", ""),
        ("ADD", "c3"),
        ("DEL", "c3"),
        ("ADD", "c4"),
        ("DEL", "c4"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(calls, want, "CHECK must not run for 0.3.1 or with disableCheck");
    let gc_stdin: serde_json::Value = serde_json::from_str(log[3]["stdin"].as_str().unwrap()).unwrap();
    assert_eq!(
        gc_stdin["cni.dev/valid-attachments"],
        serde_json::json!([{"containerID":"c1","ifname":"eth0"}])
    );
    let del_stdin: serde_json::Value = serde_json::from_str(log[2]["stdin"].as_str().unwrap()).unwrap();
    assert_eq!(
        del_stdin["prevResult"]["cniVersion"], "1.1.0",
        "the stale DEL carries the cached result"
    );
    let err: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("old-check.json")).unwrap()).unwrap();
    assert_eq!(err["code"], 1);
    let _ = std::fs::remove_dir_all(dir);
}

/// The invocations a case shows, by plugin command, with their CNI_ARGS and CNI_NETNS.
fn shown_calls(report: &serde_json::Value, rule: &str) -> Vec<(String, String, String)> {
    let case = report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == rule)
        .unwrap();
    case["invocations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let env = |k: &str| {
                i["env"]
                    .as_array()
                    .and_then(|e| e.iter().find(|p| p[0] == k))
                    .and_then(|p| p[1].as_str())
                    .unwrap_or("")
                    .to_string()
            };
            (
                i["command"].as_str().unwrap_or("").to_string(),
                env("CNI_ARGS"),
                env("CNI_NETNS"),
            )
        })
        .collect()
}

/// containerd 1.6's CRI plugin, driven by the kubelet stand-in: the plugin calls are containerd's
/// own (K8S_POD_* arguments, its /var/run/netns/cni-* namespaces), and the Kubernetes rules are
/// judged, not skipped. What it gets wrong is measured in docs/runtimes.md.
fn containerd_cri_plugin_driven_by_the_kubelet_stand_in_is_judged() {
    let before = host_state();
    let path = runtimes_dir().join("containerd-cri.sh");
    let (code, report) = judge(&[], &["sh", path.to_str().unwrap()]);
    let st = statuses(&report);
    eprintln!("containerd-cri.sh: {st:#?}");
    for rule in [
        "kubernetes/pod-args",
        "kubernetes/pod-ip",
        "kubernetes/del-on-stop",
        "kubernetes/stop-del-netns",
        "kubernetes/clean-after-remove",
        "runtime/add-order",
        "runtime/del-reverse-order",
        "runtime/prev-result-chained",
        "runtime/runtime-config",
        "runtime/chain-stops-on-failure",
        "runtime/no-overlap",
    ] {
        assert_eq!(st.get(rule).map(String::as_str), Some("pass"), "{rule}\n{report:#}");
    }
    // go-cni marshals the capability arguments with Go's field names (HostPort, IngressRate).
    assert_eq!(st["kubernetes/port-mappings"], "warn");
    assert_eq!(st["kubernetes/bandwidth"], "warn");
    let calls = shown_calls(&report, "kubernetes/port-mappings");
    assert!(
        calls.iter().any(|(cmd, args, netns)| cmd == "ADD"
            && args.contains("K8S_POD_NAME=cni-conformance-caps")
            && netns.starts_with("/var/run/netns/cni-")),
        "the ADDs are containerd's CRI plugin's: {calls:?}"
    );
    // RemovePodSandbox sends a second DEL, without CNI_NETNS or prevResult.
    assert_eq!(st["runtime/prev-result-del"], "fail");
    // libcni 1.1 refuses 1.1.0 results: the runtime refuses the pod, and the stand-in says so in
    // one line and exits 2.
    assert_eq!(st["runtime/attach-detach"], "fail");
    let refused = report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "runtime/attach-detach")
        .unwrap();
    let command = &refused["invocations"][0];
    assert_eq!(command["exit"]["value"], 2, "{command:#}");
    let stderr = command["stderr"].as_str().unwrap();
    let line = stderr
        .lines()
        .find(|l| l.starts_with("cni-conformance: cri:"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(line.contains("the runtime refused the pod"), "{line}");
    assert_eq!(code, 1);
    assert_eq!(
        before,
        host_state(),
        "containerd-cri.sh changed the machine's network state"
    );
}

/// Docker's CNI recipe (docker.sh): `docker run --network=none`, then `cni-conformance invoke`
/// against the container's /proc/<pid>/ns/net, DEL before `docker rm -f`. Every rule whose verb
/// it sends passes; it is no CRI runtime, so the Kubernetes rules skip and say so.
fn docker_with_the_invoke_recipe_is_judged() {
    let before = host_state();
    let path = runtimes_dir().join("docker.sh");
    let (code, report) = judge(&[], &["sh", path.to_str().unwrap()]);
    let st = statuses(&report);
    eprintln!("docker.sh: {st:#?}");
    let never_sent = [
        "runtime/prev-result-check",
        "runtime/gc-request",
        "runtime/gc-not-del",
        "runtime/gc-disabled",
        "runtime/status-request",
    ];
    for (rule, status) in &st {
        let expected = if rule.starts_with("kubernetes/") || never_sent.contains(&rule.as_str()) {
            "skip"
        } else {
            "pass"
        };
        assert_eq!(status, expected, "{rule}\n{report:#}");
    }
    let k8s = report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "kubernetes/pod-args")
        .unwrap();
    assert!(
        k8s["message"].as_str().unwrap().contains("not a CRI runtime"),
        "{k8s:#}"
    );
    assert_eq!(code, 0);
    assert_eq!(before, host_state(), "docker.sh changed the machine's network state");
}

fn main() {
    let mut tests = vec![
        Test::new("every_rule_has_a_breakage", every_rule_has_a_breakage),
        Test::new(
            "control_runtime_passes_every_rule_and_leaves_the_host_alone",
            control_runtime_passes_every_rule_and_leaves_the_host_alone,
        ),
        Test::new(
            "hand_written_runtime_without_breakage_passes",
            hand_written_runtime_without_breakage_passes,
        ),
    ];
    // Named as rstest named its cases, so filters and CI history keep working.
    let width = BREAKAGES.len().to_string().len();
    tests.extend(BREAKAGES.iter().enumerate().map(|(i, &b)| {
        let name = format!("broken_runtime_is_caught::case_{:0width$}_{}", i + 1, b.label);
        Test::new(name, move || broken_runtime_is_caught(b))
    }));
    tests.extend([
        Test::new(
            "hand_written_cri_runtime_passes_every_kubernetes_rule",
            hand_written_cri_runtime_passes_every_kubernetes_rule,
        ),
        Test::new(
            "kubernetes_rules_skip_with_the_reason_without_a_cri_record",
            kubernetes_rules_skip_with_the_reason_without_a_cri_record,
        ),
        Test::new(
            "a_command_that_does_nothing_fails_attach_detach_and_reports_in_every_format",
            a_command_that_does_nothing_fails_attach_detach_and_reports_in_every_format,
        ),
        Test::new(
            "runtime_without_a_command_or_recorder_is_a_usage_error",
            runtime_without_a_command_or_recorder_is_a_usage_error,
        ),
        Test::new(
            "invoke_runs_a_conflist_with_upstream_plugins_in_a_private_namespace",
            invoke_runs_a_conflist_with_upstream_plugins_in_a_private_namespace,
        )
        .needs(upstream_plugin("bridge")),
        Test::new(
            "podman_with_the_cni_backend_is_judged",
            podman_with_the_cni_backend_is_judged,
        )
        .needs(real_runtime("podman", "podman runc")),
        Test::new("containerd_ctr_run_cni_is_judged", containerd_ctr_run_cni_is_judged)
            .needs(real_runtime("containerd", "containerd runc"))
            .needs(real_runtime("ctr", "containerd runc")),
        Test::new(
            "invoke_gc_deletes_stale_attachments_and_check_obeys_version_and_disable_check",
            invoke_gc_deletes_stale_attachments_and_check_obeys_version_and_disable_check,
        ),
        Test::new(
            "containerd_cri_plugin_driven_by_the_kubelet_stand_in_is_judged",
            containerd_cri_plugin_driven_by_the_kubelet_stand_in_is_judged,
        )
        .needs(real_runtime("containerd", "containerd runc"))
        .needs(real_runtime("ctr", "containerd runc")),
        Test::new(
            "docker_with_the_invoke_recipe_is_judged",
            docker_with_the_invoke_recipe_is_judged,
        )
        .needs(real_runtime("dockerd", "docker.io")),
    ]);
    harness::run(tests)
}
