//! bridge ADD: bridge, veth pair, IPAM, addresses, routes, gateway, forwarding,
//! masquerading, in that order; a failure at any step after the veth exists undoes the steps
//! already done (masquerading removed, veth deleted, IPAM DEL).

use super::config::BridgeConfig;
use super::{gateway_port, kernel, linger, masquerade, spoofcheck};
use crate::cni::delegate;
use crate::cni::dispatch::Request;
use crate::cni::error::{self, CniError};
use crate::cni::result::{CniResult, Interface, IpConfig, Route};
use crate::cni::trace::mark;
use crate::ipnet::{Family, IpNet};
use crate::netlink::{
    self, run_in_netns, write_sysctl, Announcement, BridgePortSettings, BridgeSpec, BridgeVlan, Link, LinkChange, Mac,
    NetNs, OperState, Rtnl, VethSpec, IPV4_DEVCONF_ARP_NOTIFY, RT_TABLE_MAIN,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsFd;
use std::time::Duration;

/// Index of the container interface in the result's `interfaces`.
pub const CONTAINER_INTERFACE_INDEX: usize = 2;

/// What has to be undone if a later step fails.
struct Undo<'a> {
    req: &'a Request,
    host: &'a Rtnl,
    veth_index: Option<u32>,
    ipam: Option<String>,
    masq_addrs: Vec<IpNet>,
    spoofcheck: bool,
}

impl Undo<'_> {
    fn run(self) {
        if !self.masq_addrs.is_empty() {
            let removed = masquerade::teardown(
                &self.req.conf.name,
                &self.req.env.container_id,
                &self.req.env.ifname,
                &self.masq_addrs,
            );
            if let Ok(Some(_open_socket)) = removed {
                super::linger::hand_over_open_files();
            }
        }
        if self.spoofcheck {
            let _ = spoofcheck::teardown(&self.req.env.container_id, &self.req.env.ifname);
        }
        if let Some(index) = self.veth_index {
            let _ = self.host.delete_link(index);
        }
        if let Some(ipam) = self.ipam {
            let _ = delegate::run(&ipam, &self.req.env.path_dirs(), "DEL", &self.req.stdin);
        }
    }
}

