//! `connectivity/*`: real packets through what the plugin built, between containers, the host and
//! the outside the lab stands in for.
//!
//! Every probe is the suite's own socket code (`crate::probe`, `crate::probe_rate`). Cases judge
//! what the configuration promises: addresses in the result must carry traffic (ICMP, UDP, TCP),
//! `mtu` must bound the largest unfragmented packet, `ipMasq` must make traffic leaving the
//! network appear from the lab host's uplink address, `portMappings` must forward a host port,
//! and `bandwidth` must cap the measured rate. A case whose feature the configuration does not
//! ask for skips with the reason. The IPv6 cases add an IPv6 range to a host-local style `ipam`
//! (a dual-stack variant of the profile) and skip when the result still has no IPv6 address.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::case::{Applies, Attachment, Case, Ctx, Level, Variant, Verdict, WITH_INTERFACES};
use crate::cni::NormalResult;
use crate::lab::{REMOTE, UPLINK_HOST};
use crate::probe::{self, SourceServer};
use crate::probe_rate;
use crate::profile::PluginKind;
use crate::version::SpecVersion;

const ALWAYS: SpecVersion = SpecVersion(0, 1, 0);
/// How long one probe may wait for an answer.
const PROBE: Duration = Duration::from_secs(3);
/// The IPv6 range the dual-stack variant adds.
const V6_RANGE: &str = "fd00:c0f::/64";
/// Host ports and container ports the portmap cases map.
const TCP_MAP: (u16, u16) = (18080, 8080);
const UDP_MAP: (u16, u16) = (18081, 8081);
/// The mapping a second, undisturbed attachment holds in `connectivity/portmap-del`.
const OTHER_MAP: (u16, u16) = (18090, 8090);
/// Length of one throughput measurement.
const RATE_WINDOW: Duration = Duration::from_millis(500);
/// Rates injected when a plugin declares the `bandwidth` capability without static rates.
const INJECTED_RATE: u64 = 8_000_000;
const INJECTED_BURST: u64 = 1_000_000;

const fn case(
    id: &'static str,
    title: &'static str,
    level: Level,
    spec: &'static str,
    body: fn(&mut Ctx) -> Result<(), Verdict>,
) -> Case {
    Case {
        id,
        title,
        level,
        spec,
        applies: Applies {
            kinds: WITH_INTERFACES,
            since: ALWAYS,
        },
        body,
    }
}

/// The cases of this area.
pub const CASES: &[Case] = &[
    Case {
        id: "connectivity/container-to-gateway",
        title: "the container reaches every gateway in its ADD result with ICMP echo",
        level: Level::Must,
        spec: r#"SPEC.md 1.1.0 §"ADD Success" (ips[].gateway is the subnet's gateway)"#,
        applies: Applies {
            kinds: &[PluginKind::Interface],
            since: ALWAYS,
        },
        body: container_to_gateway,
    },
    case(
        "connectivity/container-to-container",
        "two containers on the network reach each other over IPv4 (ICMP, UDP, TCP) with their own source addresses",
        Level::Should,
        r#"SPEC.md 1.1.0 §"ADD Success" (ips[] are the container's addresses on the network)"#,
        container_to_container_v4,
    ),
    case(
        "connectivity/container-to-container-ipv6",
        "two containers on a dual-stack network reach each other over IPv6 (ICMP, UDP, TCP)",
        Level::Should,
        r#"SPEC.md 1.1.0 §"ADD Success" (ips[] are the container's addresses on the network)"#,
        container_to_container_v6,
    ),
    case(
        "connectivity/host-to-container",
        "the host reaches the container's IPv4 address when it has a route to it",
        Level::Should,
        r#"SPEC.md 1.1.0 §"ADD Success" (ips[], routes)"#,
        host_to_container_v4,
    ),
    case(
        "connectivity/host-to-container-ipv6",
        "the host reaches the container's IPv6 address on a dual-stack network when it has a route to it",
        Level::Should,
        r#"SPEC.md 1.1.0 §"ADD Success" (ips[], routes)"#,
        host_to_container_v6,
    ),
    case(
        "connectivity/mtu",
        "with mtu configured, the largest unfragmented packet passes and one byte more with DF does not",
        Level::Should,
        r#"docs/spec-notes.md#plugin-configuration-beyond-the-spec (mtu of bridge, ptp, macvlan, ipvlan, vlan)"#,
        mtu,
    ),
    case(
        "connectivity/masquerade",
        "with ipMasq, traffic to the outside leaves with the host's uplink address and replies return; traffic between containers keeps its source",
        Level::Should,
        r#"SPEC.md 1.1.0 §"Plugin configuration objects:" (ipMasq); docs/spec-notes.md#plugin-configuration-beyond-the-spec"#,
        masquerade,
    ),
    case(
        "connectivity/masquerade-del",
        "with ipMasq, DEL removes the container's NAT rules from the host's packet filter",
        Level::Should,
        r#"SPEC.md 1.1.0 §"`DEL`: Remove container from network, or un-apply modifications" (undo what ADD did); SPEC.md 1.1.0 §"Plugin configuration objects:" (ipMasq)"#,
        masquerade_del,
    ),
    case(
        "connectivity/portmap",
        "portMappings forward a host port to the container port, reached from outside the host (TCP and UDP)",
        Level::Should,
        r#"CONVENTIONS.md 1.1.0 §"Well-known Capabilities" (portMappings)"#,
        portmap,
    ),
    case(
        "connectivity/portmap-del",
        "DEL removes the port mappings: the host port no longer forwards and no rule of the attachment is left",
        Level::Should,
        r#"SPEC.md 1.1.0 §"`DEL`: Remove container from network, or un-apply modifications" (undo what ADD did); CONVENTIONS.md 1.1.0 §"Well-known Capabilities" (portMappings)"#,
        portmap_del,
    ),
    case(
        "connectivity/bandwidth",
        "configured ingress and egress rates cap a measured TCP transfer (below 1.5x the rate plus the burst)",
        Level::Should,
        r#"CONVENTIONS.md 1.1.0 §"Well-known Capabilities" (bandwidth); docs/spec-notes.md#plugin-configuration-beyond-the-spec"#,
        bandwidth,
    ),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

impl Family {
    fn name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }

    fn holds(self, ip: IpAddr) -> bool {
        ip.is_ipv6() == (self == Family::V6)
    }

    fn any(self) -> IpAddr {
        match self {
            Family::V4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            Family::V6 => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        }
    }
}

