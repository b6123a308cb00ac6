//! Kernel round-trip tests for the synchronous rtnetlink client (`cni_conformance::net`).
//!
//! Every test needs a private network namespace, so the binary runs on the shared harness
//! (`harness/mod.rs`), which isolates the whole process before any test runs. Before the first
//! test it checks that the namespace holds nothing but a down `lo`, so a failed isolation can
//! never let a test touch the host's links. Tests then run one after the other in that
//! namespace, each cleaning up what it created.

use std::net::IpAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::process::Command;

mod harness;

use harness::Test;

use cni_conformance::net::{AddrInfo, IpNet, LinkInfo, NetError, RouteInfo, Rtnl};

type TestResult = Result<(), String>;

/// A named test function.
type NamedTest = (&'static str, fn() -> TestResult);

/// Fails the current test with a message when `cond` is false.
macro_rules! check {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!("{}:{}: {}", file!(), line!(), format!($($msg)+)));
        }
    };
}

/// Turns any error into the test's failure message, with the expression that failed.
macro_rules! t {
    ($e:expr) => {
        $e.map_err(|e| format!("{}:{}: {} failed: {e}", file!(), line!(), stringify!($e)))?
    };
}

fn main() {
    let tests = TESTS.iter().map(|&(name, body)| Test::fallible(name, body)).collect();
    harness::run_isolated(tests, ensure_private_namespace)
}

/// A namespace created a moment ago has only a loopback device, which is down. Anything else
/// means isolation failed and the tests must not run.
fn ensure_private_namespace() -> Result<(), String> {
    let rtnl = Rtnl::new().map_err(|e| e.to_string())?;
    let links = rtnl.links().map_err(|e| e.to_string())?;
    let names: Vec<&str> = links.iter().map(|l| l.name.as_str()).collect();
    if names != ["lo"] || links[0].admin_up {
        return Err(format!(
            "expected a fresh namespace with only a down `lo`, found {names:?}"
        ));
    }
    Ok(())
}

const TESTS: &[NamedTest] = &[
    ("loopback_is_dumped_and_set_up", loopback_is_dumped_and_set_up),
    ("veth_and_bridge_round_trip", veth_and_bridge_round_trip),
    ("addresses_both_families_round_trip", addresses_both_families_round_trip),
    ("routes_round_trip_in_every_table", routes_round_trip_in_every_table),
    ("veth_peer_created_in_other_netns", veth_peer_created_in_other_netns),
    ("link_moved_to_other_netns", link_moved_to_other_netns),
    ("dump_spanning_many_datagrams", dump_spanning_many_datagrams),
    ("kernel_errors_carry_errno_and_op", kernel_errors_carry_errno_and_op),
    (
        "invalid_requests_are_refused_locally",
        invalid_requests_are_refused_locally,
    ),
    (
        "in_netns_rejects_a_file_that_is_no_namespace",
        in_netns_rejects_a_file_that_is_no_namespace,
    ),
    ("rtnl_is_usable_from_another_thread", rtnl_is_usable_from_another_thread),
];

// ---------------------------------------------------------------------------------------------
// helpers

fn net(s: &str) -> IpNet {
    s.parse().expect("test CIDR")
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn link(rtnl: &Rtnl, name: &str) -> Result<LinkInfo, String> {
    rtnl.link_by_name(name)
        .map_err(|e| format!("looking up {name}: {e}"))?
        .ok_or_else(|| format!("link {name} not found"))
}

/// Deletes the named links if present, so a failed test does not break the next one.
fn cleanup(rtnl: &Rtnl, names: &[&str]) {
    for name in names {
        if let Ok(Some(l)) = rtnl.link_by_name(name) {
            let _ = rtnl.delete_link(l.index);
        }
    }
}

/// A second network namespace, created by a short-lived thread; the fd keeps it alive.
fn new_netns() -> Result<OwnedFd, String> {
    std::thread::spawn(|| -> Result<OwnedFd, String> {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| format!("unshare(CLONE_NEWNET) on a thread: {e}"))?;
        let file =
            std::fs::File::open("/proc/thread-self/ns/net").map_err(|e| format!("opening the new netns: {e}"))?;
        Ok(OwnedFd::from(file))
    })
    .join()
    .map_err(|_| "netns thread panicked".to_string())?
}

/// Runs iproute2's `ip` with `args` in this process's (private) network namespace.
fn ip_cmd(args: &[&str]) -> TestResult {
    ip_output(args).map(drop)
}