/// ADD.
pub fn add(req: &Request) -> Result<CniResult, CniError> {
    mark("add: start");
    let cfg = BridgeConfig::load(&req.conf, &req.env.args, true)?;
    // Read prevResult before touching anything: a broken one fails the ADD cleanly.
    let prev = match &req.conf.prev_result {
        Some(value) => Some(CniResult::from_json(value, &req.conf.cni_version).map_err(|e| e.context("prevResult"))?),
        None => None,
    };
    let mac = match &cfg.mac {
        Some(text) => Some(
            text.parse::<Mac>()
                .map_err(|e| CniError::config(format!("invalid MAC address {text:?}: {e}")))?,
        ),
        None => None,
    };
    let host = Rtnl::new().map_err(kernel)?;
    let bridge = ensure_bridge(&host, &cfg)?;
    let netns = NetNs::open(&req.env.netns).map_err(|e| {
        CniError::with_details(
            error::UNKNOWN_CONTAINER,
            format!("failed to open netns {:?}", req.env.netns),
            e.to_string(),
        )
    })?;
    mark("add: bridge ready, netns open");
    let ctr = Rtnl::in_netns(netns.as_fd()).map_err(kernel)?;
    let ifname = req.env.ifname.as_str();
    if ctr.link_by_name(ifname).map_err(kernel)?.is_some() {
        return Err(CniError::with_details(
            error::INTERFACE_EXISTS,
            format!("container veth name ({ifname:?}) already exists"),
            format!("{ifname} already exists in {}; DEL the attachment first", req.env.netns),
        ));
    }

    let mut undo = Undo {
        req,
        host: &host,
        veth_index: None,
        ipam: None,
        masq_addrs: Vec::new(),
        spoofcheck: false,
    };
    match build(req, &cfg, mac, &host, &bridge, &netns, &ctr, &mut undo) {
        Ok(result) => Ok(match prev {
            Some(prev) => merge_prev_result(prev, result),
            None => result,
        }),
        Err(e) => {
            undo.run();
            Err(e)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn build(
    req: &Request,
    cfg: &BridgeConfig,
    mac: Option<Mac>,
    host: &Rtnl,
    bridge: &Link,
    netns: &NetNs,
    ctr: &Rtnl,
    undo: &mut Undo<'_>,
) -> Result<CniResult, CniError> {
    let ifname = req.env.ifname.as_str();
    let veth = host
        .create_veth_random_name(&VethSpec {
            name: "veth",
            mtu: cfg.mtu,
            mac: None,
            master: Some(bridge.index),
            up: true,
            peer_name: ifname,
            peer_netns: Some(netns.as_fd()),
            peer_mtu: cfg.mtu,
            peer_mac: mac,
        })
        .map_err(|e| {
            if e.is_exists() {
                CniError::new(error::INTERFACE_EXISTS, e.to_string())
            } else if e.errno() == Some(libc::EXFULL) {
                // The kernel numbers bridge ports with 10 bits: 1,023 ports at most.
                CniError::with_details(
                    error::KERNEL_OPERATION_FAILED,
                    format!(
                        "bridge {:?} is full: the kernel allows 1023 ports on one bridge",
                        cfg.bridge
                    ),
                    format!("{e}; DEL attachments of this network or spread containers over several networks"),
                )
            } else {
                kernel(e)
            }
        })?;
    undo.veth_index = Some(veth.index);
    mark("add: veth created");
    // A bridge port needs no IPv6 of its own (frames it receives belong to the bridge). Without
    // it the port gets no link-local address, multicast route or DAD when its carrier comes
    // up, so the host namespace's IPv6 routing table does not grow by three routes per port,
    // and every link going down or away (which walks that whole table) stays cheap with many
    // attachments. Set before the container end is up, i.e. before IPv6 configured anything.
    let _ = write_sysctl(&format!("net/ipv6/conf/{}/disable_ipv6", veth.name), "1");
    configure_port(host, cfg, veth.index)?;
    let ctr_link = ctr.link_by_name(ifname).map_err(kernel)?.ok_or_else(|| {
        CniError::new(
            error::KERNEL_OPERATION_FAILED,
            format!("{ifname} vanished after creation"),
        )
    })?;

    if cfg.macspoofchk {
        let mac = ctr_link.mac.map(|m| m.to_string()).unwrap_or_default();
        undo.spoofcheck = true;
        spoofcheck::setup(&req.env.container_id, ifname, &veth.name, &mac)?;
        mark("add: macspoofchk set");
    }

    let mut result = CniResult::default();
    // The VLAN gateway port, when the gateway address sits on one (isGateway with vlan).
    let mut gateway_port = None;
    // The gratuitous ARP ADD's child sends (see [`configure_container`]).
    let mut announcement = None;
    if let Some(ipam) = &cfg.ipam_type {
        let ipam_result = delegate::add(ipam, &req.env.path_dirs(), &req.stdin, &req.conf.cni_version)?;
        undo.ipam = Some(ipam.clone());
        mark("add: ipam done");
        if ipam_result.ips.is_empty() {
            return Err(CniError::new(
                error::DELEGATE_FAILED,
                "IPAM plugin returned missing IP config",
            ));
        }
        result.ips = ipam_result
            .ips
            .into_iter()
            .map(|ip| IpConfig {
                interface: Some(CONTAINER_INTERFACE_INDEX),
                gateway: ip
                    .gateway
                    .or_else(|| cfg.is_gateway.then(|| crate::ipnet::next_ip(ip.address.network_addr()))),
                address: ip.address,
            })
            .collect();
        result.routes = ipam_result.routes;
        result.dns = ipam_result.dns;
        if cfg.is_default_gateway {
            add_default_routes(&mut result);
        }
        announcement = configure_container(cfg, netns, ctr, &ctr_link, &result)?;
        mark("add: container configured");
        if cfg.is_gateway {
            gateway_port = configure_gateway(host, cfg, bridge, &result)?;
            mark("add: gateway configured");
        }
        if cfg.ip_masq {
            let addrs: Vec<IpNet> = result.ips.iter().map(|ip| ip.address).collect();
            undo.masq_addrs = addrs.clone();
            masquerade::setup(&req.conf.name, &req.env.container_id, ifname, &addrs)?;
            mark("add: masquerade set");
        }
    } else if !cfg.disable_container_interface {
        ctr.set_up(ctr_link.index, true).map_err(kernel)?;
    }
    if !cfg.disable_container_interface {
        wait_port_up(host, veth.index)?;
        mark("add: port up");
    }

    let bridge_now = host
        .link_by_index(bridge.index)
        .map_err(kernel)?
        .unwrap_or_else(|| bridge.clone());
    let veth_now = host.link_by_index(veth.index).map_err(kernel)?.unwrap_or(veth);
    let ctr_now = ctr.link_by_index(ctr_link.index).map_err(kernel)?.unwrap_or(ctr_link);
    let iface = |link: &Link, sandbox: &str| Interface {
        name: link.name.clone(),
        mac: link.mac.map(|m| m.to_string()).unwrap_or_default(),
        mtu: Some(link.mtu),
        sandbox: sandbox.to_string(),
        ..Interface::default()
    };
    result.interfaces = vec![
        iface(&bridge_now, ""),
        iface(&veth_now, ""),
        iface(&ctr_now, &req.env.netns),
    ];
    if let Some(port) = gateway_port {
        result.interfaces.push(iface(&port, ""));
    }
    if let Some(announcement) = &announcement {
        linger::hand_over(linger::ChildJobs {
            announce: Some(announcement),
            ..linger::ChildJobs::default()
        });
        mark("add: announcement handed over");
    }
    if !req.conf.dns.is_empty() {
        result.dns = req.conf.dns.clone();
    }
    Ok(result)
}

/// Spec (ADD): a plugin given a `prevResult` outputs it together with its own changes.
/// `prevResult`'s interfaces, addresses and routes come first and ours follow, with our
/// interface indexes shifted past the previous ones; our DNS, when set, wins. (Upstream bridge
/// ignores `prevResult`; without one the result is exactly upstream's.)
pub fn merge_prev_result(prev: CniResult, ours: CniResult) -> CniResult {
    let offset = prev.interfaces.len();
    let mut merged = prev;
    merged.interfaces.extend(ours.interfaces);
    merged.ips.extend(ours.ips.into_iter().map(|mut ip| {
        ip.interface = ip.interface.map(|i| i + offset);
        ip
    }));
    merged.routes.extend(ours.routes);
    if !ours.dns.is_empty() {
        merged.dns = ours.dns;
    }
    merged
}

/// Find or create the bridge; a link of that name that is not a bridge is an error.
pub fn ensure_bridge(host: &Rtnl, cfg: &BridgeConfig) -> Result<Link, CniError> {
    let existing = match host.link_by_name(&cfg.bridge).map_err(kernel)? {
        Some(link) => link,
        // A MAC given at creation is a MAC set by the user: the kernel keeps it instead of
        // following the lowest port MAC, which is what pinning it later would achieve.
        None => match host.create_bridge(&BridgeSpec {
            name: &cfg.bridge,
            mtu: cfg.mtu,
            mac: Some(Mac::random()),
            promisc: cfg.promisc_mode,
            vlan_filtering: cfg.vlan_filtering(),
            up: true,
        }) {
            Ok(link) => {
                let _ = write_sysctl(&format!("net/ipv6/conf/{}/accept_ra", cfg.bridge), "0");
                return Ok(link);
            }
            Err(e) if cfg.vlan_filtering() && e.errno() == Some(libc::EOPNOTSUPP) => {
                return Err(CniError::with_details(
                    error::KERNEL_OPERATION_FAILED,
                    format!(
                        "cannot create bridge {:?} with VLAN filtering: not supported by this kernel",
                        cfg.bridge
                    ),
                    "vlan and vlanTrunk need a kernel built with CONFIG_BRIDGE_VLAN_FILTERING",
                ))
            }
            // Another ADD created it in the meantime.
            Err(e) if e.is_exists() => host
                .link_by_name(&cfg.bridge)
                .map_err(kernel)?
                .ok_or_else(|| kernel(e))?,
            Err(e) => return Err(kernel(e)),
        },
    };
    if !existing.is_kind("bridge") {
        return Err(CniError::config(format!(
            "{:?} already exists but is not a bridge",
            cfg.bridge
        )));
    }
    let change = LinkChange {
        up: (!existing.is_up()).then_some(true),
        promisc: (cfg.promisc_mode && !existing.is_promisc()).then_some(true),
        ..LinkChange::default()
    };
    if change.up.is_some() || change.promisc.is_some() {
        host.set_link(existing.index, &change).map_err(kernel)?;
    }
    Ok(existing)
}

/// Hairpin, isolation and VLANs of the bridge port `port` as `cfg` says; the default VLAN is
/// removed when VLAN filtering is on, unless `preserveDefaultVlan`.
pub(super) fn configure_port(host: &Rtnl, cfg: &BridgeConfig, port: u32) -> Result<(), CniError> {
    let mut vlans = Vec::new();
    if cfg.vlan != 0 {
        vlans.push(BridgeVlan {
            vid: cfg.vlan,
            vid_end: cfg.vlan,
            pvid: true,
            untagged: true,
        });
    } else if !cfg.vlan_trunk.is_empty() {
        vlans.push(BridgeVlan {
            vid: 1,
            vid_end: 1,
            pvid: true,
            untagged: true,
        });
    }
    for r in &cfg.vlan_trunk {
        vlans.push(BridgeVlan {
            vid: r.min,
            vid_end: r.max,
            pvid: false,
            untagged: false,
        });
    }
    if cfg.vlan_filtering() && !cfg.preserve_default_vlan {
        host.del_bridge_vlans(port, &[BridgeVlan::tagged(1)])
            .or_else(|e| if e.is_not_found() { Ok(()) } else { Err(e) })
            .map_err(kernel)?;
    }
    let settings = BridgePortSettings {
        hairpin: cfg.hairpin_mode.then_some(true),
        isolated: cfg.port_isolation.then_some(true),
        add_vlans: &vlans,
    };
    if settings.hairpin.is_some() || settings.isolated.is_some() || !vlans.is_empty() {
        host.set_bridge_port(port, &settings).map_err(kernel)?;
    }
    Ok(())
}

fn unspecified(family: Family) -> IpNet {
    match family {
        Family::V4 => IpNet {
            addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            prefix: 0,
        },
        Family::V6 => IpNet {
            addr: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            prefix: 0,
        },
    }
}

/// `isDefaultGateway`: a default route through the gateway for each family that has a gateway
/// and no default route with a next hop yet.
fn add_default_routes(result: &mut CniResult) {
    for family in [Family::V4, Family::V6] {
        let gateway = result
            .ips
            .iter()
            .filter(|ip| ip.address.family() == family)
            .find_map(|ip| ip.gateway);
        let Some(gw) = gateway else { continue };
        let has_default = result
            .routes
            .iter()
            .any(|r| r.dst.prefix == 0 && r.dst.family() == family && r.gw.is_some());
        if !has_default {
            result.routes.push(Route::simple(unspecified(family), Some(gw)));
        }
    }
}

/// Addresses, sysctls, link up and routes of the container end; returns the announcement ADD's
/// child is to send, if any.
fn configure_container(
    cfg: &BridgeConfig,
    netns: &NetNs,
    ctr: &Rtnl,
    link: &Link,
    result: &CniResult,
) -> Result<Option<Announcement>, CniError> {
    let has_v4 = result.ips.iter().any(|ip| ip.address.family() == Family::V4);
    let has_v6 = result.ips.iter().any(|ip| ip.address.family() == Family::V6);
    let name = link.name.clone();
    let dad = cfg.enable_dad;
    // arp_notify (best effort, like upstream) is set once the link is up: set before, the
    // kernel sends the gratuitous ARP of the link coming up within that request, and the bridge
    // floods it to every port before the request returns. ADD's child sends the same frames
    // instead (see crate::netlink::Announcement); later link-ups and MAC changes are announced
    // by the kernel. Without a packet socket for the child, the kernel announces as before.
    // arp_notify goes over netlink: net/ipv4/conf/<if>/arp_notify through /proc costs more with
    // every container (see crate::netlink's netconf module).
    let announcement = prepare_announcement(netns, link, result);
    if has_v4 && announcement.is_none() {
        let _ = ctr.set_ipv4_devconf(link.index, &[(IPV4_DEVCONF_ARP_NOTIFY, 1)]);
    }
    // Best effort, like upstream; the IPv6 options have no netlink setter.
    if has_v6 {
        let _ = run_in_netns(netns.as_fd(), move || {
            let _ = write_sysctl(&format!("net/ipv6/conf/{name}/disable_ipv6"), "0");
            let _ = write_sysctl(&format!("net/ipv6/conf/{name}/keep_addr_on_down"), "1");
            let _ = write_sysctl(&format!("net/ipv6/conf/{name}/accept_dad"), if dad { "1" } else { "0" });
            if dad {
                let _ = write_sysctl(&format!("net/ipv6/conf/{name}/enhanced_dad"), "1");
            }
        });
    }
    for ip in &result.ips {
        match ctr.add_address(link.index, ip.address, !cfg.enable_dad) {
            Ok(()) => {}
            Err(e) if e.is_exists() => {}
            Err(e) => return Err(kernel(e)),
        }
    }
    ctr.set_up(link.index, true).map_err(kernel)?;
    if announcement.is_some() {
        let _ = ctr.set_ipv4_devconf(link.index, &[(IPV4_DEVCONF_ARP_NOTIFY, 1)]);
    }
    for route in &result.routes {
        let gw = route.gw.or_else(|| {
            result
                .ips
                .iter()
                .filter(|ip| ip.address.family() == route.dst.family())
                .find_map(|ip| ip.gateway)
        });
        let nl_route = netlink::Route {
            gw,
            oif: Some(link.index),
            priority: route.priority,
            table: route.table.unwrap_or(RT_TABLE_MAIN),
            scope: route.scope,
            mtu: route.mtu,
            advmss: route.advmss,
            ..netlink::Route::to(route.dst)
        };
        // Upstream appends (RouteAddEcmp), which turns two IPv6 default routes of two
        // interfaces into one multipath route; the netlink client does not read multipath
        // routes back yet (CHECK could not verify them), so an existing route is kept instead.
        match ctr.add_route(&nl_route) {
            Ok(()) => {}
            Err(e) if e.is_exists() => {}
            Err(e) => return Err(kernel(e)),
        }
    }
    Ok(announcement)
}

/// Gateway addresses on the bridge (or, with `vlan`, on the VLAN gateway port, which is returned).
fn configure_gateway(
    host: &Rtnl,
    cfg: &BridgeConfig,
    bridge: &Link,
    result: &CniResult,
) -> Result<Option<Link>, CniError> {
    let mut families = Vec::new();
    let mut new_gateway = false;
    let mut gateway_port = None;
    for ip in &result.ips {
        let Some(gw) = ip.gateway else { continue };
        let gw_net = IpNet {
            addr: gw,
            prefix: ip.address.prefix,
        };
        if cfg.vlan != 0 {
            if gateway_port.is_none() {
                gateway_port = Some(gateway_port::ensure(host, cfg, bridge)?);
            }
            if let Some(port) = &gateway_port {
                ensure_gateway_address(host, cfg, port, gw_net)?;
            }
        } else {
            new_gateway |= ensure_gateway_address(host, cfg, bridge, gw_net)?;
        }
        if !families.contains(&gw_net.family()) {
            families.push(gw_net.family());
        }
    }
    if new_gateway {
        // Pin the bridge MAC so it does not follow the lowest port MAC as ports come and go.
        // Once is enough (the kernel then keeps it), and only once is affordable: every MAC
        // change, even to the same value, makes the kernel walk the namespace's IPv6 routes
        // and flush neighbours, which grows with the number of ports. A bridge this plugin
        // created has had a set MAC since its creation.
        if let Some(mac) = bridge.mac {
            let _ = host.set_link(
                bridge.index,
                &LinkChange {
                    mac: Some(mac),
                    ..LinkChange::default()
                },
            );
        }
    }
    for family in families {
        let (key, nl_family) = match family {
            Family::V4 => ("net/ipv4/ip_forward", netlink::Family::V4),
            Family::V6 => ("net/ipv6/conf/all/forwarding", netlink::Family::V6),
        };
        // Read over netlink (a /proc/sys/net lookup grows with the number of namespaces);
        // written through /proc only when it is off, i.e. once.
        if host.forwarding(nl_family).ok().flatten() != Some(true) {
            write_sysctl(key, "1").map_err(kernel)?;
        }
    }
    Ok(gateway_port)
}

/// Put the gateway address on `target` (the bridge or the VLAN gateway port), following
/// upstream's rules: an IPv4 bridge carries one address, an IPv6 one may carry several that do
/// not overlap; a conflicting address is replaced with `forceAddress` and an error otherwise.
///
/// The common case (the address is already there) is one request: the add fails with
/// `EEXIST`. Only when the address is new are the bridge's addresses listed, because that
/// listing walks every link in the namespace and would grow with the number of ports.
/// Returns whether the address was new.
fn ensure_gateway_address(host: &Rtnl, cfg: &BridgeConfig, target: &Link, gw: IpNet) -> Result<bool, CniError> {
    match host.add_address(target.index, gw, true) {
        Ok(()) => {}
        Err(e) if e.is_exists() => return Ok(false),
        Err(e) => return Err(kernel(e)),
    }
    let family = match gw.family() {
        Family::V4 => netlink::Family::V4,
        Family::V6 => netlink::Family::V6,
    };
    let existing = host.addresses(Some(target.index), family).map_err(kernel)?;
    for addr in existing {
        let have = addr.net;
        if have == gw || (gw.family() == Family::V6 && addr.scope != netlink::RT_SCOPE_UNIVERSE) {
            continue;
        }
        let conflicts = match gw.family() {
            Family::V4 => true,
            Family::V6 => have.contains(&gw.addr) || gw.contains(&have.addr),
        };
        if !conflicts {
            continue;
        }
        if cfg.force_address {
            host.del_address(target.index, addr.net).map_err(kernel)?;
        } else {
            let _ = host.del_address(target.index, gw);
            return Err(CniError::with_details(
                error::INVALID_NETWORK_CONFIG,
                format!("{:?} already has an IP address different from {gw}", target.name),
                format!("it has {have}; set forceAddress to replace it"),
            ));
        }
    }
    Ok(true)
}

/// The announcement of the container's IPv4 addresses (the gratuitous ARP `arp_notify` sends
/// when the link comes up), prepared for ADD's child to send; `None` without IPv4 addresses,
/// without a MAC, or when no packet socket can be opened (no `CAP_NET_RAW`).
fn prepare_announcement(netns: &NetNs, link: &Link, result: &CniResult) -> Option<Announcement> {
    let addrs: Vec<Ipv4Addr> = result
        .ips
        .iter()
        .filter_map(|ip| match ip.address.addr {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        })
        .collect();
    if addrs.is_empty() {
        return None;
    }
    Announcement::prepare(netns.as_fd(), link.index, link.mac?, &addrs).ok()
}

fn wait_port_up(host: &Rtnl, index: u32) -> Result<(), CniError> {
    let mut state = OperState::Unknown;
    for pause_ms in [0u64, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 1000] {
        if pause_ms > 0 {
            std::thread::sleep(Duration::from_millis(pause_ms));
        }
        match host.link_by_index(index).map_err(kernel)? {
            Some(link) if link.oper_state == OperState::Up => return Ok(()),
            Some(link) => state = link.oper_state,
            None => break,
        }
    }
    Err(CniError::new(
        error::KERNEL_OPERATION_FAILED,
        format!("bridge port in error state: {}", state.as_str()),
    ))
}
