//! host-local against its contract (the upstream plugin's behaviour plus this crate's additions):
//! allocation, the on-disk store compared byte for byte with the upstream Go plugin,
//! interoperability in both directions, locking under 64 parallel ADDs, ADDs killed with SIGKILL
//! at any moment, exhaustion, requested addresses, GC, STATUS, CHECK and the result shape of every
//! spec version. No namespace is needed: host-local only touches its data directory.

mod common;

use common::{tree, Call, TempDir};
use serde_json::{json, Value};
use std::path::Path;

const OURS: &str = env!("CARGO_BIN_EXE_host-local");
const UPSTREAM: &str = "/usr/lib/cni/host-local";

fn conf(version: &str, data_dir: &Path, ipam_extra: Value) -> Value {
    let mut ipam = json!({"type": "host-local", "dataDir": data_dir.to_str().unwrap()});
    if let (Some(dst), Value::Object(src)) = (ipam.as_object_mut(), ipam_extra) {
        dst.extend(src);
    }
    json!({"cniVersion": version, "name": "testnet", "type": "bridge", "ipam": ipam})
}

fn subnet_conf(version: &str, dir: &Path, subnet: &str) -> Value {
    conf(version, dir, json!({"ranges": [[{"subnet": subnet}]]}))
}

fn add(bin: &str, config: &Value, cid: &str) -> common::Outcome {
    Call::attachment(bin, "ADD", cid, "eth0").stdin(config).run()
}

fn del(bin: &str, config: &Value, cid: &str) -> common::Outcome {
    Call::attachment(bin, "DEL", cid, "eth0").stdin(config).run()
}

fn address(result: &Value, i: usize) -> String {
    result["ips"][i]["address"].as_str().unwrap_or_default().to_string()
}

fn net_dir(dir: &Path) -> std::path::PathBuf {
    dir.join("testnet")
}

fn upstream_available() {
    assert!(
        Path::new(UPSTREAM).is_file(),
        "{UPSTREAM} is required for the side-by-side tests (Debian package containernetworking-plugins)"
    );
}

#[test]
fn allocation_sequence_is_round_robin() {
    let dir = TempDir::new("seq");
    let c = subnet_conf("1.1.0", dir.path(), "10.1.2.0/24");
    let a = add(OURS, &c, "c1").ok();
    assert_eq!(address(&a, 0), "10.1.2.2/24");
    assert_eq!(a["ips"][0]["gateway"], "10.1.2.1");
    assert!(a.get("interfaces").is_none(), "IPAM results carry no interfaces: {a}");
    assert!(a["ips"][0].get("interface").is_none());
    assert_eq!(address(&add(OURS, &c, "c2").ok(), 0), "10.1.2.3/24");
    assert_eq!(address(&add(OURS, &c, "c3").ok(), 0), "10.1.2.4/24");
    del(OURS, &c, "c2").ok();
    // Round robin: the freed .3 is not reused before the rest of the range.
    assert_eq!(address(&add(OURS, &c, "c4").ok(), 0), "10.1.2.5/24");
    let content = std::fs::read(net_dir(dir.path()).join("10.1.2.2")).unwrap();
    assert_eq!(content, b"c1\r\neth0");
    let last = std::fs::read_to_string(net_dir(dir.path()).join("last_reserved_ip.0")).unwrap();
    assert_eq!(last, "10.1.2.5");
    assert!(!net_dir(dir.path()).join("10.1.2.3").exists());
}

#[test]
fn range_end_wraps_to_start_and_skips_gateway() {
    let dir = TempDir::new("wrap");
    let c = conf(
        "1.0.0",
        dir.path(),
        json!({"ranges": [[{"subnet": "10.9.0.0/29", "rangeStart": "10.9.0.3", "rangeEnd": "10.9.0.4", "gateway": "10.9.0.4"}]]}),
    );
    assert_eq!(address(&add(OURS, &c, "a").ok(), 0), "10.9.0.3/29");
    del(OURS, &c, "a").ok();
    // .4 is the gateway; the walk wraps back to .3.
    let b = add(OURS, &c, "b").ok();
    assert_eq!(address(&b, 0), "10.9.0.3/29");
    assert_eq!(b["ips"][0]["gateway"], "10.9.0.4");
}

fn side_by_side_sequence(bin: &str, dir: &Path) -> Vec<String> {
    let c = conf(
        "1.0.0",
        dir,
        json!({"ranges": [[{"subnet": "10.1.2.0/24"}], [{"subnet": "2001:db8:1::/64"}]],
               "routes": [{"dst": "0.0.0.0/0"}]}),
    );
    let mut seen = Vec::new();
    for cid in ["alpha", "beta", "gamma"] {
        let r = add(bin, &c, cid).ok();
        seen.push(address(&r, 0));
        seen.push(address(&r, 1));
    }
    del(bin, &c, "beta").ok();
    let r = add(bin, &c, "delta").ok();
    seen.push(address(&r, 0));
    seen.push(address(&r, 1));
    seen
}

