//! The sealed lab, proven with hostile plugins and runtimes: wrappers around upstream bridge that
//! escape through their parent's namespaces, write the machine's files, start daemons, stop or
//! kill their parent. For each, the machine's network state, files under /etc, /tmp, /run and
//! /var/lib, and processes are the same before and after the run (and after a run SIGKILLed half
//! way), the suite finishes with a report, and the report names what the plugin did.
//!
//! The tests take one lock: they compare the whole machine, so none may run beside another. On
//! a machine where other work writes /tmp meanwhile, `CNI_CONFORMANCE_SEALING_IGNORE` (a regular
//! expression over paths and command lines) names what that work writes and runs; CI sets
//! nothing.

mod common;
mod harness;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{host_state, kill_at_progress, statuses, suite, tempdir, upstream_plugin};
use harness::Test;
use serde_json::Value;

static MACHINE: Mutex<()> = Mutex::new(());

/// A marker in the argv of every daemon a hostile plugin starts.
const MARKER: &str = "100123";

/// What the machine looks like, for before/after comparisons.
#[derive(Debug, PartialEq, Eq)]
struct Machine {
    network: String,
    hostname: String,
    files: BTreeMap<String, String>,
    /// Processes outside the machine's PID namespace, and any carrying [`MARKER`].
    foreign: BTreeSet<String>,
}

fn walk(dir: &Path, skip: &[PathBuf], ignore: Option<&regex::Regex>, out: &mut BTreeMap<String, String>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if skip.iter().any(|s| p.starts_with(s)) || ignore.is_some_and(|r| r.is_match(&p.to_string_lossy())) {
            continue;
        }
        let Ok(m) = std::fs::symlink_metadata(&p) else { continue };
        out.insert(
            p.display().to_string(),
            format!("{:o} {} {} {}", m.mode(), m.len(), m.mtime(), m.mtime_nsec()),
        );
        if m.is_dir() {
            walk(&p, skip, ignore, out);
        }
    }
}

fn ignored() -> Option<regex::Regex> {
    std::env::var("CNI_CONFORMANCE_SEALING_IGNORE")
        .ok()
        .map(|r| regex::Regex::new(&r).expect("CNI_CONFORMANCE_SEALING_IGNORE is a regular expression"))
}

/// The kernel's flag for its own threads (kworkers come and go and are nobody's leftovers).
const PF_KTHREAD: u64 = 0x0020_0000;

/// Set in this test process, so every suite it starts, and every lab init the suite forks,
/// carries it: a PID namespace whose init has it is one of our labs, not another program's
/// container (a build or a container running next to the tests).
const RUN_TAG: &str = "CNI_CONFORMANCE_SEALING_RUN";

fn run_tag() -> String {
    format!("{RUN_TAG}={}", std::process::id())
}

/// One live process as /proc shows it.
struct Proc {
    pid: u32,
    /// "comm [state] argv" for messages.
    label: String,
    cmd: String,
    pid_ns: Option<PathBuf>,
    /// PID 1 of its own namespace (the last NSpid field).
    ns_init: bool,
}

