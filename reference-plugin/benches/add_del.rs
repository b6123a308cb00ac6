//! ADD and DEL latency of the reference bridge + host-local with `ipMasq`, side by side with the
//! upstream Go plugins in /usr/lib/cni, and how the cost moves from the first to the last
//! attachment on one bridge (DESIGN §8).
//!
//! Runs inside private network and mount namespaces (like the bridge tests), with tmpfs over
//! `/run` and `/var/lib`. `BENCH_N` sets the number of attachments per plugin set (default 200;
//! upstream gets at most 100 because each of its calls takes tens of milliseconds).
//!
//! `cargo bench -p cni-reference-plugins --bench add_del`

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/nsharness/mod.rs"]
mod nsharness;

use common::Call;
use serde_json::{json, Value};
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;
use std::time::{Duration, Instant};

fn mount(src: &str, target: &str, fstype: Option<&str>, flags: libc::c_ulong) {
    let src_c = CString::new(src).unwrap();
    let target_c = CString::new(target).unwrap();
    let fstype_c = fstype.map(|f| CString::new(f).unwrap());
    // SAFETY: valid NUL-terminated strings for the duration of the call.
    let rc = unsafe {
        libc::mount(
            src_c.as_ptr(),
            target_c.as_ptr(),
            fstype_c.as_ref().map_or(std::ptr::null(), |f| f.as_ptr()),
            flags,
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "mount {target}: {}", std::io::Error::last_os_error());
}

fn container(name: &str) -> (String, cni_reference_plugins::netlink::NetNs) {
    let ns = nsharness::new_netns();
    let path = format!("/run/netns/{name}");
    std::fs::write(&path, b"").unwrap();
    mount(
        &format!("/proc/self/fd/{}", ns.as_fd().as_raw_fd()),
        &path,
        None,
        libc::MS_BIND,
    );
    (path, ns)
}

struct Stats {
    samples: Vec<Duration>,
}

impl Stats {
    fn ms(d: Duration) -> f64 {
        d.as_secs_f64() * 1000.0
    }

    fn summary(&self) -> String {
        let mut sorted = self.samples.clone();
        sorted.sort();
        let n = sorted.len();
        let mean = sorted.iter().sum::<Duration>() / n as u32;
        let head = &self.samples[..n.min(10)];
        let tail = &self.samples[n.saturating_sub(10)..];
        let avg = |s: &[Duration]| Self::ms(s.iter().sum::<Duration>() / s.len() as u32);
        format!(
            "mean {:7.2} ms  median {:7.2} ms  p95 {:7.2} ms  first10 {:7.2} ms  last10 {:7.2} ms",
            Self::ms(mean),
            Self::ms(sorted[n / 2]),
            Self::ms(sorted[(n * 95 / 100).min(n - 1)]),
            avg(head),
            avg(tail)
        )
    }
}

fn run_set(label: &str, bridge_bin: &str, cni_path: &str, bridge: &str, subnet: &str, n: usize) -> (Stats, Stats) {
    let conf: Value = json!({
        "cniVersion": "1.0.0", "name": format!("bench-{bridge}"), "type": "bridge",
        "bridge": bridge, "isGateway": true, "ipMasq": true,
        "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]]}
    });
    let mut containers = Vec::new();
    for i in 0..n {
        containers.push(container(&format!("{bridge}-{i}")));
    }
    let mut adds = Vec::new();
    let mut results = Vec::new();
    for (i, (path, _)) in containers.iter().enumerate() {
        let call = Call::new(bridge_bin, "ADD")
            .env("CNI_CONTAINERID", &format!("c{i}"))
            .env("CNI_NETNS", path)
            .env("CNI_IFNAME", "eth0")
            .env("CNI_PATH", cni_path)
            .stdin(&conf);
        let start = Instant::now();
        let out = call.run();
        adds.push(start.elapsed());
        results.push(out.ok());
    }
    let mut dels = Vec::new();
    for (i, (path, _)) in containers.iter().enumerate() {
        let mut c = conf.clone();
        c["prevResult"] = results[i].clone();
        let call = Call::new(bridge_bin, "DEL")
            .env("CNI_CONTAINERID", &format!("c{i}"))
            .env("CNI_NETNS", path)
            .env("CNI_IFNAME", "eth0")
            .env("CNI_PATH", cni_path)
            .stdin(&c);
        let start = Instant::now();
        call.run().ok();
        dels.push(start.elapsed());
    }
    let adds = Stats { samples: adds };
    let dels = Stats { samples: dels };
    println!("{label:9} ADD x{n:4}: {}", adds.summary());
    println!("{label:9} DEL x{n:4}: {}", dels.summary());
    (adds, dels)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    nsharness::enter_private_namespaces();
    mount("tmpfs", "/run", Some("tmpfs"), 0);
    std::fs::create_dir_all("/run/netns").unwrap();
    mount("tmpfs", "/var/lib", Some("tmpfs"), 0);
    std::fs::create_dir_all("/var/lib/cni").unwrap();
    let n: usize = std::env::var("BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let ours_bin = env!("CARGO_BIN_EXE_bridge");
    let ours_path = Path::new(env!("CARGO_BIN_EXE_host-local"))
        .parent()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let (oa, od) = run_set("reference", ours_bin, &ours_path, "brbench0", "10.100.0.0/16", n);
    if Path::new("/usr/lib/cni/bridge").is_file() {
        let (ua, ud) = run_set(
            "upstream",
            "/usr/lib/cni/bridge",
            "/usr/lib/cni",
            "brbench1",
            "10.101.0.0/16",
            n.min(100),
        );
        let mean = |s: &Stats| s.samples.iter().sum::<Duration>().as_secs_f64() / s.samples.len() as f64;
        println!(
            "speed-up: ADD {:.1}x  DEL {:.1}x",
            mean(&ua) / mean(&oa),
            mean(&ud) / mean(&od)
        );
    } else {
        println!("upstream plugins not installed in /usr/lib/cni: no comparison");
    }
}