#[test]
fn store_bytes_identical_to_upstream() {
    upstream_available();
    let ours = TempDir::new("bytes-ours");
    let theirs = TempDir::new("bytes-up");
    let seen_ours = side_by_side_sequence(OURS, ours.path());
    let seen_theirs = side_by_side_sequence(UPSTREAM, theirs.path());
    assert_eq!(seen_ours, seen_theirs, "allocation sequences differ");
    let t_ours = tree(ours.path());
    let t_theirs = tree(theirs.path());
    assert_eq!(t_ours, t_theirs, "store trees differ (name, mode, content)");
    assert!(t_ours.iter().any(|(p, _, _)| p == "testnet/2001:db8:1::2"));
}

#[test]
fn interop_upstream_adds_we_delete_and_vice_versa() {
    upstream_available();
    let dir = TempDir::new("interop");
    let c = subnet_conf("1.0.0", dir.path(), "10.3.0.0/24");
    let up = add(UPSTREAM, &c, "from-upstream").ok();
    assert_eq!(address(&up, 0), "10.3.0.2/24");
    // Ours sees upstream's reservation: CHECK passes, a duplicate ADD is refused, round robin
    // continues after it.
    Call::attachment(OURS, "CHECK", "from-upstream", "eth0")
        .stdin(&c)
        .run()
        .ok();
    add(OURS, &c, "from-upstream").err();
    let ours = add(OURS, &c, "from-ours").ok();
    assert_eq!(address(&ours, 0), "10.3.0.3/24");
    del(OURS, &c, "from-upstream").ok();
    assert!(!net_dir(dir.path()).join("10.3.0.2").exists());
    Call::attachment(UPSTREAM, "CHECK", "from-ours", "eth0")
        .stdin(&c)
        .run()
        .ok();
    del(UPSTREAM, &c, "from-ours").ok();
    assert!(!net_dir(dir.path()).join("10.3.0.3").exists());
    assert_eq!(address(&add(UPSTREAM, &c, "next").ok(), 0), "10.3.0.4/24");
}

/// Whether host-local's owner index for `dir` is sealed for the directory as it is now.
fn index_is_current(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(dir).unwrap();
    let want = format!(
        "{}\n{} {} {} {} {} {}",
        dir.display(),
        m.dev(),
        m.ino(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec()
    );
    std::fs::read_dir(common::index_dir())
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.unwrap().path().join("stamp")).ok())
        .any(|stamp| stamp.contains(&want))
}

#[test]
fn owner_index_is_sealed_after_every_operation() {
    let dir = TempDir::new("sealed");
    let c = subnet_conf("1.1.0", dir.path(), "10.17.0.0/24");
    for cid in ["s1", "s2", "s3"] {
        add(OURS, &c, cid).ok();
        assert!(index_is_current(&net_dir(dir.path())), "index stale after ADD {cid}");
    }
    del(OURS, &c, "s2").ok();
    assert!(index_is_current(&net_dir(dir.path())), "index stale after DEL");
    Call::attachment(OURS, "CHECK", "s1", "eth0").stdin(&c).run().ok();
    assert!(index_is_current(&net_dir(dir.path())), "index stale after CHECK");
    add(OURS, &c, "s1").err();
    assert!(index_is_current(&net_dir(dir.path())), "index stale after a failed ADD");
}

#[test]
fn owner_index_stays_exact_with_a_foreign_writer() {
    upstream_available();
    let dir = TempDir::new("index");
    let c = subnet_conf("1.0.0", dir.path(), "10.16.0.0/24");
    add(OURS, &c, "a").ok();
    // Upstream changes the store behind our index's back.
    add(UPSTREAM, &c, "b").ok();
    // Our duplicate check still sees b's reservation, and DEL finds it.
    let e = add(OURS, &c, "b").err();
    assert!(e["msg"].as_str().unwrap().contains("duplicate allocation"), "{e}");
    del(OURS, &c, "b").ok();
    assert!(!net_dir(dir.path()).join("10.16.0.3").exists());
    // A reservation file replaced by another writer (removed, created again) is noticed.
    std::fs::remove_file(net_dir(dir.path()).join("10.16.0.2")).unwrap();
    std::fs::write(net_dir(dir.path()).join("10.16.0.2"), "someone-else\r\neth0").unwrap();
    del(OURS, &c, "a").ok();
    assert!(
        net_dir(dir.path()).join("10.16.0.2").exists(),
        "DEL removed another owner's address"
    );
    Call::attachment(OURS, "CHECK", "someone-else", "eth0")
        .stdin(&c)
        .run()
        .ok();
    // The index lives outside the store.
    assert!(std::fs::read_dir(common::index_dir()).unwrap().count() > 0);
    assert!(tree(dir.path()).iter().all(|(p, _, _)| !p.contains("index")));
}

