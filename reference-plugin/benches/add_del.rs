//! ADD and DEL latency of the reference bridge + host-local with `ipMasq`, side by side with the
//! upstream Go plugins in /usr/lib/cni, how the cost moves from the first to the last
//! attachment on one bridge, and the peak memory of an invocation.
//!
//! Runs inside private network and mount namespaces (like the bridge tests), with tmpfs over
//! `/run` and `/var/lib`. The two plugin sets are interleaved in one run, so machine load hits
//! both alike: the reference set makes `BENCH_N` attachments on its bridge (default 1,000), the
//! upstream set `BENCH_UPSTREAM_N` on its own bridge (default 100, each of its calls takes tens
//! of milliseconds), one upstream call after every `BENCH_N / BENCH_UPSTREAM_N` reference
//! calls. Then every attachment is deleted, interleaved the same way, and the bridges must be
//! left without ports.
//!
//! Each call is timed from spawn to exit, as a runtime sees it, and its CPU time (user + system
//! of the plugin and the delegates it waited for) is read from `wait4`. Printed: medians,
//! p10/p90, the medians of the first and last 50 calls, the ratios upstream / reference of
//! all of these, and the growth from the first to the last window.
//!
//! A burst of back-to-back calls also pays for the kernel's asynchronous work of the calls
//! before (IPv6 DAD, MLD reports and router solicitations of each new container end, each a
//! multicast the bridge floods to every port). So the cost of one more attachment is also
//! measured at rest: `BENCH_REST_PROBES` (default 20) ADD+DEL of one extra container with
//! `BENCH_REST_SETTLE_MS` (default 50) after each call, once when the reference bridge has one
//! port and once when it has all of them (`BENCH_REST_PAUSE_MS`, default 3000, after the
//! burst).
//!
//! To tell the kernel's own growth from the plugins', the same link requests an ADD and a DEL
//! make (create the pair on the bridge, bring the container end up with its address, send the
//! gratuitous ARP ADD's child sends, take the host end down and out of the bridge, delete the
//! pair; then one more pair deleted the detached way) are also sent directly with the crate's
//! netlink client, `BENCH_KERNEL_PROBES` times (default 20, 0 to skip), at the same two moments.
//!
//! Peak memory is measured apart,
//! on a few more attachments made after the timed ones: the plugin is started by a small
//! trampoline (this binary re-executed, which `fork`s and `exec`s it) so that `wait4`'s
//! `ru_maxrss` (the largest RSS of the plugin and the delegates it ran) does not include the
//! RSS of the process that spawned it (`exec` keeps the old address space's high-water mark).
//!
//! `BENCH_BASELINE_DIR=<dir with bridge and host-local>` adds a third set, e.g. an older build
//! of these plugins (`BENCH_BASELINE_N` attachments, default 200), interleaved the same way.
//!
//! `cargo bench -p cni-reference-plugins --bench add_del`

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/nsharness/mod.rs"]
mod nsharness;

use common::Call;
use serde_json::{json, Value};
use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn container(name: &str) -> (String, cni_reference_plugins::netlink::NetNs) {
    let ns = nsharness::new_netns();
    let path = format!("/run/netns/{name}");
    std::fs::write(&path, b"").unwrap();
    nsharness::mount(
        &format!("/proc/self/fd/{}", ns.as_fd().as_raw_fd()),
        &path,
        None,
        libc::MS_BIND,
    );
    (path, ns)
}

/// The environment variable that turns this binary into the memory-measuring trampoline.
const TRAMPOLINE: &str = "CNI_BENCH_TRAMPOLINE";
/// The line prefix the trampoline prints on stderr before the peak RSS in KiB.
const RSS_TAG: &str = "cni-bench-max-rss-kib=";