/// The container's address of `fam` in an ADD result (an address of a sandboxed interface when
/// the result says which interface holds it).
fn address(result: &Value, fam: Family) -> Option<IpAddr> {
    let r = NormalResult::parse(result).ok()?;
    // Loopback and link-local addresses (the loopback plugin's) do not reach another container.
    let usable = |ip: IpAddr| match ip {
        IpAddr::V4(a) => !a.is_loopback() && !a.is_link_local() && !a.is_unspecified(),
        IpAddr::V6(a) => !a.is_loopback() && !a.is_unspecified() && (a.segments()[0] & 0xffc0) != 0xfe80,
    };
    let of_family = r
        .ips
        .iter()
        .filter(|ip| fam.holds(ip.address.addr) && usable(ip.address.addr));
    let mut fallback = None;
    for ip in of_family {
        match r.interface_of(ip) {
            Some(itf) if itf.sandbox.is_some() => return Some(ip.address.addr),
            Some(_) => {}
            None => {
                fallback.get_or_insert(ip.address.addr);
            }
        }
    }
    fallback
}

/// The first gateway of `fam` in an ADD result.
fn gateway(result: &Value, fam: Family) -> Option<IpAddr> {
    NormalResult::parse(result)
        .ok()?
        .ips
        .iter()
        .filter_map(|ip| ip.gateway)
        .find(|g| fam.holds(*g))
}

fn no_address(fam: Family) -> Verdict {
    Verdict::Skip(format!(
        "the ADD result has no {} address{}",
        fam.name(),
        if fam == Family::V6 {
            " (the configuration's IPAM takes no IPv6 range the suite can add)"
        } else {
            ""
        }
    ))
}

/// The profile, with an IPv6 range added for `Family::V6` when the IPAM object has host-local
/// style `ranges` (or a legacy `subnet`) and no IPv6 range yet.
fn network(ctx: &Ctx, fam: Family) -> Variant {
    let mut v = ctx.variant();
    if fam == Family::V6 {
        add_ipv6_range(&mut v);
    }
    v
}

fn add_ipv6_range(v: &mut Variant) {
    let Some(ipam) = v.ipam_mut() else { return };
    if !(ipam.contains_key("ranges") || ipam.contains_key("subnet")) {
        return;
    }
    let is_v6 = |r: &Value| r.get("subnet").and_then(Value::as_str).is_some_and(|s| s.contains(':'));
    let has_v6 = ipam
        .get("ranges")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_array)
        .flatten()
        .any(is_v6)
        || ipam
            .get("subnet")
            .and_then(Value::as_str)
            .is_some_and(|s| s.contains(':'));
    if has_v6 {
        return;
    }
    let ranges = ipam.entry("ranges").or_insert_with(|| json!([]));
    if let Some(list) = ranges.as_array_mut() {
        list.push(json!([{ "subnet": V6_RANGE }]));
    }
}

/// The kernel's main routing table.
const MAIN_TABLE: u32 = 254;