#[test]
fn legacy_files_holding_only_the_container_id_are_released() {
    let dir = TempDir::new("legacy");
    let c = subnet_conf("1.0.0", dir.path(), "10.4.0.0/24");
    std::fs::create_dir_all(net_dir(dir.path())).unwrap();
    std::fs::write(net_dir(dir.path()).join("10.4.0.7"), "oldone").unwrap();
    Call::attachment(OURS, "CHECK", "oldone", "eth0").stdin(&c).run().ok();
    del(OURS, &c, "oldone").ok();
    assert!(!net_dir(dir.path()).join("10.4.0.7").exists());
}

#[test]
fn parallel_adds_never_share_an_address() {
    let dir = TempDir::new("parallel");
    let c = subnet_conf("1.1.0", dir.path(), "10.5.0.0/24");
    let handles: Vec<_> = (0..64)
        .map(|i| {
            let c = c.clone();
            std::thread::spawn(move || add(OURS, &c, &format!("ctr{i}")))
        })
        .collect();
    let mut addresses: Vec<String> = handles
        .into_iter()
        .map(|h| address(&h.join().unwrap().ok(), 0))
        .collect();
    addresses.sort();
    let before = addresses.len();
    addresses.dedup();
    assert_eq!(before, 64);
    assert_eq!(addresses.len(), 64, "an address was handed out twice");
    let files = std::fs::read_dir(net_dir(dir.path()))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("10.5.0."))
        .count();
    assert_eq!(files, 64);
}

#[test]
fn exhaustion_fails_cleanly_and_status_reports_it() {
    let dir = TempDir::new("exhaust");
    // A /29 has .1 (gateway) to .6: five addresses to hand out.
    let c = subnet_conf("1.1.0", dir.path(), "10.6.0.0/29");
    for i in 0..4 {
        add(OURS, &c, &format!("c{i}")).ok();
    }
    // STATUS is about the *next* ADD: one address left, so it passes.
    Call::new(OURS, "STATUS")
        .env("CNI_PATH", "/usr/lib/cni")
        .stdin(&c)
        .run()
        .ok();
    add(OURS, &c, "c4").ok();
    let err = add(OURS, &c, "one-too-many").err();
    assert!(
        err["msg"]
            .as_str()
            .unwrap()
            .contains("no IP addresses available in range set: 10.6.0.1-10.6.0.6"),
        "{err}"
    );
    assert_eq!(err["code"], 100);
    let status = Call::new(OURS, "STATUS")
        .env("CNI_PATH", "/usr/lib/cni")
        .stdin(&c)
        .run();
    assert_eq!(status.code(), 50, "{status:?}");
    del(OURS, &c, "c3").ok();
    Call::new(OURS, "STATUS")
        .env("CNI_PATH", "/usr/lib/cni")
        .stdin(&c)
        .run()
        .ok();
    assert_eq!(address(&add(OURS, &c, "again").ok(), 0), "10.6.0.5/29");
}

#[test]
fn status_fails_when_the_store_is_unusable() {
    let dir = TempDir::new("status");
    let not_a_dir = dir.path().join("plain-file");
    std::fs::write(&not_a_dir, "x").unwrap();
    let c = subnet_conf("1.1.0", &not_a_dir, "10.7.0.0/24");
    let out = Call::new(OURS, "STATUS").env("CNI_PATH", "/x").stdin(&c).run();
    assert_eq!(out.code(), 50, "{out:?}");
    let healthy = subnet_conf("1.1.0", dir.path(), "10.7.0.0/24");
    let ok = Call::new(OURS, "STATUS").env("CNI_PATH", "/x").stdin(&healthy).run();
    assert_eq!(ok.status, 0, "{ok:?}");
    assert!(ok.stdout.is_empty());
    // STATUS below 1.1.0 is refused by the version gate.
    let old = subnet_conf("1.0.0", dir.path(), "10.7.0.0/24");
    assert_eq!(
        Call::new(OURS, "STATUS").env("CNI_PATH", "/x").stdin(&old).run().code(),
        1
    );
}

