//! `--vm` end to end: the same suite inside a QEMU guest gives the same cases, report and exit
//! status as on the host, and judges plugins whose kernel features the host lacks (vlan, ipvlan).
//!
//! These boot real guests (TCG here: about 5 s to the suite, then the suite at emulated speed).
//! They need qemu-system-x86, busybox-static and Debian's apt (the kernel package is fetched once
//! into the cache). When those are missing the tests fail with the install command, unless
//! CNI_CONFORMANCE_SKIP_VM=1 is set, in which case they are listed and reported as ignored with
//! the reason (never a silent pass).
//! Guests boot one at a time: two cores cannot run two emulated guests well.

mod common;
mod harness;

use std::path::Path;
use std::process::Output;
use std::sync::Mutex;

use common::{host_state, reference_plugins, statuses, suite, tempdir, upstream, upstream_plugin};
use harness::{Need, Test};

static ONE_GUEST_AT_A_TIME: Mutex<()> = Mutex::new(());

/// What `--vm` needs on this machine: QEMU, a static busybox for the guest's init, and apt to
/// fetch the kernel package.
fn vm_tools() -> Need {
    let on_path = |tool: &str| {
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).any(|d| d.join(tool).is_file())
    };
    let mut missing = Vec::new();
    if !on_path("qemu-system-x86_64") {
        missing.push("qemu-system-x86");
    }
    if !Path::new("/bin/busybox").exists() && !Path::new("/usr/bin/busybox").exists() {
        missing.push("busybox-static");
    }
    if !on_path("apt-get") || !on_path("dpkg-deb") {
        missing.push("apt dpkg");
    }
    Need::new(
        format!("what --vm needs ({})", missing.join(" ")),
        missing.is_empty(),
        format!("apt-get install {}", missing.join(" ")),
        "CNI_CONFORMANCE_SKIP_VM",
    )
}

fn run(args: &[&str]) -> Output {
    let _guard = ONE_GUEST_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    suite().args(args).output().unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not a JSON report ({e}); stderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn a_kernel_that_is_not_there_exits_2_with_one_line() {
    let bridge = upstream("bridge");
    let out = suite()
        .args(["--vm", "--kernel", "/nonexistent/vmlinuz"])
        .arg(&bridge)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("--kernel /nonexistent/vmlinuz"), "{err}");
    assert!(out.stdout.is_empty());
    // A file that is not a kernel is refused before any boot, too.
    let out = suite()
        .args(["--vm", "--kernel", "/bin/sh"])
        .arg(&bridge)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("not a Linux kernel image"), "{err}");
    // And --keep makes no sense in a guest that dies with its labs.
    let out = suite().args(["--vm", "--keep"]).arg(&bridge).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

fn missing_qemu_or_kernel_package_exits_2_with_what_to_do() {
    let bridge = upstream("bridge");
    let out = suite()
        .args(["--vm"])
        .arg(&bridge)
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("apt-get install qemu-system-x86"), "{err}");
    let cache = tempdir("vm-empty-cache");
    let out = suite()
        .args(["--vm", "--kernel-package", "linux-image-nonesuch-amd64"])
        .arg(&bridge)
        .env("XDG_CACHE_HOME", &cache)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("linux-image-nonesuch-amd64") && err.contains("--kernel FILE"),
        "{err}"
    );
    std::fs::remove_dir_all(&cache).unwrap();
}

