//! Kernel truth: everything an ADD result claims (interfaces, MACs, MTUs, addresses, routes,
//! sandboxes) is checked against what the kernel holds, never taken on the result's word.

use serde_json::Value;

use crate::case::{Attachment, Ctx, Verdict};
use crate::cni::NormalResult;
use crate::net::{AddrInfo, LinkInfo, RouteInfo};

/// What one namespace holds.
struct NsState {
    links: Vec<LinkInfo>,
    addrs: Vec<AddrInfo>,
    routes: Vec<RouteInfo>,
}

impl NsState {
    fn link(&self, name: &str) -> Option<&LinkInfo> {
        self.links.iter().find(|l| l.name == name)
    }
}

fn read(rtnl: &crate::net::Rtnl) -> Result<NsState, Verdict> {
    Ok(NsState {
        links: rtnl.links()?,
        addrs: rtnl.addresses()?,
        routes: rtnl.routes()?,
    })
}

/// True when the two paths name one network namespace (another spelling of `CNI_NETNS`, such
/// as a `/proc/<pid>/ns/net` path), as seen from the lab.
fn same_namespace(ctx: &Ctx, a: &str, b: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (a, b) = (a.to_string(), b.to_string());
    crate::ns::run_in(None, Some(ctx.lab.mnt()), move || {
        Ok(match (std::fs::metadata(&a), std::fs::metadata(&b)) {
            (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
            _ => false,
        })
    })
    .unwrap_or(false)
}

/// Checks every claim of `result` for attachment `att`; all problems go into one finding.
pub fn verify_result(ctx: &Ctx, att: &Attachment, result: &Value) -> Result<(), Verdict> {
    let r = NormalResult::parse(result)
        .map_err(|e| Verdict::violation("the ADD result cannot be read", "a well-formed result", e.to_string()))?;
    let inside = read(&ctx.lab.container_rtnl(&att.container)?)?;
    let host = read(&ctx.lab.host_rtnl()?)?;
    let netns = att.netns();
    let mut problems = Vec::new();
    // "For interfaces created inside the container, this should be the value passed via
    // CNI_NETNS": another spelling of the container's namespace is a should-level finding.
    let mut should = Vec::new();

    if inside.link(&att.ifname).is_none() {
        problems.push(format!("CNI_IFNAME {:?} does not exist in the container", att.ifname));
    }
    for (i, itf) in r.interfaces.iter().enumerate() {
        let (state, place) = match itf.sandbox.as_deref() {
            Some(s) if s == netns => (&inside, "container"),
            Some(s) => {
                let text = format!(
                    "interfaces[{i}] ({}) has sandbox {s:?}, but CNI_NETNS is {netns:?}",
                    itf.name
                );
                if inside.link(&itf.name).is_none() || !same_namespace(ctx, s, &netns) {
                    problems.push(text);
                    continue;
                }
                should.push(text);
                (&inside, "container")
            }
            None => (&host, "host"),
        };
        let Some(link) = state.link(&itf.name) else {
            problems.push(format!(
                "interfaces[{i}] {:?} does not exist in the {place} namespace",
                itf.name
            ));
            continue;
        };
        if let (Some(want), Some(have)) = (&itf.mac, &link.mac) {
            if want != have {
                problems.push(format!(
                    "interfaces[{i}] {} has MAC {have}, the result says {want}",
                    itf.name
                ));
            }
        }
        if let Some(mtu) = itf.mtu.filter(|m| *m > 0) {
            if u64::from(link.mtu) != mtu {
                problems.push(format!(
                    "interfaces[{i}] {} has MTU {}, the result says {mtu}",
                    itf.name, link.mtu
                ));
            }
        }
    }
    let listed = |in_sandbox: bool| {
        r.interfaces
            .iter()
            .any(|i| i.name == att.ifname && (!in_sandbox || i.sandbox.as_deref() == Some(netns.as_str())))
    };
    if listed(true) || (listed(false) && !should.is_empty()) {
        // Listed with CNI_NETNS as its sandbox, or with another spelling already noted above.
    } else if !r.interfaces.is_empty() && inside.link(&att.ifname).is_some() {
        problems.push(format!(
            "the result lists no interface {:?} with sandbox {netns:?}",
            att.ifname
        ));
    }
    for (i, ip) in r.ips.iter().enumerate() {
        let (state, name, place) = match r.interface_of(ip) {
            Some(itf) if itf.sandbox.is_none() => (&host, itf.name.clone(), "host"),
            Some(itf) => (&inside, itf.name.clone(), "container"),
            None if ip.interface.is_some() => {
                problems.push(format!(
                    "ips[{i}].interface {:?} is not an index into interfaces",
                    ip.interface
                ));
                continue;
            }
            None => (&inside, att.ifname.clone(), "container"),
        };
        let Some(link) = state.link(&name) else {
            continue;
        };
        if !state
            .addrs
            .iter()
            .any(|a| a.index == link.index && a.addr == ip.address)
        {
            let have: Vec<String> = state
                .addrs
                .iter()
                .filter(|a| a.index == link.index)
                .map(|a| a.addr.to_string())
                .collect();
            problems.push(format!(
                "ips[{i}] {} is not on {name} in the {place} namespace (it has: {})",
                ip.address,
                if have.is_empty() {
                    "no address".into()
                } else {
                    have.join(", ")
                }
            ));
        }
    }
    for (i, route) in r.routes.iter().enumerate() {
        let found = inside.routes.iter().any(|k| {
            let dst_matches = match k.dst {
                None => route.dst.prefix == 0 && route.dst.is_ipv6() == k.ipv6,
                Some(d) => d.prefix == route.dst.prefix && d.network() == route.dst.network(),
            };
            dst_matches && route.gw.is_none_or(|gw| k.gateway == Some(gw))
        });
        if !found {
            problems.push(format!(
                "routes[{i}] {}{} is not in the container's routing tables",
                route.dst,
                route.gw.map(|g| format!(" via {g}")).unwrap_or_default()
            ));
        }
    }
    if !problems.is_empty() {
        problems.extend(should);
        return Err(Verdict::violation(
            "the ADD result claims what the kernel does not show",
            "every interface, MAC, MTU, address and route in the result present as stated",
            problems.join("; "),
        ));
    }
    if !should.is_empty() {
        return Err(Verdict::should(
            "the result names the container's interfaces with a sandbox other than CNI_NETNS",
            format!("sandbox {netns:?}"),
            should.join("; "),
        ));
    }
    Ok(())
}