/// A skip unless the container's main routing table has a route towards `dst`: the probes'
/// sockets do not choose a source address, so policy routing (sbr) or a configuration without a
/// default route leaves them nothing to judge.
fn main_route(ctx: &Ctx, att: &Attachment, dst: IpAddr) -> Result<(), Verdict> {
    let routed = ctx
        .lab
        .container_rtnl(&att.container)?
        .routes()?
        .iter()
        .any(|r| r.table == MAIN_TABLE && r.ipv6 == dst.is_ipv6() && r.dst.is_none_or(|d| d.contains(dst)));
    if routed {
        Ok(())
    } else {
        Err(Verdict::Skip(format!(
            "the container's main routing table has no route towards {dst} (no default route, or policy routing)"
        )))
    }
}

/// A TCP exchange retried until `PROBE` runs out (a freshly made address may need a moment).
fn tcp_retry(netns: BorrowedFd<'_>, dst: SocketAddr) -> Result<String, probe::ProbeError> {
    let until = Instant::now() + PROBE;
    loop {
        match probe::tcp_exchange(netns, dst, Duration::from_millis(800)) {
            Ok(text) => return Ok(text),
            Err(e) if Instant::now() >= until => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// ADDs two attachments of `v` and returns them with their results.
fn two_containers(ctx: &mut Ctx, v: &Variant, fam: Family) -> Result<[(Attachment, Value); 2], Verdict> {
    let a = attachment(ctx, fam)?;
    let ra = ctx.add_variant(&a, v)?.result;
    let b = attachment(ctx, fam)?;
    let rb = ctx.add_variant(&b, v)?.result;
    Ok([(a, ra), (b, rb)])
}

/// A new attachment; for IPv6 its namespace and the lab host skip duplicate address detection,
/// so new addresses work at once instead of a second or more later (the cases judge
/// reachability, not DAD handling).
fn attachment(ctx: &mut Ctx, fam: Family) -> Result<Attachment, Verdict> {
    let att = ctx.attachment()?;
    if fam == Family::V6 {
        no_dad(ctx.lab.host_net())?;
        no_dad(att.container.fd()?.as_fd())?;
    }
    Ok(att)
}

fn no_dad(netns: BorrowedFd<'_>) -> Result<(), Verdict> {
    crate::ns::run_in(Some(netns), None, || {
        for conf in ["all", "default"] {
            let path = format!("/proc/sys/net/ipv6/conf/{conf}/accept_dad");
            std::fs::write(&path, "0").map_err(|source| crate::ns::NsError::Sys {
                op: format!("write {path}"),
                source,
            })?;
        }
        Ok(())
    })
    .map_err(Verdict::from)
}

fn container_to_gateway(ctx: &mut Ctx) -> Result<(), Verdict> {
    let att = ctx.attachment()?;
    let out = ctx.add(&att)?;
    ctx.blame = Some(out.record);
    let r = NormalResult::parse(&out.result).map_err(|e| Verdict::fail(format!("result unreadable: {e}")))?;
    let gateways: Vec<_> = r.ips.iter().filter_map(|ip| ip.gateway).collect();
    if gateways.is_empty() {
        return Err(Verdict::Skip("the ADD result names no gateway".into()));
    }
    // An echo to an address of the container itself (or to loopback) is answered inside the
    // container: such a "gateway" proves nothing and routes nowhere.
    let own: Vec<IpAddr> = ctx
        .lab
        .container_rtnl(&att.container)?
        .addresses()?
        .into_iter()
        .map(|a| a.addr.addr)
        .collect();
    let local: Vec<String> = gateways
        .iter()
        .filter(|gw| gw.is_loopback() || gw.is_unspecified() || own.contains(gw))
        .map(|gw| gw.to_string())
        .collect();
    if !local.is_empty() {
        return Err(Verdict::violation(
            "the result names a gateway that is the container itself",
            "a gateway on the network outside the container",
            format!(
                "gateway {} is loopback or an address of the container",
                local.join(", ")
            ),
        ));
    }
    let mut failures = Vec::new();
    let mut external = Vec::new();
    for gw in gateways {
        if let Err(e) = probe::icmp_echo(att.container.fd()?.as_fd(), gw, 56, false, PROBE) {
            if claims_gateway(ctx) || lab_carries(ctx, gw)? {
                failures.push(format!("{gw}: {e}"));
            } else {
                external.push(gw.to_string());
            }
        }
    }
    if failures.is_empty() && !external.is_empty() {
        // An IPAM gateway the plugin was not asked to provide (no `isGateway`) is a router
        // outside the node; the lab does not simulate one.
        return Err(Verdict::Skip(format!(
            "no interface of the node carries the gateway {} and the configuration does not ask the plugin to be \
             the gateway (isGateway): it expects a router the lab does not simulate",
            external.join(", ")
        )));
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Verdict::violation(
            "the gateway does not answer from inside the container",
            "an echo reply from each gateway",
            failures.join("; "),
        ))
    }
}

/// True when the configuration under test asks the plugin to act as the gateway itself.
fn claims_gateway(ctx: &Ctx) -> bool {
    ctx.target
        .profile
        .plugins
        .last()
        .and_then(|p| p.get("isGateway"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// True when an interface of the lab host or the outside namespace carries `gw` (a gateway the
/// plugin set up, or the lab's own for a master link).
fn lab_carries(ctx: &Ctx, gw: IpAddr) -> Result<bool, Verdict> {
    for rtnl in [ctx.lab.host_rtnl()?, ctx.lab.outside_rtnl()?] {
        if rtnl.addresses()?.iter().any(|a| a.addr.addr == gw) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// ICMP, UDP and TCP from `from` to `to_ip` in `to`; every server must see `from_ip` as source.
fn exchange_all(
    from: &Attachment,
    from_ip: IpAddr,
    to: &Attachment,
    to_ip: IpAddr,
    fam: Family,
) -> Result<Vec<String>, Verdict> {
    let mut failures = Vec::new();
    let src_fd = from.container.fd()?;
    let dst_fd = to.container.fd()?;
    if let Err(e) = probe::icmp_echo(src_fd.as_fd(), to_ip, 56, false, PROBE) {
        failures.push(format!("ICMP {from_ip} -> {to_ip}: {e}"));
    }
    let udp = SourceServer::udp(dst_fd.as_fd(), SocketAddr::new(fam.any(), 0))?;
    let tcp = SourceServer::tcp(dst_fd.as_fd(), SocketAddr::new(fam.any(), 0))?;
    let udp_dst = SocketAddr::new(to_ip, udp.addr.port());
    let tcp_dst = SocketAddr::new(to_ip, tcp.addr.port());
    let outcomes = [
        ("UDP", probe::udp_exchange(src_fd.as_fd(), udp_dst, PROBE), udp.seen()),
        ("TCP", tcp_retry(src_fd.as_fd(), tcp_dst), tcp.seen()),
    ];
    for (proto, outcome, seen) in outcomes {
        match outcome {
            Err(e) => failures.push(format!("{proto} {from_ip} -> {to_ip}: {e}")),
            Ok(_) if !seen.iter().any(|s| s.ip() == from_ip) => failures.push(format!(
                "{proto} {from_ip} -> {to_ip}: the receiver saw {:?}, not the sender's address",
                seen.iter().map(SocketAddr::ip).collect::<Vec<_>>()
            )),
            Ok(_) => {}
        }
    }
    Ok(failures)
}

fn container_to_container(ctx: &mut Ctx, fam: Family) -> Result<(), Verdict> {
    let v = network(ctx, fam);
    let [(a, ra), (b, rb)] = two_containers(ctx, &v, fam)?;
    let (Some(ip_a), Some(ip_b)) = (address(&ra, fam), address(&rb, fam)) else {
        return Err(no_address(fam));
    };
    main_route(ctx, &a, ip_b)?;
    let failures = exchange_all(&a, ip_a, &b, ip_b, fam)?;
    if failures.is_empty() {
        return Ok(());
    }
    Err(Verdict::violation(
        format!(
            "two containers of the network do not reach each other over {}",
            fam.name()
        ),
        "ICMP, UDP and TCP answered, each receiver seeing the sender's own address",
        failures.join("; "),
    ))
}

fn container_to_container_v4(ctx: &mut Ctx) -> Result<(), Verdict> {
    container_to_container(ctx, Family::V4)
}

fn container_to_container_v6(ctx: &mut Ctx) -> Result<(), Verdict> {
    container_to_container(ctx, Family::V6)
}

fn host_to_container(ctx: &mut Ctx, fam: Family) -> Result<(), Verdict> {
    let v = network(ctx, fam);
    let att = attachment(ctx, fam)?;
    let out = ctx.add_variant(&att, &v)?;
    let ip = address(&out.result, fam).ok_or_else(|| no_address(fam))?;
    let routed = ctx
        .lab
        .host_rtnl()?
        .routes()?
        .iter()
        .any(|r| r.dst.is_some_and(|d| d.prefix > 0 && d.contains(ip)));
    if !routed {
        return Err(Verdict::Skip(format!(
            "the lab host has no route to {ip} besides its default route: this network does not make containers reachable from the host"
        )));
    }
    match probe::icmp_echo(ctx.lab.host_net(), ip, 56, false, PROBE) {
        Ok(_) => Ok(()),
        Err(e) => {
            ctx.blame = Some(out.record);
            Err(Verdict::violation(
                format!(
                    "the host routes to the container's {} address but gets no answer",
                    fam.name()
                ),
                format!("an echo reply from {ip}"),
                e.to_string(),
            ))
        }
    }
}

fn host_to_container_v4(ctx: &mut Ctx) -> Result<(), Verdict> {
    host_to_container(ctx, Family::V4)
}

fn host_to_container_v6(ctx: &mut Ctx) -> Result<(), Verdict> {
    host_to_container(ctx, Family::V6)
}

fn mtu(ctx: &mut Ctx) -> Result<(), Verdict> {
    let v = ctx.variant();
    let Some(mtu) = v
        .plugins
        .iter()
        .find_map(|p| p.get("mtu").and_then(Value::as_u64))
        .filter(|m| (576..=65535).contains(m))
    else {
        return Err(Verdict::Skip(
            "the configuration sets no mtu (use --config with an mtu to judge it)".into(),
        ));
    };
    let a = ctx.attachment()?;
    let out = ctx.add_variant(&a, &v)?;
    ctx.blame = Some(out.record);
    if address(&out.result, Family::V4).is_none() {
        return Err(no_address(Family::V4));
    }
    let link_mtu = ctx
        .lab
        .container_rtnl(&a.container)?
        .link_by_name(&a.ifname)?
        .map(|l| l.mtu);
    if link_mtu != Some(mtu as u32) {
        return Err(Verdict::violation(
            format!("the container interface {} does not have the configured mtu", a.ifname),
            format!("mtu {mtu}"),
            format!("{link_mtu:?}"),
        ));
    }
    // The peer: the gateway, or a second container when the result names none.
    let peer = match gateway(&out.result, Family::V4) {
        Some(gw) => gw,
        None => {
            let b = ctx.attachment()?;
            let rb = ctx.add_variant(&b, &v)?.result;
            address(&rb, Family::V4).ok_or_else(|| no_address(Family::V4))?
        }
    };
    ctx.blame = Some(out.record);
    let fd = a.container.fd()?;
    // IPv4 header (20) and ICMP header (8) take the rest of the MTU.
    let largest = mtu as usize - 28;
    if let Err(e) = probe::icmp_echo(fd.as_fd(), peer, largest, true, PROBE) {
        return Err(Verdict::violation(
            format!("a {mtu}-byte packet with DF does not reach {peer} and back"),
            "an echo reply",
            e.to_string(),
        ));
    }
    if probe::icmp_echo(fd.as_fd(), peer, largest + 1, true, Duration::from_secs(1)).is_ok() {
        return Err(Verdict::violation(
            format!("a {}-byte packet with DF passes although the mtu is {mtu}", mtu + 1),
            "no reply (the packet is too big)",
            "an echo reply",
        ));
    }
    Ok(())
}

fn ip_masq(v: &Variant) -> Result<(), Verdict> {
    if v.plugins
        .iter()
        .any(|p| p.get("ipMasq").and_then(Value::as_bool) == Some(true))
    {
        Ok(())
    } else {
        Err(Verdict::Skip("the configuration does not set ipMasq: true".into()))
    }
}

/// A UDP and a TCP exchange from `from` to the outside server address; returns failures.
fn masquerade_outward(ctx: &Ctx, from: &Attachment, from_ip: IpAddr) -> Result<Vec<String>, Verdict> {
    let outside = ctx.lab.outside_net();
    let any = SocketAddr::new(IpAddr::V4(REMOTE), 0);
    let udp = SourceServer::udp(outside, any)?;
    let tcp = SourceServer::tcp(outside, any)?;
    let fd = from.container.fd()?;
    let outcomes = [
        ("UDP", probe::udp_exchange(fd.as_fd(), udp.addr, PROBE), &udp),
        ("TCP", tcp_retry(fd.as_fd(), tcp.addr), &tcp),
    ];
    let mut failures = Vec::new();
    for (proto, outcome, server) in outcomes {
        let seen: Vec<IpAddr> = server.seen().iter().map(SocketAddr::ip).collect();
        let wrong: Vec<&IpAddr> = seen.iter().filter(|s| **s != IpAddr::V4(UPLINK_HOST)).collect();
        if !wrong.is_empty() {
            failures.push(format!(
                "{proto} to {}: the outside saw source {wrong:?} (container {from_ip}), not {UPLINK_HOST}",
                server.addr
            ));
        } else if seen.is_empty() {
            failures.push(format!(
                "{proto} to {}: nothing reached the outside ({})",
                server.addr,
                outcome.err().map(|e| e.to_string()).unwrap_or_default()
            ));
        } else if let Err(e) = outcome {
            failures.push(format!(
                "{proto} to {}: the outside saw {UPLINK_HOST} but the reply did not get back: {e}",
                server.addr
            ));
        }
    }
    Ok(failures)
}

fn masquerade(ctx: &mut Ctx) -> Result<(), Verdict> {
    let v = ctx.variant();
    ip_masq(&v)?;
    let [(a, ra), (b, rb)] = two_containers(ctx, &v, Family::V4)?;
    let (Some(ip_a), Some(ip_b)) = (address(&ra, Family::V4), address(&rb, Family::V4)) else {
        return Err(no_address(Family::V4));
    };
    main_route(ctx, &a, IpAddr::V4(REMOTE))?;
    main_route(ctx, &a, ip_b)?;
    let mut failures = masquerade_outward(ctx, &a, ip_a)?;
    failures.extend(exchange_all(&a, ip_a, &b, ip_b, Family::V4)?);
    if failures.is_empty() {
        return Ok(());
    }
    Err(Verdict::violation(
        "ipMasq is not honoured",
        format!("the outside sees {UPLINK_HOST} and answers; containers see each other's own addresses"),
        failures.join("; "),
    ))
}

/// Packet-filter lines that differ between two snapshots. A bare "+ table" line (an empty table
/// that appeared, e.g. made by an iptables-nft listing during DEL) is not a leak: anything left
/// in a table shows as its own chain and rule lines.
fn firewall_changes(before: &crate::lab::HostSnapshot, after: &crate::lab::HostSnapshot) -> Vec<String> {
    after
        .firewall
        .diff(&before.firewall)
        .into_iter()
        .filter(|l| !(l.starts_with("+ table ") && l.split_whitespace().count() == 4))
        .collect()
}

fn masquerade_del(ctx: &mut Ctx) -> Result<(), Verdict> {
    let v = ctx.variant();
    ip_masq(&v)?;
    // A first attachment holds what the network shares; the baseline is taken after it.
    let first = ctx.attachment()?;
    ctx.add_variant(&first, &v)?;
    let before = ctx.lab.snapshot()?;
    let att = ctx.attachment()?;
    let out = ctx.add_variant(&att, &v)?;
    let ip = address(&out.result, Family::V4).ok_or_else(|| no_address(Family::V4))?;
    if firewall_changes(&before, &ctx.lab.snapshot()?).is_empty() {
        return Err(Verdict::Skip(format!(
            "ADD with ipMasq added no packet-filter rule for {ip}; nothing for DEL to remove"
        )));
    }
    let del = ctx.del_variant(&att, &v, Some(&out.result))?;
    ctx.expect_success(del, "DEL")?;
    let left = firewall_changes(&before, &ctx.lab.snapshot()?);
    if left.is_empty() {
        return Ok(());
    }
    ctx.blame = Some(del);
    Err(Verdict::violation(
        format!("DEL left packet-filter rules of the container ({ip}) behind"),
        "the ruleset as before the ADD",
        left.join("; "),
    ))
}

fn mapping(host: u16, container: u16, protocol: &str) -> Value {
    json!({"hostPort": host, "containerPort": container, "protocol": protocol})
}

/// The profile with port mappings for the plugin that declares `portMappings`.
fn with_port_mappings(ctx: &Ctx, maps: Vec<Value>) -> Result<Variant, Verdict> {
    let mut v = ctx.variant();
    if !v.declares("portMappings") {
        return Err(Verdict::Skip(
            "no plugin of the configuration declares the portMappings capability".into(),
        ));
    }
    v.capability_args.insert("portMappings".into(), Value::Array(maps));
    Ok(v)
}

/// Servers in the container on the mapped container ports; returns (tcp, udp).
fn mapped_servers(att: &Attachment) -> Result<(SourceServer, SourceServer), Verdict> {
    let fd = att.container.fd()?;
    let any = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    Ok((
        SourceServer::tcp(fd.as_fd(), SocketAddr::new(any, TCP_MAP.1))?,
        SourceServer::udp(fd.as_fd(), SocketAddr::new(any, UDP_MAP.1))?,
    ))
}

fn portmap(ctx: &mut Ctx) -> Result<(), Verdict> {
    let v = with_port_mappings(
        ctx,
        vec![
            mapping(TCP_MAP.0, TCP_MAP.1, "tcp"),
            mapping(UDP_MAP.0, UDP_MAP.1, "udp"),
        ],
    )?;
    let att = ctx.attachment()?;
    let out = ctx.add_variant(&att, &v)?;
    ctx.blame = Some(out.record);
    address(&out.result, Family::V4).ok_or_else(|| no_address(Family::V4))?;
    let (tcp, udp) = mapped_servers(&att)?;
    let outside = ctx.lab.outside_net();
    let host = IpAddr::V4(UPLINK_HOST);
    let mut failures = Vec::new();
    let tcp_dst = SocketAddr::new(host, TCP_MAP.0);
    match tcp_retry(outside, tcp_dst) {
        Ok(_) if !tcp.seen().is_empty() => {}
        Ok(text) => failures.push(format!("TCP {tcp_dst}: answered {text:?} but not by the container")),
        Err(e) => failures.push(format!("TCP {tcp_dst} -> container port {}: {e}", TCP_MAP.1)),
    }
    let udp_dst = SocketAddr::new(host, UDP_MAP.0);
    match probe::udp_exchange(outside, udp_dst, PROBE) {
        Ok(_) if !udp.seen().is_empty() => {}
        Ok(text) => failures.push(format!("UDP {udp_dst}: answered {text:?} but not by the container")),
        Err(e) => failures.push(format!("UDP {udp_dst} -> container port {}: {e}", UDP_MAP.1)),
    }
    if failures.is_empty() {
        return Ok(());
    }
    Err(Verdict::violation(
        "the mapped host ports do not reach the container",
        format!(
            "{UPLINK_HOST}:{} forwarded to container port {} (tcp), {}->{} (udp)",
            TCP_MAP.0, TCP_MAP.1, UDP_MAP.0, UDP_MAP.1
        ),
        failures.join("; "),
    ))
}

fn portmap_del(ctx: &mut Ctx) -> Result<(), Verdict> {
    // A first attachment with its own mapping holds the chains every mapping shares.
    let other = with_port_mappings(ctx, vec![mapping(OTHER_MAP.0, OTHER_MAP.1, "tcp")])?;
    let first = ctx.attachment()?;
    ctx.add_variant(&first, &other)?;
    let before = ctx.lab.snapshot()?;
    let v = with_port_mappings(
        ctx,
        vec![
            mapping(TCP_MAP.0, TCP_MAP.1, "tcp"),
            mapping(UDP_MAP.0, UDP_MAP.1, "udp"),
        ],
    )?;
    let att = ctx.attachment()?;
    let out = ctx.add_variant(&att, &v)?;
    let (tcp, _udp) = mapped_servers(&att)?;
    let tcp_dst = SocketAddr::new(IpAddr::V4(UPLINK_HOST), TCP_MAP.0);
    if tcp_retry(ctx.lab.outside_net(), tcp_dst).is_err() || tcp.seen().is_empty() {
        return Err(Verdict::Skip(
            "the mapping did not forward after ADD (connectivity/portmap judges that)".into(),
        ));
    }
    let del = ctx.del_variant(&att, &v, Some(&out.result))?;
    ctx.expect_success(del, "DEL")?;
    ctx.blame = Some(del);
    let served = tcp.seen().len();
    let after_del = probe::tcp_exchange(ctx.lab.outside_net(), tcp_dst, Duration::from_millis(500));
    if after_del.is_ok() && tcp.seen().len() > served {
        return Err(Verdict::violation(
            "the host port still forwards to the container after DEL",
            format!("no connection to container port {} through {tcp_dst}", TCP_MAP.1),
            "the container accepted the connection",
        ));
    }
    let left = firewall_changes(&before, &ctx.lab.snapshot()?);
    if !left.is_empty() {
        return Err(Verdict::violation(
            "DEL left packet-filter rules of the port mappings behind",
            "the ruleset as before the ADD",
            left.join("; "),
        ));
    }
    Ok(())
}

/// A rate limit read from the configuration: (rate bits/s, burst bits).
#[derive(Debug, Clone, Copy, Default)]
struct Limits {
    ingress: Option<(u64, u64)>,
    egress: Option<(u64, u64)>,
}

fn limits_of(plugin: &Value) -> Limits {
    let pair = |rate: &str, burst: &str| {
        let r = plugin.get(rate).and_then(Value::as_u64).filter(|r| *r > 0)?;
        Some((r, plugin.get(burst).and_then(Value::as_u64).unwrap_or(0)))
    };
    Limits {
        ingress: pair("ingressRate", "ingressBurst"),
        egress: pair("egressRate", "egressBurst"),
    }
}

/// The profile with its rate limits (static, or injected through the `bandwidth` capability),
/// and a baseline variant without any shaping plugin.
fn shaped_networks(ctx: &Ctx) -> Result<(Variant, Variant, Limits), Verdict> {
    let mut v = ctx.variant();
    let mut limits = Limits::default();
    let mut shaping = Vec::new();
    for (i, p) in v.plugins.iter().enumerate() {
        let l = limits_of(p);
        if l.ingress.is_some() || l.egress.is_some() {
            limits = l;
            shaping.push(i);
        } else if p
            .get("capabilities")
            .and_then(|c| c.get("bandwidth"))
            .and_then(Value::as_bool)
            == Some(true)
        {
            limits = Limits {
                ingress: Some((INJECTED_RATE, INJECTED_BURST)),
                egress: Some((INJECTED_RATE, INJECTED_BURST)),
            };
            shaping.push(i);
        }
    }
    if shaping.is_empty() {
        return Err(Verdict::Skip(
            "no plugin of the configuration sets ingressRate/egressRate or declares the bandwidth capability".into(),
        ));
    }
    v.capability_args.insert(
        "bandwidth".into(),
        json!({"ingressRate": INJECTED_RATE, "ingressBurst": INJECTED_BURST,
               "egressRate": INJECTED_RATE, "egressBurst": INJECTED_BURST}),
    );
    let mut base = v.clone();
    for &i in shaping.iter().rev() {
        base.plugins.remove(i);
        base.under_test = match base.under_test {
            Some(u) if u == i => None,
            Some(u) if u > i => Some(u - 1),
            other => other,
        };
    }
    if base.plugins.is_empty() {
        return Err(Verdict::Skip(
            "the shaping plugin is the whole chain; no unshaped baseline network to compare with".into(),
        ));
    }
    Ok((v, base, limits))
}

fn mbit(bits_per_sec: f64) -> String {
    format!("{:.1} Mbit/s", bits_per_sec / 1e6)
}

fn bandwidth(ctx: &mut Ctx) -> Result<(), Verdict> {
    let (v, base, limits) = shaped_networks(ctx)?;
    let a = ctx.attachment()?;
    let out = ctx.add_variant(&a, &v)?;
    let ip_a = address(&out.result, Family::V4).ok_or_else(|| no_address(Family::V4))?;
    let gw = gateway(&out.result, Family::V4).ok_or_else(|| {
        Verdict::Skip("the ADD result names no IPv4 gateway: no host address to measure against".into())
    })?;
    let b = ctx.attachment()?;
    let rb = ctx.add_variant(&b, &base)?.result;
    let ip_b = address(&rb, Family::V4).ok_or_else(|| no_address(Family::V4))?;
    ctx.blame = Some(out.record);

    let fastest = [limits.ingress, limits.egress]
        .iter()
        .flatten()
        .map(|(r, _)| *r)
        .max()
        .unwrap_or(0) as f64;
    let host = ctx.lab.host_net();
    let fd_a = a.container.fd()?;
    let fd_b = b.container.fd()?;
    let baseline = probe_rate::tcp_throughput(host, fd_b.as_fd(), ip_b, RATE_WINDOW)?;
    if baseline.bits_per_sec() < 3.0 * fastest {
        return Err(Verdict::Skip(format!(
            "the lab carries only {} without shaping; too slow to judge a limit of {}",
            mbit(baseline.bits_per_sec()),
            mbit(fastest)
        )));
    }
    let mut failures = Vec::new();
    let directions = [
        ("ingress (host to container)", limits.ingress, host, fd_a.as_fd(), ip_a),
        ("egress (container to host)", limits.egress, fd_a.as_fd(), host, gw),
    ];
    for (what, limit, sender, receiver, to) in directions {
        let Some((rate, burst)) = limit else { continue };
        let t = probe_rate::tcp_throughput(sender, receiver, to, RATE_WINDOW)?;
        let allowed_bits = 1.5 * rate as f64 * t.elapsed.as_secs_f64() + burst as f64;
        if t.bytes as f64 * 8.0 > allowed_bits {
            failures.push(format!(
                "{what}: measured {} ({} bytes in {} ms) against a rate of {} and a burst of {} bits (unshaped: {})",
                mbit(t.bits_per_sec()),
                t.bytes,
                t.elapsed.as_millis(),
                mbit(rate as f64),
                burst,
                mbit(baseline.bits_per_sec())
            ));
        } else if t.bytes == 0 {
            failures.push(format!("{what}: nothing passed in {} ms", t.elapsed.as_millis()));
        }
    }
    if failures.is_empty() {
        return Ok(());
    }
    Err(Verdict::violation(
        "the configured rate limits do not hold",
        "at most 1.5 times the configured rate (plus the burst) in each limited direction",
        failures.join("; "),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn variant(plugins: Vec<Value>) -> Variant {
        Variant {
            under_test: Some(plugins.len() - 1),
            plugins,
            capability_args: Map::new(),
            cni_args: String::new(),
        }
    }

    #[test]
    fn ipv6_range_is_added_once() {
        let mut v = variant(vec![
            json!({"type": "bridge", "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.0.0.0/24"}]]}}),
        ]);
        add_ipv6_range(&mut v);
        add_ipv6_range(&mut v);
        assert_eq!(v.plugins[0]["ipam"]["ranges"].as_array().unwrap().len(), 2);
        let mut fixed = variant(vec![json!({"type": "x", "ipam": {"type": "static", "addresses": []}})]);
        add_ipv6_range(&mut fixed);
        assert!(fixed.plugins[0]["ipam"].get("ranges").is_none());
    }

    #[test]
    fn addresses_prefer_the_container_interface() {
        let r = json!({"cniVersion": "1.0.0",
            "interfaces": [{"name": "br"}, {"name": "eth0", "sandbox": "/run/netns/a"}],
            "ips": [{"address": "10.0.0.1/24", "interface": 0}, {"address": "10.0.0.2/24", "gateway": "10.0.0.1", "interface": 1},
                    {"address": "fd00::2/64", "interface": 1}]});
        assert_eq!(address(&r, Family::V4), Some("10.0.0.2".parse().unwrap()));
        assert_eq!(address(&r, Family::V6), Some("fd00::2".parse().unwrap()));
        assert_eq!(gateway(&r, Family::V4), Some("10.0.0.1".parse().unwrap()));
        assert_eq!(gateway(&r, Family::V6), None);
    }
}