/// Trampoline mode: `fork` (so the child's address space holds only what this small process
/// touched), `exec` the plugin in the child, report its `ru_maxrss` on stderr, exit with its
/// status.
fn trampoline(plugin: std::ffi::OsString) -> ! {
    use std::os::unix::ffi::OsStrExt;
    std::env::remove_var(TRAMPOLINE);
    let path = CString::new(plugin.as_bytes()).unwrap();
    let argv = [path.as_ptr(), std::ptr::null()];
    // SAFETY: single-threaded; the child only calls execv and _exit.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: valid NUL-terminated path and argv.
        unsafe {
            libc::execv(path.as_ptr(), argv.as_ptr());
            libc::_exit(127);
        }
    }
    assert!(pid > 0, "fork: {}", std::io::Error::last_os_error());
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waiting for our own child with valid pointers.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(rc, pid, "wait4: {}", std::io::Error::last_os_error());
    eprintln!("{RSS_TAG}{}", usage.ru_maxrss);
    std::process::exit(if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        255
    })
}

/// One invocation: wall time, CPU time (user + system, its waited-for children included),
/// peak RSS in KiB (when measured), exit status and stdout.
struct Sample {
    took: Duration,
    cpu: Duration,
    max_rss_kib: Option<i64>,
    status: i32,
    stdout: Vec<u8>,
}

/// Run `call` like a runtime does (stdin written, stdout read to the end, stderr passed on),
/// timed; with `measure_memory`, through the trampoline, which also reports the peak RSS.
// The child is reaped with wait4 (for its rusage), which clippy does not see.
#[allow(clippy::zombie_processes)]
fn run_call(call: &Call, measure_memory: bool) -> Sample {
    let mut cmd = if measure_memory {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.env_clear().env(TRAMPOLINE, &call.binary);
        cmd
    } else {
        let mut cmd = Command::new(&call.binary);
        cmd.env_clear();
        cmd
    };
    // CNI_REF_* switches (e.g. CNI_REF_NO_INPROCESS_DELEGATE) reach the plugins.
    let switches = std::env::vars().filter(|(k, _)| k.starts_with("CNI_REF_"));
    cmd.env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(switches)
        .envs(call.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(if measure_memory {
            Stdio::piped()
        } else {
            Stdio::inherit()
        });
    let start = Instant::now();
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {:?}: {e}", call.binary));
    let mut input = child.stdin.take().unwrap();
    let _ = input.write_all(&call.stdin);
    drop(input);
    let mut stdout = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut stdout).unwrap();
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        pipe.read_to_string(&mut stderr).unwrap();
    }
    let mut raw_status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waiting for our own child with valid pointers.
    let rc = unsafe { libc::wait4(child.id() as libc::pid_t, &mut raw_status, 0, &mut usage) };
    let took = start.elapsed();
    assert_eq!(
        rc,
        child.id() as libc::pid_t,
        "wait4: {}",
        std::io::Error::last_os_error()
    );
    let tv = |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    let cpu = tv(usage.ru_utime) + tv(usage.ru_stime);
    let mut max_rss_kib = None;
    for line in stderr.lines() {
        match line.strip_prefix(RSS_TAG) {
            Some(kib) => max_rss_kib = kib.parse().ok(),
            None => eprintln!("{line}"),
        }
    }
    Sample {
        took,
        cpu,
        max_rss_kib,
        status: if libc::WIFEXITED(raw_status) {
            libc::WEXITSTATUS(raw_status)
        } else {
            -1
        },
        stdout,
    }
}

/// The samples of one verb of one plugin set.
#[derive(Default)]
struct Series {
    took: Vec<Duration>,
    cpu: Vec<Duration>,
    max_rss_kib: Option<i64>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

impl Series {
    fn push(&mut self, s: &Sample) {
        match s.max_rss_kib {
            Some(kib) => self.max_rss_kib = self.max_rss_kib.max(Some(kib)),
            None => {
                self.took.push(s.took);
                self.cpu.push(s.cpu);
            }
        }
    }

