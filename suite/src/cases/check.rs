//! `check/*`: the CHECK verb (SPEC §2 CHECK, 0.4.0+): passes on a healthy attachment, tolerates
//! later changes by other plugins, and fails when what the plugin made is broken.

use std::net::IpAddr;

use serde_json::Value;

use crate::case::{first_line, Applies, Attachment, Case, Ctx, Level, Verdict, ANY_KIND, WITH_INTERFACES};
use crate::cni::NormalResult;
use crate::net::IpNet;
use crate::profile::PluginKind;
use crate::version::SpecVersion;

const SINCE: SpecVersion = SpecVersion(0, 4, 0);

/// The cases of this area.
pub const CASES: &[Case] = &[
    Case {
        id: "check/after-add",
        title: "CHECK right after ADD, with the ADD result as prevResult, succeeds and prints nothing",
        level: Level::Must,
        spec: r#"SPEC.md 1.1.0 §"`CHECK`: Check container's networking is as expected" (a plugin must handle CHECK right after ADD); docs/spec-notes.md#output-of-del-check-gc-and-status"#,
        applies: Applies {
            kinds: ANY_KIND,
            since: SINCE,
        },
        body: after_add,
    },
    Case {
        id: "check/tolerates-extra-route",
        title: "CHECK still succeeds after a later plugin added a route and an address in the container",
        level: Level::Must,
        spec: r#"SPEC.md 1.1.0 §"`CHECK`: Check container's networking is as expected" (a plugin must allow later plugins of the chain to change resources)"#,
        applies: Applies {
            kinds: WITH_INTERFACES,
            since: SINCE,
        },
        body: tolerates_extra_route,
    },
    Case {
        id: "check/missing-address",
        title: "CHECK fails once an address from the result is removed from the container",
        level: Level::Should,
        spec: r#"SPEC.md 1.1.0 §"`CHECK`: Check container's networking is as expected" (an error when a resource listed in prevResult is missing)"#,
        applies: Applies {
            kinds: &[PluginKind::Interface],
            since: SINCE,
        },
        body: missing_address,
    },
    Case {
        id: "check/missing-route",
        title: "CHECK fails once a route from the result is removed from the container",
        level: Level::Should,
        spec: r#"SPEC.md 1.1.0 §"`CHECK`: Check container's networking is as expected" (an error when a resource listed in prevResult is missing)"#,
        applies: Applies {
            kinds: &[PluginKind::Interface],
            since: SINCE,
        },
        body: missing_route,
    },
    Case {
        id: "check/missing-interface",
        title: "CHECK fails once the container interface is deleted",
        level: Level::Should,
        spec: r#"SPEC.md 1.1.0 §"`CHECK`: Check container's networking is as expected" (an error when an interface listed in prevResult is missing)"#,
        applies: Applies {
            kinds: &[PluginKind::Interface],
            since: SINCE,
        },
        body: missing_interface,
    },
    Case {
        id: "check/host-end-gone",
        title: "CHECK fails once the host end of the container's link (e.g. the host veth) is deleted",
        level: Level::Should,
        spec: r#"SPEC.md 1.1.0 §"`CHECK`: Check container's networking is as expected" (an error when a resource listed in prevResult is missing)"#,
        applies: Applies {
            kinds: &[PluginKind::Interface],
            since: SINCE,
        },
        body: host_end_gone,
    },
    Case {
        id: "check/changed-mac",
        title: "CHECK fails once the container interface's MAC differs from the one in the result",
        level: Level::Should,
        spec: r#"SPEC.md 1.1.0 §"`CHECK`: Check container's networking is as expected" (an error when a resource listed in prevResult is in an invalid state)"#,
        applies: Applies {
            kinds: &[PluginKind::Interface],
            since: SINCE,
        },
        body: changed_mac,
    },
    Case {
        id: "check/interface-down",
        title: "CHECK fails once the container interface is set administratively down",
        level: Level::Should,
        spec: r#"SPEC.md 1.1.0 §"`CHECK`: Check container's networking is as expected" (an error when a resource is in an invalid state or the container is unreachable)"#,
        applies: Applies {
            kinds: &[PluginKind::Interface],
            since: SINCE,
        },
        body: interface_down,
    },
];

fn setup(ctx: &mut Ctx) -> Result<(Attachment, Value, String), Verdict> {
    let version = ctx.version()?;
    if !version.parse::<SpecVersion>().is_ok_and(|v| v.has_check()) {
        return Err(Verdict::Skip(format!("cases run at {version}, which has no CHECK")));
    }
    let att = ctx.attachment()?;
    let out = ctx.add(&att)?;
    Ok((att, out.result, version))
}

