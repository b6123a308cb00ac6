//! bridge CHECK, stricter than the upstream one: the bridge and the container interface
//! of `prevResult` exist with the right type, MAC, MTU and promiscuous state; a host veth in
//! `prevResult` is the container interface's peer and a port of the bridge; every address of
//! `prevResult` is on the container interface; every route of `prevResult` is in the
//! container's routing table; the masquerade entry exists when `ipMasq` is set; with
//! `isGateway` and `vlan`, the gateway addresses are on the VLAN gateway port; the IPAM
//! delegate's CHECK passes.

use super::config::BridgeConfig;
use super::{gateway_port, kernel, masquerade, spoofcheck};
use crate::cni::delegate;
use crate::cni::dispatch::Request;
use crate::cni::error::{self, CniError};
use crate::cni::result::{CniResult, Interface};
use crate::ipnet::{Family, IpNet};
use crate::netlink::{self, Link, NetNs, Rtnl, RT_TABLE_MAIN};
use std::os::fd::AsFd;

fn failed(msg: impl Into<String>) -> CniError {
    CniError::new(error::CHECK_FAILED, msg)
}

/// CHECK.
pub fn check(req: &Request) -> Result<(), CniError> {
    let cfg = BridgeConfig::load(&req.conf, "", false)?;
    let netns = NetNs::open(&req.env.netns).map_err(|e| {
        CniError::with_details(
            error::UNKNOWN_CONTAINER,
            format!("failed to open netns {:?}", req.env.netns),
            e.to_string(),
        )
    })?;
    if let Some(ipam) = &cfg.ipam_type {
        delegate::run(ipam, &req.env.path_dirs(), "CHECK", &req.stdin)?;
    }
    let prev_value = req
        .conf
        .prev_result
        .as_ref()
        .ok_or_else(|| CniError::config("Required prevResult missing"))?;
    let prev = CniResult::from_json(prev_value, &req.conf.cni_version)?;

    let host = Rtnl::new().map_err(kernel)?;
    let ctr = Rtnl::in_netns(netns.as_fd()).map_err(kernel)?;

    let bridge_entry = prev.interfaces.iter().find(|i| i.name == cfg.bridge).ok_or_else(|| {
        failed(format!(
            "CNI created bridge {} in host namespace was not found",
            cfg.bridge
        ))
    })?;
    let bridge = check_bridge(&host, &cfg, bridge_entry)?;

    let ctr_entry = prev
        .interfaces
        .iter()
        .find(|i| i.name == req.env.ifname && i.sandbox == req.env.netns)
        .ok_or_else(|| {
            failed(format!(
                "CNI created interface in container {} not found",
                req.env.ifname
            ))
        })?;
    let ctr_link = ctr.link_by_name(&req.env.ifname).map_err(kernel)?.ok_or_else(|| {
        failed(format!(
            "Container interface {} not found in {}",
            req.env.ifname, req.env.netns
        ))
    })?;
    if !ctr_link.is_kind("veth") {
        return Err(failed(format!(
            "Error: Container interface {} not of type veth",
            ctr_link.name
        )));
    }
    check_mac_mtu(ctr_entry, &ctr_link, cfg.mtu)?;

    let host_veth = prev
        .interfaces
        .iter()
        .filter(|i| i.sandbox.is_empty() && i.name != cfg.bridge)
        .find_map(|entry| {
            let link = host.link_by_name(&entry.name).ok()??;
            (link.is_kind("veth") && ctr_link.link == Some(link.index)).then_some((entry, link))
        })
        .ok_or_else(|| failed(format!("CNI veth created for bridge {} was not found", cfg.bridge)))?;
    if host_veth.1.master != Some(bridge.index) {
        return Err(failed(format!(
            "host veth {} is not a port of bridge {}",
            host_veth.1.name, cfg.bridge
        )));
    }
    check_mac_mtu(host_veth.0, &host_veth.1, cfg.mtu)?;

    if cfg.macspoofchk {
        let mac = ctr_link.mac.map(|m| m.to_string()).unwrap_or_default();
        spoofcheck::check(&req.env.container_id, &req.env.ifname, &mac)?;
    }
    let ctr_index = prev
        .interfaces
        .iter()
        .position(|i| i.name == req.env.ifname && i.sandbox == req.env.netns);
    check_addresses(&ctr, &ctr_link, &prev, ctr_index)?;
    check_routes(&ctr, &prev)?;
    if cfg.is_gateway && cfg.vlan != 0 && cfg.ipam_type.is_some() {
        gateway_port::check(&host, &cfg, &bridge, &prev)?;
    }
    if cfg.ip_masq && cfg.ipam_type.is_some() {
        let addrs: Vec<IpNet> = prev.ips.iter().map(|ip| ip.address).collect();
        masquerade::check(&req.conf.name, &req.env.container_id, &req.env.ifname, &addrs)?;
    }
    Ok(())
}