    fn median(&self) -> Duration {
        median(&self.took)
    }

    /// Samples in each of the first and last windows.
    fn window(&self) -> usize {
        (self.took.len() / 10).clamp(1, 50)
    }

    /// Median wall time of the first and of the last [`Series::window`] calls.
    fn first_last(&self) -> (Duration, Duration) {
        let (n, w) = (self.took.len(), self.window());
        (median(&self.took[..w]), median(&self.took[n - w..]))
    }

    fn summary(&self) -> String {
        let mut sorted = self.took.clone();
        sorted.sort();
        let n = sorted.len();
        let window = self.window();
        let (first, last) = self.first_last();
        format!(
            "median {:6.2} ms  p10 {:6.2}  p90 {:6.2}  first{window} {:6.2}  last{window} {:6.2} (medians)  CPU median {:5.2} ms  peak RSS {} KiB",
            ms(sorted[n / 2]),
            ms(sorted[n / 10]),
            ms(sorted[(n * 9 / 10).min(n - 1)]),
            ms(first),
            ms(last),
            ms(median(&self.cpu)),
            self.max_rss_kib.map_or("?".to_string(), |k| k.to_string()),
        )
    }
}

/// Timings of [`PluginSet::at_rest`], with how busy the whole machine was meanwhile (%).
struct AtRest {
    adds: Vec<Duration>,
    dels: Vec<Duration>,
    busy: f64,
    softirq: f64,
}

/// One plugin set (bridge binary + CNI_PATH) on its own bridge and subnet.
struct PluginSet {
    label: &'static str,
    bridge_bin: String,
    cni_path: String,
    bridge: &'static str,
    conf: Value,
    containers: Vec<(String, cni_reference_plugins::netlink::NetNs)>,
    results: Vec<Value>,
    adds: Series,
    dels: Series,
}

impl PluginSet {
    fn new(
        label: &'static str,
        bridge_bin: &str,
        cni_path: &str,
        bridge: &'static str,
        subnet: &str,
        n: usize,
    ) -> Self {
        let conf = json!({
            "cniVersion": "1.0.0", "name": format!("bench-{bridge}"), "type": "bridge",
            "bridge": bridge, "isGateway": true, "ipMasq": true,
            "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]]}
        });
        let containers = (0..n).map(|i| container(&format!("{bridge}-{i}"))).collect();
        PluginSet {
            label,
            bridge_bin: bridge_bin.to_string(),
            cni_path: cni_path.to_string(),
            bridge,
            conf,
            containers,
            results: Vec::new(),
            adds: Series::default(),
            dels: Series::default(),
        }
    }

    fn call(&self, verb: &str, i: usize, conf: &Value) -> Call {
        self.call_in(verb, &format!("c{i}"), &self.containers[i].0, conf)
    }

    /// `verb` for container `cid` in the namespace at `netns`.
    fn call_in(&self, verb: &str, cid: &str, netns: &str, conf: &Value) -> Call {
        Call::new(&self.bridge_bin, verb)
            .env("CNI_CONTAINERID", cid)
            .env("CNI_NETNS", netns)
            .env("CNI_IFNAME", "eth0")
            .env("CNI_PATH", &self.cni_path)
            .stdin(conf)
    }

    fn add(&mut self, i: usize) {
        self.add_with(i, false);
    }

    fn add_with(&mut self, i: usize, measure_memory: bool) {
        let sample = run_call(&self.call("ADD", i, &self.conf), measure_memory);
        assert_eq!(
            sample.status,
            0,
            "{} ADD {i} failed: {}",
            self.label,
            String::from_utf8_lossy(&sample.stdout)
        );
        let result = serde_json::from_slice(&sample.stdout).unwrap();
        if i < self.results.len() {
            self.results[i] = result;
        } else {
            self.results.push(result);
        }
        self.adds.push(&sample);
    }

    fn del(&mut self, i: usize) {
        self.del_with(i, false);
    }