fn read_proc(dir: &Path, pid: u32) -> Option<Proc> {
    // After the `(comm)` field: state, ppid, pgrp, session, tty, tpgid, flags.
    let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let state = *fields.first()?;
    let flags: u64 = fields.get(6)?.parse().ok()?;
    if state == "Z" || flags & PF_KTHREAD != 0 {
        return None;
    }
    let cmd = std::fs::read(dir.join("cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default();
    let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
    let ns_init = std::fs::read_to_string(dir.join("status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("NSpid:"))
                .map(|v| v.split_whitespace().last() == Some("1"))
        })
        .unwrap_or(false);
    Some(Proc {
        pid,
        label: format!("{pid} [{} {state}] {cmd}", comm.trim()),
        cmd,
        pid_ns: std::fs::read_link(dir.join("ns/pid")).ok(),
        ns_init,
    })
}

/// Live processes in a lab's PID namespace (one whose init carries [`RUN_TAG`]), and any
/// carrying [`MARKER`].
fn processes() -> BTreeSet<String> {
    let own = std::fs::read_link("/proc/1/ns/pid").ok();
    let ignore = ignored();
    let tag = run_tag();
    let all: Vec<Proc> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            read_proc(&e.path(), pid)
        })
        .filter(|p| !ignore.as_ref().is_some_and(|r| r.is_match(&p.cmd)))
        .collect();
    let labs: BTreeSet<&PathBuf> = all
        .iter()
        .filter(|p| p.ns_init && p.pid_ns.is_some() && p.pid_ns != own)
        .filter(|p| {
            std::fs::read(format!("/proc/{}/environ", p.pid))
                .is_ok_and(|env| env.split(|&b| b == 0).any(|v| v == tag.as_bytes()))
        })
        .filter_map(|p| p.pid_ns.as_ref())
        .collect();
    all.iter()
        .filter(|p| p.cmd.contains(MARKER) || p.pid_ns.as_ref().is_some_and(|ns| labs.contains(ns)))
        .map(|p| p.label.clone())
        .collect()
}

fn machine(skip: &[PathBuf]) -> Machine {
    let ignore = ignored();
    let mut files = BTreeMap::new();
    for d in ["/etc", "/tmp", "/run", "/var/lib"] {
        walk(Path::new(d), skip, ignore.as_ref(), &mut files);
    }
    Machine {
        network: host_state(),
        hostname: std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default(),
        files,
        foreign: processes(),
    }
}

/// Says what differs, for a readable assertion.
fn assert_same(before: &Machine, after: &Machine, what: &str) {
    assert_eq!(
        before.network, after.network,
        "{what}: the machine's network state changed"
    );
    let changed: Vec<String> = before
        .files
        .iter()
        .filter(|(k, v)| after.files.get(*k) != Some(v))
        .map(|(k, _)| format!("~/- {k}"))
        .chain(
            after
                .files
                .keys()
                .filter(|k| !before.files.contains_key(*k))
                .map(|k| format!("+ {k}")),
        )
        .collect();
    assert!(changed.is_empty(), "{what}: the machine's files changed: {changed:?}");
    let new: Vec<&String> = after.foreign.difference(&before.foreign).collect();
    assert!(new.is_empty(), "{what}: processes left on the machine: {new:?}");
}

/// Waits until no process of a lab (or with the marker) is left that was not there before.
fn settle(before: &Machine) {
    let until = Instant::now() + Duration::from_secs(10);
    while processes() != before.foreign && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A wrapper named `bridge` around upstream bridge that runs `on_add` before every ADD.
fn hostile(dir: &Path, on_add: &str) -> PathBuf {
    let p = dir.join("bridge");
    std::fs::write(
        &p,
        format!("#!/bin/sh\nif [ \"$CNI_COMMAND\" = ADD ]; then\n{on_add}\nfi\nexec /usr/lib/cni/bridge \"$@\"\n"),
    )
    .unwrap();
    Command::new("chmod").args(["0755"]).arg(&p).status().unwrap();
    p
}

struct Run {
    code: Option<i32>,
    report: Value,
    seconds: f64,
}

/// Runs the suite with a JSON report; `limit` bounds the run (a hang fails the test).
/// Judges `plugin` with its built-in profile, within 5 minutes.
fn judge_plugin(plugin: &Path) -> Run {
    let mut c = suite();
    c.arg(plugin);
    judge(c, Duration::from_secs(300))
}

fn judge(mut cmd: Command, limit: Duration) -> Run {
    let start = Instant::now();
    let mut child = cmd
        .arg("--format")
        .arg("json")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut s).unwrap();
        s
    });
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let text = reader.join().unwrap();
            let report = serde_json::from_str(&text).unwrap_or_else(|e| panic!("no JSON report ({e}): {text}"));
            return Run {
                code: status.code(),
                report,
                seconds: start.elapsed().as_secs_f64(),
            };
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("the suite did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The finding texts (message, seen, notes) of one case, joined.
fn finding(report: &Value, id: &str) -> String {
    let case = report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no case {id}"));
    let mut text = format!("{} {} {}", case["status"], case["message"], case["seen"]);
    for inv in case["invocations"].as_array().into_iter().flatten() {
        text += &format!(" {} {}", inv["exit"], inv["notes"]);
    }
    text
}

/// Removes a test's scratch directory also when the test fails half way.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn locked() -> std::sync::MutexGuard<'static, ()> {
    MACHINE.lock().unwrap_or_else(|p| p.into_inner())
}

