//! Kernel tests of the nftables masquerade, run in private namespaces (see `nsharness`):
//! the ruleset is read back with `nft -j`, and real UDP packets cross a masquerading host.

mod nsharness;

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::process::Command;
use std::time::{Duration, Instant};

use cni_reference_plugins::masq::{owner_tag, set_name, Masq, CHAIN, TABLE};
use cni_reference_plugins::netlink::{run_in_netns, write_sysctl, IpNet, NetNs, Route, Rtnl, VethSpec};
use nsharness::new_netns;
use serde_json::Value;

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn nft(args: &[&str]) -> String {
    let out = Command::new("nft").args(args).output().expect("run nft");
    assert!(
        out.status.success(),
        "nft {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Every object of `kind` ("table", "chain", "set", "rule") in `nft -j list ruleset`.
fn ruleset(kind: &str) -> Vec<Value> {
    let v: Value = serde_json::from_str(&nft(&["-j", "list", "ruleset"])).unwrap();
    v["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o.get(kind).cloned())
        .collect()
}

fn our(objs: Vec<Value>) -> Vec<Value> {
    objs.into_iter()
        .filter(|o| o["table"] == TABLE || o["name"] == TABLE)
        .collect()
}

/// `(address, comment)` of the elements of one of our sets, as nft shows them.
fn elements(set: &str) -> Vec<(String, String)> {
    let sets = our(ruleset("set"));
    let Some(s) = sets.iter().find(|s| s["name"] == set) else {
        return Vec::new();
    };
    let Some(elems) = s.get("elem").and_then(Value::as_array) else {
        return Vec::new();
    };
    elems
        .iter()
        .map(|e| match e.get("elem") {
            Some(inner) => (
                inner["val"].as_str().unwrap().to_string(),
                inner["comment"].as_str().unwrap_or("").to_string(),
            ),
            None => (e.as_str().unwrap().to_string(), String::new()),
        })
        .collect()
}

fn rules_of(network: &str) -> Vec<Value> {
    our(ruleset("rule"))
        .into_iter()
        .filter(|r| {
            r["comment"]
                .as_str()
                .is_some_and(|c| c.starts_with(&format!("network={network} ")))
        })
        .collect()
}

fn setup_creates_table_chain_sets_rules() {
    let m = Masq::open().unwrap();
    m.ensure_network("net1", &[net("10.1.0.7/24"), net("fd00:1::/64")])
        .unwrap();
    m.ensure_network("net1", &[net("10.1.0.0/24"), net("fd00:1::/64")])
        .unwrap();

    let tables = our(ruleset("table"));
    assert_eq!(tables.len(), 1, "{tables:?}");
    assert_eq!(tables[0]["family"], "inet");
    let chains = our(ruleset("chain"));
    assert_eq!(chains.len(), 1, "{chains:?}");
    let c = &chains[0];
    assert_eq!(
        (c["name"].as_str(), c["type"].as_str(), c["hook"].as_str()),
        (Some(CHAIN), Some("nat"), Some("postrouting"))
    );
    assert_eq!(c["prio"], 100);
    assert_eq!(c["policy"], "accept");

    let sets = our(ruleset("set"));
    let v4 = sets
        .iter()
        .find(|s| s["name"] == "masq_net1_10.1.0.0_24")
        .expect("v4 set");
    assert_eq!(v4["type"], "ipv4_addr");
    assert_eq!(v4["comment"], "network=net1 subnet=10.1.0.0/24");
    let v6 = sets
        .iter()
        .find(|s| s["name"] == "masq_net1_fd00-1--_64")
        .expect("v6 set");
    assert_eq!(v6["type"], "ipv6_addr");

    assert_eq!(rules_of("net1").len(), 2, "ensure twice must not duplicate rules");
    let text = nft(&["list", "table", "inet", TABLE]);
    assert!(
        text.contains("ip saddr @masq_net1_10.1.0.0_24 ip daddr != 10.1.0.0/24 ip daddr != 224.0.0.0/4 masquerade"),
        "{text}"
    );
    assert!(
        text.contains("ip6 saddr @masq_net1_fd00-1--_64 ip6 daddr != fd00:1::/64 ip6 daddr != ff00::/8 masquerade"),
        "{text}"
    );
    // The upstream table is never created or touched.
    assert!(ruleset("table").iter().all(|t| t["name"] != "cni_plugins_masquerade"));
}

fn add_del_check_idempotent() {
    let m = Masq::open().unwrap();
    let ip = net("10.2.0.5/24");
    let set = set_name("net2", &ip.network());
    m.add("net2", "cid1", "eth0", ip).unwrap();
    m.add("net2", "cid1", "eth0", ip).unwrap();
    assert_eq!(
        elements(&set),
        vec![("10.2.0.5".to_string(), "net2/cid1/eth0".to_string())]
    );
    assert_eq!(rules_of("net2").len(), 1);
    assert!(m.check("net2", "cid1", "eth0", &[ip]).unwrap());
    assert!(!m.check("net2", "cid1", "eth1", &[ip]).unwrap());
    assert!(!m.check("net2", "cid1", "eth0", &[net("10.2.0.6/24")]).unwrap());
    assert!(!m.check("net2", "cid1", "eth0", &[]).unwrap());
    assert!(!m.check("othernet", "cid1", "eth0", &[ip]).unwrap());

    assert_eq!(m.del("net2", "cid-other", "eth0", Some(&[ip])).unwrap(), 0);
    assert_eq!(elements(&set).len(), 1, "another attachment's DEL removed the element");
    assert_eq!(m.del("net2", "cid1", "eth0", Some(&[ip])).unwrap(), 1);
    assert_eq!(m.del("net2", "cid1", "eth0", Some(&[ip])).unwrap(), 0);
    assert_eq!(m.del("net2", "cid1", "eth0", None).unwrap(), 0);
    assert_eq!(m.del("never-set-up", "cid1", "eth0", Some(&[ip])).unwrap(), 0);
    assert!(elements(&set).is_empty());
    assert!(!m.check("net2", "cid1", "eth0", &[ip]).unwrap());
    assert_eq!(rules_of("net2").len(), 1, "rules stay when the set empties");
}

fn address_reuse_changes_owner() {
    let m = Masq::open().unwrap();
    let ip = net("10.3.0.9/24");
    let set = set_name("net3", &ip.network());
    m.add("net3", "old", "eth0", ip).unwrap();
    m.add("net3", "new", "eth0", ip).unwrap();
    assert_eq!(
        elements(&set),
        vec![("10.3.0.9".to_string(), "net3/new/eth0".to_string())]
    );
    assert_eq!(m.del("net3", "old", "eth0", Some(&[ip])).unwrap(), 0);
    assert_eq!(m.del("net3", "old", "eth0", None).unwrap(), 0);
    assert!(m.check("net3", "new", "eth0", &[ip]).unwrap());
    // A rule removed behind our back makes CHECK fail even though the element is there.
    let rule = rules_of("net3").pop().unwrap();
    let handle = rule["handle"].to_string();
    nft(&["delete", "rule", "inet", TABLE, CHAIN, "handle", &handle]);
    assert!(!m.check("net3", "new", "eth0", &[ip]).unwrap());
    m.ensure_network("net3", &[ip]).unwrap();
    assert!(m.check("net3", "new", "eth0", &[ip]).unwrap());
    m.ensure_network("net3", &[ip]).unwrap();
    assert_eq!(rules_of("net3").len(), 1, "repair duplicated the rule");
}

fn del_by_scan_without_addresses() {
    let m = Masq::open().unwrap();
    m.add("net4", "c1", "eth0", net("10.4.0.2/24")).unwrap();
    m.add("net4", "c1", "eth0", net("fd00:4::2/64")).unwrap();
    m.add("net4", "c2", "eth0", net("10.4.0.3/24")).unwrap();
    let entries = m.entries("net4").unwrap();
    assert_eq!(entries.len(), 3, "{entries:?}");
    assert_eq!(m.del("net4", "c1", "eth0", None).unwrap(), 2);
    let left = m.entries("net4").unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].ip, "10.4.0.3".parse::<IpAddr>().unwrap());
    assert_eq!(left[0].owner.as_deref(), Some("net4/c2/eth0"));
    assert_eq!(left[0].subnet, net("10.4.0.0/24"));
}

fn gc_keeps_only_valid_attachments() {
    let m = Masq::open().unwrap();
    for i in 1..=5 {
        m.add("net5", &format!("c{i}"), "eth0", net(&format!("10.5.0.{i}/24")))
            .unwrap();
    }
    m.add("net5", "c1", "eth0", net("fd00:5::1/64")).unwrap();
    m.add("net6", "c9", "eth0", net("10.6.0.9/24")).unwrap();
    assert_eq!(m.gc("net5", &[("c1", "eth0"), ("c4", "eth0")]).unwrap(), 3);
    let mut owners: Vec<String> = m.entries("net5").unwrap().into_iter().filter_map(|e| e.owner).collect();
    owners.sort();
    assert_eq!(owners, vec!["net5/c1/eth0", "net5/c1/eth0", "net5/c4/eth0"]);
    assert_eq!(m.entries("net6").unwrap().len(), 1, "GC of net5 touched net6");
    assert_eq!(m.gc("net5", &[]).unwrap(), 3);
    assert!(m.entries("net5").unwrap().is_empty());
    assert_eq!(m.gc("net5", &[]).unwrap(), 0);
}

fn many_adds_then_dels_leave_set_empty() {
    let m = Masq::open().unwrap();
    let ips: Vec<IpNet> = (0..200)
        .map(|i| net(&format!("10.7.{}.{}/16", i / 250, 1 + i % 250)))
        .collect();
    for (i, ip) in ips.iter().enumerate() {
        m.add("net7", &format!("c{i}"), "eth0", *ip).unwrap();
    }
    let set = set_name("net7", &net("10.7.0.0/16"));
    let listed = elements(&set);
    assert_eq!(listed.len(), 200);
    assert!(listed.iter().any(|(a, c)| a == "10.7.0.1" && c == "net7/c0/eth0"));
    assert_eq!(rules_of("net7").len(), 1);
    for (i, ip) in ips.iter().enumerate() {
        assert_eq!(m.del("net7", &format!("c{i}"), "eth0", Some(&[*ip])).unwrap(), 1);
    }
    assert!(elements(&set).is_empty());
    assert!(m.entries("net7").unwrap().is_empty());
}

fn concurrent_first_adds_create_one_rule() {
    std::thread::scope(|s| {
        for i in 0..64 {
            s.spawn(move || {
                let m = Masq::open().unwrap();
                m.add("net8", &format!("c{i}"), "eth0", net(&format!("10.8.0.{}/24", i + 1)))
                    .unwrap();
            });
        }
    });
    assert_eq!(rules_of("net8").len(), 1);
    assert_eq!(elements(&set_name("net8", &net("10.8.0.0/24"))).len(), 64);
    assert_eq!(our(ruleset("table")).len(), 1);
    assert_eq!(our(ruleset("chain")).len(), 1);
}

fn other_tables_are_left_alone() {
    nft(&["add", "table", "inet", "cni_plugins_masquerade"]);
    nft(&[
        "add",
        "chain",
        "inet",
        "cni_plugins_masquerade",
        "postrouting",
        "{ type nat hook postrouting priority srcnat; }",
    ]);
    nft(&[
        "add",
        "rule",
        "inet",
        "cni_plugins_masquerade",
        "postrouting",
        "ip saddr 10.9.0.2 masquerade",
    ]);
    nft(&["add", "table", "ip", "nat"]);
    let before = (
        nft(&["-j", "list", "table", "inet", "cni_plugins_masquerade"]),
        nft(&["-j", "list", "table", "ip", "nat"]),
    );
    let m = Masq::open().unwrap();
    m.add("net9", "c1", "eth0", net("10.9.0.2/24")).unwrap();
    m.gc("net9", &[]).unwrap();
    m.del("net9", "c1", "eth0", None).unwrap();
    let after = (
        nft(&["-j", "list", "table", "inet", "cni_plugins_masquerade"]),
        nft(&["-j", "list", "table", "ip", "nat"]),
    );
    assert_eq!(before, after);
    nft(&["delete", "table", "inet", "cni_plugins_masquerade"]);
    nft(&["delete", "table", "ip", "nat"]);
}

fn rejects_bad_network_names() {
    let m = Masq::open().unwrap();
    for bad in ["", "a/b", "a b", &"n".repeat(300)] {
        let err = m.add(bad, "c", "eth0", net("10.10.0.2/24")).unwrap_err();
        assert!(err.to_string().contains("network name"), "{err}");
    }
}

/// Makes `name` in `ns` a link of a veth pair whose other end `host_name` is here, with
/// addresses on both ends.
fn wire(ns: &NetNs, host_name: &str, host_addr: &str, inner_addr: &str) -> Rtnl {
    let here = Rtnl::new().unwrap();
    let host = here
        .create_veth(&VethSpec {
            name: host_name,
            up: true,
            peer_name: "eth0",
            peer_netns: Some(ns.as_fd()),
            ..Default::default()
        })
        .unwrap();
    here.add_address(host.index, net(host_addr), false).unwrap();
    let inner = Rtnl::in_netns(ns.as_fd()).unwrap();
    let eth0 = inner.link_by_name("eth0").unwrap().unwrap();
    inner.add_address(eth0.index, net(inner_addr), false).unwrap();
    inner.set_up(eth0.index, true).unwrap();
    inner
}

fn udp_in(ns: &NetNs, bind: &str) -> UdpSocket {
    let bind: SocketAddr = bind.parse().unwrap();
    let sock = run_in_netns(ns.as_fd(), move || UdpSocket::bind(bind))
        .unwrap()
        .unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(1500))).unwrap();
    sock
}