/// Runs `ip` like [`ip_cmd`] and returns its standard output.
fn ip_output(args: &[&str]) -> Result<String, String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("running ip {args:?}: {e}"))?;
    check!(
        out.status.success(),
        "ip {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Polling for asynchronous kernel state: up to `WAIT_STEPS` x `WAIT_STEP`.
const WAIT_STEPS: usize = 50;
const WAIT_STEP: std::time::Duration = std::time::Duration::from_millis(100);

/// Calls `probe` until it returns `Some` or the wait is over; returns the last answer.
fn poll<T>(mut probe: impl FnMut() -> Result<Option<T>, String>) -> Result<Option<T>, String> {
    for _ in 0..WAIT_STEPS {
        if let Some(found) = probe()? {
            return Ok(Some(found));
        }
        std::thread::sleep(WAIT_STEP);
    }
    probe()
}

/// Waits until link `name` reports operational state `want`; returns the last state seen.
fn wait_for_oper_state(rtnl: &Rtnl, name: &str, want: &str) -> Result<String, String> {
    let mut last = String::new();
    let found = poll(|| {
        last = link(rtnl, name)?.oper_state;
        Ok((last == want).then(|| last.clone()))
    })?;
    Ok(found.unwrap_or(last))
}

fn expect_kernel_error(result: Result<(), NetError>, errno: i32, op_contains: &str) -> TestResult {
    match result {
        Err(NetError::Kernel { op, source }) => {
            check!(
                source.raw_os_error() == Some(errno),
                "expected errno {errno}, got {source} (op {op:?})"
            );
            check!(
                op.contains(op_contains),
                "op text {op:?} should mention {op_contains:?}"
            );
            Ok(())
        }
        Err(other) => Err(format!("expected a kernel error {errno}, got {other:?}")),
        Ok(()) => Err(format!("expected kernel error {errno}, the request succeeded")),
    }
}

// ---------------------------------------------------------------------------------------------
// tests

fn loopback_is_dumped_and_set_up() -> TestResult {
    let rtnl = t!(Rtnl::new());
    let lo = link(&rtnl, "lo")?;
    check!(lo.index == 1, "lo index {}", lo.index);
    check!(lo.kind.is_none(), "lo has no IFLA_INFO_KIND, got {:?}", lo.kind);
    check!(lo.mac.as_deref() == Some("00:00:00:00:00:00"), "lo mac {:?}", lo.mac);
    check!(lo.mtu == 65536, "lo mtu {}", lo.mtu);
    check!(lo.master.is_none() && lo.link_netnsid.is_none(), "{lo:?}");
    check!(!lo.admin_up, "lo starts down in a new netns");

    t!(rtnl.set_up(lo.index, true));
    let lo = link(&rtnl, "lo")?;
    check!(lo.admin_up, "lo should be up");
    check!(lo.oper_state == "unknown", "lo oper state {:?}", lo.oper_state);
    let by_index = t!(rtnl.link_by_index(1)).ok_or("link_by_index(1) is None")?;
    check!(by_index == lo, "by index {by_index:?} != by name {lo:?}");
    let dumped = t!(rtnl.links());
    check!(dumped.contains(&lo), "dump {dumped:?} lacks {lo:?}");

    // An up loopback carries 127.0.0.1/8 and ::1/128, scope host.
    let addrs = t!(rtnl.addresses_of(1));
    let has = |cidr: &str| addrs.iter().any(|a| a.addr == net(cidr) && a.scope == 254);
    check!(has("127.0.0.1/8"), "lo addresses {addrs:?}");
    check!(has("::1/128"), "lo addresses {addrs:?}");
    Ok(())
}

fn veth_and_bridge_round_trip() -> TestResult {
    let rtnl = t!(Rtnl::new());
    let result = veth_and_bridge_body(&rtnl);
    cleanup(&rtnl, &["ve0", "br0"]);
    result?;
    check!(
        t!(rtnl.link_by_name("ve0")).is_none() && t!(rtnl.link_by_name("ve1")).is_none(),
        "deleting one veth end removes both"
    );
    check!(t!(rtnl.link_by_name("br0")).is_none(), "br0 still present");
    Ok(())
}

fn veth_and_bridge_body(rtnl: &Rtnl) -> TestResult {
    t!(rtnl.create_veth("ve0", "ve1", None));
    t!(rtnl.create_bridge("br0"));
    let ve0 = link(rtnl, "ve0")?;
    let ve1 = link(rtnl, "ve1")?;
    let br0 = link(rtnl, "br0")?;
    check!(ve0.kind.as_deref() == Some("veth"), "ve0 kind {:?}", ve0.kind);
    check!(br0.kind.as_deref() == Some("bridge"), "br0 kind {:?}", br0.kind);
    check!(
        ve0.link == Some(ve1.index),
        "ve0 IFLA_LINK {:?} != ve1 {}",
        ve0.link,
        ve1.index
    );
    check!(ve1.link == Some(ve0.index), "ve1 IFLA_LINK {:?}", ve1.link);
    check!(ve0.link_netnsid.is_none(), "same-netns peer has no netnsid: {ve0:?}");
    check!(!ve0.admin_up && ve0.oper_state == "down", "new veth is down: {ve0:?}");
    check!(ve0.mtu == 1500 && !ve0.promisc, "{ve0:?}");
    for l in [&ve0, &ve1, &br0] {
        let mac = l.mac.as_deref().unwrap_or("");
        check!(
            mac.len() == 17
                && mac
                    .bytes()
                    .all(|b| b == b':' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "{} mac {mac:?} is not lower-case colon hex",
            l.name
        );
    }

    t!(rtnl.set_master(ve0.index, Some(br0.index)));
    t!(rtnl.set_mtu(ve0.index, 1400));
    t!(rtnl.set_mtu(ve1.index, 1400));
    t!(rtnl.set_mac(ve1.index, [0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0x0e]));
    for l in [&ve0, &ve1, &br0] {
        t!(rtnl.set_up(l.index, true));
    }
    let ve0 = link(rtnl, "ve0")?;
    let ve1 = link(rtnl, "ve1")?;
    let br0_now = link(rtnl, "br0")?;
    check!(ve0.master == Some(br0.index), "ve0 master {:?}", ve0.master);
    check!(ve0.mtu == 1400, "ve0 mtu {}", ve0.mtu);
    check!(br0_now.mtu == 1400, "a bridge takes its port's MTU: {}", br0_now.mtu);
    check!(ve1.mac.as_deref() == Some("02:aa:bb:cc:dd:0e"), "ve1 mac {:?}", ve1.mac);
    check!(ve0.admin_up && ve1.admin_up && br0_now.admin_up, "all up");
    // Operational state follows carrier through the kernel's deferred link watcher.
    let oper = wait_for_oper_state(rtnl, "ve1", "up")?;
    check!(oper == "up", "ve1 with an up peer should become up, is {oper:?}");

    let dump = t!(rtnl.links());
    for l in [&ve0, &ve1, &br0_now] {
        check!(
            dump.iter()
                .any(|d| d.index == l.index && d.name == l.name && d.master == l.master && d.mtu == l.mtu),
            "dump lacks {l:?}"
        );
    }

    t!(rtnl.set_master(ve0.index, None));
    t!(rtnl.set_up(ve0.index, false));
    let ve0 = link(rtnl, "ve0")?;
    check!(ve0.master.is_none(), "ve0 released: {:?}", ve0.master);
    check!(!ve0.admin_up, "ve0 down again");
    let oper = wait_for_oper_state(rtnl, "ve1", "lowerlayerdown")?;
    check!(oper == "lowerlayerdown", "ve1 should see its peer down, is {oper:?}");
    t!(rtnl.delete_link(ve0.index));
    t!(rtnl.delete_link(br0.index));
    Ok(())
}

fn addresses_both_families_round_trip() -> TestResult {
    let rtnl = t!(Rtnl::new());
    let result = addresses_body(&rtnl);
    cleanup(&rtnl, &["ad0"]);
    result
}

fn addresses_body(rtnl: &Rtnl) -> TestResult {
    t!(rtnl.create_veth("ad0", "ad1", None));
    let ad0 = link(rtnl, "ad0")?;
    let ad1 = link(rtnl, "ad1")?;
    t!(rtnl.set_up(ad0.index, true));
    t!(rtnl.set_up(ad1.index, true));
    let v4 = net("10.1.2.3/24");
    let v6 = net("2001:db8:1::5/64");
    let v4b = net("10.9.9.9/32");
    t!(rtnl.add_address(ad0.index, v4));
    t!(rtnl.add_address(ad0.index, v6));
    t!(rtnl.add_address(ad0.index, v4b));

    let addrs = t!(rtnl.addresses_of(ad0.index));
    for want in [v4, v6, v4b] {
        let found = addrs.iter().find(|a| a.addr == want);
        check!(found.is_some(), "{want} missing from {addrs:?}");
        check!(found.map(|a| (a.index, a.scope)) == Some((ad0.index, 0)), "{found:?}");
    }
    check!(
        addrs.iter().all(|a| a.index == ad0.index),
        "addresses_of returned other links: {addrs:?}"
    );
    // The kernel adds an fe80::/64 link-local address of scope link once the link has carrier;
    // that happens asynchronously (link watcher), so wait for it.
    let is_link_local =
        |a: &AddrInfo| a.addr.prefix == 64 && a.scope == 253 && a.addr.addr.to_string().starts_with("fe80:");
    let link_local = poll(|| Ok(t!(rtnl.addresses_of(ad0.index)).into_iter().find(is_link_local)))?;
    check!(link_local.is_some(), "no link-local address on ad0 within the wait");
    let all = t!(rtnl.addresses());
    check!(
        all.iter().any(|a| a.addr == v6 && a.index == ad0.index),
        "full dump lacks {v6}"
    );
    check!(
        all.iter().all(|a| a.index != ad1.index || a.addr != v4),
        "ad1 has no {v4}"
    );

    // With IFA_F_NODAD the IPv6 address is usable at once: binding to it succeeds now, where a
    // tentative address would give EADDRNOTAVAIL.
    let sock = std::net::UdpSocket::bind(("2001:db8:1::5", 0));
    check!(sock.is_ok(), "binding to the new IPv6 address: {:?}", sock.err());
    // IPv4 addresses get the directed broadcast (like `brd +`) unless they are /31 or /32.
    let shown = ip_output(&["-4", "addr", "show", "dev", "ad0"])?;
    check!(
        shown.contains("inet 10.1.2.3/24 brd 10.1.2.255 "),
        "no broadcast on 10.1.2.3/24: {shown}"
    );
    check!(
        shown.contains("inet 10.9.9.9/32 scope global"),
        "a /32 has no broadcast: {shown}"
    );

    t!(rtnl.del_address(ad0.index, v6));
    t!(rtnl.del_address(ad0.index, v4b));
    let addrs = t!(rtnl.addresses_of(ad0.index));
    check!(
        !addrs.iter().any(|a| a.addr == v6 || a.addr == v4b),
        "deleted addresses remain: {addrs:?}"
    );
    check!(addrs.iter().any(|a| a.addr == v4), "{v4} should remain: {addrs:?}");
    expect_kernel_error(rtnl.del_address(ad0.index, v6), libc::EADDRNOTAVAIL, "2001:db8:1::5/64")?;
    expect_kernel_error(rtnl.add_address(ad0.index, v4), libc::EEXIST, "add address 10.1.2.3/24")?;
    Ok(())
}

fn routes_round_trip_in_every_table() -> TestResult {
    let rtnl = t!(Rtnl::new());
    let result = routes_body(&rtnl);
    cleanup(&rtnl, &["rt0"]);
    result
}

fn routes_body(rtnl: &Rtnl) -> TestResult {
    t!(rtnl.create_veth("rt0", "rt1", None));
    let rt0 = link(rtnl, "rt0")?;
    let rt1 = link(rtnl, "rt1")?;
    t!(rtnl.set_up(rt0.index, true));
    t!(rtnl.set_up(rt1.index, true));
    t!(rtnl.add_address(rt0.index, net("10.1.2.3/24")));
    t!(rtnl.add_address(rt0.index, net("2001:db8:2::5/64")));

    let routes = t!(rtnl.routes());
    // Connected route made by the kernel: main table, proto kernel, scope link.
    let connected = routes
        .iter()
        .find(|r| r.dst == Some(net("10.1.2.0/24")) && r.table == 254)
        .ok_or_else(|| format!("no connected route in {routes:#?}"))?;
    check!(
        (
            connected.protocol,
            connected.scope,
            connected.kind,
            connected.oif,
            connected.ipv6
        ) == (2, 253, 1, Some(rt0.index), false),
        "connected route {connected:?}"
    );
    // Local table: the address itself as a local route, scope host.
    check!(
        routes
            .iter()
            .any(|r| r.table == 255 && r.dst == Some(net("10.1.2.3/32")) && r.kind == 2 && r.scope == 254),
        "no local route for 10.1.2.3 in {routes:#?}"
    );
    // IPv6 inserts the local route when duplicate address detection ends, which runs on a
    // kernel work queue even with IFA_F_NODAD: it can appear shortly after add_address returns.
    let is_v6_local =
        |r: &RouteInfo| r.table == 255 && r.ipv6 && r.dst == Some(net("2001:db8:2::5/128")) && r.kind == 2;
    let v6_local = poll(|| Ok(t!(rtnl.routes()).into_iter().find(is_v6_local)))?;
    check!(
        v6_local.is_some(),
        "no IPv6 local route for 2001:db8:2::5 within the wait"
    );
    let v6_connected = routes
        .iter()
        .find(|r| r.table == 254 && r.dst == Some(net("2001:db8:2::/64")))
        .ok_or("no IPv6 prefix route")?;
    check!(
        v6_connected.ipv6 && v6_connected.priority == Some(256) && v6_connected.oif == Some(rt0.index),
        "IPv6 prefix route {v6_connected:?}"
    );

    // Default routes of both families, and a prefix via a gateway.
    t!(rtnl.add_route(None, Some(ip("10.1.2.1")), None));
    t!(rtnl.add_route(None, Some(ip("2001:db8:2::1")), Some(rt0.index)));
    t!(rtnl.add_route(Some(net("192.168.50.7/24")), Some(ip("10.1.2.1")), Some(rt0.index)));
    t!(rtnl.add_route(Some(net("10.77.0.0/16")), None, Some(rt0.index)));

    let routes = t!(rtnl.routes());
    let default4 = routes
        .iter()
        .find(|r| !r.ipv6 && r.dst.is_none() && r.table == 254)
        .ok_or_else(|| format!("no IPv4 default route in {routes:#?}"))?;
    check!(default4.gateway == Some(ip("10.1.2.1")), "{default4:?}");
    check!(
        (default4.protocol, default4.kind, default4.scope, default4.oif) == (4, 1, 0, Some(rt0.index)),
        "default route fields {default4:?}"
    );
    let default6 = routes
        .iter()
        .find(|r| r.ipv6 && r.dst.is_none() && r.table == 254)
        .ok_or_else(|| format!("no IPv6 default route in {routes:#?}"))?;
    check!(
        default6.gateway == Some(ip("2001:db8:2::1")) && default6.protocol == 4 && default6.oif == Some(rt0.index),
        "{default6:?}"
    );
    let via = routes
        .iter()
        .find(|r| r.dst == Some(net("192.168.50.0/24")))
        .ok_or("host bits must be cleared: 192.168.50.0/24 missing")?;
    check!(via.gateway == Some(ip("10.1.2.1")) && via.table == 254, "{via:?}");
    let device = routes
        .iter()
        .find(|r| r.dst == Some(net("10.77.0.0/16")))
        .ok_or("device route missing")?;
    check!(
        device.gateway.is_none() && device.scope == 253 && device.oif == Some(rt0.index),
        "device route {device:?}"
    );
    check!(routes.iter().all(|r| r.mtu.is_none()), "no route has an MTU metric yet");

    // Policy tables, a table id above 255 (only in RTA_TABLE) and RTAX metrics, made by iproute2
    // in this same private namespace.
    ip_cmd(&[
        "route",
        "add",
        "10.88.0.0/16",
        "dev",
        "rt0",
        "table",
        "1000",
        "mtu",
        "1400",
    ])?;
    ip_cmd(&[
        "-6",
        "route",
        "add",
        "2001:db8:88::/48",
        "via",
        "2001:db8:2::1",
        "table",
        "100",
        "advmss",
        "1300",
        "metric",
        "77",
    ])?;
    let routes = t!(rtnl.routes());
    let big_table = routes
        .iter()
        .find(|r| r.dst == Some(net("10.88.0.0/16")))
        .ok_or("route in table 1000 missing from the dump")?;
    check!(
        big_table.table == 1000 && big_table.mtu == Some(1400) && big_table.advmss.is_none(),
        "{big_table:?}"
    );
    let policy = routes
        .iter()
        .find(|r| r.dst == Some(net("2001:db8:88::/48")))
        .ok_or("route in table 100 missing from the dump")?;
    check!(
        (
            policy.table,
            policy.advmss,
            policy.priority,
            policy.gateway,
            policy.protocol
        ) == (100, Some(1300), Some(77), Some(ip("2001:db8:2::1")), 3),
        "{policy:?}"
    );

    expect_kernel_error(
        rtnl.add_route(None, Some(ip("10.1.2.1")), None),
        libc::EEXIST,
        "add route default via 10.1.2.1",
    )?;

    t!(rtnl.del_route(None, Some(ip("10.1.2.1")), false));
    t!(rtnl.del_route(None, None, true));
    t!(rtnl.del_route(Some(net("192.168.50.0/24")), None, false));
    let routes = t!(rtnl.routes());
    check!(
        !routes
            .iter()
            .any(|r| r.table == 254 && (r.dst.is_none() || r.dst == Some(net("192.168.50.0/24")))),
        "deleted routes remain: {routes:#?}"
    );
    check!(
        routes.iter().any(|r| r.dst == Some(net("10.77.0.0/16"))),
        "unrelated route removed"
    );
    expect_kernel_error(
        rtnl.del_route(Some(net("192.168.50.0/24")), None, false),
        libc::ESRCH,
        "delete route 192.168.50.0/24",
    )?;
    Ok(())
}

fn veth_peer_created_in_other_netns() -> TestResult {
    let other = new_netns()?;
    let rtnl = t!(Rtnl::new());
    let result = (|| -> TestResult {
        t!(rtnl.create_veth("vx0", "vx1", Some(other.as_fd())));
        let vx0 = link(&rtnl, "vx0")?;
        check!(
            t!(rtnl.link_by_name("vx1")).is_none(),
            "peer must not be in this namespace"
        );
        check!(vx0.kind.as_deref() == Some("veth"), "{vx0:?}");
        check!(
            vx0.link_netnsid.is_some(),
            "peer in another netns sets IFLA_LINK_NETNSID: {vx0:?}"
        );

        let there = t!(Rtnl::in_netns(other.as_fd()));
        let vx1 = link(&there, "vx1")?;
        check!(
            vx0.link == Some(vx1.index),
            "vx0 IFLA_LINK {:?} != vx1 index {}",
            vx0.link,
            vx1.index
        );
        check!(vx1.link == Some(vx0.index), "vx1 IFLA_LINK {:?}", vx1.link);
        check!(vx1.link_netnsid.is_some(), "{vx1:?}");
        check!(vx1.kind.as_deref() == Some("veth"), "{vx1:?}");
        let names: Vec<String> = t!(there.links()).into_iter().map(|l| l.name).collect();
        check!(names == ["lo", "vx1"], "other netns holds {names:?}");

        // Configure the peer through the foreign socket, read it back there.
        t!(there.set_up(vx1.index, true));
        t!(there.add_address(vx1.index, net("10.5.0.2/30")));
        check!(
            t!(there.addresses_of(vx1.index))
                .iter()
                .any(|a| a.addr == net("10.5.0.2/30")),
            "address on vx1"
        );
        check!(
            t!(rtnl.addresses()).iter().all(|a| a.addr != net("10.5.0.2/30")),
            "address leaked into this namespace"
        );

        t!(rtnl.delete_link(vx0.index));
        check!(t!(rtnl.link_by_name("vx0")).is_none(), "vx0 gone");
        check!(
            t!(there.link_by_name("vx1")).is_none(),
            "deleting vx0 removes its peer vx1"
        );
        Ok(())
    })();
    cleanup(&rtnl, &["vx0"]);
    result
}

fn link_moved_to_other_netns() -> TestResult {
    let other = new_netns()?;
    let rtnl = t!(Rtnl::new());
    let result = (|| -> TestResult {
        t!(rtnl.create_veth("mv0", "mv1", None));
        let mv1 = link(&rtnl, "mv1")?;
        t!(rtnl.move_to_netns(mv1.index, other.as_fd()));
        check!(t!(rtnl.link_by_name("mv1")).is_none(), "mv1 still here after the move");
        let there = t!(Rtnl::in_netns(other.as_fd()));
        let moved = link(&there, "mv1")?;
        check!(moved.kind.as_deref() == Some("veth"), "{moved:?}");
        check!(link(&rtnl, "mv0")?.link_netnsid.is_some(), "mv0 now has a peer netnsid");
        t!(there.delete_link(moved.index));
        check!(
            t!(rtnl.link_by_name("mv0")).is_none(),
            "deleting mv1 there removes mv0 here"
        );
        Ok(())
    })();
    cleanup(&rtnl, &["mv0"]);
    result
}

fn dump_spanning_many_datagrams() -> TestResult {
    let rtnl = t!(Rtnl::new());
    let names: Vec<String> = (0..48).map(|i| format!("many{i}")).collect();
    let result = (|| -> TestResult {
        for name in &names {
            t!(rtnl.create_bridge(name));
        }
        let links = t!(rtnl.links());
        for name in &names {
            check!(
                links.iter().any(|l| &l.name == name),
                "{name} missing from a {}-link dump",
                links.len()
            );
        }
        let mut indexes: Vec<u32> = links.iter().map(|l| l.index).collect();
        indexes.sort_unstable();
        indexes.dedup();
        check!(indexes.len() == links.len(), "a link appears twice in the dump");
        Ok(())
    })();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    cleanup(&rtnl, &refs);
    result?;
    check!(t!(rtnl.links()).len() < names.len(), "bridges were not deleted");
    Ok(())
}

fn kernel_errors_carry_errno_and_op() -> TestResult {
    let rtnl = t!(Rtnl::new());
    let result = (|| -> TestResult {
        t!(rtnl.create_veth("dup0", "dup1", None));
        expect_kernel_error(
            rtnl.create_veth("dup0", "dupx", None),
            libc::EEXIST,
            "create veth dup0/dupx",
        )?;
        expect_kernel_error(rtnl.create_bridge("dup1"), libc::EEXIST, "create bridge dup1")?;
        let dup0 = link(&rtnl, "dup0")?;
        match rtnl.set_master(dup0.index, Some(999_999)) {
            Err(e @ NetError::Kernel { .. }) => {
                let text = e.to_string();
                check!(text.contains("999999"), "error text {text:?} names the master");
            }
            other => return Err(format!("set_master to a missing index: {other:?}")),
        }
        expect_kernel_error(rtnl.delete_link(999_999), libc::ENODEV, "delete link index 999999")?;
        expect_kernel_error(rtnl.set_mtu(dup0.index, 10), libc::EINVAL, "set mtu 10")?;
        check!(t!(rtnl.link_by_name("nosuchlink")).is_none(), "missing name is None");
        check!(t!(rtnl.link_by_index(999_999)).is_none(), "missing index is None");
        check!(
            t!(rtnl.link_by_name("a-name-far-too-long")).is_none(),
            "impossible name is None"
        );
        check!(
            matches!(rtnl.index_of("nosuchlink"), Err(NetError::NoSuchLink(_))),
            "index_of"
        );
        // The socket stays usable after errors.
        check!(t!(rtnl.links()).iter().any(|l| l.name == "dup0"), "dump after errors");
        Ok(())
    })();
    cleanup(&rtnl, &["dup0"]);
    result
}

fn invalid_requests_are_refused_locally() -> TestResult {
    let rtnl = t!(Rtnl::new());
    let no_family = rtnl.add_route(None, None, Some(1));
    check!(matches!(no_family, Err(NetError::InvalidRequest(_))), "{no_family:?}");
    let mixed = rtnl.add_route(Some(net("10.0.0.0/8")), Some(ip("2001:db8::1")), None);
    check!(matches!(mixed, Err(NetError::InvalidRequest(_))), "{mixed:?}");
    let wrong = rtnl.del_route(Some(net("10.0.0.0/8")), None, true);
    check!(matches!(wrong, Err(NetError::InvalidRequest(_))), "{wrong:?}");
    Ok(())
}

fn in_netns_rejects_a_file_that_is_no_namespace() -> TestResult {
    let not_a_netns = std::fs::File::open("/dev/null").map_err(|e| e.to_string())?;
    match Rtnl::in_netns(not_a_netns.as_fd()) {
        Err(NetError::Namespace(e)) => {
            check!(e.raw_os_error() == Some(libc::EINVAL), "setns errno {e}");
            Ok(())
        }
        other => Err(format!("expected a namespace error, got {other:?}")),
    }
}

fn rtnl_is_usable_from_another_thread() -> TestResult {
    let rtnl = t!(Rtnl::new());
    let names = std::thread::spawn(move || rtnl.links().map(|l| l.into_iter().map(|l| l.name).collect::<Vec<_>>()))
        .join()
        .map_err(|_| "thread panicked".to_string())?;
    let names = t!(names);
    check!(names.iter().any(|n| n == "lo"), "{names:?}");
    Ok(())
}