/// A test's hold on the machine, its scratch directory (removed when the test ends, however it
/// ends) and the machine as it was before.
fn bench(tag: &str) -> (std::sync::MutexGuard<'static, ()>, PathBuf, RemoveOnDrop, Machine) {
    let lock = locked();
    let dir = tempdir(tag);
    let cleanup = RemoveOnDrop(dir.clone());
    let before = machine(std::slice::from_ref(&dir));
    (lock, dir, cleanup, before)
}

fn escape_through_the_parents_namespaces_reaches_only_the_lab() {
    let (_lock, dir, _cleanup, before) = bench("seal-escape");
    let plugin = hostile(
        &dir,
        "nsenter -t $PPID -a sh -c 'ip route add 203.0.113.0/24 dev lo; nft add table inet cniconfescape; touch /run/cniconf-escaped; hostname cniconf-escaped' >&2",
    );
    let run = judge_plugin(&plugin);
    settle(&before);
    assert_same(&before, &machine(std::slice::from_ref(&dir)), "escape");
    assert_eq!(run.code, Some(0), "{}", run.report);
    let kept = finding(&run.report, "del/keeps-only-network-state");
    assert!(kept.contains("warn") && kept.contains("203.0.113.0/24"), "{kept}");
}

fn writes_to_etc_and_tmp_stay_in_the_lab_and_are_reported() {
    let (_lock, dir, _cleanup, before) = bench("seal-writes");
    let plugin = hostile(
        &dir,
        "echo '10.9.9.9 hostile' >> /etc/hosts; echo x > /etc/cniconf-hostile; echo x > /tmp/cniconf-hostile",
    );
    let run = judge_plugin(&plugin);
    settle(&before);
    assert_same(&before, &machine(std::slice::from_ref(&dir)), "writes");
    // DEL "should ... undo any modifications" (SPEC §2 DEL): a file left behind is a warning.
    assert_eq!(run.code, Some(0), "a file left after DEL is a should finding");
    let writes = finding(&run.report, "safety/writes-only-data-places");
    for path in ["/etc/hosts", "/etc/cniconf-hostile", "/tmp/cniconf-hostile"] {
        assert!(writes.contains(path), "{path} not named: {writes}");
    }
    let trace = finding(&run.report, "del/leaves-no-trace");
    assert!(trace.contains("warn") && trace.contains("/etc/hosts"), "{trace}");
}

fn a_setsid_daemon_is_named_and_ends_with_the_lab() {
    let (_lock, dir, _cleanup, before) = bench("seal-daemon");
    let plugin = hostile(&dir, &format!("setsid -f sleep {MARKER} >/dev/null 2>&1 </dev/null"));
    let run = judge_plugin(&plugin);
    settle(&before);
    assert_same(&before, &machine(std::slice::from_ref(&dir)), "daemon");
    let clean = finding(&run.report, "safety/exits-cleanly");
    assert!(
        clean.contains("warn") && clean.contains(&format!("(sleep): sleep {MARKER}")),
        "{clean}"
    );
    eprintln!(
        "a plugin that starts a daemon on every ADD: judged in {:.1} s",
        run.seconds
    );
}