    fn del_with(&mut self, i: usize, measure_memory: bool) {
        let mut conf = self.conf.clone();
        conf["prevResult"] = self.results[i].clone();
        let sample = run_call(&self.call("DEL", i, &conf), measure_memory);
        assert_eq!(
            sample.status,
            0,
            "{} DEL {i} failed: {}",
            self.label,
            String::from_utf8_lossy(&sample.stdout)
        );
        self.dels.push(&sample);
    }

    fn report(&self) {
        let n = self.containers.len();
        println!("{:9} ADD x{n:4}: {}", self.label, self.adds.summary());
        println!("{:9} DEL x{n:4}: {}", self.label, self.dels.summary());
    }

    /// A few more attachments (ADD then DEL) through the trampoline, for the peak RSS.
    fn measure_memory(&mut self) {
        for i in 0..self.containers.len().min(5) {
            self.add_with(i, true);
            self.del_with(i, true);
        }
    }

    /// ADD then DEL of `k` more attachments, one at a time with `settle` after each call (so
    /// the kernel's asynchronous work of one call, e.g. IPv6 link-local DAD and MLD, is not
    /// charged to the next), each timed like [`run_call`]: the cost of one more attachment on
    /// the bridge as it is now.
    fn at_rest(&self, k: usize, settle: Duration) -> AtRest {
        let (mut adds, mut dels) = (Vec::new(), Vec::new());
        let cpu_before = machine_cpu();
        for j in 0..k {
            let (path, _ns) = container(&format!("{}-rest{}-{j}", self.bridge, self.results.len()));
            let cid = format!("rest{j}");
            let call = |verb: &str, conf: &Value| self.call_in(verb, &cid, &path, conf);
            let add = run_call(&call("ADD", &self.conf), false);
            assert_eq!(add.status, 0, "{} ADD at rest failed", self.label);
            adds.push(add.took);
            std::thread::sleep(settle);
            let mut conf = self.conf.clone();
            conf["prevResult"] = serde_json::from_slice(&add.stdout).unwrap();
            let del = run_call(&call("DEL", &conf), false);
            assert_eq!(del.status, 0, "{} DEL at rest failed", self.label);
            dels.push(del.took);
            std::thread::sleep(settle);
            let target = CString::new(path.as_str()).unwrap();
            // SAFETY: valid path; the bind mount made by `container`.
            unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
        }
        let (busy, softirq) = busy_between(cpu_before, machine_cpu());
        AtRest {
            adds,
            dels,
            busy,
            softirq,
        }
    }

    /// Panics if the bridge still has ports: DEL must leave nothing behind. Retired pairs
    /// stay ports until the last DEL's child deletes them, a few ms later: up to 3 s allowed.
    fn assert_no_ports_left(&self) {
        let host = cni_reference_plugins::netlink::Rtnl::new().unwrap();
        let bridge = host.link_by_name(self.bridge).unwrap().expect("bridge exists");
        let ports_now = || -> Vec<String> {
            host.links()
                .unwrap()
                .into_iter()
                .filter(|l| l.master == Some(bridge.index))
                .map(|l| l.name)
                .collect()
        };
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut ports = ports_now();
        while !ports.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            ports = ports_now();
        }
        assert!(
            ports.is_empty(),
            "{}: ports left on {}: {ports:?}",
            self.label,
            self.bridge
        );
    }
}

fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Runs `step(ours, i)` for every reference attachment from `start` on (the ones before it
/// are already done) and, spread evenly among them, `step(other, j)` for every attachment of
/// each other set: one after every `n / m`-th reference call for a set of `m`.
fn interleaved(start: usize, ours: &mut PluginSet, others: &mut [PluginSet], step: fn(&mut PluginSet, usize)) {
    let n = ours.containers.len();
    let mut next = vec![0usize; others.len()];
    for i in 0..n {
        if i >= start {
            step(ours, i);
        }
        for (set, j) in others.iter_mut().zip(next.iter_mut()) {
            let m = set.containers.len();
            let stride = (n / m).max(1);
            if (i + 1) % stride == 0 && *j < m {
                step(set, *j);
                *j += 1;
            }
        }
    }
    for (set, j) in others.iter_mut().zip(next.iter_mut()) {
        while *j < set.containers.len() {
            step(set, *j);
            *j += 1;
        }
    }
}

fn main() {
    if let Some(plugin) = std::env::var_os(TRAMPOLINE) {
        trampoline(plugin);
    }
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    nsharness::enter_private_namespaces();
    nsharness::mount("tmpfs", "/run", Some("tmpfs"), 0);
    std::fs::create_dir_all("/run/netns").unwrap();
    nsharness::mount("tmpfs", "/var/lib", Some("tmpfs"), 0);
    std::fs::create_dir_all("/var/lib/cni").unwrap();
    let n = env_usize("BENCH_N", 1000).max(1);
    let ours_bin = env!("CARGO_BIN_EXE_bridge");
    let ours_path = Path::new(env!("CARGO_BIN_EXE_host-local"))
        .parent()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let mut ours = PluginSet::new("reference", ours_bin, &ours_path, "brbench0", "10.100.0.0/16", n);
    let mut others = Vec::new();
    if Path::new("/usr/lib/cni/bridge").is_file() {
        let m = env_usize("BENCH_UPSTREAM_N", 100).clamp(1, n);
        others.push(PluginSet::new(
            "upstream",
            "/usr/lib/cni/bridge",
            "/usr/lib/cni",
            "brbench1",
            "10.101.0.0/16",
            m,
        ));
    } else {
        println!("upstream plugins not installed in /usr/lib/cni: no comparison");
    }
    // Another build of the reference plugins (e.g. an older commit), to compare in the same run.
    let baseline_dir = std::env::var("BENCH_BASELINE_DIR").ok();
    if let Some(dir) = &baseline_dir {
        let m = env_usize("BENCH_BASELINE_N", 200).clamp(1, n);
        let bridge_bin = format!("{dir}/bridge");
        others.push(PluginSet::new(
            "baseline",
            &bridge_bin,
            dir,
            "brbench2",
            "10.102.0.0/16",
            m,
        ));
    }

    let probes = env_usize("BENCH_KERNEL_PROBES", 20);
    let rest_probes = env_usize("BENCH_REST_PROBES", 20);
    let settle = Duration::from_millis(env_usize("BENCH_REST_SETTLE_MS", 50) as u64);
    let pause = Duration::from_millis(env_usize("BENCH_REST_PAUSE_MS", 3000) as u64);
    // The kernel alone on the reference bridge with one port, then with all of them; the same
    // for one more attachment made by the plugin, at rest.
    let mut probe_before = None;
    let mut probe_after = None;
    ours.add(0);
    let rest_before = (rest_probes > 0).then(|| ours.at_rest(rest_probes, settle));
    if probes > 0 {
        probe_before = Some(probe_kernel(ours.bridge, probes));
    }
    interleaved(1, &mut ours, &mut others, PluginSet::add);
    // The burst's asynchronous kernel work (each new container end's DAD, MLD reports and
    // router solicitations, flooded to every port) goes on for seconds after it.
    std::thread::sleep(pause);
    let rest_after = (rest_probes > 0).then(|| ours.at_rest(rest_probes, settle));
    if probes > 0 {
        probe_after = Some(probe_kernel(ours.bridge, probes));
    }
    interleaved(0, &mut ours, &mut others, PluginSet::del);
    ours.measure_memory();
    for other in others.iter_mut() {
        other.measure_memory();
    }

    ours.report();
    ours.assert_no_ports_left();
    let ratio = |a: Duration, b: Duration| ms(a) / ms(b);
    for other in &others {
        other.report();
        other.assert_no_ports_left();
    }
    for other in &others {
        let (ours_add, other_add) = (ours.adds.first_last(), other.adds.first_last());
        let (ours_del, other_del) = (ours.dels.first_last(), other.dels.first_last());
        println!(
            "{} / reference (ratio of medians): ADD {:.1}x  DEL {:.1}x  ADD+DEL {:.1}x  CPU: ADD {:.1}x  DEL {:.1}x",
            other.label,
            ratio(other.adds.median(), ours.adds.median()),
            ratio(other.dels.median(), ours.dels.median()),
            ratio(
                other.adds.median() + other.dels.median(),
                ours.adds.median() + ours.dels.median()
            ),
            ratio(median(&other.adds.cpu), median(&ours.adds.cpu)),
            ratio(median(&other.dels.cpu), median(&ours.dels.cpu)),
        );
        println!(
            "{} / reference on the first windows: ADD {:.1}x  DEL {:.1}x;  on the last windows: ADD {:.1}x  DEL {:.1}x",
            other.label,
            ratio(other_add.0, ours_add.0),
            ratio(other_del.0, ours_del.0),
            ratio(other_add.1, ours_add.1),
            ratio(other_del.1, ours_del.1),
        );
    }
    println!(
        "growth, last / first window (reference, {} attachments): ADD {:.2}x  DEL {:.2}x",
        ours.containers.len(),
        ratio_of(ours.adds.first_last()),
        ratio_of(ours.dels.first_last()),
    );
    if let (Some(before), Some(after)) = (&rest_before, &rest_after) {
        println!(
            "one more attachment at rest (reference, {} ms pause after each call, medians of {}; \
             machine busy {:.0}% / {:.0}%, softirq {:.0}% / {:.0}%):",
            settle.as_millis(),
            before.adds.len(),
            before.busy,
            after.busy,
            before.softirq,
            after.softirq,
        );
        for (what, a, b) in [("ADD", &before.adds, &after.adds), ("DEL", &before.dels, &after.dels)] {
            print_growth(what, a, b, ours.containers.len());
        }
    }
    if let (Some(before), Some(after)) = (&probe_before, &probe_after) {
        println!(
            "kernel alone, the same requests sent directly (medians of {}):",
            before.create.len()
        );
        for (what, a, b) in [
            ("create veth pair on the bridge", &before.create, &after.create),
            ("container end up", &before.up, &after.up),
            ("announcement (ADD's child)", &before.announce, &after.announce),
            ("host end down + released", &before.retire, &after.retire),
            ("delete the pair", &before.delete, &after.delete),
            (
                "delete a pair, detached",
                &before.delete_detached,
                &after.delete_detached,
            ),
        ] {
            print_growth(what, a, b, ours.containers.len());
        }
    }
}

/// One line: the median of `at_one` (1 port), of `at_many` (`ports` ports) and their ratio.
fn print_growth(what: &str, at_one: &[Duration], at_many: &[Duration], ports: usize) {
    let (one, many) = (ms(median(at_one)), ms(median(at_many)));
    println!(
        "  {what:32} {one:6.2} ms with 1 port  {many:6.2} ms with {ports} ports  ({:.2}x)",
        many / one
    );
}

/// The machine's CPU time so far from `/proc/stat`, in clock ticks: (all, not idle, softirq).
fn machine_cpu() -> (u64, u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|t| t.parse().ok())
        .collect();
    let all: u64 = ticks.iter().take(8).sum();
    let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
    (all, all.saturating_sub(idle), ticks.get(6).copied().unwrap_or(0))
}