#[test]
fn requested_addresses_from_every_source() {
    let dir = TempDir::new("requested");
    let base = subnet_conf("1.1.0", dir.path(), "10.8.0.0/24");
    let by_env = Call::attachment(OURS, "ADD", "e", "eth0")
        .env("CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAME=x;IP=10.8.0.50")
        .stdin(&base)
        .run()
        .ok();
    assert_eq!(address(&by_env, 0), "10.8.0.50/24");
    let mut by_args = base.clone();
    by_args["args"] = json!({"cni": {"ips": ["10.8.0.60"]}});
    assert_eq!(address(&add(OURS, &by_args, "a").ok(), 0), "10.8.0.60/24");
    // With both, args wins and CNI_ARGS is ignored (CONVENTIONS).
    let mut both = base.clone();
    both["args"] = json!({"cni": {"ips": ["10.8.0.61"]}});
    let r = Call::attachment(OURS, "ADD", "both", "eth0")
        .env("CNI_ARGS", "IP=10.8.0.62")
        .stdin(&both)
        .run()
        .ok();
    assert_eq!(address(&r, 0), "10.8.0.61/24");
    assert_eq!(r["ips"].as_array().unwrap().len(), 1);
    let mut by_rc = base.clone();
    by_rc["runtimeConfig"] = json!({"ips": ["10.8.0.70/24"]});
    assert_eq!(address(&add(OURS, &by_rc, "r").ok(), 0), "10.8.0.70/24");
    // Taken, gateway, outside every range: each fails and leaves nothing behind.
    let before = tree(dir.path());
    let mut taken = base.clone();
    taken["runtimeConfig"] = json!({"ips": ["10.8.0.70"]});
    let e = add(OURS, &taken, "t").err();
    assert!(
        e["msg"]
            .as_str()
            .unwrap()
            .contains("requested IP address 10.8.0.70 is not available"),
        "{e}"
    );
    let mut gateway = base.clone();
    gateway["runtimeConfig"] = json!({"ips": ["10.8.0.1"]});
    assert!(add(OURS, &gateway, "g").err()["msg"]
        .as_str()
        .unwrap()
        .contains("gateway"));
    let mut outside = base.clone();
    outside["runtimeConfig"] = json!({"ips": ["192.0.2.9"]});
    let e = add(OURS, &outside, "o").err();
    assert!(
        e["msg"]
            .as_str()
            .unwrap()
            .contains("failed to allocate all requested IPs: 192.0.2.9"),
        "{e}"
    );
    assert_eq!(tree(dir.path()), before, "a failed ADD left state behind");
    // An unknown CNI_ARGS key without IgnoreUnknown is an environment error.
    let e = Call::attachment(OURS, "ADD", "u", "eth0")
        .env("CNI_ARGS", "FOO=bar")
        .stdin(&base)
        .run();
    assert_eq!(e.code(), 4);
}

#[test]
fn failed_second_range_set_releases_the_first() {
    let dir = TempDir::new("partial");
    let c = conf(
        "1.1.0",
        dir.path(),
        json!({"ranges": [[{"subnet": "10.10.0.0/24"}], [{"subnet": "10.11.0.0/30"}]]}),
    );
    // 10.11.0.0/30 has exactly one address (.2).
    add(OURS, &c, "first").ok();
    let before = tree(dir.path());
    let e = add(OURS, &c, "second").err();
    assert!(
        e["msg"].as_str().unwrap().starts_with("failed to allocate for range 1"),
        "{e}"
    );
    let after = tree(dir.path());
    let names = |t: &Vec<(String, u32, Vec<u8>)>| {
        t.iter()
            .filter(|(p, _, _)| p.contains("10."))
            .map(|(p, _, _)| p.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&after), names(&before), "range set 0's address was not released");
}

#[test]
fn duplicate_add_keeps_the_original_reservation() {
    let dir = TempDir::new("dup");
    let c = subnet_conf("1.1.0", dir.path(), "10.12.0.0/24");
    add(OURS, &c, "x").ok();
    let e = add(OURS, &c, "x").err();
    assert!(e["msg"]
        .as_str()
        .unwrap()
        .contains("duplicate allocation is not allowed"));
    assert!(net_dir(dir.path()).join("10.12.0.2").exists());
    // Same container, other interface: a separate attachment.
    let other = Call::attachment(OURS, "ADD", "x", "net1").stdin(&c).run().ok();
    assert_eq!(address(&other, 0), "10.12.0.3/24");
}