fn stopping_or_killing_the_parent_leaves_the_suite_running() {
    let _lock = locked();
    for (signal, seen) in [("STOP", "stopped by signal 19"), ("KILL", "killed by signal 9")] {
        let dir = tempdir("seal-parent");
        let _cleanup = RemoveOnDrop(dir.clone());
        let before = machine(std::slice::from_ref(&dir));
        let plugin = hostile(&dir, &format!("kill -{signal} $PPID"));
        let run = judge(
            {
                let mut c = suite();
                c.arg(&plugin)
                    .args(["--filter", "^(add/result-schema|safety/exits-cleanly)$"]);
                c
            },
            Duration::from_secs(120),
        );
        settle(&before);
        assert_same(&before, &machine(std::slice::from_ref(&dir)), signal);
        let text = format!("{}", run.report);
        assert!(
            text.contains(seen),
            "SIG{signal}: the report does not say '{seen}': {text}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}

fn a_data_dir_under_tmp_works_in_parallel_labs() {
    let _lock = locked();
    let dir = tempdir("seal-datadir");
    let _cleanup = RemoveOnDrop(dir.clone());
    let data = format!("/tmp/cniconf-datadir-{}", std::process::id());
    let conf = dir.join("bridge.conflist");
    std::fs::write(
        &conf,
        format!(
            r#"{{"cniVersion":"1.0.0","name":"datadir","plugins":[{{"type":"bridge","bridge":"cni-dd0","isGateway":true,"ipMasq":true,
               "ipam":{{"type":"host-local","dataDir":"{data}","ranges":[[{{"subnet":"10.87.0.0/24"}}]]}}}}]}}"#
        ),
    )
    .unwrap();
    let before = machine(std::slice::from_ref(&dir));
    let run = judge(
        {
            let mut c = suite();
            c.arg("/usr/lib/cni/bridge")
                .arg("--config")
                .arg(&conf)
                .args(["--jobs", "4"]);
            c
        },
        Duration::from_secs(300),
    );
    settle(&before);
    assert_same(&before, &machine(std::slice::from_ref(&dir)), "dataDir");
    assert!(!Path::new(&data).exists());
    let failed: Vec<String> = statuses(&run.report)
        .into_iter()
        .filter(|(_, s)| s == "fail")
        .map(|(id, _)| id)
        .collect();
    assert!(failed.is_empty(), "false findings with dataDir under /tmp: {failed:?}");
}

fn a_run_sigkilled_half_way_leaves_nothing() {
    let (_lock, dir, _cleanup, before) = bench("seal-sigkill");
    let plugin = hostile(
        &dir,
        &format!(
            "echo x > /tmp/cniconf-hostile; echo x >> /etc/hosts; setsid -f sleep {MARKER} >/dev/null 2>&1 </dev/null"
        ),
    );
    let mut cmd = suite();
    cmd.arg(&plugin).args(["--jobs", "2"]);
    kill_at_progress(cmd, "[  4/", Duration::from_secs(60), || {
        // The leftover check finds labs by their init: it must see them while they run.
        let seen = processes();
        assert!(
            seen.iter().any(|p| p.contains("[cni-conformance ")),
            "no lab init seen while the run was going: {seen:?}"
        );
    });
    settle(&before);
    assert_same(&before, &machine(std::slice::from_ref(&dir)), "SIGKILL half way");
}

fn rootless_runs_are_sealed_the_same_way() {
    let (_lock, dir, _cleanup, before) = bench("seal-rootless");
    let plugin = hostile(
        &dir,
        &format!("echo x > /tmp/cniconf-hostile; setsid -f sleep {MARKER} >/dev/null 2>&1 </dev/null; nsenter -t $PPID -n ip route add 203.0.113.0/24 dev lo"),
    );
    let run = judge(
        {
            let mut c = Command::new("setpriv");
            c.args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
                .arg(env!("CARGO_BIN_EXE_cni-conformance"))
                .arg(&plugin)
                .current_dir("/");
            c
        },
        Duration::from_secs(300),
    );
    settle(&before);
    assert_same(&before, &machine(std::slice::from_ref(&dir)), "rootless");
    let text = format!("{}", run.report);
    for seen in ["/tmp/cniconf-hostile", &format!("sleep {MARKER}"), "203.0.113.0/24"] {
        assert!(text.contains(seen), "rootless report does not name {seen}");
    }
}

