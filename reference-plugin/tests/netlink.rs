//! Kernel tests of the rtnetlink client, run in private namespaces (see `nsharness`).

mod nsharness;

use std::net::IpAddr;
use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

use cni_reference_plugins::netlink::{
    read_sysctl, read_sysctl_in, write_sysctls_in, Address, BridgePortSettings, BridgeSpec, BridgeVlan, Family, IpNet,
    LinkChange, Mac, NetNs, OperState, Route, Rtnl, VethSpec,
};
use nsharness::new_netns;

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn bridge_create_and_read_back() {
    let rtnl = Rtnl::new().unwrap();
    let spec = BridgeSpec {
        name: "tbr0",
        mtu: Some(1400),
        promisc: true,
        vlan_filtering: false,
        up: true,
        mac: None,
    };
    let created = rtnl.create_bridge(&spec).unwrap();
    assert_eq!(created.name, "tbr0");
    let read = rtnl.link_by_name("tbr0").unwrap().expect("bridge exists");
    assert_eq!(read.index, created.index);
    assert!(read.is_kind("bridge"), "{read:?}");
    assert_eq!(read.mtu, 1400);
    assert!(read.is_promisc() && read.is_up(), "{read:?}");
    assert!(read.mac.is_some());
    assert_eq!(rtnl.link_by_index(read.index).unwrap().unwrap().name, "tbr0");
    let again = rtnl.create_bridge(&spec).unwrap_err();
    assert!(again.is_exists(), "{again}");
    assert!(again.to_string().contains("create bridge \"tbr0\""), "{again}");
    assert!(rtnl.link_by_name("nosuchlink").unwrap().is_none());
    assert!(rtnl.links().unwrap().iter().any(|l| l.name == "tbr0"));
    assert!(rtnl.delete_link(read.index).unwrap());
    assert!(!rtnl.delete_link(read.index).unwrap());
}