fn a_guest_past_its_timeout_is_stopped_and_exits_2() {
    let bridge = upstream("bridge");
    // The clock starts once this test has the guest slot (other tests' guests queue before it).
    let _guard = ONE_GUEST_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // A run killed before it could clean up (SIGKILL) left its scratch directory: the next run
    // sweeps it, and leaves a live run's alone.
    let tmp = std::env::temp_dir();
    let dead_pid = (100_000..)
        .find(|p| !Path::new(&format!("/proc/{p}")).exists())
        .unwrap();
    let dead = tmp.join(format!("cni-conformance-vm-{dead_pid}-0"));
    let live = tmp.join(format!("cni-conformance-vm-{}-999", std::process::id()));
    for d in [&dead, &live] {
        std::fs::create_dir_all(d).unwrap();
        std::fs::write(d.join("initrd.cpio"), b"x").unwrap();
    }
    let start = std::time::Instant::now();
    let out = suite()
        .args([
            "--vm",
            "--vm-timeout",
            "3",
            bridge.to_str().unwrap(),
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("did not finish within 3 s"), "{err}");
    assert!(out.stdout.is_empty());
    // The kernel fetch (first run only) comes before the clock starts; the guest itself is cut.
    assert!(start.elapsed() < std::time::Duration::from_secs(60));
    assert!(!dead.exists(), "the scratch of a dead run was not swept");
    assert!(live.exists(), "the scratch of a live run was swept");
    let _ = std::fs::remove_dir_all(live);
}

fn upstream_bridge_in_the_vm_passes_with_the_same_cases_as_on_the_host() {
    let bridge = upstream("bridge");
    let before = host_state();
    let host = suite().arg(&bridge).args(["--format", "json"]).output().unwrap();
    assert_eq!(host.status.code(), Some(0), "{}", String::from_utf8_lossy(&host.stderr));
    let dir = tempdir("vm-bridge");
    let saved = dir.join("report.json");
    let guest = run(&[
        "--vm",
        bridge.to_str().unwrap(),
        "--format",
        "json",
        "--output",
        saved.to_str().unwrap(),
    ]);
    assert_eq!(
        guest.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&guest.stderr)
    );
    let (host, guest_report) = (json(&host), json(&guest));
    let (hs, gs) = (statuses(&host), statuses(&guest_report));
    assert_eq!(
        hs.keys().collect::<Vec<_>>(),
        gs.keys().collect::<Vec<_>>(),
        "the VM ran other cases"
    );
    assert!(gs.values().all(|s| s != "fail"), "{gs:?}");
    assert_eq!(guest_report["plugin"]["path"], host["plugin"]["path"]);
    assert_eq!(guest_report["plugin"]["versions"], host["plugin"]["versions"]);
    // --output holds the same report as stdout, written on the host.
    assert_eq!(std::fs::read(&saved).unwrap(), guest.stdout);
    // The run happened in the guest: the host's network is untouched.
    assert_eq!(before, host_state());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A plugin that answers VERSION and claims an interface it never creates.
const BROKEN: &str = r#"#!/bin/sh
cat >/dev/null
case "$CNI_COMMAND" in
VERSION) echo '{"cniVersion":"1.0.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0"]}' ;;
ADD) echo '{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"'"$CNI_NETNS"'"}],"ips":[{"address":"10.99.0.2/24","interface":0}]}' ;;
*) ;;
esac
exit 0
"#;

fn a_broken_plugin_fails_in_the_vm_as_on_the_host() {
    let dir = tempdir("vm-broken");
    let plugin = dir.join("liar");
    std::fs::write(&plugin, BROKEN).unwrap();
    std::process::Command::new("chmod")
        .arg("0755")
        .arg(&plugin)
        .status()
        .unwrap();
    let config = dir.join("liar.json");
    std::fs::write(&config, r#"{"cniVersion":"1.0.0","name":"liars","type":"liar"}"#).unwrap();
    let args = [
        "--config",
        config.to_str().unwrap(),
        "--filter",
        "^add/",
        "--format",
        "json",
        plugin.to_str().unwrap(),
    ];
    let host = suite().args(args).output().unwrap();
    assert_eq!(host.status.code(), Some(1), "{}", String::from_utf8_lossy(&host.stderr));
    let mut vm_args = vec!["--vm"];
    vm_args.extend(args);
    let guest = run(&vm_args);
    assert_eq!(
        guest.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&guest.stderr)
    );
    let (hs, gs) = (statuses(&json(&host)), statuses(&json(&guest)));
    assert!(gs.values().any(|s| s == "fail"), "{gs:?}");
    assert_eq!(hs, gs, "host and VM judged the broken plugin differently");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Runs an upstream plugin whose kernel module this host lacks; in the VM it must run every case
/// (no profile-level skip) and pass.
fn judged_in_the_vm(name: &str) {
    let plugin = upstream(name);
    let out = run(&["--vm", plugin.to_str().unwrap(), "--format", "json"]);
    let report = json(&out);
    let st = statuses(&report);
    let skipped_for_kernel: Vec<_> = report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["message"].as_str().unwrap_or("").contains("kernel"))
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    assert!(
        skipped_for_kernel.is_empty(),
        "kernel feature missing in the guest: {skipped_for_kernel:?}"
    );
    assert!(
        st.get("add/result-matches-kernel").is_some_and(|s| s == "pass"),
        "{st:?}"
    );
    let failed: Vec<_> = st.iter().filter(|(_, s)| *s == "fail").collect();
    assert!(failed.is_empty(), "{name} failed in the VM: {failed:?}");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

fn vlan_is_judged_in_the_vm() {
    judged_in_the_vm("vlan");
}

fn ipvlan_is_judged_in_the_vm() {
    judged_in_the_vm("ipvlan");
}

fn runtimes_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/runtimes")
}