fn a_runtime_that_forks_a_daemon_is_named_and_sigkill_leaves_nothing() {
    let _lock = locked();
    let dir = tempdir("seal-runtime");
    let _cleanup = RemoveOnDrop(dir.clone());
    let control = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/runtimes/invoke-runtime.sh");
    let cmd = dir.join("daemon-runtime.sh");
    std::fs::write(
        &cmd,
        format!(
            "#!/bin/sh\nsetsid -f sleep {MARKER} >/dev/null 2>&1 </dev/null\necho x > /tmp/cniconf-runtime\nexec sh {}\n",
            control.display()
        ),
    )
    .unwrap();
    let before = machine(std::slice::from_ref(&dir));
    let run = judge(
        {
            let mut c = suite();
            c.args(["runtime", "--format", "json", "--"]).arg("sh").arg(&cmd);
            c
        },
        Duration::from_secs(300),
    );
    settle(&before);
    assert_same(&before, &machine(std::slice::from_ref(&dir)), "runtime mode");
    let left = finding(&run.report, "runtime/no-process-left");
    assert!(
        left.contains("warn") && left.contains(&format!("sleep {MARKER}")),
        "{left}"
    );

    // The same command, SIGKILLed while it runs: nothing of it stays (no scratch directory either).
    let mut killed = suite();
    killed.args(["runtime", "--"]).arg("sh").arg(&cmd);
    kill_at_progress(killed, "[ 3/", Duration::from_secs(60), || {});
    settle(&before);
    assert_same(&before, &machine(std::slice::from_ref(&dir)), "runtime mode SIGKILLed");
}

fn main() {
    let (key, value) = run_tag()
        .split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .unwrap();
    // Before any thread starts.
    std::env::set_var(key, value);
    harness::run(vec![
        Test::new(
            "escape_through_the_parents_namespaces_reaches_only_the_lab",
            escape_through_the_parents_namespaces_reaches_only_the_lab,
        )
        .needs(upstream_plugin("bridge")),
        Test::new(
            "writes_to_etc_and_tmp_stay_in_the_lab_and_are_reported",
            writes_to_etc_and_tmp_stay_in_the_lab_and_are_reported,
        )
        .needs(upstream_plugin("bridge")),
        Test::new(
            "a_setsid_daemon_is_named_and_ends_with_the_lab",
            a_setsid_daemon_is_named_and_ends_with_the_lab,
        )
        .needs(upstream_plugin("bridge")),
        Test::new(
            "stopping_or_killing_the_parent_leaves_the_suite_running",
            stopping_or_killing_the_parent_leaves_the_suite_running,
        )
        .needs(upstream_plugin("bridge")),
        Test::new(
            "a_data_dir_under_tmp_works_in_parallel_labs",
            a_data_dir_under_tmp_works_in_parallel_labs,
        )
        .needs(upstream_plugin("bridge")),
        Test::new(
            "a_run_sigkilled_half_way_leaves_nothing",
            a_run_sigkilled_half_way_leaves_nothing,
        )
        .needs(upstream_plugin("bridge")),
        Test::new(
            "rootless_runs_are_sealed_the_same_way",
            rootless_runs_are_sealed_the_same_way,
        )
        .needs(upstream_plugin("bridge")),
        Test::new(
            "a_runtime_that_forks_a_daemon_is_named_and_sigkill_leaves_nothing",
            a_runtime_that_forks_a_daemon_is_named_and_sigkill_leaves_nothing,
        ),
    ])
}
