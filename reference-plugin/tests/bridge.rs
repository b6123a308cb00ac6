//! bridge against its contract (the upstream plugin's behaviour plus this crate's additions),
//! run only inside private namespaces: `main` moves the test process into new network and mount
//! namespaces (see `nsharness`), mounts tmpfs over `/run` and `/var/lib/cni`, and every plugin it
//! starts inherits them. Container namespaces are bind-mounted files under that private
//! `/run/netns`.

mod common;
mod nsharness;

use cni_reference_plugins::masq::Masq;
use cni_reference_plugins::netlink::{self, LinkChange, NetNs, Rtnl};
use common::{Call, Outcome};
use serde_json::{json, Value};
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

const BRIDGE: &str = env!("CARGO_BIN_EXE_bridge");
const HOST_LOCAL: &str = env!("CARGO_BIN_EXE_host-local");

fn cni_path() -> String {
    Path::new(HOST_LOCAL).parent().unwrap().to_string_lossy().into_owned()
}

/// A container namespace reachable as `/run/netns/<name>`.
struct Container {
    path: PathBuf,
    ns: Option<NetNs>,
}

impl Container {
    fn new(name: &str) -> Container {
        let ns = nsharness::new_netns();
        let path = PathBuf::from(format!("/run/netns/{name}"));
        std::fs::write(&path, b"").unwrap();
        nsharness::mount(
            &format!("/proc/self/fd/{}", ns.as_fd().as_raw_fd()),
            path.to_str().unwrap(),
            None,
            libc::MS_BIND,
        );
        Container { path, ns: Some(ns) }
    }

    fn path(&self) -> &str {
        self.path.to_str().unwrap()
    }

    fn rtnl(&self) -> Rtnl {
        Rtnl::in_netns(self.ns.as_ref().unwrap().as_fd()).unwrap()
    }

    /// Destroy the namespace: unmount its file and close our handle.
    fn destroy(&mut self) {
        let target = CString::new(self.path()).unwrap();
        // SAFETY: valid path.
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
        let _ = std::fs::remove_file(&self.path);
        self.ns = None;
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if self.ns.is_some() {
            self.destroy();
        }
    }
}

fn config(version: &str, bridge: &str, subnet: &str, extra: Value) -> Value {
    let mut c = json!({
        "cniVersion": version, "name": format!("net-{bridge}"), "type": "bridge",
        "bridge": bridge, "isGateway": true, "isDefaultGateway": true,
        "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]]}
    });
    if let (Some(dst), Value::Object(src)) = (c.as_object_mut(), extra) {
        dst.extend(src);
    }
    c
}

fn call(command: &str, c: &Container, ifname: &str, cid: &str, conf: &Value) -> Outcome {
    Call::new(BRIDGE, command)
        .env("CNI_CONTAINERID", cid)
        .env("CNI_NETNS", c.path())
        .env("CNI_IFNAME", ifname)
        .env("CNI_PATH", &cni_path())
        .stdin(conf)
        .run()
}

fn with_prev(conf: &Value, prev: &Value) -> Value {
    let mut c = conf.clone();
    c["prevResult"] = prev.clone();
    c
}

fn host() -> Rtnl {
    Rtnl::new().unwrap()
}

/// How many links the host namespace has, not counting retired veth ends (`cnidel…`), which
/// an earlier DEL's child deletes a few milliseconds after that DEL returned.
fn live_host_links(h: &Rtnl) -> usize {
    h.links()
        .unwrap()
        .iter()
        .filter(|l| !l.name.starts_with("cnidel"))
        .count()
}

/// The ports of `bridge` that are not retired veth ends; panics if a retired one still has
/// its carrier (could carry traffic).
fn live_ports(h: &Rtnl, bridge: &str) -> Vec<String> {
    let br = h.link_by_name(bridge).unwrap().expect("bridge");
    let mut live = Vec::new();
    for port in h.links().unwrap().into_iter().filter(|l| l.master == Some(br.index)) {
        if port.name.starts_with("cnidel") {
            assert_eq!(
                port.flags & libc::IFF_LOWER_UP as u32,
                0,
                "retired port {} still has its carrier: {port:?}",
                port.name
            );
        } else {
            live.push(port.name);
        }
    }
    live
}

/// The masqueraded addresses of `network` with their owner tags.
fn masq_entries(network: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Masq::open()
        .unwrap()
        .entries(network)
        .unwrap()
        .into_iter()
        .map(|e| (e.ip.to_string(), e.owner.unwrap_or_default()))
        .collect();
    out.sort();
    out
}

fn reservation_exists(network: &str, ip: &str) -> bool {
    Path::new("/var/lib/cni/networks").join(network).join(ip).exists()
}

fn add_builds_bridge_veth_addresses_and_routes() {
    let c = Container::new("add1");
    let conf = config("1.1.0", "br-add", "10.22.0.0/24", json!({}));
    let r = call("ADD", &c, "eth0", "ctr-add", &conf).ok();
    assert_eq!(r["cniVersion"], "1.1.0");
    let ifs = r["interfaces"].as_array().unwrap();
    assert_eq!(ifs.len(), 3, "{r}");
    assert_eq!(ifs[0]["name"], "br-add");
    assert!(ifs[0].get("sandbox").is_none());
    let veth_name = ifs[1]["name"].as_str().unwrap().to_string();
    assert!(veth_name.starts_with("veth") && veth_name.len() == 12, "{veth_name}");
    assert!(ifs[1].get("sandbox").is_none());
    assert_eq!(ifs[2]["name"], "eth0");
    assert_eq!(ifs[2]["sandbox"], c.path());
    assert_eq!(
        r["ips"],
        json!([{"interface": 2, "address": "10.22.0.2/24", "gateway": "10.22.0.1"}])
    );
    assert_eq!(r["routes"], json!([{"dst": "0.0.0.0/0", "gw": "10.22.0.1"}]));

    // The kernel agrees with the result.
    let h = host();
    let br = h.link_by_name("br-add").unwrap().expect("bridge");
    assert!(br.is_kind("bridge") && br.is_up());
    assert_eq!(ifs[0]["mac"], br.mac.unwrap().to_string());
    let veth = h.link_by_name(&veth_name).unwrap().expect("host veth");
    assert_eq!(veth.master, Some(br.index));
    assert_eq!(ifs[1]["mac"], veth.mac.unwrap().to_string());
    let br_addrs = h.addresses(Some(br.index), netlink::Family::V4).unwrap();
    assert!(
        br_addrs.iter().any(|a| a.net.to_string() == "10.22.0.1/24"),
        "{br_addrs:?}"
    );
    assert_eq!(netlink::read_sysctl("net/ipv4/ip_forward").unwrap(), "1");
    let ctr = c.rtnl();
    let eth0 = ctr.link_by_name("eth0").unwrap().expect("eth0");
    assert!(eth0.is_up() && eth0.is_kind("veth"));
    assert_eq!(ifs[2]["mac"], eth0.mac.unwrap().to_string());
    let addrs = ctr.addresses(Some(eth0.index), netlink::Family::V4).unwrap();
    assert!(addrs.iter().any(|a| a.net.to_string() == "10.22.0.2/24"));
    let routes = ctr.routes(netlink::Family::V4, Some(netlink::RT_TABLE_MAIN)).unwrap();
    assert!(
        routes
            .iter()
            .any(|r| r.is_default() && r.gw == Some("10.22.0.1".parse().unwrap())),
        "{routes:?}"
    );
    assert!(reservation_exists("net-br-add", "10.22.0.2"));
    call("DEL", &c, "eth0", "ctr-add", &with_prev(&conf, &r)).ok();
}

/// The MAC `ip` has in the neighbour table of `c`'s `eth0`, if any.
fn neighbour_mac(c: &Container, ip: &str) -> Option<String> {
    let out = std::process::Command::new("ip")
        .args(["-n", c.path.file_name().unwrap().to_str().unwrap()])
        .args(["neigh", "show", ip, "dev", "eth0"])
        .output()
        .expect("run ip");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut words = text.split_whitespace();
    words.find(|w| *w == "lladdr")?;
    words.next().map(str::to_string)
}