/// How busy the machine was between two [`machine_cpu`] readings: (busy %, softirq %).
fn busy_between(before: (u64, u64, u64), after: (u64, u64, u64)) -> (f64, f64) {
    let all = after.0.saturating_sub(before.0).max(1) as f64;
    (
        100.0 * after.1.saturating_sub(before.1) as f64 / all,
        100.0 * after.2.saturating_sub(before.2) as f64 / all,
    )
}

fn ratio_of((first, last): (Duration, Duration)) -> f64 {
    ms(last) / ms(first)
}

/// Timings of the kernel operations behind ADD and DEL, sent directly with the crate's
/// netlink client (no plugin process, no IPAM, no nftables).
struct KernelProbe {
    create: Vec<Duration>,
    up: Vec<Duration>,
    announce: Vec<Duration>,
    retire: Vec<Duration>,
    delete: Vec<Duration>,
    delete_detached: Vec<Duration>,
}

/// Creates, brings up, retires and deletes `n` veth pairs on `bridge` (which must have one
/// port of its own at least), each peer in a new namespace, timing each request.
fn probe_kernel(bridge: &str, n: usize) -> KernelProbe {
    use cni_reference_plugins::netlink::{self, LinkChange, Rtnl, VethSpec};
    let host = Rtnl::new().unwrap();
    let br = host.link_by_name(bridge).unwrap().expect("bridge exists");
    let mut probe = KernelProbe {
        create: Vec::new(),
        up: Vec::new(),
        announce: Vec::new(),
        retire: Vec::new(),
        delete: Vec::new(),
        delete_detached: Vec::new(),
    };
    // A pair on the bridge, its container end in `ns`, as ADD creates it.
    let create_pair = |ns: &netlink::NetNs| {
        host.create_veth_random_name(&VethSpec {
            name: "probe",
            master: Some(br.index),
            up: true,
            peer_name: "eth0",
            peer_netns: Some(ns.as_fd()),
            ..Default::default()
        })
        .unwrap()
    };
    for i in 0..n {
        let ns = nsharness::new_netns();
        let t = Instant::now();
        let veth = create_pair(&ns);
        probe.create.push(t.elapsed());
        let ctr = Rtnl::in_netns(ns.as_fd()).unwrap();
        let peer = ctr.link_by_name("eth0").unwrap().unwrap();
        // Configured like ADD does: an address, up, then arp_notify (set before, going up
        // would send the announcement within the request); then the announcement ADD's child
        // sends (a broadcast the bridge floods to every port).
        let ip = std::net::Ipv4Addr::new(10, 199, (i / 250) as u8, (i % 250 + 2) as u8);
        let addr = netlink::IpNet {
            addr: std::net::IpAddr::V4(ip),
            prefix: 16,
        };
        ctr.add_address(peer.index, addr, true).unwrap();
        let t = Instant::now();
        ctr.set_up(peer.index, true).unwrap();
        probe.up.push(t.elapsed());
        ctr.set_ipv4_devconf(peer.index, &[(netlink::IPV4_DEVCONF_ARP_NOTIFY, 1)])
            .unwrap();
        let announcement = netlink::Announcement::prepare(ns.as_fd(), peer.index, peer.mac.unwrap(), &[ip]).unwrap();
        let t = Instant::now();
        // SAFETY: sends on a socket the announcement owns.
        assert_eq!(unsafe { announcement.send_in_forked_child() }, 1);
        probe.announce.push(t.elapsed());
        let t = Instant::now();
        host.set_link(
            veth.index,
            &LinkChange {
                up: Some(false),
                master: Some(0),
                ..Default::default()
            },
        )
        .unwrap();
        probe.retire.push(t.elapsed());
        let t = Instant::now();
        host.delete_link(veth.index).unwrap();
        probe.delete.push(t.elapsed());
        // The other way DEL can delete: handed to the kernel's background (see
        // `Rtnl::delete_link_detached`), timed up to when the request returns.
        let spare = create_pair(&ns);
        let t = Instant::now();
        host.delete_link_detached(spare.index, Duration::from_secs(5)).unwrap();
        probe.delete_detached.push(t.elapsed());
    }
    probe
}