fn check_bridge(host: &Rtnl, cfg: &BridgeConfig, entry: &Interface) -> Result<Link, CniError> {
    if !entry.sandbox.is_empty() {
        return Err(failed(format!("Interface {} should not be in sandbox", entry.name)));
    }
    let link = host.link_by_name(&cfg.bridge).map_err(kernel)?.ok_or_else(|| {
        failed(format!(
            "CNI created bridge {} in host namespace was not found",
            cfg.bridge
        ))
    })?;
    if !link.is_kind("bridge") {
        return Err(failed(format!("{} does not have link type of bridge", cfg.bridge)));
    }
    if !entry.mac.is_empty() {
        let have = link.mac.map(|m| m.to_string()).unwrap_or_default();
        if !have.eq_ignore_ascii_case(&entry.mac) {
            return Err(failed(format!(
                "Bridge interface {} Mac doesn't match: {} found {have}",
                cfg.bridge, entry.mac
            )));
        }
    }
    if link.is_promisc() != cfg.promisc_mode {
        return Err(failed(format!(
            "Bridge interface {} configured Promisc Mode {} doesn't match current state {}",
            cfg.bridge,
            cfg.promisc_mode,
            link.is_promisc()
        )));
    }
    Ok(link)
}

fn check_mac_mtu(entry: &Interface, link: &Link, mtu: Option<u32>) -> Result<(), CniError> {
    if !entry.mac.is_empty() {
        let have = link.mac.map(|m| m.to_string()).unwrap_or_default();
        if !have.eq_ignore_ascii_case(&entry.mac) {
            return Err(failed(format!(
                "Interface {} Mac {} doesn't match: {have}",
                link.name, entry.mac
            )));
        }
    }
    // The final result wins over the configuration: a later plugin (tuning) may have
    // changed the MTU and said so in the result.
    let expected = entry.mtu.or(mtu);
    if let Some(want) = expected {
        if link.mtu != want {
            return Err(failed(format!(
                "Interface {} MTU is {}, expected {want}",
                link.name, link.mtu
            )));
        }
    }
    Ok(())
}

/// The addresses (both families) on the link with this index.
pub(super) fn addresses_on(rtnl: &Rtnl, index: u32) -> Result<Vec<IpNet>, CniError> {
    Ok(rtnl
        .addresses(Some(index), netlink::Family::All)
        .map_err(kernel)?
        .into_iter()
        .map(|a| a.net)
        .collect())
}

/// Every address of `prev` that belongs to our container interface (by index, or without one)
/// must be on it.
fn check_addresses(ctr: &Rtnl, link: &Link, prev: &CniResult, ctr_index: Option<usize>) -> Result<(), CniError> {
    let have = addresses_on(ctr, link.index)?;
    for ip in prev
        .ips
        .iter()
        .filter(|ip| ip.interface.is_none() || ip.interface == ctr_index)
    {
        if !have.contains(&ip.address) {
            return Err(failed(format!(
                "Failed to match addr {} on interface {}",
                ip.address, link.name
            )));
        }
    }
    Ok(())
}

fn check_routes(ctr: &Rtnl, prev: &CniResult) -> Result<(), CniError> {
    if prev.routes.is_empty() && prev.ips.is_empty() {
        return Ok(());
    }
    let mut have = ctr.routes(netlink::Family::V4, None).map_err(kernel)?;
    have.extend(ctr.routes(netlink::Family::V6, None).map_err(kernel)?);
    for ip in &prev.ips {
        let net = ip.address.network();
        let found = have
            .iter()
            .any(|r| r.dst.prefix == net.prefix && r.dst.addr == net.addr);
        if !found {
            return Err(failed(format!("no route to {net} for address {}", ip.address)));
        }
    }
    for route in &prev.routes {
        let table = route.table.unwrap_or(RT_TABLE_MAIN);
        let found = have.iter().any(|r| {
            r.dst.prefix == route.dst.prefix
                && r.dst.addr == route.dst.network_addr()
                && r.table == table
                && route.gw.is_none_or(|gw| r.gw == Some(gw))
        });
        if !found {
            let family = if route.dst.family() == Family::V4 {
                "IPv4"
            } else {
                "IPv6"
            };
            return Err(failed(format!(
                "Expected Route {} via {} ({family}) not found in routing table",
                route.dst,
                route.gw.map(|g| g.to_string()).unwrap_or_else(|| "-".into())
            )));
        }
    }
    Ok(())
}