/// ADD through `bin` (the bridge, or a wrapper of it) announces the new address: a neighbour that
/// cached the address under an old MAC learns the new one, and `arp_notify` is set for later
/// link changes. `tag` keeps names and the subnet apart.
fn announces_to_neighbours(bin: &str, tag: &str, octet: u8) {
    let (na, nb) = (format!("{tag}-a"), format!("{tag}-b"));
    let a = Container::new(&na);
    let b = Container::new(&nb);
    let conf = config("1.1.0", &format!("br-{tag}"), &format!("10.{octet}.0.0/24"), json!({}));
    let old = format!("10.{octet}.0.3");
    let ra = call_with(bin, &cni_path(), "ADD", &a, &na, &conf).ok();
    assert_eq!(ra["ips"][0]["address"], format!("10.{octet}.0.2/24"));
    // A still remembers a former owner of .3 (no lock time, so any update counts).
    netlink::write_sysctls_in(a.ns.as_ref().unwrap().as_fd(), &[("net/ipv4/neigh/eth0/locktime", "0")]).unwrap();
    let status = std::process::Command::new("ip")
        .args(["-n", &na, "neigh", "replace", &old])
        .args(["lladdr", "02:00:00:00:00:99", "dev", "eth0", "nud", "stale"])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(neighbour_mac(&a, &old).as_deref(), Some("02:00:00:00:00:99"));

    let rb = call_with(bin, &cni_path(), "ADD", &b, &nb, &conf).ok();
    assert_eq!(rb["ips"][0]["address"], format!("{old}/24"));
    let b_mac = rb["interfaces"][2]["mac"].as_str().unwrap().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let mut seen = neighbour_mac(&a, &old);
    while seen.as_deref() != Some(b_mac.as_str()) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
        seen = neighbour_mac(&a, &old);
    }
    assert_eq!(seen.as_deref(), Some(b_mac.as_str()), "A's cache was not updated");
    assert_eq!(
        netlink::read_sysctl_in(b.ns.as_ref().unwrap().as_fd(), "net/ipv4/conf/eth0/arp_notify").unwrap(),
        "1"
    );
    call_with(bin, &cni_path(), "DEL", &b, &nb, &with_prev(&conf, &rb)).ok();
    call_with(bin, &cni_path(), "DEL", &a, &na, &with_prev(&conf, &ra)).ok();
}

/// ADD's child sends the gratuitous ARP (what upstream expects from `arp_notify`).
fn add_announces_the_address_to_neighbours() {
    announces_to_neighbours(BRIDGE, "garp", 45);
}