/// CHECK that must pass.
fn check_passes(ctx: &mut Ctx, att: &Attachment, prev: &Value, version: &str, after: &str) -> Result<(), Verdict> {
    let (idx, ok) = ctx.check_raw(att, prev, version)?;
    ctx.blame = Some(idx);
    let rec = ctx.record(idx);
    if !ok {
        return Err(Verdict::violation(
            format!("CHECK failed {after}"),
            "exit 0",
            format!("{}: {}", rec.exit, first_line(&rec.stdout, &rec.stderr)),
        ));
    }
    if !rec.stdout.trim().is_empty() {
        return Err(Verdict::violation(
            "CHECK succeeded but printed something",
            "no output on success",
            crate::case::truncate(&rec.stdout, 200),
        ));
    }
    Ok(())
}

/// CHECK that should fail after `what` was broken.
fn check_fails(ctx: &mut Ctx, att: &Attachment, prev: &Value, version: &str, what: &str) -> Result<(), Verdict> {
    let (idx, ok) = ctx.check_raw(att, prev, version)?;
    ctx.blame = Some(idx);
    if ok {
        return Err(Verdict::violation(
            format!("CHECK succeeded although {what}"),
            "a non-zero exit with an Error object",
            "exit 0",
        ));
    }
    Ok(())
}

fn after_add(ctx: &mut Ctx) -> Result<(), Verdict> {
    let (att, result, version) = setup(ctx)?;
    check_passes(ctx, &att, &result, &version, "right after ADD")
}

fn tolerates_extra_route(ctx: &mut Ctx) -> Result<(), Verdict> {
    let (att, result, version) = setup(ctx)?;
    let rtnl = ctx.lab.container_rtnl(&att.container)?;
    let link = rtnl
        .link_by_name(&att.ifname)?
        .ok_or_else(|| Verdict::fail(format!("{} missing after ADD", att.ifname)))?;
    let extra = IpNet {
        addr: IpAddr::from([192, 0, 2, 77]),
        prefix: 32,
    };
    rtnl.add_address(link.index, extra)?;
    rtnl.add_route(
        Some(IpNet {
            addr: IpAddr::from([203, 0, 113, 0]),
            prefix: 24,
        }),
        None,
        Some(link.index),
    )?;
    check_passes(
        ctx,
        &att,
        &result,
        &version,
        "after another plugin added 192.0.2.77/32 and a route to 203.0.113.0/24",
    )
}

fn result_of(result: &Value) -> Result<NormalResult, Verdict> {
    NormalResult::parse(result).map_err(|e| Verdict::fail(format!("the ADD result cannot be read: {e}")))
}

fn missing_address(ctx: &mut Ctx) -> Result<(), Verdict> {
    let (att, result, version) = setup(ctx)?;
    let r = result_of(&result)?;
    let rtnl = ctx.lab.container_rtnl(&att.container)?;
    let link = rtnl
        .link_by_name(&att.ifname)?
        .ok_or_else(|| Verdict::fail("no container interface"))?;
    let Some(ip) = r
        .ips
        .iter()
        .find(|ip| r.interface_of(ip).is_none_or(|i| i.sandbox.is_some()))
    else {
        return Err(Verdict::Skip("the result has no container address".into()));
    };
    rtnl.del_address(link.index, ip.address).map_err(|e| {
        Verdict::Skip(format!(
            "cannot remove {} from {} ({e}): the result claims an address the kernel does not show (add/result-matches-kernel judges the claim)",
            ip.address, att.ifname
        ))
    })?;
    check_fails(
        ctx,
        &att,
        &result,
        &version,
        &format!("{} was removed from {}", ip.address, att.ifname),
    )
}

fn missing_route(ctx: &mut Ctx) -> Result<(), Verdict> {
    let (att, result, version) = setup(ctx)?;
    let r = result_of(&result)?;
    let Some(route) = r.routes.first() else {
        return Err(Verdict::Skip("the result has no route".into()));
    };
    let rtnl = ctx.lab.container_rtnl(&att.container)?;
    let dst = (route.dst.prefix != 0).then_some(route.dst);
    rtnl.del_route(dst, route.gw, route.dst.is_ipv6()).map_err(|e| {
        Verdict::Skip(format!(
            "cannot remove the route to {} ({e}): the result claims a route the kernel does not show (add/result-matches-kernel judges the claim)",
            route.dst
        ))
    })?;
    check_fails(
        ctx,
        &att,
        &result,
        &version,
        &format!("the route to {} was removed", route.dst),
    )
}