fn veth_with_peer_in_other_netns() {
    let rtnl = Rtnl::new().unwrap();
    let br = rtnl
        .create_bridge(&BridgeSpec {
            name: "tbr1",
            up: true,
            ..Default::default()
        })
        .unwrap();
    let ns = new_netns();
    let peer_mac: Mac = "0a:58:0a:01:00:05".parse().unwrap();
    let spec = VethSpec {
        name: "veth",
        mtu: Some(1450),
        master: Some(br.index),
        up: true,
        peer_name: "eth0",
        peer_netns: Some(ns.as_fd()),
        peer_mtu: Some(1450),
        peer_mac: Some(peer_mac),
        ..Default::default()
    };
    let host = rtnl.create_veth_random_name(&spec).unwrap();
    assert_eq!(host.name.len(), 12, "{host:?}");
    assert!(host.name.starts_with("veth"));
    assert!(host.name[4..]
        .chars()
        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    let host = rtnl.link_by_name(&host.name).unwrap().unwrap();
    assert_eq!(host.master, Some(br.index));
    assert!(host.is_up() && host.is_kind("veth"));
    assert_eq!(host.mtu, 1450);
    assert!(rtnl.link_by_name("eth0").unwrap().is_none(), "peer leaked into host ns");

    let inner = Rtnl::in_netns(ns.as_fd()).unwrap();
    let eth0 = inner.link_by_name("eth0").unwrap().expect("peer in container ns");
    assert!(eth0.is_kind("veth"));
    assert_eq!(eth0.mac, Some(peer_mac));
    assert_eq!(eth0.mtu, 1450);
    assert!(!eth0.is_up());
    assert_eq!(host.link, Some(eth0.index), "host end's IFLA_LINK is the peer index");
    assert!(host.link_netnsid.is_some());

    // The container name is taken now: a second pair must fail and say it was the peer.
    let err = rtnl.create_veth_random_name(&spec).unwrap_err();
    assert!(err.is_exists(), "{err}");
    assert!(err.to_string().contains("peer \"eth0\" already exists"), "{err}");
    assert_eq!(
        rtnl.links().unwrap().iter().filter(|l| l.is_kind("veth")).count(),
        1,
        "a failed create left a link behind"
    );

    // Operational state: up once both ends are up.
    inner.set_up(eth0.index, true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let l = rtnl.link_by_index(host.index).unwrap().unwrap();
        if l.oper_state == OperState::Up {
            break;
        }
        assert!(Instant::now() < deadline, "host end never became up: {l:?}");
        std::thread::sleep(Duration::from_millis(5));
    }

    assert!(rtnl.delete_link_by_name(&host.name).unwrap());
    assert!(inner.link_by_name("eth0").unwrap().is_none(), "peer survives deletion");
    assert!(!rtnl.delete_link_by_name(&host.name).unwrap());
    rtnl.delete_link(br.index).unwrap();
}

fn plain_veth_named_both_ends() {
    let rtnl = Rtnl::new().unwrap();
    let a = rtnl
        .create_veth(&VethSpec {
            name: "tva",
            peer_name: "tvb",
            up: true,
            mac: Some("02:00:00:00:00:0a".parse().unwrap()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(a.mac.unwrap().to_string(), "02:00:00:00:00:0a");
    let b = rtnl.link_by_name("tvb").unwrap().unwrap();
    assert!(!b.is_up(), "the peer is created down");
    assert!(a.is_up());
    let err = rtnl
        .create_veth(&VethSpec {
            name: "tva",
            peer_name: "tvc",
            ..Default::default()
        })
        .unwrap_err();
    assert!(err.is_exists(), "{err}");
    rtnl.delete_link(a.index).unwrap();
    assert!(rtnl.link_by_name("tvb").unwrap().is_none());
}

fn link_changes_one_request() {
    let rtnl = Rtnl::new().unwrap();
    let a = rtnl
        .create_veth(&VethSpec {
            name: "tla",
            peer_name: "tlb",
            ..Default::default()
        })
        .unwrap();
    let br = rtnl
        .create_bridge(&BridgeSpec {
            name: "tbr2",
            ..Default::default()
        })
        .unwrap();
    let mac: Mac = "02:11:22:33:44:55".parse().unwrap();
    rtnl.set_link(
        a.index,
        &LinkChange {
            up: Some(true),
            mtu: Some(1300),
            mac: Some(mac),
            master: Some(br.index),
            name: Some("tla-renamed"),
            ..Default::default()
        },
    )
    .unwrap();
    let l = rtnl.link_by_index(a.index).unwrap().unwrap();
    assert_eq!(
        (l.name.as_str(), l.mtu, l.mac, l.master, l.is_up()),
        ("tla-renamed", 1300, Some(mac), Some(br.index), true)
    );
    rtnl.set_link(
        a.index,
        &LinkChange {
            master: Some(0),
            promisc: Some(true),
            ..Default::default()
        },
    )
    .unwrap();
    let l = rtnl.link_by_index(a.index).unwrap().unwrap();
    assert_eq!(l.master, None);
    assert!(l.is_promisc());
    rtnl.set_up(a.index, false).unwrap();
    assert!(!rtnl.link_by_index(a.index).unwrap().unwrap().is_up());

    // Move the peer into another namespace.
    let ns = new_netns();
    let b = rtnl.link_by_name("tlb").unwrap().unwrap();
    rtnl.set_link(
        b.index,
        &LinkChange {
            netns: Some(ns.as_fd()),
            name: Some("moved0"),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(rtnl.link_by_name("tlb").unwrap().is_none());
    let inner = Rtnl::in_netns(ns.as_fd()).unwrap();
    assert!(inner.link_by_name("moved0").unwrap().is_some());
    let err = rtnl.set_up(999_999, true).unwrap_err();
    assert!(err.is_not_found(), "{err}");
    rtnl.delete_link(a.index).unwrap();
    rtnl.delete_link(br.index).unwrap();
}

fn addresses_add_list_delete() {
    let ns = new_netns();
    let inner = Rtnl::in_netns(ns.as_fd()).unwrap();
    inner
        .create_veth(&VethSpec {
            name: "eth0",
            peer_name: "peer0",
            up: true,
            ..Default::default()
        })
        .unwrap();
    let eth0 = inner.link_by_name("eth0").unwrap().unwrap();
    inner.add_address(eth0.index, net("10.1.0.5/24"), false).unwrap();
    inner.add_address(eth0.index, net("fd00:1::5/64"), true).unwrap();
    let err = inner.add_address(eth0.index, net("10.1.0.5/24"), false).unwrap_err();
    assert!(err.is_exists(), "{err}");

    let v4 = inner.addresses(Some(eth0.index), Family::V4).unwrap();
    assert_eq!(v4.len(), 1, "{v4:?}");
    assert_eq!(v4[0].net, net("10.1.0.5/24"));
    assert_eq!(v4[0].scope, 0);
    let v6 = inner.addresses(Some(eth0.index), Family::V6).unwrap();
    let global: Vec<&Address> = v6.iter().filter(|a| a.scope == 0).collect();
    assert_eq!(global.len(), 1, "{v6:?}");
    assert_eq!(global[0].net, net("fd00:1::5/64"));
    assert!(global[0].flags & Address::NODAD != 0, "{:?}", global[0]);
    assert!(global[0].flags & Address::TENTATIVE == 0, "nodad address is tentative");
    let all = inner.addresses(None, Family::All).unwrap();
    assert!(all.iter().any(|a| a.net == net("127.0.0.1/8")), "{all:?}");
    assert!(all.iter().any(|a| a.net == net("10.1.0.5/24")));

    // The broadcast address is set like `ip addr add ... brd +` would.
    let out = std::process::Command::new("ip")
        .args(["-4", "addr", "show", "dev", "eth0"])
        .output();
    if let Ok(out) = out {
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !text.is_empty() {
            // `ip` runs in this process's namespace, not in `ns`: the device is not there.
            assert!(!text.contains("10.1.0.5"), "address leaked: {text}");
        }
    }

    assert!(inner.del_address(eth0.index, net("10.1.0.5/24")).unwrap());
    assert!(!inner.del_address(eth0.index, net("10.1.0.5/24")).unwrap());
    assert!(inner.addresses(Some(eth0.index), Family::V4).unwrap().is_empty());
}

fn routes_add_list_delete() {
    let ns = new_netns();
    let inner = Rtnl::in_netns(ns.as_fd()).unwrap();
    let eth0 = inner
        .create_veth(&VethSpec {
            name: "eth0",
            peer_name: "peer0",
            up: true,
            ..Default::default()
        })
        .unwrap();
    inner.add_address(eth0.index, net("10.9.0.2/24"), false).unwrap();
    inner.add_address(eth0.index, net("fd00:9::2/64"), true).unwrap();

    let mut r1 = Route::to(net("10.10.0.0/16"));
    r1.gw = Some(ip("10.9.0.1"));
    r1.priority = Some(50);
    r1.mtu = Some(1300);
    r1.advmss = Some(1200);
    inner.add_route(&r1).unwrap();
    let dflt = Route::default_via(ip("10.9.0.1"));
    inner.add_route(&dflt).unwrap();
    let mut link_scoped = Route::to(net("10.11.0.0/24"));
    link_scoped.oif = Some(eth0.index);
    inner.add_route(&link_scoped).unwrap();
    let mut in_table = Route::default_via(ip("10.9.0.1"));
    in_table.table = 100;
    inner.add_route(&in_table).unwrap();
    let v6 = Route::default_via(ip("fd00:9::1"));
    inner.add_route(&v6).unwrap();
    assert!(inner.add_route(&r1).unwrap_err().is_exists());
    let mut second_gw = Route::to(net("10.10.0.0/16"));
    second_gw.gw = Some(ip("10.9.0.3"));
    second_gw.priority = Some(50);
    assert!(inner.add_route(&second_gw).unwrap_err().is_exists());
    inner.append_route(&second_gw).unwrap();
    let both = inner.routes(Family::V4, Some(254)).unwrap();
    let gws: Vec<_> = both
        .iter()
        .filter(|r| r.dst == net("10.10.0.0/16"))
        .map(|r| r.gw)
        .collect();
    assert_eq!(gws.len(), 2, "{both:?}");
    assert!(inner.del_route(&second_gw).unwrap());

    let main = inner.routes(Family::V4, Some(254)).unwrap();
    let got = main.iter().find(|r| r.dst == net("10.10.0.0/16")).expect("r1 listed");
    assert_eq!(got.gw, Some(ip("10.9.0.1")));
    assert_eq!(got.priority, Some(50));
    assert_eq!((got.mtu, got.advmss), (Some(1300), Some(1200)));
    assert_eq!(got.oif, Some(eth0.index), "kernel resolves the oif from the gateway");
    assert!(main.iter().any(|r| r.is_default() && r.gw == Some(ip("10.9.0.1"))));
    let ls = main.iter().find(|r| r.dst == net("10.11.0.0/24")).expect("link route");
    assert_eq!(ls.scope, Some(253));
    assert!(main.iter().all(|r| r.table == 254));
    let t100 = inner.routes(Family::V4, Some(100)).unwrap();
    assert_eq!(t100.len(), 1, "{t100:?}");
    assert!(t100[0].is_default());
    let all6 = inner.routes(Family::V6, None).unwrap();
    assert!(all6.iter().any(|r| r.is_default() && r.gw == Some(ip("fd00:9::1"))));

    assert!(inner.del_route(&r1).unwrap());
    assert!(!inner.del_route(&r1).unwrap());
    assert!(inner.del_route(&in_table).unwrap());
    assert!(inner.del_route(&v6).unwrap());
    let main = inner.routes(Family::V4, Some(254)).unwrap();
    assert!(!main.iter().any(|r| r.dst == net("10.10.0.0/16")));
    let bad = Route {
        gw: Some(ip("fd00::1")),
        ..Route::to(net("10.0.0.0/8"))
    };
    assert!(inner.add_route(&bad).is_err());
}

fn bridge_port_flags() {
    let rtnl = Rtnl::new().unwrap();
    let br = rtnl
        .create_bridge(&BridgeSpec {
            name: "tbr3",
            up: true,
            ..Default::default()
        })
        .unwrap();
    let port = rtnl
        .create_veth(&VethSpec {
            name: "tport",
            peer_name: "tportp",
            master: Some(br.index),
            up: true,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(port.master, Some(br.index));
    assert_eq!(rtnl.bridge_port_flags(port.index).unwrap(), Some((false, false)));
    rtnl.set_bridge_port(
        port.index,
        &BridgePortSettings {
            hairpin: Some(true),
            isolated: Some(true),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(rtnl.bridge_port_flags(port.index).unwrap(), Some((true, true)));
    rtnl.set_bridge_port(
        port.index,
        &BridgePortSettings {
            hairpin: Some(false),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(rtnl.bridge_port_flags(port.index).unwrap(), Some((false, true)));
    let loose = rtnl
        .create_veth(&VethSpec {
            name: "tloose",
            peer_name: "tloosep",
            ..Default::default()
        })
        .unwrap();
    assert_eq!(rtnl.bridge_port_flags(loose.index).unwrap(), None);
    assert!(rtnl
        .set_bridge_port(
            loose.index,
            &BridgePortSettings {
                hairpin: Some(true),
                ..Default::default()
            }
        )
        .is_err());
    rtnl.delete_link(loose.index).unwrap();
    rtnl.delete_link(port.index).unwrap();
    rtnl.delete_link(br.index).unwrap();
}

/// VLAN filtering needs `CONFIG_BRIDGE_VLAN_FILTERING`. Without it the kernel refuses with
/// EOPNOTSUPP, and the test checks that the error is reported as such (and says so).
fn bridge_vlans() {
    let rtnl = Rtnl::new().unwrap();
    let created = rtnl.create_bridge(&BridgeSpec {
        name: "tbr4",
        vlan_filtering: true,
        up: true,
        ..Default::default()
    });
    let br = match created {
        Ok(br) => br,
        Err(e) => {
            assert_eq!(e.errno(), Some(libc::EOPNOTSUPP), "{e}");
            assert!(rtnl.link_by_name("tbr4").unwrap().is_none(), "half-created bridge");
            // Adding a VLAN to a port must fail loudly too, naming the operation.
            let br = rtnl
                .create_bridge(&BridgeSpec {
                    name: "tbr4",
                    ..Default::default()
                })
                .unwrap();
            let port = rtnl
                .create_veth(&VethSpec {
                    name: "tvport",
                    peer_name: "tvportp",
                    master: Some(br.index),
                    ..Default::default()
                })
                .unwrap();
            let err = rtnl
                .set_bridge_port(
                    port.index,
                    &BridgePortSettings {
                        add_vlans: &[BridgeVlan::tagged(100)],
                        ..Default::default()
                    },
                )
                .unwrap_err();
            println!("note: VLAN on a port: {err}");
            assert!(err.to_string().contains("set bridge port"), "{err}");
            rtnl.delete_link(port.index).unwrap();
            rtnl.delete_link(br.index).unwrap();
            println!("note: kernel has no bridge VLAN filtering; checked the EOPNOTSUPP path only");
            return;
        }
    };
    let port = rtnl
        .create_veth(&VethSpec {
            name: "tvport",
            peer_name: "tvportp",
            master: Some(br.index),
            up: true,
            ..Default::default()
        })
        .unwrap();
    let vlans = [
        BridgeVlan {
            vid: 100,
            vid_end: 100,
            pvid: true,
            untagged: true,
        },
        BridgeVlan {
            vid: 200,
            vid_end: 203,
            pvid: false,
            untagged: false,
        },
    ];
    rtnl.set_bridge_port(
        port.index,
        &BridgePortSettings {
            add_vlans: &vlans,
            ..Default::default()
        },
    )
    .unwrap();
    let got = rtnl.bridge_vlans(port.index).unwrap();
    let ids: Vec<u16> = got.iter().map(|v| v.vid).collect();
    assert_eq!(ids, vec![1, 100, 200, 201, 202, 203], "{got:?}");
    let v100 = got.iter().find(|v| v.vid == 100).unwrap();
    assert!(v100.pvid && v100.untagged, "{v100:?}");
    assert!(!got.iter().find(|v| v.vid == 1).unwrap().pvid, "PVID moved to 100");
    rtnl.del_bridge_vlans(port.index, &[BridgeVlan::tagged(1)]).unwrap();
    let ids: Vec<u16> = rtnl.bridge_vlans(port.index).unwrap().iter().map(|v| v.vid).collect();
    assert_eq!(ids, vec![100, 200, 201, 202, 203]);
    rtnl.delete_link(port.index).unwrap();
    rtnl.delete_link(br.index).unwrap();
}

fn sysctls_follow_the_namespace() {
    let ns = new_netns();
    let inner = Rtnl::in_netns(ns.as_fd()).unwrap();
    inner
        .create_veth(&VethSpec {
            name: "eth0",
            peer_name: "peer0",
            ..Default::default()
        })
        .unwrap();
    let before_here = read_sysctl("net/ipv4/ip_forward").unwrap();
    write_sysctls_in(
        ns.as_fd(),
        &[
            ("net/ipv4/conf/eth0/arp_notify", "1"),
            ("net/ipv6/conf/eth0/accept_ra", "0"),
            ("net/ipv4/ip_forward", if before_here == "1" { "0" } else { "1" }),
        ],
    )
    .unwrap();
    assert_eq!(
        read_sysctl_in(ns.as_fd(), "net/ipv4/conf/eth0/arp_notify").unwrap(),
        "1"
    );
    assert_eq!(read_sysctl_in(ns.as_fd(), "net/ipv6/conf/eth0/accept_ra").unwrap(), "0");
    assert_ne!(read_sysctl_in(ns.as_fd(), "net/ipv4/ip_forward").unwrap(), before_here);
    assert_eq!(read_sysctl("net/ipv4/ip_forward").unwrap(), before_here, "leaked");
    let err = write_sysctls_in(ns.as_fd(), &[("net/ipv4/conf/nosuch/arp_notify", "1")]).unwrap_err();
    assert!(err.to_string().contains("nosuch"), "{err}");
    assert!(write_sysctls_in(ns.as_fd(), &[("../etc/passwd", "x")]).is_err());
}

fn detached_delete() {
    let rtnl = Rtnl::new().unwrap();
    let ns = new_netns();
    let inner = Rtnl::in_netns(ns.as_fd()).unwrap();
    let host = rtnl
        .create_veth_random_name(&VethSpec {
            name: "veth",
            up: true,
            peer_name: "eth0",
            peer_netns: Some(ns.as_fd()),
            ..Default::default()
        })
        .unwrap();
    let eth0 = inner.link_by_name("eth0").unwrap().unwrap();
    // A pipe whose write end must not survive in the child: EOF must come at once.
    let mut fds = [0; 2];
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let t = Instant::now();
    // Deleted from the container side, as a plugin's DEL does.
    assert!(inner.delete_link_detached(eth0.index, Duration::from_secs(5)).unwrap());
    let took = t.elapsed();
    unsafe { libc::close(fds[1]) };
    let mut byte = [0u8; 1];
    let t = Instant::now();
    let n = unsafe { libc::read(fds[0], byte.as_mut_ptr().cast(), 1) };
    assert_eq!(n, 0);
    assert!(t.elapsed() < Duration::from_millis(5), "child kept the pipe open");
    unsafe { libc::close(fds[0]) };
    assert!(inner.link_by_name("eth0").unwrap().is_none());
    assert!(rtnl.link_by_index(host.index).unwrap().is_none(), "peer end survived");
    assert!(!inner.delete_link_detached(eth0.index, Duration::from_secs(1)).unwrap());
    println!("detached delete returned after {took:?}");
    // The kernel refuses to delete loopback; the child's errno comes back.
    let lo = inner.link_by_name("lo").unwrap().unwrap();
    let err = inner
        .delete_link_detached(lo.index, Duration::from_secs(5))
        .unwrap_err();
    assert_eq!(err.errno(), Some(libc::EOPNOTSUPP), "{err}");
    assert!(inner.link_by_name("lo").unwrap().is_some());
}

/// Forwarding switches read over netlink agree with /proc; IPv4 link options set over netlink
/// show in /proc; a job run in a namespace leaves the thread at home, also when it panics.
fn netconf_and_namespace_visits() {
    let rtnl = Rtnl::new().unwrap();
    let ns = new_netns();
    let inner = Rtnl::in_netns(ns.as_fd()).unwrap();
    for (family, key) in [
        (Family::V4, "net/ipv4/ip_forward"),
        (Family::V6, "net/ipv6/conf/all/forwarding"),
    ] {
        for value in ["1", "0"] {
            write_sysctls_in(ns.as_fd(), &[(key, value)]).unwrap();
            assert_eq!(inner.forwarding(family).unwrap(), Some(value == "1"), "{key}={value}");
        }
    }
    let here = read_sysctl("net/ipv4/ip_forward").unwrap();
    assert_eq!(rtnl.forwarding(Family::V4).unwrap(), Some(here == "1"));
    inner
        .create_veth(&VethSpec {
            name: "eth0",
            peer_name: "peer0",
            ..Default::default()
        })
        .unwrap();
    let eth0 = inner.link_by_name("eth0").unwrap().unwrap();
    for value in [1, 0, 1] {
        inner
            .set_ipv4_devconf(
                eth0.index,
                &[(cni_reference_plugins::netlink::IPV4_DEVCONF_ARP_NOTIFY, value)],
            )
            .unwrap();
        assert_eq!(
            read_sysctl_in(ns.as_fd(), "net/ipv4/conf/eth0/arp_notify").unwrap(),
            value.to_string()
        );
    }
    // One queue each way, as the kernel would have used anyway.
    let queues = |dir: &str| {
        cni_reference_plugins::netlink::run_in_netns(ns.as_fd(), || {
            std::fs::read_dir("/sys/class/net/eth0/queues")
                .map(|d| {
                    d.filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with(dir))
                        .count()
                })
                .unwrap_or(usize::MAX)
        })
        .unwrap()
    };
    // /sys shows the namespace that mounted it, so only check when it is ours.
    if Path::new("/sys/class/net/eth0").exists() && !Path::new("/sys/class/net/lo").exists() {
        assert_eq!((queues("tx-"), queues("rx-")), (1, 1));
    }
    let home = NetNs::current().unwrap().id().unwrap();
    let panicked = std::panic::catch_unwind(|| {
        let _ = cni_reference_plugins::netlink::run_in_netns(ns.as_fd(), || panic!("job fails"));
    });
    assert!(panicked.is_err());
    assert_eq!(
        NetNs::current().unwrap().id().unwrap(),
        home,
        "thread left in the namespace"
    );
    let inside =
        cni_reference_plugins::netlink::run_in_netns(ns.as_fd(), || NetNs::current().unwrap().id().unwrap()).unwrap();
    assert_eq!(inside, ns.id().unwrap());
    assert_eq!(NetNs::current().unwrap().id().unwrap(), home);
}

/// delete_link_in_background returns at once; the pair disappears shortly after.
fn background_delete() {
    let rtnl = Rtnl::new().unwrap();
    let ns = new_netns();
    let inner = Rtnl::in_netns(ns.as_fd()).unwrap();
    let host = rtnl
        .create_veth_random_name(&VethSpec {
            name: "veth",
            up: true,
            peer_name: "eth0",
            peer_netns: Some(ns.as_fd()),
            ..Default::default()
        })
        .unwrap();
    rtnl.delete_link_in_background(host.index).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while rtnl.link_by_index(host.index).unwrap().is_some() || inner.link_by_name("eth0").unwrap().is_some() {
        assert!(Instant::now() < deadline, "pair still there after 5 s");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A packet socket in this namespace that receives the ARP frames arriving on link `index`.
fn arp_capture(index: u32) -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    let proto = (libc::ETH_P_ARP as u16).to_be();
    // SAFETY: plain socket/bind/setsockopt calls on a descriptor owned right away.
    unsafe {
        let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, i32::from(proto));
        assert!(fd >= 0, "{}", std::io::Error::last_os_error());
        let owned = std::os::fd::OwnedFd::from_raw_fd(fd);
        let mut addr: libc::sockaddr_ll = std::mem::zeroed();
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = proto;
        addr.sll_ifindex = index as i32;
        let rc = libc::bind(
            fd,
            (&addr as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        );
        assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 300_000,
        };
        let rc = libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as u32,
        );
        assert_eq!(rc, 0);
        owned
    }
}

/// The next frame on `capture`, or `None` after its timeout.
fn next_frame(capture: &std::os::fd::OwnedFd) -> Option<Vec<u8>> {
    use std::os::fd::AsRawFd;
    let mut buf = [0u8; 1600];
    // SAFETY: reading into a buffer we own.
    let n = unsafe { libc::recv(capture.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    (n > 0).then(|| buf[..n as usize].to_vec())
}

/// The prepared gratuitous ARP goes out as the kernel's would, and not at all once the link's
/// MAC changed or the link is gone.
fn announcement_is_sent_only_while_the_mac_holds() {
    let rtnl = Rtnl::new().unwrap();
    let ns = new_netns();
    let mac: Mac = "0a:58:0a:4d:00:05".parse().unwrap();
    let host = rtnl
        .create_veth(&VethSpec {
            name: "garp0",
            up: true,
            peer_name: "eth0",
            peer_netns: Some(ns.as_fd()),
            peer_mac: Some(mac),
            ..Default::default()
        })
        .unwrap();
    let ctr = Rtnl::in_netns(ns.as_fd()).unwrap();
    let eth0 = ctr.link_by_name("eth0").unwrap().unwrap();
    ctr.set_up(eth0.index, true).unwrap();
    let capture = arp_capture(host.index);
    let ip: std::net::Ipv4Addr = "10.77.0.5".parse().unwrap();
    let announcement =
        cni_reference_plugins::netlink::Announcement::prepare(ns.as_fd(), eth0.index, mac, &[ip]).unwrap();
    // SAFETY: raw sends on the announcement's own socket.
    assert_eq!(unsafe { announcement.send_in_forked_child() }, 1);
    let frame = next_frame(&capture).expect("no frame arrived");
    assert_eq!(frame.len(), 42, "{frame:?}");
    assert_eq!(&frame[0..6], &[0xff; 6]);
    assert_eq!(&frame[6..12], &mac.0);
    assert_eq!(&frame[20..22], &[0, 1], "ARP request");
    assert_eq!(&frame[22..28], &mac.0);
    assert_eq!(&frame[28..32], &ip.octets());
    assert_eq!(&frame[32..38], &[0; 6]);
    assert_eq!(&frame[38..42], &ip.octets());

    let other: Mac = "0a:58:0a:4d:00:06".parse().unwrap();
    ctr.set_link(
        eth0.index,
        &LinkChange {
            mac: Some(other),
            ..Default::default()
        },
    )
    .unwrap();
    // SAFETY: as above.
    assert_eq!(
        unsafe { announcement.send_in_forked_child() },
        0,
        "sent with a stale MAC"
    );
    assert_eq!(next_frame(&capture), None);
    rtnl.delete_link(host.index).unwrap();
    // SAFETY: as above.
    assert_eq!(
        unsafe { announcement.send_in_forked_child() },
        0,
        "sent on a deleted link"
    );
}

fn main() {
    nsharness::run(
        &[
            ("bridge_create_and_read_back", bridge_create_and_read_back),
            ("veth_with_peer_in_other_netns", veth_with_peer_in_other_netns),
            ("plain_veth_named_both_ends", plain_veth_named_both_ends),
            ("link_changes_one_request", link_changes_one_request),
            ("addresses_add_list_delete", addresses_add_list_delete),
            ("routes_add_list_delete", routes_add_list_delete),
            ("bridge_port_flags", bridge_port_flags),
            ("bridge_vlans", bridge_vlans),
            ("sysctls_follow_the_namespace", sysctls_follow_the_namespace),
            ("detached_delete", detached_delete),
            ("netconf_and_namespace_visits", netconf_and_namespace_visits),
            ("background_delete", background_delete),
            (
                "announcement_is_sent_only_while_the_mac_holds",
                announcement_is_sent_only_while_the_mac_holds,
            ),
        ],
        None,
    );
}