/// Without CAP_NET_RAW the child has no packet socket: `arp_notify` is then set before the link
/// comes up and the kernel announces, as before.
fn add_announces_without_cap_net_raw_through_the_kernel() {
    let dir = std::env::temp_dir().join(format!("cni-ref-noraw-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wrapper = dir.join("bridge-without-net-raw");
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\nexec setpriv --bounding-set -net_raw -- {BRIDGE} \"$@\"\n"),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("0755")
        .arg(&wrapper)
        .status()
        .unwrap();
    announces_to_neighbours(wrapper.to_str().unwrap(), "noraw", 47);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn chained_after_another_plugin_keeps_its_result() {
    let c = Container::new("chain1");
    let conf = config("1.1.0", "br-chain", "10.37.0.0/24", json!({}));
    let prev = json!({"cniVersion": "1.1.0",
        "interfaces": [{"name": "dummy0", "mac": "0a:00:00:00:00:01"}],
        "ips": [{"address": "192.0.2.9/24", "interface": 0}],
        "routes": [{"dst": "198.51.100.0/24", "gw": "192.0.2.1"}],
        "dns": {"nameservers": ["192.0.2.53"]}});
    let r = call("ADD", &c, "eth0", "ctr-chain", &with_prev(&conf, &prev)).ok();
    assert_eq!(r["interfaces"][0]["name"], "dummy0");
    assert_eq!(r["interfaces"][1]["name"], "br-chain");
    assert_eq!(r["interfaces"][3]["name"], "eth0");
    assert_eq!(r["ips"][0]["address"], "192.0.2.9/24");
    assert_eq!(
        r["ips"][1],
        json!({"interface": 3, "address": "10.37.0.2/24", "gateway": "10.37.0.1"})
    );
    assert_eq!(r["routes"][0]["dst"], "198.51.100.0/24");
    assert_eq!(r["dns"]["nameservers"][0], "192.0.2.53");
    // A broken prevResult fails before anything is created.
    let bad = json!({"cniVersion": "1.1.0", "ips": [{"address": "not-an-ip"}]});
    let links = live_host_links(&host());
    call("ADD", &c, "net1", "ctr-chain2", &with_prev(&conf, &bad)).err();
    assert_eq!(live_host_links(&host()), links);
    call("DEL", &c, "eth0", "ctr-chain", &with_prev(&conf, &r)).ok();
}

fn parallel_adds_and_dels_on_a_new_bridge() {
    let containers: Vec<Container> = (0..16).map(|i| Container::new(&format!("par{i}"))).collect();
    let conf = config("1.1.0", "br-par", "10.38.0.0/24", json!({"ipMasq": true}));
    let results: Vec<Value> = std::thread::scope(|scope| {
        let handles: Vec<_> = containers
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let conf = &conf;
                scope.spawn(move || call("ADD", c, "eth0", &format!("par{i}"), conf).ok())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut addrs: Vec<String> = results
        .iter()
        .map(|r| r["ips"][0]["address"].as_str().unwrap().to_string())
        .collect();
    addrs.sort();
    addrs.dedup();
    assert_eq!(addrs.len(), 16, "an address was handed out twice");
    assert_eq!(masq_entries("net-br-par").len(), 16);
    let br = host().link_by_name("br-par").unwrap().unwrap();
    let ports = host()
        .links()
        .unwrap()
        .into_iter()
        .filter(|l| l.master == Some(br.index))
        .count();
    assert_eq!(ports, 16);
    std::thread::scope(|scope| {
        for (i, (c, r)) in containers.iter().zip(&results).enumerate() {
            let conf = with_prev(&conf, r);
            scope.spawn(move || call("DEL", c, "eth0", &format!("par{i}"), &conf).ok());
        }
    });
    assert!(masq_entries("net-br-par").is_empty());
    assert_eq!(live_ports(&host(), "br-par"), Vec::<String>::new());
    let left = std::fs::read_dir("/var/lib/cni/networks/net-br-par")
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("10."))
        .count();
    assert_eq!(left, 0);
}

fn check_passes_then_detects_breakage() {
    let c = Container::new("chk1");
    let conf = config("1.0.0", "br-chk", "10.23.0.0/24", json!({"mtu": 1400}));
    let r = call("ADD", &c, "eth0", "ctr-chk", &conf).ok();
    let with = with_prev(&conf, &r);
    let out = call("CHECK", &c, "eth0", "ctr-chk", &with);
    out.ok();
    assert!(out.stdout.is_empty());
    // Without prevResult CHECK cannot know what to verify.
    assert!(call("CHECK", &c, "eth0", "ctr-chk", &conf).err()["msg"]
        .as_str()
        .unwrap()
        .contains("Required prevResult missing"));
    let ctr = c.rtnl();
    let eth0 = ctr.link_by_name("eth0").unwrap().unwrap();
    // Address removed → CHECK fails; restored → passes.
    let addr: netlink::IpNet = "10.23.0.2/24".parse().unwrap();
    assert!(ctr.del_address(eth0.index, addr).unwrap());
    let e = call("CHECK", &c, "eth0", "ctr-chk", &with).err();
    assert!(e["msg"].as_str().unwrap().contains("10.23.0.2/24"), "{e}");
    ctr.add_address(eth0.index, addr, true).unwrap();
    ctr.add_route(&netlink::Route::default_via("10.23.0.1".parse().unwrap()))
        .ok();
    call("CHECK", &c, "eth0", "ctr-chk", &with).ok();
    // MTU changed → fails.
    ctr.set_link(
        eth0.index,
        &LinkChange {
            mtu: Some(1300),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(call("CHECK", &c, "eth0", "ctr-chk", &with).err()["msg"]
        .as_str()
        .unwrap()
        .contains("MTU"));
    ctr.set_link(
        eth0.index,
        &LinkChange {
            mtu: Some(1400),
            ..Default::default()
        },
    )
    .unwrap();
    call("CHECK", &c, "eth0", "ctr-chk", &with).ok();
    // Host veth taken off the bridge → fails.
    let h = host();
    let veth = h
        .link_by_name(r["interfaces"][1]["name"].as_str().unwrap())
        .unwrap()
        .unwrap();
    h.set_link(
        veth.index,
        &LinkChange {
            master: Some(0),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(call("CHECK", &c, "eth0", "ctr-chk", &with).err()["msg"]
        .as_str()
        .unwrap()
        .contains("not a port of bridge"));
    let br = h.link_by_name("br-chk").unwrap().unwrap();
    h.set_link(
        veth.index,
        &LinkChange {
            master: Some(br.index),
            ..Default::default()
        },
    )
    .unwrap();
    call("CHECK", &c, "eth0", "ctr-chk", &with).ok();
    // Default route removed → fails.
    assert!(ctr
        .del_route(&netlink::Route::default_via("10.23.0.1".parse().unwrap()))
        .unwrap());
    assert!(call("CHECK", &c, "eth0", "ctr-chk", &with).err()["msg"]
        .as_str()
        .unwrap()
        .contains("0.0.0.0/0"));
    // IPAM reservation gone → the delegated CHECK fails.
    ctr.add_route(&netlink::Route::default_via("10.23.0.1".parse().unwrap()))
        .unwrap();
    std::fs::remove_file("/var/lib/cni/networks/net-br-chk/10.23.0.2").unwrap();
    assert!(call("CHECK", &c, "eth0", "ctr-chk", &with).err()["msg"]
        .as_str()
        .unwrap()
        .contains("Failed to find address"));
    call("DEL", &c, "eth0", "ctr-chk", &with).ok();
}

fn del_removes_everything_and_is_idempotent() {
    let c = Container::new("del1");
    let conf = config("1.1.0", "br-del", "10.24.0.0/24", json!({"ipMasq": true}));
    let r = call("ADD", &c, "eth0", "ctr-del", &conf).ok();
    let veth = r["interfaces"][1]["name"].as_str().unwrap().to_string();
    let with = with_prev(&conf, &r);
    for _ in 0..3 {
        let out = call("DEL", &c, "eth0", "ctr-del", &with);
        out.ok();
        assert!(out.stdout.is_empty());
    }
    assert!(c.rtnl().link_by_name("eth0").unwrap().is_none());
    assert!(host().link_by_name(&veth).unwrap().is_none(), "host veth left behind");
    assert!(!reservation_exists("net-br-del", "10.24.0.2"));
    assert!(
        host().link_by_name("br-del").unwrap().is_some(),
        "the bridge is shared and stays"
    );
    // DEL without prevResult and for an attachment never added also succeed.
    call("DEL", &c, "eth0", "ctr-del", &conf).ok();
    call("DEL", &c, "eth1", "never-added", &conf).ok();
}

/// Host links whose name starts with `prefix`.
fn host_links_named(prefix: &str) -> Vec<String> {
    host()
        .links()
        .unwrap()
        .into_iter()
        .map(|l| l.name)
        .filter(|n| n.starts_with(prefix))
        .collect()
}

/// DEL returns before the kernel has finished deleting the veth pair, but by then nothing can
/// be taken for the attachment: no `eth0`, no host veth of that name, no port on the bridge,
/// no route through it; a new ADD with the same ifname works at once; and the pair is gone
/// shortly after.
fn del_retires_the_pair_at_once_and_deletes_it_in_the_background() {
    let c = Container::new("retire1");
    let conf = config("1.1.0", "br-retire", "10.36.0.0/24", json!({"ipMasq": true}));
    for round in 0..3 {
        let r = call("ADD", &c, "eth0", "ctr-retire", &conf).ok();
        let veth = r["interfaces"][1]["name"].as_str().unwrap().to_string();
        assert_eq!(live_ports(&host(), "br-retire"), vec![veth.clone()], "round {round}");
        call("DEL", &c, "eth0", "ctr-retire", &with_prev(&conf, &r)).ok();
        // Immediately after DEL:
        let ctr = c.rtnl();
        assert!(ctr.link_by_name("eth0").unwrap().is_none(), "eth0 still there");
        assert!(host().link_by_name(&veth).unwrap().is_none(), "host veth still named");
        // The host end may still be a port until the batch deletion, but a retired one that
        // carries nothing.
        assert_eq!(live_ports(&host(), "br-retire"), Vec::<String>::new(), "round {round}");
        let routes = ctr.routes(netlink::Family::V4, Some(netlink::RT_TABLE_MAIN)).unwrap();
        assert!(
            routes.iter().all(|r| r.table != netlink::RT_TABLE_MAIN),
            "routes through the retired link: {routes:?}"
        );
        // CHECK of the deleted attachment fails.
        assert_ne!(call("CHECK", &c, "eth0", "ctr-retire", &with_prev(&conf, &r)).status, 0);
    }
    // The background deletions finish, and nothing but lo is left in the container.
    wait_for_retired_pairs_gone(&c, std::time::Duration::from_secs(5));
    let left_in_ctr: Vec<String> = c
        .rtnl()
        .links()
        .unwrap()
        .into_iter()
        .map(|l| l.name)
        .filter(|n| n != "lo")
        .collect();
    assert!(left_in_ctr.is_empty(), "{left_in_ctr:?}");
}

/// Waits up to `limit` for the retired pairs to be gone from the host and from `c`; panics with
/// what is left otherwise.
fn wait_for_retired_pairs_gone(c: &Container, limit: std::time::Duration) {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let left_in_ctr: Vec<String> = c
            .rtnl()
            .links()
            .unwrap()
            .into_iter()
            .map(|l| l.name)
            .filter(|n| n.starts_with("cnidel"))
            .collect();
        let left_on_host = host_links_named("cnidel");
        if left_in_ctr.is_empty() && left_on_host.is_empty() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "retired links not deleted within {limit:?}: container {left_in_ctr:?}, host {left_on_host:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// The runtime may ADD again the moment DEL returns, with the same container ID, ifname and
/// netns, while the retired pair is still waiting for its deletion: the new attachment is
/// complete (interface, address, bridge port, masquerade entry owned by it), and the retired
/// pairs of a burst of DELs are all gone within the 2 s a runtime waits for a plugin's
/// process group.
fn del_then_add_again_at_once_with_the_same_ids() {
    let c = Container::new("again1");
    let others = [Container::new("again2"), Container::new("again3")];
    let conf = config("1.1.0", "br-again", "10.44.0.0/24", json!({"ipMasq": true}));
    let h = host();
    let mut r = call("ADD", &c, "eth0", "ctr-again", &conf).ok();
    for round in 0..4 {
        call("DEL", &c, "eth0", "ctr-again", &with_prev(&conf, &r)).ok();
        r = call("ADD", &c, "eth0", "ctr-again", &conf).ok();
        let ip = r["ips"][0]["address"].as_str().unwrap().to_string();
        let addr = ip.split('/').next().unwrap().to_string();
        let veth = r["interfaces"][1]["name"].as_str().unwrap().to_string();
        let ctr = c.rtnl();
        let eth0 = ctr.link_by_name("eth0").unwrap().expect("eth0 after the new ADD");
        assert!(eth0.is_up(), "round {round}");
        let addrs: Vec<String> = ctr
            .addresses(Some(eth0.index), netlink::Family::V4)
            .unwrap()
            .into_iter()
            .map(|a| a.net.addr.to_string())
            .collect();
        assert_eq!(addrs, vec![addr.clone()], "round {round}");
        assert_eq!(live_ports(&h, "br-again"), vec![veth], "round {round}");
        assert_eq!(
            masq_entries("net-br-again"),
            vec![(addr, "net-br-again/ctr-again/eth0".to_string())],
            "round {round}"
        );
        call("CHECK", &c, "eth0", "ctr-again", &with_prev(&conf, &r)).ok();
    }
    // A burst: three attachments deleted back to back.
    let mut results = vec![(&c, "ctr-again", r)];
    for (i, o) in others.iter().enumerate() {
        let cid = ["ctr-again2", "ctr-again3"][i];
        results.push((o, cid, call("ADD", o, "eth0", cid, &conf).ok()));
    }
    for (ctr, cid, r) in &results {
        call("DEL", ctr, "eth0", cid, &with_prev(&conf, r)).ok();
    }
    assert!(masq_entries("net-br-again").is_empty());
    for o in [&c, &others[0], &others[1]] {
        wait_for_retired_pairs_gone(o, std::time::Duration::from_secs(2));
    }
}

/// bridge runs its IPAM delegate in-process only when the file `CNI_PATH` leads to is this
/// crate's `host-local` from this very build; upstream's `host-local` (or anything else) is
/// executed, and both give a working attachment.
fn delegate_runs_in_process_only_for_the_same_build() {
    use cni_reference_plugins::builtin::same_build_plugin;
    assert!(same_build_plugin(Path::new(HOST_LOCAL)).is_some());
    assert!(
        same_build_plugin(Path::new(BRIDGE)).is_none(),
        "bridge is no IPAM delegate"
    );
    assert!(same_build_plugin(Path::new("/usr/lib/cni/host-local")).is_none());
    let c = Container::new("inproc1");
    // 1.0.0: the newest version upstream's host-local 1.1.1 speaks.
    let conf = config("1.0.0", "br-inproc", "10.43.0.0/24", json!({}));
    let traced = |cni_path: &str, command: &str, conf: &Value| {
        Call::new(BRIDGE, command)
            .env("CNI_CONTAINERID", "ctr-inproc")
            .env("CNI_NETNS", c.path())
            .env("CNI_IFNAME", "eth0")
            .env("CNI_PATH", cni_path)
            .env("CNI_REF_TRACE", "1")
            .stdin(conf)
            .run()
    };
    let ours = traced(&cni_path(), "ADD", &conf);
    let r = ours.ok();
    assert!(ours.stderr.contains("delegate: in-process"), "{}", ours.stderr);
    assert_eq!(r["ips"][0]["address"], "10.43.0.2/24");
    let del = traced(&cni_path(), "DEL", &with_prev(&conf, &r));
    del.ok();
    assert!(del.stderr.contains("delegate: in-process"), "{}", del.stderr);
    assert!(!reservation_exists("net-br-inproc", "10.43.0.2"));
    // Upstream's host-local is executed.
    let upstream = traced("/usr/lib/cni", "ADD", &conf);
    let r = upstream.ok();
    assert!(!upstream.stderr.contains("delegate: in-process"), "{}", upstream.stderr);
    assert!(reservation_exists("net-br-inproc", "10.43.0.3"), "{r}");
    traced("/usr/lib/cni", "DEL", &with_prev(&conf, &r)).ok();
    assert!(!reservation_exists("net-br-inproc", "10.43.0.3"));
}

/// GC deletes retired veth ends whose deleting child died (simulated: a pair renamed like a
/// retired one, down and without master, and a pair in the retired device group), and nothing
/// else.
fn gc_deletes_leftover_retired_pairs() {
    let c = Container::new("tomb1");
    let h = host();
    let tomb = h
        .create_veth(&netlink::VethSpec {
            name: "cnidel00c0ffee",
            peer_name: "cnidel00c0ffee",
            peer_netns: Some(c.ns.as_ref().unwrap().as_fd()),
            ..Default::default()
        })
        .unwrap();
    // Same name prefix but up: not retired, left alone.
    let live = h
        .create_veth(&netlink::VethSpec {
            name: "cnidelbeef0001",
            up: true,
            peer_name: "eth9",
            ..Default::default()
        })
        .unwrap();
    // Retired the current way: up, in the retired group (its peer elsewhere).
    let grouped = h
        .create_veth(&netlink::VethSpec {
            name: "cnidel00c0ffe2",
            up: true,
            peer_name: "cnidel00c0ffe2",
            peer_netns: Some(c.ns.as_ref().unwrap().as_fd()),
            ..Default::default()
        })
        .unwrap();
    h.set_link(
        grouped.index,
        &LinkChange {
            group: Some(cni_reference_plugins::bridge::linger::RETIRED_GROUP),
            ..Default::default()
        },
    )
    .unwrap();
    let mut conf = config("1.1.0", "br-tomb", "10.37.0.0/24", json!({}));
    conf["cni.dev/valid-attachments"] = json!([]);
    Call::new(BRIDGE, "GC")
        .env("CNI_PATH", &cni_path())
        .stdin(&conf)
        .run()
        .ok();
    assert!(
        h.link_by_index(tomb.index).unwrap().is_none(),
        "retired pair survived GC"
    );
    assert!(c.rtnl().link_by_name("cnidel00c0ffee").unwrap().is_none());
    assert!(
        h.link_by_index(grouped.index).unwrap().is_none(),
        "pair in the retired group survived GC"
    );
    assert!(h.link_by_index(live.index).unwrap().is_some(), "GC deleted a live link");
    h.delete_link(live.index).unwrap();
}

fn del_when_netns_is_gone_releases_ipam() {
    let mut c = Container::new("gone1");
    let conf = config("1.1.0", "br-gone", "10.25.0.0/24", json!({"ipMasq": true}));
    let r = call("ADD", &c, "eth0", "ctr-gone", &conf).ok();
    assert!(reservation_exists("net-br-gone", "10.25.0.2"));
    assert_eq!(masq_entries("net-br-gone").len(), 1);
    c.destroy();
    call("DEL", &c, "eth0", "ctr-gone", &with_prev(&conf, &r)).ok();
    assert!(!reservation_exists("net-br-gone", "10.25.0.2"));
    assert!(masq_entries("net-br-gone").is_empty(), "masquerade entry left behind");
    // Even without prevResult the entry is found by its owner.
    let mut c2 = Container::new("gone2");
    call("ADD", &c2, "eth0", "ctr-gone2", &conf).ok();
    c2.destroy();
    call("DEL", &c2, "eth0", "ctr-gone2", &conf).ok();
    assert!(masq_entries("net-br-gone").is_empty(), "masquerade entry left behind");
    assert!(!reservation_exists("net-br-gone", "10.25.0.3"));
}

fn del_with_empty_netns_removes_host_veth_via_prev_result() {
    let c = Container::new("empty1");
    let conf = config("1.1.0", "br-empty", "10.26.0.0/24", json!({"ipMasq": true}));
    let r = call("ADD", &c, "eth0", "ctr-empty", &conf).ok();
    let veth = r["interfaces"][1]["name"].as_str().unwrap().to_string();
    let out = Call::new(BRIDGE, "DEL")
        .env("CNI_CONTAINERID", "ctr-empty")
        .env("CNI_NETNS", "")
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", &cni_path())
        .stdin(&with_prev(&conf, &r))
        .run();
    out.ok();
    assert!(host().link_by_name(&veth).unwrap().is_none(), "host veth left behind");
    assert!(
        c.rtnl().link_by_name("eth0").unwrap().is_none(),
        "the pair goes with its host end"
    );
    assert!(!reservation_exists("net-br-empty", "10.26.0.2"));
    assert!(masq_entries("net-br-empty").is_empty(), "masquerade entry left behind");
}

fn failure_after_ipam_add_releases_the_address() {
    let c = Container::new("fail1");
    let conf = config("1.1.0", "br-fail", "10.27.0.0/24", json!({}));
    // The bridge already has another IPv4 address and forceAddress is off.
    let h = host();
    let br = h
        .create_bridge(&netlink::BridgeSpec {
            name: "br-fail",
            up: true,
            ..Default::default()
        })
        .unwrap();
    h.add_address(br.index, "192.0.2.1/24".parse().unwrap(), true).unwrap();
    let e = call("ADD", &c, "eth0", "ctr-fail", &conf).err();
    assert!(
        e["msg"]
            .as_str()
            .unwrap()
            .contains("already has an IP address different from 10.27.0.1/24"),
        "{e}"
    );
    assert!(
        !reservation_exists("net-br-fail", "10.27.0.2"),
        "IPAM reservation not released"
    );
    // Counted on the bridge: the host's link count can move meanwhile (an earlier test's
    // destroyed namespace takes its pair with it whenever the kernel gets to it).
    assert_eq!(live_ports(&h, "br-fail"), Vec::<String>::new(), "host veth left behind");
    assert!(c.rtnl().link_by_name("eth0").unwrap().is_none());
    // With forceAddress the old address is replaced.
    let forced = config("1.1.0", "br-fail", "10.27.0.0/24", json!({"forceAddress": true}));
    let r = call("ADD", &c, "eth0", "ctr-fail", &forced).ok();
    let addrs = h.addresses(Some(br.index), netlink::Family::V4).unwrap();
    assert_eq!(addrs.len(), 1);
    assert_eq!(addrs[0].net.to_string(), "10.27.0.1/24");
    call("DEL", &c, "eth0", "ctr-fail", &with_prev(&forced, &r)).ok();
}

/// A bridge with the kernel's 1,023 ports: ADD fails with a message that says so, and leaves
/// nothing (no veth, no reservation).
fn full_bridge_is_refused_with_a_clear_error() {
    const FILLER_GROUP: u32 = 0x7e57_0001;
    let c = Container::new("full1");
    let conf = config("1.1.0", "br-full", "10.46.0.0/16", json!({}));
    let h = host();
    let br = h
        .create_bridge(&netlink::BridgeSpec {
            name: "br-full",
            up: true,
            ..Default::default()
        })
        .unwrap();
    let mut ports = 0;
    loop {
        let veth = match h.create_veth(&netlink::VethSpec {
            name: &format!("fill{ports}"),
            master: Some(br.index),
            peer_name: &format!("fillp{ports}"),
            ..Default::default()
        }) {
            Ok(veth) => veth,
            Err(e) => {
                assert_eq!(e.errno(), Some(libc::EXFULL), "{e}");
                h.delete_link_by_name(&format!("fill{ports}")).unwrap();
                break;
            }
        };
        for index in [veth.index, veth.link.unwrap()] {
            let regroup = LinkChange {
                group: Some(FILLER_GROUP),
                ..Default::default()
            };
            h.set_link(index, &regroup).unwrap();
        }
        ports += 1;
    }
    assert_eq!(ports, 1023);
    let e = call("ADD", &c, "eth0", "ctr-full", &conf).err();
    assert_eq!(e["code"], 103, "{e}");
    assert!(e["msg"].as_str().unwrap().contains("\"br-full\" is full"), "{e}");
    assert!(!reservation_exists("net-br-full", "10.46.0.2"));
    assert!(c.rtnl().link_by_name("eth0").unwrap().is_none());
    h.delete_link_group(FILLER_GROUP).unwrap();
    assert_eq!(live_ports(&h, "br-full"), Vec::<String>::new());
    // Room again: the same ADD works.
    let r = call("ADD", &c, "eth0", "ctr-full", &conf).ok();
    call("DEL", &c, "eth0", "ctr-full", &with_prev(&conf, &r)).ok();
}

fn second_add_with_same_ifname_fails() {
    let c = Container::new("dup1");
    let conf = config("1.1.0", "br-dup", "10.28.0.0/24", json!({}));
    let r = call("ADD", &c, "eth0", "ctr-dup", &conf).ok();
    let e = call("ADD", &c, "eth0", "ctr-dup2", &conf);
    assert_eq!(e.code(), 105, "{e:?}");
    assert!(
        !reservation_exists("net-br-dup", "10.28.0.3"),
        "refused ADD reserved an address"
    );
    // Another interface name in the same container works.
    let r2 = call("ADD", &c, "net1", "ctr-dup", &conf).ok();
    assert_eq!(r2["ips"][0]["address"], "10.28.0.3/24");
    call("DEL", &c, "net1", "ctr-dup", &with_prev(&conf, &r2)).ok();
    call("DEL", &c, "eth0", "ctr-dup", &with_prev(&conf, &r)).ok();
}

fn result_shape_of_every_version() {
    let c = Container::new("ver1");
    for (i, v) in ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]
        .iter()
        .enumerate()
    {
        let conf = config(v, &format!("br-ver{i}"), &format!("10.29.{i}.0/24"), json!({}));
        let mut conf = conf;
        conf["name"] = json!(format!("net-ver-{i}"));
        let ifname = format!("eth{i}");
        let r = call("ADD", &c, &ifname, "ctr-ver", &conf).ok();
        assert_eq!(r["cniVersion"], *v);
        if *v < "0.3.0" {
            assert_eq!(r["ip4"]["ip"], format!("10.29.{i}.2/24"));
            assert!(r.get("interfaces").is_none());
        } else {
            assert_eq!(r["interfaces"].as_array().unwrap().len(), 3);
            assert_eq!(r["ips"][0]["interface"], 2);
            assert_eq!(r["ips"][0].get("version").is_some(), *v < "1.0.0", "{v}: {r}");
            assert_eq!(r["interfaces"][2].get("mtu").is_some(), *v == "1.1.0", "{v}: {r}");
        }
        let mut del = conf.clone();
        if *v >= "0.4.0" {
            del["prevResult"] = r.clone();
            call("CHECK", &c, &ifname, "ctr-ver", &del).ok();
        }
        call("DEL", &c, &ifname, "ctr-ver", &del).ok();
        assert!(c.rtnl().link_by_name(&ifname).unwrap().is_none());
    }
}

fn l2_only_bridge() {
    let c = Container::new("l2");
    let mut conf = json!({"cniVersion": "1.0.0", "name": "net-l2", "type": "bridge", "bridge": "br-l2", "ipam": {}});
    let r = call("ADD", &c, "eth0", "ctr-l2", &conf).ok();
    assert!(r.get("ips").is_none(), "{r}");
    assert!(c.rtnl().link_by_name("eth0").unwrap().unwrap().is_up());
    // Unlike upstream, CHECK of an L2-only attachment works.
    call("CHECK", &c, "eth0", "ctr-l2", &with_prev(&conf, &r)).ok();
    call("DEL", &c, "eth0", "ctr-l2", &with_prev(&conf, &r)).ok();
    // disableContainerInterface leaves the container end down.
    let mut down = conf.clone();
    down["disableContainerInterface"] = json!(true);
    let r = call("ADD", &c, "eth0", "ctr-l2", &down).ok();
    assert!(!c.rtnl().link_by_name("eth0").unwrap().unwrap().is_up());
    call("DEL", &c, "eth0", "ctr-l2", &with_prev(&down, &r)).ok();
    // An L2-only result cannot be written as 0.2.0: refused before anything is created.
    conf["cniVersion"] = json!("0.2.0");
    assert_eq!(call("ADD", &c, "eth0", "ctr-l2", &conf).code(), 1);
    assert!(c.rtnl().link_by_name("eth0").unwrap().is_none());
}

fn status_and_gc_are_forwarded_to_ipam() {
    let c = Container::new("stat1");
    // A /30 has exactly one address to hand out.
    let conf = config("1.1.0", "br-stat", "10.30.0.0/30", json!({}));
    let status = || {
        Call::new(BRIDGE, "STATUS")
            .env("CNI_PATH", &cni_path())
            .stdin(&conf)
            .run()
    };
    status().ok();
    let r = call("ADD", &c, "eth0", "ctr-stat", &conf).ok();
    assert_eq!(status().code(), 50);
    let mut gc = conf.clone();
    gc["cni.dev/valid-attachments"] = json!([]);
    Call::new(BRIDGE, "GC")
        .env("CNI_PATH", &cni_path())
        .stdin(&gc)
        .run()
        .ok();
    assert!(
        !reservation_exists("net-br-stat", "10.30.0.2"),
        "GC was not forwarded to IPAM"
    );
    status().ok();
    call("DEL", &c, "eth0", "ctr-stat", &with_prev(&conf, &r)).ok();
}

fn invalid_configurations_are_refused_before_any_change() {
    let c = Container::new("bad1");
    let links_before = live_host_links(&host());
    for (extra, needle) in [
        (
            json!({"hairpinMode": true, "promiscMode": true}),
            "hairpin mode and promiscuous mode",
        ),
        (json!({"vlan": 4095}), "invalid VLAN ID 4095"),
        (
            json!({"disableContainerInterface": true}),
            "cannot use IPAM when DisableContainerInterface",
        ),
        (json!({"mtu": "big"}), "mtu: expected an integer"),
        (json!({"vlanTrunk": [{"minID": 5}]}), "minID and maxID"),
    ] {
        let conf = config("1.1.0", "br-bad", "10.31.0.0/24", extra.clone());
        let e = call("ADD", &c, "eth0", "ctr-bad", &conf).err();
        assert!(e["msg"].as_str().unwrap().contains(needle), "{extra}: {e}");
    }
    let mut other = config("1.1.0", "lo", "10.31.0.0/24", json!({}));
    other["name"] = json!("net-lo");
    assert!(call("ADD", &c, "eth0", "ctr-bad", &other).err()["msg"]
        .as_str()
        .unwrap()
        .contains("is not a bridge"));
    assert_eq!(live_host_links(&host()), links_before);
    assert!(!Path::new("/var/lib/cni/networks/net-br-bad/10.31.0.2").exists());
}

fn mtu_mac_promisc_and_port_flags_are_applied() {
    let c = Container::new("mtu1");
    let mut conf = config(
        "1.1.0",
        "br-mtu",
        "10.32.0.0/24",
        json!({"mtu": 1300, "promiscMode": true, "portIsolation": true,
               "dns": {"nameservers": ["10.32.0.53"], "search": ["svc.example"]}}),
    );
    conf["runtimeConfig"] = json!({"mac": "0a:58:0a:20:00:99"});
    let r = call("ADD", &c, "eth0", "ctr-mtu", &conf).ok();
    assert_eq!(r["interfaces"][2]["mac"], "0a:58:0a:20:00:99");
    // The configuration's dns replaces IPAM's.
    assert_eq!(
        r["dns"],
        json!({"nameservers": ["10.32.0.53"], "search": ["svc.example"]})
    );
    assert_eq!(r["interfaces"][2]["mtu"], 1300);
    let eth0 = c.rtnl().link_by_name("eth0").unwrap().unwrap();
    assert_eq!(eth0.mtu, 1300);
    assert_eq!(eth0.mac.unwrap().to_string(), "0a:58:0a:20:00:99");
    let h = host();
    let br = h.link_by_name("br-mtu").unwrap().unwrap();
    assert!(br.is_promisc());
    assert_eq!(br.mtu, 1300);
    let veth = h
        .link_by_name(r["interfaces"][1]["name"].as_str().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(veth.mtu, 1300);
    assert_eq!(h.bridge_port_flags(veth.index).unwrap(), Some((false, true)));
    call("DEL", &c, "eth0", "ctr-mtu", &with_prev(&conf, &r)).ok();
    // CNI_ARGS MAC is used when neither runtimeConfig nor args give one (IgnoreUnknown because
    // the IPAM delegate sees the same CNI_ARGS and does not know MAC).
    let plain = config("1.1.0", "br-mtu", "10.32.0.0/24", json!({"promiscMode": true}));
    let r = Call::new(BRIDGE, "ADD")
        .env("CNI_CONTAINERID", "ctr-mac")
        .env("CNI_NETNS", c.path())
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", &cni_path())
        .env("CNI_ARGS", "IgnoreUnknown=1;MAC=0a:58:0a:20:00:42")
        .stdin(&plain)
        .run()
        .ok();
    assert_eq!(r["interfaces"][2]["mac"], "0a:58:0a:20:00:42");
    call("DEL", &c, "eth0", "ctr-mac", &with_prev(&plain, &r)).ok();
}

fn own_netns_is_refused_before_anything() {
    let conf = config("1.1.0", "br-self", "10.33.0.0/24", json!({}));
    let out = Call::new(BRIDGE, "ADD")
        .env("CNI_CONTAINERID", "ctr-self")
        .env("CNI_NETNS", "/proc/self/ns/net")
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", &cni_path())
        .stdin(&conf)
        .run();
    assert_eq!(out.code(), 8);
    assert!(
        host().link_by_name("br-self").unwrap().is_none(),
        "bridge created before refusing"
    );
    let del = Call::new(BRIDGE, "DEL")
        .env("CNI_CONTAINERID", "ctr-self")
        .env("CNI_NETNS", "/proc/self/ns/net")
        .env("CNI_IFNAME", "lo")
        .env("CNI_PATH", &cni_path())
        .stdin(&conf)
        .run();
    assert_eq!(del.code(), 8);
    assert!(host().link_by_name("lo").unwrap().is_some());
}

fn ipmasq_entries_follow_the_attachments() {
    let c = Container::new("masq1");
    let conf = config(
        "1.1.0",
        "br-masq",
        "10.34.0.0/24",
        json!({"ipMasq": true, "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.34.0.0/24"}], [{"subnet": "fd00:34::/64"}]]}}),
    );
    let a = call("ADD", &c, "eth0", "ctr-a", &conf).ok();
    let b = call("ADD", &c, "eth1", "ctr-b", &conf).ok();
    assert_eq!(
        masq_entries("net-br-masq"),
        vec![
            ("10.34.0.2".to_string(), "net-br-masq/ctr-a/eth0".to_string()),
            ("10.34.0.3".to_string(), "net-br-masq/ctr-b/eth1".to_string()),
            ("fd00:34::2".to_string(), "net-br-masq/ctr-a/eth0".to_string()),
            ("fd00:34::3".to_string(), "net-br-masq/ctr-b/eth1".to_string()),
        ]
    );
    let with_a = with_prev(&conf, &a);
    call("CHECK", &c, "eth0", "ctr-a", &with_a).ok();
    // CHECK notices a missing masquerade entry.
    let m = Masq::open().unwrap();
    let removed = m
        .del("net-br-masq", "ctr-a", "eth0", Some(&["10.34.0.2/24".parse().unwrap()]))
        .unwrap();
    assert_eq!(removed, 1);
    let e = call("CHECK", &c, "eth0", "ctr-a", &with_a).err();
    assert!(
        e["msg"]
            .as_str()
            .unwrap()
            .contains("masquerade entry missing for 10.34.0.2/24"),
        "{e}"
    );
    // GC keeps b, removes what is left of a (entries and reservations), and forwards to IPAM.
    let mut gc = conf.clone();
    gc["cni.dev/valid-attachments"] = json!([{"containerID": "ctr-b", "ifname": "eth1"}]);
    Call::new(BRIDGE, "GC")
        .env("CNI_PATH", &cni_path())
        .stdin(&gc)
        .run()
        .ok();
    assert_eq!(
        masq_entries("net-br-masq"),
        vec![
            ("10.34.0.3".to_string(), "net-br-masq/ctr-b/eth1".to_string()),
            ("fd00:34::3".to_string(), "net-br-masq/ctr-b/eth1".to_string()),
        ]
    );
    assert!(!reservation_exists("net-br-masq", "10.34.0.2"));
    assert!(reservation_exists("net-br-masq", "10.34.0.3"));
    call("DEL", &c, "eth1", "ctr-b", &with_prev(&conf, &b)).ok();
    assert!(masq_entries("net-br-masq").is_empty());
    call("DEL", &c, "eth0", "ctr-a", &with_a).ok();
}

const UPSTREAM_BRIDGE: &str = "/usr/lib/cni/bridge";

fn nft_table_bridge_nat() -> String {
    let out = std::process::Command::new("nft")
        .args(["list", "table", "bridge", "nat"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn macspoofchk_rules_follow_the_attachment() {
    let c = Container::new("spoof1");
    let mut conf = config("1.0.0", "br-spoof", "10.35.0.0/24", json!({"macspoofchk": true}));
    conf["runtimeConfig"] = json!({"mac": "0a:58:0a:23:00:07"});
    let r = call("ADD", &c, "eth0", "ctr-spoof", &conf).ok();
    let veth = r["interfaces"][1]["name"].as_str().unwrap().to_string();
    let table = nft_table_bridge_nat();
    assert!(
        table.contains(&format!("iifname \"{veth}\" jump cni-br-iface-ctr-spoof-eth0")),
        "{table}"
    );
    assert!(
        table.contains("ether saddr 0a:58:0a:23:00:07 return comment \"macspoofchk-ctr-spoof-eth0\""),
        "{table}"
    );
    assert!(table.contains("drop comment \"macspoofchk-ctr-spoof-eth0\""), "{table}");
    let with = with_prev(&conf, &r);
    call("CHECK", &c, "eth0", "ctr-spoof", &with).ok();
    // Without the jump from PREROUTING the check is ineffective: CHECK fails.
    let status = std::process::Command::new("nft")
        .args(["flush", "chain", "bridge", "nat", "PREROUTING"])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(call("CHECK", &c, "eth0", "ctr-spoof", &with).err()["msg"]
        .as_str()
        .unwrap()
        .contains("macspoofchk"));
    call("DEL", &c, "eth0", "ctr-spoof", &with).ok();
    assert!(
        !nft_table_bridge_nat().contains("ctr-spoof"),
        "{}",
        nft_table_bridge_nat()
    );

    // GC removes the rules of an attachment whose veth is gone, keeps a live one's.
    let mut gone = Container::new("spoof-gone");
    let r_gone = call("ADD", &gone, "eth0", "ctr-gone", &conf).ok();
    let live = call("ADD", &c, "eth0", "ctr-live", &conf).ok();
    gone.destroy();
    // The kernel removes a dead namespace's veth pair asynchronously: wait for it.
    let veth_gone = r_gone["interfaces"][1]["name"].as_str().unwrap().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while host().link_by_name(&veth_gone).unwrap().is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "{veth_gone} outlived its namespace"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut gc = conf.clone();
    gc["cniVersion"] = json!("1.1.0");
    gc["cni.dev/valid-attachments"] = json!([]);
    Call::new(BRIDGE, "GC")
        .env("CNI_PATH", &cni_path())
        .stdin(&gc)
        .run()
        .ok();
    let table = nft_table_bridge_nat();
    assert!(!table.contains("ctr-gone"), "{table}");
    assert!(table.contains("macspoofchk-ctr-live-eth0"), "{table}");
    call("DEL", &c, "eth0", "ctr-live", &with_prev(&conf, &live)).ok();

    // Drop-in: upstream's DEL removes the rules our ADD made.
    let r = call("ADD", &c, "eth0", "ctr-spoof2", &conf).ok();
    assert!(nft_table_bridge_nat().contains("macspoofchk-ctr-spoof2-eth0"));
    call_with(
        UPSTREAM_BRIDGE,
        "/usr/lib/cni",
        "DEL",
        &c,
        "ctr-spoof2",
        &with_prev(&conf, &r),
    )
    .ok();
    assert!(
        !nft_table_bridge_nat().contains("ctr-spoof2"),
        "{}",
        nft_table_bridge_nat()
    );
}

fn call_with(bin: &str, cni_path: &str, command: &str, c: &Container, cid: &str, conf: &Value) -> Outcome {
    Call::new(bin, command)
        .env("CNI_CONTAINERID", cid)
        .env("CNI_NETNS", c.path())
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", cni_path)
        .stdin(conf)
        .run()
}

/// What ADD left in the kernel, with names and the subnet's third octet abstracted away.
fn kernel_view(c: &Container, bridge: &str, result: &Value) -> Vec<String> {
    let h = host();
    let br = h.link_by_name(bridge).unwrap().expect("bridge");
    let veth = h
        .link_by_name(result["interfaces"][1]["name"].as_str().unwrap())
        .unwrap()
        .expect("veth");
    let ctr = c.rtnl();
    let eth0 = ctr.link_by_name("eth0").unwrap().expect("eth0");
    let norm = |s: String| s.replace(".41.", ".X.").replace(".40.", ".X.");
    let mut view = vec![
        format!("bridge up={} promisc={} mtu={}", br.is_up(), br.is_promisc(), br.mtu),
        format!(
            "veth master-is-bridge={} up={} mtu={}",
            veth.master == Some(br.index),
            veth.is_up(),
            veth.mtu
        ),
        format!("veth port flags {:?}", h.bridge_port_flags(veth.index).unwrap()),
        format!("eth0 kind={:?} up={} mtu={}", eth0.kind, eth0.is_up(), eth0.mtu),
    ];
    for a in h.addresses(Some(br.index), netlink::Family::V4).unwrap() {
        view.push(norm(format!("bridge addr {}", a.net)));
    }
    for a in ctr.addresses(Some(eth0.index), netlink::Family::V4).unwrap() {
        view.push(norm(format!("eth0 addr {}", a.net)));
    }
    let mut routes: Vec<String> = ctr
        .routes(netlink::Family::V4, Some(netlink::RT_TABLE_MAIN))
        .unwrap()
        .into_iter()
        .map(|r| {
            norm(format!(
                "route {} via {:?} oif-is-eth0={}",
                r.dst,
                r.gw,
                r.oif == Some(eth0.index)
            ))
        })
        .collect();
    routes.sort();
    view.extend(routes);
    view
}

/// The result with names, MACs and the subnet abstracted, for comparing two plugins.
fn result_shape(r: &Value) -> Value {
    let mut r = r.clone();
    let text = serde_json::to_string(&r)
        .unwrap()
        .replace(".41.", ".X.")
        .replace(".40.", ".X.");
    r = serde_json::from_str(&text).unwrap();
    if let Some(ifs) = r["interfaces"].as_array_mut() {
        for i in ifs {
            i["mac"] = json!(i["mac"].as_str().map(|m| m.len()));
            let name = i["name"].as_str().unwrap_or_default().to_string();
            if name.starts_with("veth") {
                i["name"] = json!("veth*");
            }
            if name.starts_with("br-") {
                i["name"] = json!("bridge");
            }
            if i.get("sandbox").is_some() {
                i["sandbox"] = json!("netns");
            }
        }
    }
    r.as_object_mut().unwrap().remove("dns");
    r
}

fn matches_upstream_bridge_side_by_side_and_interoperates() {
    assert!(
        Path::new(UPSTREAM_BRIDGE).is_file(),
        "{UPSTREAM_BRIDGE} is required for the side-by-side test (Debian package containernetworking-plugins)"
    );
    let extra = json!({"mtu": 1400, "hairpinMode": true});
    let conf_up = config("1.0.0", "br-up", "10.40.0.0/24", extra.clone());
    let conf_ours = config("1.0.0", "br-ours", "10.41.0.0/24", extra);
    let c_up = Container::new("side-up");
    let c_ours = Container::new("side-ours");
    let r_up = call_with(UPSTREAM_BRIDGE, "/usr/lib/cni", "ADD", &c_up, "side-up", &conf_up).ok();
    let r_ours = call_with(BRIDGE, &cni_path(), "ADD", &c_ours, "side-ours", &conf_ours).ok();
    assert_eq!(result_shape(&r_ours), result_shape(&r_up), "results differ in shape");
    assert_eq!(
        kernel_view(&c_ours, "br-ours", &r_ours),
        kernel_view(&c_up, "br-up", &r_up)
    );

    // Drop-in: each CHECKs and DELs what the other ADDed. Our bridge with upstream's host-local
    // (and vice versa) also exercises the shared on-disk store.
    let up_with = with_prev(&conf_up, &r_up);
    call_with(BRIDGE, "/usr/lib/cni", "CHECK", &c_up, "side-up", &up_with).ok();
    call_with(BRIDGE, &cni_path(), "DEL", &c_up, "side-up", &up_with).ok();
    assert!(c_up.rtnl().link_by_name("eth0").unwrap().is_none());
    assert!(host()
        .link_by_name(r_up["interfaces"][1]["name"].as_str().unwrap())
        .unwrap()
        .is_none());
    assert!(!reservation_exists("net-br-up", "10.40.0.2"));

    let ours_with = with_prev(&conf_ours, &r_ours);
    call_with(
        UPSTREAM_BRIDGE,
        "/usr/lib/cni",
        "CHECK",
        &c_ours,
        "side-ours",
        &ours_with,
    )
    .ok();
    call_with(UPSTREAM_BRIDGE, "/usr/lib/cni", "DEL", &c_ours, "side-ours", &ours_with).ok();
    assert!(c_ours.rtnl().link_by_name("eth0").unwrap().is_none());
    assert!(!reservation_exists("net-br-ours", "10.41.0.2"));
}

/// Whether this kernel can create a VLAN-filtering bridge (CONFIG_BRIDGE_VLAN_FILTERING).
fn kernel_has_vlan_filtering() -> bool {
    let h = host();
    match h.create_bridge(&netlink::BridgeSpec {
        name: "br-vprobe",
        vlan_filtering: true,
        ..Default::default()
    }) {
        Ok(link) => {
            h.delete_link(link.index).unwrap();
            true
        }
        Err(e) => {
            assert_eq!(e.errno(), Some(libc::EOPNOTSUPP), "unexpected probe failure: {e}");
            false
        }
    }
}

fn vlan_port_settings_or_a_clear_refusal() {
    let c = Container::new("vlan1");
    let conf = config(
        "1.1.0",
        "br-vlan",
        "10.36.0.0/24",
        json!({"isGateway": false, "isDefaultGateway": false, "vlan": 100, "vlanTrunk": [{"minID": 200, "maxID": 202}]}),
    );
    if kernel_has_vlan_filtering() {
        let r = call("ADD", &c, "eth0", "ctr-vlan", &conf).ok();
        let h = host();
        let veth = h
            .link_by_name(r["interfaces"][1]["name"].as_str().unwrap())
            .unwrap()
            .unwrap();
        let vlans = h.bridge_vlans(veth.index).unwrap();
        assert!(vlans.iter().any(|v| v.vid == 100 && v.pvid && v.untagged), "{vlans:?}");
        for vid in 200..=202 {
            assert!(
                vlans.iter().any(|v| v.vid == vid && !v.pvid && !v.untagged),
                "{vlans:?}"
            );
        }
        assert!(!vlans.iter().any(|v| v.vid == 1), "default VLAN not removed: {vlans:?}");
        call("DEL", &c, "eth0", "ctr-vlan", &with_prev(&conf, &r)).ok();
    } else {
        // This kernel cannot filter VLANs on a bridge: ADD must say so and leave nothing.
        let before = live_host_links(&host());
        let e = call("ADD", &c, "eth0", "ctr-vlan", &conf).err();
        assert!(
            e["msg"]
                .as_str()
                .unwrap()
                .contains("VLAN filtering: not supported by this kernel"),
            "{e}"
        );
        assert_eq!(live_host_links(&host()), before);
        assert!(!reservation_exists("net-br-vlan", "10.36.0.2"));
    }
}

/// The addresses on the host link `name`, as `addr/prefix` strings.
fn host_addresses(h: &Rtnl, name: &str) -> Vec<String> {
    let link = h.link_by_name(name).unwrap().unwrap();
    h.addresses(Some(link.index), netlink::Family::All)
        .unwrap()
        .into_iter()
        .map(|a| format!("{}/{}", a.net.addr, a.net.prefix))
        .collect()
}

/// `isGateway` with `vlan`: the gateway sits on a `<bridge>.<vlan>` veth whose peer is a bridge
/// port untagged in the VLAN; it is the result's fourth interface, shared by the attachments
/// of the network, verified by CHECK and kept by DEL. Without VLAN filtering in the kernel the
/// ADD must refuse clearly, and the test says loudly that the port itself was not exercised.
fn vlan_gateway_port_or_a_clear_refusal() {
    let c1 = Container::new("vgw1");
    let c2 = Container::new("vgw2");
    let conf = config(
        "1.1.0",
        "br-vgw",
        "10.37.0.0/24",
        json!({"isDefaultGateway": false, "vlan": 100, "ipMasq": true}),
    );
    if !kernel_has_vlan_filtering() {
        eprintln!(
            "WARNING vlan_gateway_port_or_a_clear_refusal: this kernel has no bridge VLAN filtering; \
             only the refusal was tested here; the gateway port itself is judged in a VM by \
             suite/tests/vm.rs reference_bridge_with_a_vlan_gateway_passes_in_the_vm"
        );
        let before = live_host_links(&host());
        let e = call("ADD", &c1, "eth0", "ctr-vgw1", &conf).err();
        assert!(
            e["msg"]
                .as_str()
                .unwrap()
                .contains("VLAN filtering: not supported by this kernel"),
            "{e}"
        );
        assert_eq!(live_host_links(&host()), before);
        assert!(host().link_by_name("br-vgw.100").unwrap().is_none());
        assert!(!reservation_exists("net-br-vgw", "10.37.0.2"));
        return;
    }
    let h = host();
    let r1 = call("ADD", &c1, "eth0", "ctr-vgw1", &conf).ok();
    let ifaces = r1["interfaces"].as_array().unwrap();
    assert_eq!(ifaces.len(), 4, "{r1}");
    assert_eq!(ifaces[0]["name"], "br-vgw");
    assert_eq!(ifaces[2]["name"], "eth0");
    assert_eq!(ifaces[3]["name"], "br-vgw.100");
    assert!(ifaces[3].get("sandbox").is_none_or(|s| s == ""), "{r1}");
    assert_eq!(r1["ips"][0]["interface"], 2);
    assert_eq!(r1["ips"][0]["gateway"], "10.37.0.1");
    let gw_port = h.link_by_name("br-vgw.100").unwrap().unwrap();
    assert!(gw_port.is_kind("veth") && gw_port.is_up(), "{gw_port:?}");
    assert_eq!(gw_port.master, None);
    assert_eq!(ifaces[3]["mac"], gw_port.mac.unwrap().to_string());
    // The gateway is on the port, not on the bridge.
    assert!(host_addresses(&h, "br-vgw.100").contains(&"10.37.0.1/24".to_string()));
    assert!(!host_addresses(&h, "br-vgw").iter().any(|a| a.starts_with("10.37.")));
    // Its peer is a bridge port untagged in VLAN 100, without the default VLAN.
    let bridge = h.link_by_name("br-vgw").unwrap().unwrap();
    let peer = h.link_by_index(gw_port.link.unwrap()).unwrap().unwrap();
    assert_eq!(peer.master, Some(bridge.index));
    let vlans = h.bridge_vlans(peer.index).unwrap();
    assert!(vlans.iter().any(|v| v.vid == 100 && v.pvid && v.untagged), "{vlans:?}");
    assert!(!vlans.iter().any(|v| v.vid == 1), "default VLAN not removed: {vlans:?}");
    // The container reaches its gateway (a socket on the port's address) through the VLAN.
    let server = std::net::UdpSocket::bind("10.37.0.1:0").unwrap();
    server
        .set_read_timeout(Some(std::time::Duration::from_millis(1500)))
        .unwrap();
    let (src, back) = udp_round_trip(c1.ns.as_ref().unwrap(), &server);
    assert_eq!(src, "10.37.0.2");
    assert!(back, "the gateway's answer did not come back");

    // CHECK passes, and fails once the gateway address is gone from the port.
    call("CHECK", &c1, "eth0", "ctr-vgw1", &with_prev(&conf, &r1)).ok();
    let gw_net = netlink::IpNet {
        addr: "10.37.0.1".parse().unwrap(),
        prefix: 24,
    };
    h.del_address(gw_port.index, gw_net).unwrap();
    let e = call("CHECK", &c1, "eth0", "ctr-vgw1", &with_prev(&conf, &r1)).err();
    assert!(e["msg"].as_str().unwrap().contains("VLAN gateway port"), "{e}");
    h.add_address(gw_port.index, gw_net, true).unwrap();

    // A second attachment reuses the same port.
    let r2 = call("ADD", &c2, "eth0", "ctr-vgw2", &conf).ok();
    assert_eq!(r2["interfaces"][3]["name"], "br-vgw.100");
    assert_eq!(h.link_by_name("br-vgw.100").unwrap().unwrap().index, gw_port.index);
    // DEL leaves the port (it belongs to the network, like the bridge).
    call("DEL", &c1, "eth0", "ctr-vgw1", &with_prev(&conf, &r1)).ok();
    call("DEL", &c2, "eth0", "ctr-vgw2", &with_prev(&conf, &r2)).ok();
    assert!(h.link_by_name("br-vgw.100").unwrap().is_some());
    assert!(!reservation_exists("net-br-vgw", "10.37.0.2"));
}

/// A UDP socket bound in the namespace `ns` (a thread enters it, binds, and ends).
fn udp_socket_in(ns: &NetNs, bind: &str) -> std::net::UdpSocket {
    let bind: std::net::SocketAddr = bind.parse().unwrap();
    let sock = netlink::run_in_netns(ns.as_fd(), move || std::net::UdpSocket::bind(bind))
        .unwrap()
        .unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_millis(1500)))
        .unwrap();
    sock
}

/// One datagram from `from` (a container) to `server`: the source the server saw, and whether
/// the server's answer came back.
fn udp_round_trip(from: &NetNs, server: &std::net::UdpSocket) -> (String, bool) {
    let client = udp_socket_in(from, "0.0.0.0:0");
    client.send_to(b"ping", server.local_addr().unwrap()).unwrap();
    let mut buf = [0u8; 8];
    let (n, src) = server.recv_from(&mut buf).expect("nothing arrived");
    assert_eq!(&buf[..n], b"ping");
    server.send_to(b"pong", src).unwrap();
    let back = matches!(client.recv_from(&mut buf), Ok((4, _)));
    (src.ip().to_string(), back)
}

fn traffic_flows_and_leaves_masqueraded() {
    let a = Container::new("pkt-a");
    let b = Container::new("pkt-b");
    let conf = config("1.1.0", "br-pkt", "10.39.0.0/24", json!({"ipMasq": true}));
    let ra = call("ADD", &a, "eth0", "pkt-a", &conf).ok();
    let rb = call("ADD", &b, "eth0", "pkt-b", &conf).ok();
    // An "outside" namespace reachable from the host through 198.18.0.0/24 only.
    let outside = nsharness::new_netns();
    let h = host();
    let uplink = h
        .create_veth(&netlink::VethSpec {
            name: "up-pkt",
            up: true,
            peer_name: "eth0",
            peer_netns: Some(outside.as_fd()),
            ..Default::default()
        })
        .unwrap();
    h.add_address(uplink.index, "198.18.0.1/24".parse().unwrap(), true)
        .unwrap();
    let o = Rtnl::in_netns(outside.as_fd()).unwrap();
    let o_eth0 = o.link_by_name("eth0").unwrap().unwrap();
    o.add_address(o_eth0.index, "198.18.0.2/24".parse().unwrap(), true)
        .unwrap();
    o.set_up(o_eth0.index, true).unwrap();

    // Inside the pod subnet the source is kept.
    let in_b = udp_socket_in(b.ns.as_ref().unwrap(), "10.39.0.3:7000");
    assert_eq!(
        udp_round_trip(a.ns.as_ref().unwrap(), &in_b),
        ("10.39.0.2".to_string(), true)
    );
    // Leaving it, the source is the host's uplink address and the answer comes back.
    let server = udp_socket_in(&outside, "198.18.0.2:7000");
    assert_eq!(
        udp_round_trip(a.ns.as_ref().unwrap(), &server),
        ("198.18.0.1".to_string(), true)
    );
    // After B's DEL its entry is gone; A still leaves masqueraded.
    call("DEL", &b, "eth0", "pkt-b", &with_prev(&conf, &rb)).ok();
    assert_eq!(udp_round_trip(a.ns.as_ref().unwrap(), &server).0, "198.18.0.1");
    call("DEL", &a, "eth0", "pkt-a", &with_prev(&conf, &ra)).ok();
    h.delete_link(uplink.index).unwrap();
}

/// Private tmpfs over `/run` (netns files) and `/var/lib/cni` (host-local's store), shared by
/// every test and every plugin they start.
fn private_run_and_state() {
    std::fs::create_dir_all("/run").ok();
    nsharness::mount("tmpfs", "/run", Some("tmpfs"), 0);
    std::fs::create_dir_all("/run/netns").unwrap();
    // The host may have no /var/lib/cni: then a private tmpfs over /var/lib provides one
    // without creating anything on the host's file system.
    if Path::new("/var/lib/cni").is_dir() {
        nsharness::mount("tmpfs", "/var/lib/cni", Some("tmpfs"), 0);
    } else {
        nsharness::mount("tmpfs", "/var/lib", Some("tmpfs"), 0);
        std::fs::create_dir_all("/var/lib/cni").unwrap();
    }
}

fn main() {
    nsharness::run(
        &[
            (
                "add_builds_bridge_veth_addresses_and_routes",
                add_builds_bridge_veth_addresses_and_routes,
            ),
            (
                "add_announces_the_address_to_neighbours",
                add_announces_the_address_to_neighbours,
            ),
            (
                "add_announces_without_cap_net_raw_through_the_kernel",
                add_announces_without_cap_net_raw_through_the_kernel,
            ),
            (
                "full_bridge_is_refused_with_a_clear_error",
                full_bridge_is_refused_with_a_clear_error,
            ),
            (
                "chained_after_another_plugin_keeps_its_result",
                chained_after_another_plugin_keeps_its_result,
            ),
            (
                "parallel_adds_and_dels_on_a_new_bridge",
                parallel_adds_and_dels_on_a_new_bridge,
            ),
            ("check_passes_then_detects_breakage", check_passes_then_detects_breakage),
            (
                "del_removes_everything_and_is_idempotent",
                del_removes_everything_and_is_idempotent,
            ),
            (
                "del_retires_the_pair_at_once_and_deletes_it_in_the_background",
                del_retires_the_pair_at_once_and_deletes_it_in_the_background,
            ),
            (
                "del_then_add_again_at_once_with_the_same_ids",
                del_then_add_again_at_once_with_the_same_ids,
            ),
            (
                "delegate_runs_in_process_only_for_the_same_build",
                delegate_runs_in_process_only_for_the_same_build,
            ),
            ("gc_deletes_leftover_retired_pairs", gc_deletes_leftover_retired_pairs),
            (
                "del_when_netns_is_gone_releases_ipam",
                del_when_netns_is_gone_releases_ipam,
            ),
            (
                "del_with_empty_netns_removes_host_veth_via_prev_result",
                del_with_empty_netns_removes_host_veth_via_prev_result,
            ),
            (
                "failure_after_ipam_add_releases_the_address",
                failure_after_ipam_add_releases_the_address,
            ),
            ("second_add_with_same_ifname_fails", second_add_with_same_ifname_fails),
            ("result_shape_of_every_version", result_shape_of_every_version),
            ("l2_only_bridge", l2_only_bridge),
            (
                "status_and_gc_are_forwarded_to_ipam",
                status_and_gc_are_forwarded_to_ipam,
            ),
            (
                "invalid_configurations_are_refused_before_any_change",
                invalid_configurations_are_refused_before_any_change,
            ),
            (
                "mtu_mac_promisc_and_port_flags_are_applied",
                mtu_mac_promisc_and_port_flags_are_applied,
            ),
            (
                "own_netns_is_refused_before_anything",
                own_netns_is_refused_before_anything,
            ),
            (
                "ipmasq_entries_follow_the_attachments",
                ipmasq_entries_follow_the_attachments,
            ),
            (
                "matches_upstream_bridge_side_by_side_and_interoperates",
                matches_upstream_bridge_side_by_side_and_interoperates,
            ),
            (
                "macspoofchk_rules_follow_the_attachment",
                macspoofchk_rules_follow_the_attachment,
            ),
            (
                "vlan_port_settings_or_a_clear_refusal",
                vlan_port_settings_or_a_clear_refusal,
            ),
            (
                "vlan_gateway_port_or_a_clear_refusal",
                vlan_gateway_port_or_a_clear_refusal,
            ),
            (
                "traffic_flows_and_leaves_masqueraded",
                traffic_flows_and_leaves_masqueraded,
            ),
        ],
        Some(private_run_and_state),
    );
}
