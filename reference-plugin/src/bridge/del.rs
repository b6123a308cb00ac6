//! bridge DEL, best effort and idempotent. Unlike upstream it also cleans up when
//! the netns is gone or `CNI_NETNS` is empty:
//!
//! 1. container side: when the netns opens, remember `CNI_IFNAME`'s addresses and retire the
//!    veth pair (below);
//! 2. host side: a host veth named in `prevResult` that is still enslaved to our bridge is
//!    retired (the netns is unreachable but still alive, e.g. `CNI_NETNS` was empty);
//! 3. IPAM DEL;
//! 4. masquerading removed for the attachment (its entries are keyed by the attachment, the
//!    addresses from step 1 and `prevResult` are passed along).
//!
//! Every step runs even if an earlier one failed; the errors are reported together.
//!
//! Retiring a veth pair: the kernel needs 10 to 40 ms to unregister one, which is most of an
//! upstream DEL, and holds the RTNL lock for much of it. Before DEL returns, the container end
//! is brought down and renamed to a tombstone (`cnidel` + 8 hex digits), which takes its
//! addresses and routes away; the host end, which lost its carrier with it, is renamed to the
//! same tombstone and put in the device group [`linger::RETIRED_GROUP`] (left up and on the
//! bridge: taking a port down and off a bridge makes the kernel wait for RCU grace periods,
//! several milliseconds on a loaded machine, and the group deletion removes the port anyway).
//! Two quick requests. From then on nothing can mistake the pair for an attachment:
//! `CNI_IFNAME` is free for the next ADD in that namespace (an immediate DEL → ADD with the
//! same container ID and ifname works; host veth names are random, never derived from the
//! container ID), the host veth named in the result is gone, and no traffic passes: the
//! tombstone port has no carrier.
//! The one child DEL forks before exiting ([`linger::hand_over`]) deletes the retired group a
//! few milliseconds later, together with the pairs other DELs retired meanwhile, and DEL
//! returns without waiting for the kernel. Should that child die first, the tombstones are
//! inert and the next DEL's child, or bridge GC, deletes them.

use super::config::BridgeConfig;
use super::{join_errors, kernel, linger, masquerade, spoofcheck};
use crate::cni::delegate;
use crate::cni::dispatch::Request;
use crate::cni::error::CniError;
use crate::cni::result::CniResult;
use crate::cni::trace::mark;
use crate::ipnet::IpNet;
use crate::netlink::{self, Link, LinkChange, NetNs, Rtnl};
use std::os::fd::AsFd;
use std::time::Duration;

/// How long DEL waits for a deleted link to leave its namespace when it cannot be retired.
const DELETE_TIMEOUT: Duration = Duration::from_secs(5);