fn missing_interface(ctx: &mut Ctx) -> Result<(), Verdict> {
    ctx.needs_free_ifname()?;
    let (att, result, version) = setup(ctx)?;
    let rtnl = ctx.lab.container_rtnl(&att.container)?;
    let link = rtnl
        .link_by_name(&att.ifname)?
        .ok_or_else(|| Verdict::fail("no container interface"))?;
    rtnl.delete_link(link.index)?;
    check_fails(ctx, &att, &result, &version, &format!("{} was deleted", att.ifname))
}

fn host_end_gone(ctx: &mut Ctx) -> Result<(), Verdict> {
    let (att, result, version) = setup(ctx)?;
    let r = result_of(&result)?;
    let host = ctx.lab.host_rtnl()?;
    let links = host.links()?;
    let host_end = r
        .interfaces
        .iter()
        .filter(|i| i.sandbox.is_none())
        .filter_map(|i| links.iter().find(|l| l.name == i.name))
        .find(|l| l.kind.as_deref() == Some("veth"));
    let Some(link) = host_end else {
        return Err(Verdict::Skip("the result lists no host-side veth".into()));
    };
    host.delete_link(link.index)?;
    check_fails(
        ctx,
        &att,
        &result,
        &version,
        &format!("the host end {} was deleted", link.name),
    )
}

/// `mac` with its last byte changed, still locally administered and unicast.
fn other_mac(mac: &str) -> Option<[u8; 6]> {
    let bytes: Vec<u8> = mac
        .split(':')
        .map(|b| u8::from_str_radix(b, 16))
        .collect::<Result<_, _>>()
        .ok()?;
    let mut out: [u8; 6] = bytes.try_into().ok()?;
    out[0] = (out[0] | 0x02) & !0x01;
    out[5] ^= 0x5a;
    Some(out)
}

fn changed_mac(ctx: &mut Ctx) -> Result<(), Verdict> {
    let (att, result, version) = setup(ctx)?;
    let r = result_of(&result)?;
    let netns = att.netns();
    let Some((mac, new)) = r
        .interfaces
        .iter()
        .find(|i| i.name == att.ifname && i.sandbox.as_deref() == Some(netns.as_str()))
        .and_then(|i| i.mac.clone())
        .and_then(|m| other_mac(&m).map(|n| (m, n)))
    else {
        return Err(Verdict::Skip(format!(
            "the result gives no MAC for {} in the container",
            att.ifname
        )));
    };
    let rtnl = ctx.lab.container_rtnl(&att.container)?;
    let link = rtnl
        .link_by_name(&att.ifname)?
        .ok_or_else(|| Verdict::fail("no container interface"))?;
    if rtnl.set_mac(link.index, new).is_err() {
        // Some link types change their address only while down; some never do (an ipvlan link
        // shares its parent's address), and then there is nothing for CHECK to notice.
        rtnl.set_up(link.index, false)?;
        let changed = rtnl.set_mac(link.index, new);
        rtnl.set_up(link.index, true)?;
        if let Err(e) = changed {
            return Err(Verdict::Skip(format!(
                "{} ({}) refuses a new MAC address, so there is no change for CHECK to notice: {e}",
                att.ifname,
                link.kind.as_deref().unwrap_or("link")
            )));
        }
    }
    let shown: Vec<String> = new.iter().map(|b| format!("{b:02x}")).collect();
    check_fails(
        ctx,
        &att,
        &result,
        &version,
        &format!("the MAC of {} changed from {mac} to {}", att.ifname, shown.join(":")),
    )
}

fn interface_down(ctx: &mut Ctx) -> Result<(), Verdict> {
    let (att, result, version) = setup(ctx)?;
    let rtnl = ctx.lab.container_rtnl(&att.container)?;
    let link = rtnl
        .link_by_name(&att.ifname)?
        .ok_or_else(|| Verdict::fail("no container interface"))?;
    rtnl.set_up(link.index, false)?;
    check_fails(ctx, &att, &result, &version, &format!("{} was set down", att.ifname))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_mac_differs_and_stays_unicast() {
        let m = other_mac("02:42:ac:11:00:02").unwrap();
        assert_eq!(m, [0x02, 0x42, 0xac, 0x11, 0x00, 0x58]);
        assert_eq!(other_mac("03:00:00:00:00:00").unwrap()[0], 0x02);
        assert!(other_mac("nonsense").is_none());
        assert!(other_mac("02:00:00:00:00").is_none());
    }
}
