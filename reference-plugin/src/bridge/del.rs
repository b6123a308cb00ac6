//! bridge DEL (digest §8.3), best effort and idempotent. Unlike upstream it also cleans up when
//! the netns is gone or `CNI_NETNS` is empty:
//!
//! 1. container side: when the netns opens, remember `CNI_IFNAME`'s addresses and delete it
//!    (which deletes the host end too);
//! 2. host side: a host veth named in `prevResult` that is still enslaved to our bridge is
//!    deleted (the netns is unreachable but still alive, e.g. `CNI_NETNS` was empty);
//! 3. IPAM DEL;
//! 4. masquerading removed for the attachment (its entries are keyed by the attachment, the
//!    addresses from step 1 and `prevResult` are passed along).
//!
//! Every step runs even if an earlier one failed; the errors are reported together.

use super::config::BridgeConfig;
use super::{join_errors, kernel, masquerade, spoofcheck};
use crate::cni::delegate;
use crate::cni::dispatch::Request;
use crate::cni::error::CniError;
use crate::cni::ipnet::IpNet;
use crate::cni::result::CniResult;
use crate::cni::trace::mark;
use crate::netlink::{self, NetNs, Rtnl};
use std::os::fd::AsFd;
use std::time::Duration;

/// How long DEL waits for a deleted link to leave its namespace.
const DELETE_TIMEOUT: Duration = Duration::from_secs(5);

/// DEL.
pub fn del(req: &Request) -> Result<(), CniError> {
    mark("del: start");
    let cfg = BridgeConfig::load(&req.conf, "", false)?;
    let prev = req
        .conf
        .prev_result
        .as_ref()
        .and_then(|v| CniResult::from_json(v, &req.conf.cni_version).ok());
    let mut failures = Vec::new();
    let mut addrs: Vec<IpNet> = Vec::new();

    if !req.env.netns.is_empty() {
        // When the namespace is gone the kernel deleted the veth pair with it.
        if let Ok(ns) = NetNs::open(&req.env.netns) {
            match remove_container_interface(&ns, &req.env.ifname) {
                Ok(found) => addrs.extend(found),
                Err(e) => failures.push(e),
            }
        }
    }
    mark("del: container interface removed");
    if let Some(prev) = &prev {
        if let Err(e) = remove_host_veth(&cfg, prev) {
            failures.push(e);
        }
        for ip in &prev.ips {
            if !addrs.contains(&ip.address) {
                addrs.push(ip.address);
            }
        }
    }
    mark("del: host veth checked");
    if let Some(ipam) = &cfg.ipam_type {
        if let Err(e) = delegate::run(ipam, &req.env.path_dirs(), "DEL", &req.stdin) {
            failures.push(e.context(format!("IPAM plugin {ipam} DEL")));
        }
    }
    mark("del: ipam done");
    if cfg.ip_masq && cfg.ipam_type.is_some() {
        if let Err(e) = masquerade::teardown(&req.conf.name, &req.env.container_id, &req.env.ifname, &addrs) {
            failures.push(e);
        }
    }
    mark("del: masquerade done");
    if cfg.macspoofchk {
        // Like upstream, a failure here is only logged: the veth it matched is gone anyway.
        if let Err(e) = spoofcheck::teardown(&req.env.container_id, &req.env.ifname) {
            eprintln!("bridge DEL: {e}");
        }
    }
    join_errors(failures)
}

fn remove_container_interface(ns: &NetNs, ifname: &str) -> Result<Vec<IpNet>, CniError> {
    let ctr = Rtnl::in_netns(ns.as_fd()).map_err(kernel)?;
    let Some(link) = ctr.link_by_name(ifname).map_err(kernel)? else {
        return Ok(Vec::new());
    };
    let addrs = ctr
        .addresses(Some(link.index), netlink::Family::All)
        .map_err(kernel)?
        .into_iter()
        .filter(|a| a.scope == netlink::RT_SCOPE_UNIVERSE)
        .map(|a| IpNet {
            addr: a.net.addr,
            prefix: a.net.prefix,
        })
        .collect();
    // Unregistering a veth makes the kernel wait ~20 ms after the link is already gone from
    // the namespace; a detached child carries that wait so DEL returns as soon as it is gone.
    ctr.delete_link_detached(link.index, DELETE_TIMEOUT).map_err(kernel)?;
    Ok(addrs)
}

/// Delete the host veth of `prev` if it still exists, is a veth, and is a port of our bridge.
fn remove_host_veth(cfg: &BridgeConfig, prev: &CniResult) -> Result<(), CniError> {
    let candidates: Vec<&str> = prev
        .interfaces
        .iter()
        .filter(|i| i.sandbox.is_empty() && i.name != cfg.bridge && !i.name.is_empty())
        .map(|i| i.name.as_str())
        .collect();
    if candidates.is_empty() {
        return Ok(());
    }
    let host = Rtnl::new().map_err(kernel)?;
    let Some(bridge) = host.link_by_name(&cfg.bridge).map_err(kernel)? else {
        return Ok(());
    };
    for name in candidates {
        if let Some(link) = host.link_by_name(name).map_err(kernel)? {
            if link.is_kind("veth") && link.master == Some(bridge.index) {
                host.delete_link_detached(link.index, DELETE_TIMEOUT).map_err(kernel)?;
            }
        }
    }
    Ok(())
}