#[test]
fn dual_stack_and_runtime_ranges_come_first() {
    let dir = TempDir::new("dual");
    let mut c = conf(
        "1.1.0",
        dir.path(),
        json!({"ranges": [[{"subnet": "203.0.113.0/24"}], [{"subnet": "2001:db8:1::/64"}]]}),
    );
    let r = add(OURS, &c, "d").ok();
    assert_eq!(address(&r, 0), "203.0.113.2/24");
    assert_eq!(address(&r, 1), "2001:db8:1::2/64");
    assert_eq!(r["ips"][1]["gateway"], "2001:db8:1::1");
    c["runtimeConfig"] = json!({"ipRanges": [[{"subnet": "198.51.100.0/24"}]]});
    let r = add(OURS, &c, "e").ok();
    assert_eq!(r["ips"].as_array().unwrap().len(), 3);
    assert_eq!(address(&r, 0), "198.51.100.2/24");
    // The runtime range set is index 0 now.
    let last0 = std::fs::read_to_string(net_dir(dir.path()).join("last_reserved_ip.0")).unwrap();
    assert_eq!(last0, "198.51.100.2");
}

#[test]
fn legacy_subnet_shorthand_and_routes_and_dns() {
    let dir = TempDir::new("legacy-subnet");
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(
        &resolv,
        "nameserver 10.0.0.53\ndomain example.org\nsearch a.example b.example\noptions ndots:3\n",
    )
    .unwrap();
    let c = conf(
        "1.1.0",
        dir.path(),
        json!({"subnet": "10.20.0.0/16", "rangeStart": "10.20.5.10", "rangeEnd": "10.20.5.20",
               "gateway": "10.20.0.254", "routes": [{"dst": "0.0.0.0/0"}, {"dst": "192.0.2.0/24", "gw": "10.20.0.1"}],
               "resolvConf": resolv.to_str().unwrap()}),
    );
    let r = add(OURS, &c, "s").ok();
    assert_eq!(address(&r, 0), "10.20.5.10/16");
    assert_eq!(r["ips"][0]["gateway"], "10.20.0.254");
    assert_eq!(
        r["routes"],
        json!([{"dst": "0.0.0.0/0"}, {"dst": "192.0.2.0/24", "gw": "10.20.0.1"}])
    );
    assert_eq!(
        r["dns"],
        json!({"nameservers": ["10.0.0.53"], "domain": "example.org", "search": ["a.example", "b.example"], "options": ["ndots:3"]})
    );
}

#[test]
fn invalid_ranges_are_rejected_with_code_7() {
    let dir = TempDir::new("invalid");
    for (ipam, needle) in [
        (json!({"ranges": [[{"subnet": "10.0.0.0/31"}]]}), "too small"),
        (json!({"ranges": [[{"subnet": "10.0.0.5/24"}]]}), "host bits"),
        (
            json!({"ranges": [[{"subnet": "10.0.0.0/24"}, {"subnet": "2001:db8::/64"}]]}),
            "mixed address families",
        ),
        (
            json!({"ranges": [[{"subnet": "10.0.0.0/24"}, {"subnet": "10.0.0.0/25"}]]}),
            "overlap",
        ),
        (
            json!({"ranges": [[{"subnet": "10.0.0.0/24"}], [{"subnet": "10.0.0.0/24"}]]}),
            "range set 0 overlaps with 1",
        ),
        (
            json!({"ranges": [[{"subnet": "10.0.0.0/24", "rangeStart": "10.0.1.1"}]]}),
            "not in network",
        ),
        (json!({"ranges": [[]]}), "empty range set"),
        (json!({"ranges": []}), "no IP ranges specified"),
        (json!({"ranges": "10.0.0.0/24"}), "ipam.ranges: expected an array"),
        (
            json!({"ranges": [[{"subnet": 5}]]}),
            "ipam.ranges[0][0].subnet: expected a string",
        ),
    ] {
        let c = conf("1.1.0", dir.path(), ipam.clone());
        let e = add(OURS, &c, "v").err();
        assert_eq!(e["code"], 7, "{ipam} -> {e}");
        assert!(e["msg"].as_str().unwrap().contains(needle), "{ipam}: {e}");
    }
    let mut no_ipam = conf("1.1.0", dir.path(), json!({}));
    no_ipam.as_object_mut().unwrap().remove("ipam");
    assert!(add(OURS, &no_ipam, "v").err()["msg"]
        .as_str()
        .unwrap()
        .contains("IPAM config missing 'ipam' key"));
    // Two IPv4 range sets need 0.3.0 or later.
    let two = conf(
        "0.2.0",
        dir.path(),
        json!({"ranges": [[{"subnet": "10.0.0.0/24"}], [{"subnet": "10.1.0.0/24"}]]}),
    );
    assert!(add(OURS, &two, "v").err()["msg"]
        .as_str()
        .unwrap()
        .contains("does not support more than 1 address per family"));
}