/// Sends one datagram from a fresh socket in the container to the outside server; returns the
/// source address the server saw, and whether the server's reply reached the container.
fn round_trip(container: &NetNs, server: &UdpSocket) -> (IpAddr, bool) {
    let target = server.local_addr().unwrap();
    let any = if target.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
    let client = udp_in(container, any);
    client.send_to(b"ping", target).unwrap();
    let mut buf = [0u8; 16];
    let (n, from) = server.recv_from(&mut buf).expect("server got nothing");
    assert_eq!(&buf[..n], b"ping");
    let replied = server.send_to(b"pong", from).is_ok();
    let got = replied && matches!(client.recv_from(&mut buf), Ok((4, src)) if src.ip() == target.ip());
    (from.ip(), got)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn real_packets_are_masqueraded() {
    let container = new_netns();
    let outside = new_netns();
    let c = wire(&container, "hc0", "10.77.0.1/24", "10.77.0.2/24");
    c.add_route(&Route::default_via(ip("10.77.0.1"))).unwrap();
    let _o = wire(&outside, "ho0", "198.18.0.1/24", "198.18.0.2/24");
    write_sysctl("net/ipv4/ip_forward", "1").unwrap();
    let server = udp_in(&outside, "198.18.0.2:5555");

    let m = Masq::open().unwrap();
    m.add("pktnet", "cidP", "eth0", net("10.77.0.2/24")).unwrap();
    let (seen, replied) = round_trip(&container, &server);
    assert_eq!(seen, ip("198.18.0.1"), "not masqueraded");
    assert!(replied, "the reply did not come back through the masquerade");

    assert_eq!(
        m.del("pktnet", "cidP", "eth0", Some(&[net("10.77.0.2/24")])).unwrap(),
        1
    );
    let (seen, replied) = round_trip(&container, &server);
    assert_eq!(seen, ip("10.77.0.2"), "still masqueraded after del");
    assert!(!replied, "outside has no route back to the container subnet");

    // Re-added: masqueraded again (a new flow gets a new conntrack entry).
    m.add("pktnet", "cidP", "eth0", net("10.77.0.2/24")).unwrap();
    assert_eq!(round_trip(&container, &server).0, ip("198.18.0.1"));
    write_sysctl("net/ipv4/ip_forward", "0").unwrap();
}

/// Adds an IPv6 address without duplicate address detection on `name` in `rtnl`'s namespace.
fn add_v6(rtnl: &Rtnl, name: &str, addr: &str) {
    let link = rtnl.link_by_name(name).unwrap().unwrap();
    rtnl.add_address(link.index, net(addr), true).unwrap();
}

fn real_ipv6_packets_are_masqueraded() {
    let container = new_netns();
    let outside = new_netns();
    let c = wire(&container, "hc6", "10.78.0.1/24", "10.78.0.2/24");
    let o = wire(&outside, "ho6", "198.19.0.1/24", "198.19.0.2/24");
    let here = Rtnl::new().unwrap();
    add_v6(&here, "hc6", "fd00:78::1/64");
    add_v6(&c, "eth0", "fd00:78::2/64");
    add_v6(&here, "ho6", "fd00:18::1/64");
    add_v6(&o, "eth0", "fd00:18::2/64");
    c.add_route(&Route::default_via(ip("fd00:78::1"))).unwrap();
    write_sysctl("net/ipv6/conf/all/forwarding", "1").unwrap();
    let server = udp_in(&outside, "[fd00:18::2]:5556");

    let m = Masq::open().unwrap();
    m.add("pktnet6", "cid6", "eth0", net("fd00:78::2/64")).unwrap();
    let (seen, replied) = round_trip(&container, &server);
    assert_eq!(seen, ip("fd00:18::1"), "not masqueraded");
    assert!(replied, "the reply did not come back through the masquerade");
    assert_eq!(m.del("pktnet6", "cid6", "eth0", None).unwrap(), 1);
    let (seen, replied) = round_trip(&container, &server);
    assert_eq!(seen, ip("fd00:78::2"), "still masqueraded after del");
    assert!(!replied);
    write_sysctl("net/ipv6/conf/all/forwarding", "0").unwrap();
}

/// Not an assertion: the cost of one attachment's add+del at 1 and at 1,000 elements.
fn bench_add_del() {
    let m = Masq::open().unwrap();
    let rounds = 200u32;
    let measure = |label: &str| {
        let ip = net("10.99.255.250/16");
        let (mut add, mut del) = (Duration::ZERO, Duration::ZERO);
        for _ in 0..rounds {
            let t = Instant::now();
            m.add("bench", "cidB", "eth0", ip).unwrap();
            add += t.elapsed();
            let t = Instant::now();
            m.del("bench", "cidB", "eth0", Some(&[ip])).unwrap();
            del += t.elapsed();
        }
        println!(
            "bench masq ({label}): add {:?}, del {:?} per attachment",
            add / rounds,
            del / rounds
        );
    };
    m.add("bench", "first", "eth0", net("10.99.0.1/16")).unwrap();
    measure("1 existing element");
    for i in 2..=1000u32 {
        m.add(
            "bench",
            &format!("c{i}"),
            "eth0",
            net(&format!("10.99.{}.{}/16", i / 250, i % 250)),
        )
        .unwrap();
    }
    assert_eq!(m.entries("bench").unwrap().len(), 1000);
    measure("1000 existing elements");
    let t = Instant::now();
    assert_eq!(m.gc("bench", &[]).unwrap(), 1000);
    println!("bench masq: gc of 1000 elements {:?}", t.elapsed());
    assert!(owner_tag("bench", "c", "eth0").starts_with("bench/"));
}

fn main() {
    nsharness::run(
        &[
            (
                "setup_creates_table_chain_sets_rules",
                setup_creates_table_chain_sets_rules,
            ),
            ("add_del_check_idempotent", add_del_check_idempotent),
            ("address_reuse_changes_owner", address_reuse_changes_owner),
            ("del_by_scan_without_addresses", del_by_scan_without_addresses),
            ("gc_keeps_only_valid_attachments", gc_keeps_only_valid_attachments),
            (
                "many_adds_then_dels_leave_set_empty",
                many_adds_then_dels_leave_set_empty,
            ),
            (
                "concurrent_first_adds_create_one_rule",
                concurrent_first_adds_create_one_rule,
            ),
            ("other_tables_are_left_alone", other_tables_are_left_alone),
            ("rejects_bad_network_names", rejects_bad_network_names),
            ("real_packets_are_masqueraded", real_packets_are_masqueraded),
            ("real_ipv6_packets_are_masqueraded", real_ipv6_packets_are_masqueraded),
            ("bench_add_del", bench_add_del),
        ],
        None,
    );
}
