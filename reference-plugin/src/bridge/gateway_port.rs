//! The VLAN gateway port: with `isGateway` and `vlan` both set the
//! gateway address cannot sit on the bridge itself (the bridge's own port is not in the VLAN),
//! so a veth pair stands in for it. The end named `<bridge>.<vlan>` stays in the host namespace
//! and carries the gateway address(es); the other end is a port of the bridge with the VLAN as
//! untagged PVID, set up like a container port. It belongs to the network, like the bridge: made
//! by the first ADD, reused by the next ones, never removed by DEL.

use super::config::BridgeConfig;
use super::{add, kernel};
use crate::cni::error::{self, CniError};
use crate::cni::result::CniResult;
use crate::ipnet::IpNet;
use crate::netlink::{write_sysctl, Link, Rtnl, VethSpec};

/// Name of the gateway port of `bridge` on `vlan`: `<bridge>.<vlan>`.
pub fn name(bridge: &str, vlan: u16) -> String {
    format!("{bridge}.{vlan}")
}

/// The gateway end of the port of `cfg.vlan` on `bridge`, created (and brought up) when missing.
pub fn ensure(host: &Rtnl, cfg: &BridgeConfig, bridge: &Link) -> Result<Link, CniError> {
    let gw_name = name(&cfg.bridge, cfg.vlan);
    if let Some(link) = host.link_by_name(&gw_name).map_err(kernel)? {
        return usable(link, &gw_name);
    }
    let created = host.create_veth_random_name(&VethSpec {
        name: "veth",
        mtu: Some(bridge.mtu),
        mac: None,
        master: Some(bridge.index),
        up: true,
        peer_name: &gw_name,
        peer_netns: None,
        peer_mtu: Some(bridge.mtu),
        peer_mac: None,
    });
    let port = match created {
        Ok(port) => port,
        // A concurrent ADD of the same network made it first.
        Err(e) if e.is_exists() => {
            let link = host.link_by_name(&gw_name).map_err(kernel)?.ok_or_else(|| kernel(e))?;
            return usable(link, &gw_name);
        }
        Err(e) => {
            return Err(CniError::with_details(
                error::KERNEL_OPERATION_FAILED,
                format!("could not create the VLAN gateway port {gw_name:?}"),
                e.to_string(),
            ))
        }
    };
    // The bridge end is a plain port: no IPv6 of its own (see add.rs for why).
    let _ = write_sysctl(&format!("net/ipv6/conf/{}/disable_ipv6", port.name), "1");
    // Same VLAN settings as a container port on this network, without the container-only ones.
    let port_cfg = BridgeConfig {
        vlan_trunk: Vec::new(),
        hairpin_mode: false,
        port_isolation: false,
        ..cfg.clone()
    };
    let configured = add::configure_port(host, &port_cfg, port.index).and_then(|()| {
        let gw = host.link_by_name(&gw_name).map_err(kernel)?.ok_or_else(|| {
            CniError::new(
                error::KERNEL_OPERATION_FAILED,
                format!("{gw_name} vanished after creation"),
            )
        })?;
        let _ = write_sysctl(&format!("net/ipv6/conf/{gw_name}/accept_ra"), "0");
        host.set_up(gw.index, true).map_err(kernel)?;
        Ok(gw)
    });
    match configured {
        Ok(gw) => Ok(host.link_by_index(gw.index).map_err(kernel)?.unwrap_or(gw)),
        Err(e) => {
            // Half-made: remove it so the next ADD starts again instead of reusing it.
            let _ = host.delete_link(port.index);
            Err(e)
        }
    }
}

/// An existing `<bridge>.<vlan>` is reused only if it is a veth (what this plugin makes).
fn usable(link: Link, gw_name: &str) -> Result<Link, CniError> {
    if link.is_kind("veth") {
        Ok(link)
    } else {
        Err(CniError::config(format!(
            "{gw_name:?} already exists but is not a VLAN gateway port (a veth)"
        )))
    }
}

/// CHECK: the gateway port exists, is a veth whose peer is a port of `bridge`, and carries
/// every gateway of `prev` (with its address's prefix); its MAC matches `prev` if listed there.
pub fn check(host: &Rtnl, cfg: &BridgeConfig, bridge: &Link, prev: &CniResult) -> Result<(), CniError> {
    let failed = |msg: String| CniError::new(error::CHECK_FAILED, msg);
    let gw_name = name(&cfg.bridge, cfg.vlan);
    let link = host
        .link_by_name(&gw_name)
        .map_err(kernel)?
        .ok_or_else(|| failed(format!("VLAN gateway port {gw_name} was not found")))?;
    if !link.is_kind("veth") {
        return Err(failed(format!("VLAN gateway port {gw_name} is not a veth")));
    }
    let peer = match link.link {
        Some(index) if link.link_netnsid.is_none() => host.link_by_index(index).map_err(kernel)?,
        _ => None,
    };
    if peer.and_then(|p| p.master) != Some(bridge.index) {
        return Err(failed(format!(
            "the peer of VLAN gateway port {gw_name} is not a port of bridge {}",
            cfg.bridge
        )));
    }
    if let Some(entry) = prev
        .interfaces
        .iter()
        .find(|i| i.name == gw_name && i.sandbox.is_empty())
    {
        let have = link.mac.map(|m| m.to_string()).unwrap_or_default();
        if !entry.mac.is_empty() && !have.eq_ignore_ascii_case(&entry.mac) {
            return Err(failed(format!(
                "VLAN gateway port {gw_name} Mac {} doesn't match: {have}",
                entry.mac
            )));
        }
    }
    let have = super::check::addresses_on(host, link.index)?;
    for ip in &prev.ips {
        let Some(gw) = ip.gateway else { continue };
        let want = IpNet {
            addr: gw,
            prefix: ip.address.prefix,
        };
        if !have.contains(&want) {
            return Err(failed(format!(
                "gateway address {want} is not on VLAN gateway port {gw_name}"
            )));
        }
    }
    Ok(())
}