/// Name prefix of retired veth ends (8 random hex digits follow).
pub const TOMBSTONE_PREFIX: &str = "cnidel";

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
    // A pair was retired into the group the child deletes.
    let mut retired = false;

    if !req.env.netns.is_empty() {
        // When the namespace is gone the kernel deleted the veth pair with it.
        if let Ok(ns) = NetNs::open(&req.env.netns) {
            match remove_container_interface(&ns, &req.env.ifname, &cfg.bridge) {
                Ok((found, in_group)) => {
                    addrs.extend(found);
                    retired |= in_group;
                }
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
    // The nftables socket after a removal: kept open until the hand-over below.
    let mut masq_socket = None;
    if cfg.ip_masq && cfg.ipam_type.is_some() {
        match masquerade::teardown(&req.conf.name, &req.env.container_id, &req.env.ifname, &addrs) {
            Ok(socket) => masq_socket = socket,
            Err(e) => failures.push(e),
        }
    }
    mark("del: masquerade done");
    if cfg.macspoofchk {
        // Like upstream, a failure here is only logged: the veth it matched is gone anyway.
        if let Err(e) = spoofcheck::teardown(&req.env.container_id, &req.env.ifname) {
            eprintln!("bridge DEL: {e}");
        }
    }
    if retired || masq_socket.is_some() {
        let reap = retired
            .then(|| Rtnl::new().and_then(|host| host.prepare_group_delete(linger::RETIRED_GROUP)))
            .and_then(Result::ok);
        linger::hand_over(linger::ChildJobs {
            reap: reap.as_ref(),
            ..linger::ChildJobs::default()
        });
    }
    join_errors(failures)
}

/// Retires `ifname`'s pair; returns its addresses and whether the pair went to the retired
/// group.
fn remove_container_interface(ns: &NetNs, ifname: &str, bridge: &str) -> Result<(Vec<IpNet>, bool), CniError> {
    let ctr = Rtnl::in_netns(ns.as_fd()).map_err(kernel)?;
    let Some(link) = ctr.link_by_name(ifname).map_err(kernel)? else {
        return Ok((Vec::new(), false));
    };
    let addrs = ctr
        .addresses(Some(link.index), netlink::Family::All)
        .map_err(kernel)?
        .into_iter()
        .filter(|a| a.scope == netlink::RT_SCOPE_UNIVERSE)
        .map(|a| a.net)
        .collect();
    let in_group = retire_container_end(&ctr, &link, bridge)?;
    Ok((addrs, in_group))
}

/// Retire (module documentation) the pair whose container end is `link`; returns whether it
/// went to the retired group (else it is already deleted or being deleted). When the container
/// end cannot be renamed, the pair is deleted by a child and this waits until it has left the
/// namespace.
fn retire_container_end(ctr: &Rtnl, link: &Link, bridge: &str) -> Result<bool, CniError> {
    let tombstone = netlink::random_link_name(TOMBSTONE_PREFIX);
    // Down in the same request as the rename: that also takes the container's routes through
    // it away, so a new ADD in this namespace does not find them in place.
    let container_end = Retire {
        stay_up: false,
        detach: false,
        group: None,
    };
    match quiet(ctr, link.index, container_end, &tombstone).map_err(kernel)? {
        Quiet::Renamed => {}
        Quiet::Gone => return Ok(false),
        Quiet::NotRenamed => {
            // Unregistering a veth makes the kernel wait ~20 ms after the link is already
            // gone from the namespace; a detached child carries that wait.
            ctr.delete_link_detached(link.index, DELETE_TIMEOUT).map_err(kernel)?;
            return Ok(false);
        }
    }
    let host = Rtnl::new().map_err(kernel)?;
    match host_peer(&host, link)? {
        Some(peer) => {
            let bridge_index = host.link_by_name(bridge).map_err(kernel)?.map(|b| b.index);
            let attached = peer.master.is_some() && peer.master == bridge_index;
            let host_end = Retire {
                stay_up: true,
                detach: attached,
                group: Some(linger::RETIRED_GROUP),
            };
            Ok(quiet(&host, peer.index, host_end, &tombstone).map_err(kernel)? != Quiet::Gone)
        }
        None => ctr.delete_link_in_background(link.index).map(|_| false).map_err(kernel),
    }
}

/// The host end of the container veth `link`: the host link its `IFLA_LINK` names, if that is a
/// veth whose own peer is `link`.
fn host_peer(host: &Rtnl, link: &Link) -> Result<Option<Link>, CniError> {
    let (Some(peer_index), Some(_)) = (link.link, link.link_netnsid) else {
        return Ok(None);
    };
    if !link.is_kind("veth") {
        return Ok(None);
    }
    let peer = host.link_by_index(peer_index).map_err(kernel)?;
    Ok(peer.filter(|p| p.is_kind("veth") && p.link == Some(link.index)))
}

/// What [`quiet`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quiet {
    /// Renamed (and brought down / released / regrouped as asked).
    Renamed,
    /// Down and released, but the rename was refused.
    NotRenamed,
    /// The link was gone (deleted meanwhile, e.g. by another DEL's child).
    Gone,
}

/// How [`quiet`] retires a link besides renaming it.
#[derive(Debug, Clone, Copy)]
struct Retire {
    /// Leave it up: enough for the host end of a pair whose container end goes down, which
    /// loses its carrier with it (no traffic), and it spares the RCU waits the kernel makes
    /// when a bridge port goes down and leaves the bridge (several milliseconds on a loaded
    /// machine); the port goes away when the retired group is deleted.
    stay_up: bool,
    /// Release it from its master (only when brought down).
    detach: bool,
    /// Put it in this device group.
    group: Option<u32>,
}

/// Rename the link `index` to `tombstone` and retire it as `how` says, in one request where
/// the kernel renames links that are up (Linux 6.2+); otherwise it is brought down (and
/// released, and regrouped) first and renamed after.
fn quiet(rtnl: &Rtnl, index: u32, how: Retire, tombstone: &str) -> netlink::Result<Quiet> {
    match quiet_or_fail(rtnl, index, how, tombstone) {
        Err(e) if e.errno() == Some(libc::ENODEV) => Ok(Quiet::Gone),
        other => other,
    }
}

fn quiet_or_fail(rtnl: &Rtnl, index: u32, how: Retire, tombstone: &str) -> netlink::Result<Quiet> {
    let all_at_once = LinkChange {
        up: (!how.stay_up).then_some(false),
        master: (how.detach && !how.stay_up).then_some(0),
        group: how.group,
        name: Some(tombstone),
        ..LinkChange::default()
    };
    match rtnl.set_link(index, &all_at_once) {
        Ok(()) => return Ok(Quiet::Renamed),
        Err(e) if e.errno() == Some(libc::EBUSY) => {}
        Err(e) => return Err(e),
    }
    let down = LinkChange {
        up: Some(false),
        master: how.detach.then_some(0),
        group: how.group,
        ..LinkChange::default()
    };
    rtnl.set_link(index, &down)?;
    let renamed = rtnl.set_link(
        index,
        &LinkChange {
            name: Some(tombstone),
            ..LinkChange::default()
        },
    );
    Ok(if renamed.is_ok() {
        Quiet::Renamed
    } else {
        Quiet::NotRenamed
    })
}

/// Retire the host veth of `prev` if it still exists, is a veth, and is a port of our bridge,
/// and delete it, returning once the pair has left its namespaces (a child carries the
/// kernel's slow tail): its container end, which could not be reached to be retired, goes with
/// it, so `CNI_IFNAME` is free when DEL returns. A rare path (`CNI_NETNS` empty or not ours).
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
                let tombstone = netlink::random_link_name(TOMBSTONE_PREFIX);
                let unreachable_pair = Retire {
                    stay_up: false,
                    detach: true,
                    group: None,
                };
                if quiet(&host, link.index, unreachable_pair, &tombstone).map_err(kernel)? != Quiet::Gone {
                    host.delete_link_detached(link.index, DELETE_TIMEOUT).map_err(kernel)?;
                }
            }
        }
    }
    Ok(())
}