#[test]
fn del_is_idempotent_and_check_follows_the_reservation() {
    let dir = TempDir::new("del");
    let c = subnet_conf("1.1.0", dir.path(), "10.13.0.0/24");
    del(OURS, &c, "never-added").ok();
    assert!(
        !net_dir(dir.path()).exists(),
        "DEL of an unknown attachment created state"
    );
    add(OURS, &c, "k").ok();
    Call::attachment(OURS, "CHECK", "k", "eth0").stdin(&c).run().ok();
    let wrong_if = Call::attachment(OURS, "CHECK", "k", "eth1").stdin(&c).run();
    assert!(wrong_if.err()["msg"]
        .as_str()
        .unwrap()
        .contains("Failed to find address added by container k"));
    for _ in 0..3 {
        let out = del(OURS, &c, "k");
        out.ok();
        assert!(out.stdout.is_empty());
    }
    Call::attachment(OURS, "CHECK", "k", "eth0").stdin(&c).run().err();
    // DEL works without CNI_NETNS.
    add(OURS, &c, "n").ok();
    Call::attachment(OURS, "DEL", "n", "eth0")
        .unset("CNI_NETNS")
        .stdin(&c)
        .run()
        .ok();
    assert!(!net_dir(dir.path()).join("10.13.0.3").exists());
}

#[test]
fn gc_removes_only_stale_attachments() {
    let dir = TempDir::new("gc");
    let c = subnet_conf("1.1.0", dir.path(), "10.14.0.0/24");
    add(OURS, &c, "keep").ok();
    add(OURS, &c, "drop").ok();
    Call::attachment(OURS, "ADD", "keep", "net1").stdin(&c).run().ok();
    let mut gc = c.clone();
    gc["cni.dev/valid-attachments"] = json!([{"containerID": "keep", "ifname": "eth0"}]);
    let out = Call::new(OURS, "GC").env("CNI_PATH", "/usr/lib/cni").stdin(&gc).run();
    out.ok();
    assert!(out.stdout.is_empty());
    let d = net_dir(dir.path());
    assert!(d.join("10.14.0.2").exists(), "valid attachment lost its address");
    assert!(!d.join("10.14.0.3").exists(), "stale attachment kept its address");
    assert!(!d.join("10.14.0.4").exists(), "(keep, net1) is not valid and must go");
    // The legacy key of the 1.1.0 tag works too; an empty list removes everything.
    let mut legacy = c.clone();
    legacy["cni.dev/attachments"] = json!([]);
    Call::new(OURS, "GC").env("CNI_PATH", "/x").stdin(&legacy).run().ok();
    assert!(!d.join("10.14.0.2").exists());
    assert!(d.join("last_reserved_ip.0").exists() && d.join("lock").exists());
    // GC below 1.1.0 is refused.
    let old = subnet_conf("1.0.0", dir.path(), "10.14.0.0/24");
    assert_eq!(Call::new(OURS, "GC").env("CNI_PATH", "/x").stdin(&old).run().code(), 1);
}

#[test]
fn stale_temporaries_from_a_killed_add_are_swept() {
    let dir = TempDir::new("crash");
    let c = subnet_conf("1.1.0", dir.path(), "10.15.0.0/24");
    let d = net_dir(dir.path());
    std::fs::create_dir_all(&d).unwrap();
    // What a kill -9 between writing the owner and linking it leaves behind.
    std::fs::write(d.join(".reserve.tmp"), "dead\r\neth0").unwrap();
    std::fs::write(d.join(".last_reserved_ip.tmp"), "10.15.0.").unwrap();
    let r = add(OURS, &c, "alive").ok();
    assert_eq!(address(&r, 0), "10.15.0.2/24");
    let names: Vec<String> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
}