/// `runtime [--vm] --format json -- CMD...`; returns the output.
fn runtime(vm: bool, cmd: &[&str]) -> Output {
    let mut args = vec!["runtime"];
    if vm {
        args.extend(["--vm", "--vm-accel", "tcg"]);
    }
    args.extend(["--format", "json", "--"]);
    args.extend(cmd);
    if vm {
        run(&args)
    } else {
        suite().args(&args).output().unwrap()
    }
}

/// Runtime mode with `cmd` on the host, then in the VM; both must exit with `code`. Returns the
/// two JSON reports.
fn on_host_and_in_vm(cmd: &[&str], code: i32) -> (serde_json::Value, serde_json::Value) {
    let host = runtime(false, cmd);
    assert_eq!(
        host.status.code(),
        Some(code),
        "{}",
        String::from_utf8_lossy(&host.stderr)
    );
    let guest = runtime(true, cmd);
    assert_eq!(
        guest.status.code(),
        Some(code),
        "{}",
        String::from_utf8_lossy(&guest.stderr)
    );
    (json(&host), json(&guest))
}

fn the_control_runtime_passes_in_the_vm_with_the_same_rules_as_on_the_host() {
    let before = host_state();
    let script = runtimes_dir().join("invoke-runtime.sh");
    let (host, guest) = on_host_and_in_vm(&["sh", script.to_str().unwrap()], 0);
    let (hs, gs) = (statuses(&host), statuses(&guest));
    assert!(gs.len() >= 25, "only {} rules: {gs:?}", gs.len());
    // Every runtime rule passes; the Kubernetes rules skip (the control runtime is no CRI runtime).
    for (id, status) in &gs {
        let wanted = if id.starts_with("kubernetes/") { "skip" } else { "pass" };
        assert_eq!(status, wanted, "{id}: {gs:?}");
    }
    assert_eq!(hs, gs, "host and VM judged the control runtime differently");
    assert_eq!(guest["plugin"]["path"], host["plugin"]["path"]);
    // The guest saw the host's files read-only: the host's network is untouched.
    assert_eq!(before, host_state());
}

fn a_broken_runtime_fails_in_the_vm_as_on_the_host() {
    let script = runtimes_dir().join("broken.py");
    // Python and its library come from the host's files, shared into the guest.
    let (host, guest) = on_host_and_in_vm(&["python3", script.to_str().unwrap(), "add-reverse"], 1);
    let (hs, gs) = (statuses(&host), statuses(&guest));
    assert_eq!(gs.get("runtime/add-order").map(String::as_str), Some("fail"), "{gs:?}");
    assert_eq!(hs, gs, "host and VM judged the broken runtime differently");
}