/// ADDs killed with SIGKILL after delays spread over a whole ADD: every reservation left is
/// complete (a known owner), `last_reserved_ip.0` is always a whole address, and the next ADD
/// sweeps the temporaries and takes a free address.
#[test]
fn kill_9_at_any_moment_leaves_no_half_reservation() {
    use std::os::unix::process::ExitStatusExt;
    let dir = TempDir::new("kill9");
    let c = subnet_conf("1.1.0", dir.path(), "10.16.0.0/16");
    let d = net_dir(dir.path());
    // How long a whole ADD takes here, spawn to exit; the kills are spread over 1.5 times that.
    let mut took: Vec<u64> = (0..5)
        .map(|i| {
            let t = std::time::Instant::now();
            add(OURS, &c, &format!("warm{i}")).ok();
            t.elapsed().as_micros() as u64
        })
        .collect();
    took.sort();
    // Adjusted as it goes, so that about a third of the ADDs finish: an ADD after a killed one
    // also rebuilds the owner index and sweeps temporaries, and the machine's load changes.
    let mut span = (took[2] * 3 / 2).max(100);
    let (mut killed, mut finished, mut finished_lately) = (0, 0, 0);
    for i in 0..300u64 {
        if i % 25 == 24 {
            match finished_lately {
                0..=4 => span = span * 3 / 2,
                16.. => span = (span * 2 / 3).max(100),
                _ => {}
            }
            finished_lately = 0;
        }
        let mut child = Call::attachment(OURS, "ADD", &format!("k{i}"), "eth0")
            .stdin(&c)
            .spawn();
        // 0 to `span` µs, in an order that mixes short and long.
        std::thread::sleep(std::time::Duration::from_micros((i * 7919) % span));
        let _ = child.kill();
        let status = child.wait().unwrap();
        if status.signal() == Some(libc::SIGKILL) {
            killed += 1;
        } else {
            assert!(status.success(), "ADD k{i} failed: {status:?}");
            finished += 1;
            finished_lately += 1;
        }
    }
    assert!(
        killed > 0 && finished > 0,
        "killed {killed}, finished {finished}: no mix"
    );
    eprintln!("killed {killed}, finished {finished}");
    let subnet = |ip: std::net::Ipv4Addr| ip.octets()[..2] == [10, 16];
    let mut reserved = 0;
    for entry in std::fs::read_dir(&d).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let content = std::fs::read_to_string(d.join(&name)).unwrap();
        if name == "lock" || name.ends_with(".tmp") {
            continue;
        }
        if name.starts_with("last_reserved_ip.") {
            let ip: std::net::Ipv4Addr = content.parse().unwrap_or_else(|_| panic!("{name}: {content:?}"));
            assert!(subnet(ip), "{name}: {content}");
            continue;
        }
        let ip: std::net::Ipv4Addr = name.parse().unwrap_or_else(|_| panic!("unexpected file {name}"));
        assert!(subnet(ip), "{name}");
        let (owner, ifname) = content
            .split_once("\r\n")
            .unwrap_or_else(|| panic!("{name}: half written: {content:?}"));
        let known = |prefix: &str| owner.strip_prefix(prefix).is_some_and(|n| n.parse::<u64>().is_ok());
        assert!(known("k") || known("warm"), "{name}: {content:?}");
        assert_eq!(ifname, "eth0", "{name}");
        reserved += 1;
    }
    assert!(
        reserved >= finished + 5,
        "{reserved} reservations for {finished} finished ADDs"
    );
    let r = add(OURS, &c, "after").ok();
    let ip = address(&r, 0);
    let ip = ip.split('/').next().unwrap();
    assert_eq!(std::fs::read_to_string(d.join(ip)).unwrap(), "after\r\neth0");
    let temporaries: Vec<String> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(temporaries.is_empty(), "{temporaries:?}");
}

#[test]
fn result_shape_of_every_version() {
    let dir = TempDir::new("versions");
    for (i, version) in ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]
        .iter()
        .enumerate()
    {
        let c = conf(
            version,
            dir.path(),
            json!({"ranges": [[{"subnet": format!("10.30.{i}.0/24")}], [{"subnet": format!("2001:db8:{}::/64", i + 1)}]],
                   "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]}),
        );
        let r = add(OURS, &c, &format!("v{i}")).ok();
        assert_eq!(r["cniVersion"], *version);
        match *version {
            "0.1.0" | "0.2.0" => {
                assert_eq!(r["ip4"]["ip"], format!("10.30.{i}.2/24"));
                assert_eq!(r["ip4"]["gateway"], format!("10.30.{i}.1"));
                assert_eq!(r["ip4"]["routes"], json!([{"dst": "0.0.0.0/0"}]));
                assert_eq!(r["ip6"]["ip"], format!("2001:db8:{}::2/64", i + 1));
                assert_eq!(r["ip6"]["routes"], json!([{"dst": "::/0"}]));
                assert!(r.get("ips").is_none());
                assert_eq!(r["dns"], json!({}));
            }
            "0.3.0" | "0.3.1" | "0.4.0" => {
                assert_eq!(r["ips"][0]["version"], "4");
                assert_eq!(r["ips"][1]["version"], "6");
                assert_eq!(address(&r, 0), format!("10.30.{i}.2/24"));
                assert_eq!(r["routes"].as_array().unwrap().len(), 2);
                assert_eq!(r["dns"], json!({}));
            }
            _ => {
                assert!(r["ips"][0].get("version").is_none());
                assert_eq!(address(&r, 1), format!("2001:db8:{}::2/64", i + 1));
                assert!(r.get("dns").is_none());
            }
        }
        // CHECK exists from 0.4.0 on.
        let check = Call::attachment(OURS, "CHECK", &format!("v{i}"), "eth0")
            .stdin(&c)
            .run();
        if *version >= "0.4.0" {
            check.ok();
        } else {
            assert_eq!(check.code(), 1);
        }
    }
}

#[test]
fn protocol_errors_follow_skel_order_and_codes() {
    let dir = TempDir::new("proto");
    let c = subnet_conf("1.1.0", dir.path(), "10.40.0.0/24");
    let e = Call::new(OURS, "ADD").env("CNI_CONTAINERID", "x").stdin(&c).run().err();
    assert_eq!(e["code"], 4);
    assert_eq!(
        e["msg"],
        "required env variables [CNI_NETNS,CNI_IFNAME,CNI_PATH] missing"
    );
    assert_eq!(Call::attachment(OURS, "ADD", "-bad", "eth0").stdin(&c).run().code(), 4);
    assert_eq!(
        Call::attachment(OURS, "ADD", "ok", "much-too-long-name")
            .stdin(&c)
            .run()
            .code(),
        4
    );
    assert_eq!(
        Call::attachment(OURS, "ADD", "ok", "eth0")
            .raw_stdin(b"{not json")
            .run()
            .code(),
        6
    );
    let mut nameless = c.clone();
    nameless.as_object_mut().unwrap().remove("name");
    assert_eq!(
        Call::attachment(OURS, "ADD", "ok", "eth0")
            .stdin(&nameless)
            .run()
            .code(),
        7
    );
    let mut badname = c.clone();
    badname["name"] = json!("bad/name");
    assert_eq!(
        Call::attachment(OURS, "ADD", "ok", "eth0").stdin(&badname).run().code(),
        7
    );
    let e = Call::attachment(OURS, "FROB", "ok", "eth0").stdin(&c).run().err();
    assert_eq!(
        (e["code"].as_u64(), e["msg"].as_str()),
        (Some(4), Some("unknown CNI_COMMAND: FROB"))
    );
    let mut future = c.clone();
    future["cniVersion"] = json!("9.9.9");
    let e = Call::attachment(OURS, "ADD", "ok", "eth0").stdin(&future).run().err();
    assert_eq!(
        (e["code"].as_u64(), e["msg"].as_str()),
        (Some(1), Some("incompatible CNI versions"))
    );
    let mut numeric = c.clone();
    numeric["cniVersion"] = json!(1);
    assert_eq!(
        Call::attachment(OURS, "ADD", "ok", "eth0").stdin(&numeric).run().code(),
        6
    );
    // CNI_NETNS naming our own namespace is refused before anything happens.
    let e = Call::attachment(OURS, "ADD", "self", "eth0")
        .env("CNI_NETNS", "/proc/self/ns/net")
        .stdin(&c)
        .run();
    assert_eq!(e.code(), 8);
    assert!(!net_dir(dir.path()).exists(), "refused ADD still touched the store");
    Call::attachment(OURS, "ADD", "self", "eth0")
        .env("CNI_NETNS", "/proc/self/ns/net")
        .env("CNI_NETNS_OVERRIDE", "1")
        .stdin(&c)
        .run()
        .ok();
    // The error carries the version in use.
    assert_eq!(
        Call::attachment(OURS, "ADD", "self", "eth0").stdin(&c).run().err()["cniVersion"],
        "1.1.0"
    );
    // No CNI_COMMAND: the about text, exit 0.
    let about = Call::new(OURS, "").unset("CNI_COMMAND").run();
    assert_eq!(about.status, 0);
    assert!(about.stderr.contains("CNI protocol versions supported: 0.1.0"));
}

#[test]
fn version_echoes_the_request_and_needs_nothing_else() {
    let out = Call::new(OURS, "VERSION").raw_stdin(br#"{"cniVersion":"0.4.0"}"#).run();
    let v = out.ok();
    assert_eq!(v["cniVersion"], "0.4.0");
    assert_eq!(
        v["supportedVersions"],
        json!(["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
    );
    let garbage = Call::new(OURS, "VERSION").raw_stdin(b"\x00garbage").run().ok();
    assert_eq!(garbage["cniVersion"], "1.1.0");
}

#[test]
fn unknown_keys_are_tolerated() {
    let dir = TempDir::new("unknown");
    let mut c = subnet_conf("1.1.0", dir.path(), "10.50.0.0/24");
    c["capabilities"] = json!({"ips": true});
    c["cni.dev/something"] = json!({"x": 1});
    c["ipam"]["futureKey"] = json!([1, 2, 3]);
    c["whatever"] = json!(null);
    add(OURS, &c, "u").ok();
}