fn runtime_vm_refuses_a_kernel_without_9p_before_booting() {
    // Debian's cloud kernel has no 9p; the refusal names what to use instead.
    let out = suite()
        .args([
            "runtime",
            "--vm",
            "--kernel-package",
            "linux-image-cloud-amd64",
            "--vm-accel",
            "tcg",
            "--",
            "true",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(
        err.trim_end().lines().filter(|l| !l.starts_with("vm: ")).count(),
        1,
        "{err}"
    );
    assert!(err.contains("9p") && err.contains("linux-image-amd64"), "{err}");
    assert!(out.stdout.is_empty());
}

/// Judges the reference bridge in the guest with `tests/fixtures/<fixture>`; asserts no case
/// failed or warned, the exit status is 0, and returns the statuses.
fn judge_reference_bridge_in_the_vm(bridge: &Path, fixture: &str) -> std::collections::BTreeMap<String, String> {
    let config = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(fixture);
    let out = run(&[
        "--vm",
        bridge.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let st = statuses(&json(&out));
    let not_passed: Vec<_> = st.iter().filter(|(_, s)| *s == "fail" || *s == "warn").collect();
    assert!(not_passed.is_empty(), "{fixture} in the VM: {not_passed:?}");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    for case in ["add/result-matches-kernel", "check/after-add", "del/leaves-no-trace"] {
        assert_eq!(st.get(case).map(String::as_str), Some("pass"), "{fixture}: {st:?}");
    }
    st
}

/// The reference bridge with `isGateway` and `vlan` (the gateway on a `<bridge>.<vlan>` port)
/// needs bridge VLAN filtering, which this host's kernel lacks: judged in the guest, every case
/// that runs passes and the container reaches its gateway through the VLAN; with
/// `isDefaultGateway` as well, its traffic leaves the host masqueraded.
fn reference_bridge_with_a_vlan_gateway_passes_in_the_vm() {
    let bridge = reference_plugins().join("bridge");
    let st = judge_reference_bridge_in_the_vm(&bridge, "bridge-vlan-gateway.conflist");
    assert_eq!(
        st.get("connectivity/container-to-gateway").map(String::as_str),
        Some("pass"),
        "{st:?}"
    );
    let st = judge_reference_bridge_in_the_vm(&bridge, "bridge-vlan-default-gateway.conflist");
    for case in ["connectivity/container-to-gateway", "connectivity/masquerade"] {
        assert_eq!(st.get(case).map(String::as_str), Some("pass"), "{st:?}");
    }
}

fn main() {
    let on_host = |name: &'static str, body: fn()| Test::new(name, body).needs(upstream_plugin("bridge"));
    let in_vm = |name: &'static str, body: fn()| Test::new(name, body).needs(vm_tools());
    harness::run(vec![
        on_host(
            "a_kernel_that_is_not_there_exits_2_with_one_line",
            a_kernel_that_is_not_there_exits_2_with_one_line,
        ),
        on_host(
            "missing_qemu_or_kernel_package_exits_2_with_what_to_do",
            missing_qemu_or_kernel_package_exits_2_with_what_to_do,
        )
        .needs(vm_tools()),
        on_host(
            "a_guest_past_its_timeout_is_stopped_and_exits_2",
            a_guest_past_its_timeout_is_stopped_and_exits_2,
        )
        .needs(vm_tools()),
        on_host(
            "upstream_bridge_in_the_vm_passes_with_the_same_cases_as_on_the_host",
            upstream_bridge_in_the_vm_passes_with_the_same_cases_as_on_the_host,
        )
        .needs(vm_tools()),
        in_vm(
            "a_broken_plugin_fails_in_the_vm_as_on_the_host",
            a_broken_plugin_fails_in_the_vm_as_on_the_host,
        ),
        in_vm("vlan_is_judged_in_the_vm", vlan_is_judged_in_the_vm).needs(upstream_plugin("vlan")),
        in_vm("ipvlan_is_judged_in_the_vm", ipvlan_is_judged_in_the_vm).needs(upstream_plugin("ipvlan")),
        in_vm(
            "the_control_runtime_passes_in_the_vm_with_the_same_rules_as_on_the_host",
            the_control_runtime_passes_in_the_vm_with_the_same_rules_as_on_the_host,
        ),
        in_vm(
            "a_broken_runtime_fails_in_the_vm_as_on_the_host",
            a_broken_runtime_fails_in_the_vm_as_on_the_host,
        ),
        in_vm(
            "runtime_vm_refuses_a_kernel_without_9p_before_booting",
            runtime_vm_refuses_a_kernel_without_9p_before_booting,
        ),
        in_vm(
            "reference_bridge_with_a_vlan_gateway_passes_in_the_vm",
            reference_bridge_with_a_vlan_gateway_passes_in_the_vm,
        ),
    ])
}
