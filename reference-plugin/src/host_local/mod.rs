//! The `host-local` IPAM plugin, a drop-in for the upstream one, covering spec 1.1.0 completely.
//!
//! - ADD: one address per range set, round robin from `last_reserved_ip.N`, requested addresses
//!   honoured (`CNI_ARGS` `IP=`, `args.cni.ips`, `runtimeConfig.ips`), all-or-nothing: a failure
//!   releases exactly what this ADD reserved.
//! - DEL: releases every address of `(CNI_CONTAINERID, CNI_IFNAME)`; idempotent.
//! - CHECK: the attachment holds at least one reservation.
//! - GC: removes reservations whose `(containerID, ifname)` is not in
//!   `cni.dev/valid-attachments` (or the legacy `cni.dev/attachments`).
//! - STATUS: code 50 when the store cannot be written or a range set has no free address left
//!   (ADD needs one address from *every* set, so one exhausted set already makes ADD fail).
//!
//! The store is described in [`store`]; [`index`] keeps ADD and DEL from reading every
//! reservation file.

pub mod config;
pub mod dns;
pub mod index;
pub mod range;
pub mod store;

use crate::cni::dispatch::{Plugin, Request};
use crate::cni::error::{self, CniError};
use crate::cni::result::{CniResult, IpConfig};
use crate::cni::trace::mark;
use crate::ipnet::IpNet;
use config::{IpamConfig, Needs};
use std::net::IpAddr;
use store::Store;

/// The host-local plugin.
#[derive(Debug, Default, Clone, Copy)]
pub struct HostLocal;

fn store_error(cfg: &IpamConfig, e: std::io::Error) -> CniError {
    CniError::with_details(
        error::IO_FAILURE,
        format!("host-local store {}: {e}", cfg.data_dir.join(&cfg.network).display()),
        "check that ipam.dataDir exists and is writable by the plugin",
    )
}

fn open_store(cfg: &IpamConfig, create: bool) -> Result<Option<Store>, CniError> {
    Store::open(&cfg.data_dir, &cfg.network, create).map_err(|e| store_error(cfg, e))
}

impl HostLocal {
    /// Allocate one address per range set. Every address reserved is pushed to `reserved` at
    /// once, so the caller can undo exactly this ADD's reservations when it fails halfway.
    fn allocate(
        &self,
        cfg: &IpamConfig,
        store: &Store,
        cid: &str,
        ifname: &str,
        reserved: &mut Vec<IpAddr>,
    ) -> Result<Vec<IpConfig>, CniError> {
        let held = store.held_by(cid, ifname).map_err(|e| store_error(cfg, e))?;
        let mut requested: Vec<IpAddr> = cfg.requested.clone();
        let mut ips = Vec::with_capacity(cfg.range_sets.len());
        for (index, set) in cfg.range_sets.iter().enumerate() {
            let wanted = requested
                .iter()
                .position(|ip| set.contains(ip))
                .map(|pos| requested.remove(pos));
            let (ip, range) = match wanted {
                Some(ip) => {
                    let range = set
                        .range_for(&ip)
                        .ok_or_else(|| CniError::config(format!("{ip} not in range set {set}")))?;
                    if ip == range.gateway {
                        return Err(CniError::config(format!(
                            "failed to allocate for range {index}: requested ip {ip} is subnet's gateway"
                        )));
                    }
                    if !store.reserve(ip, cid, ifname, index).map_err(|e| store_error(cfg, e))? {
                        return Err(CniError::with_details(
                            error::ADDRESS_UNAVAILABLE,
                            format!(
                                "failed to allocate for range {index}: requested IP address {ip} is not available in range set {set}"
                            ),
                            "another attachment holds it; choose another address or DEL the holder",
                        ));
                    }
                    reserved.push(ip);
                    (ip, range)
                }
                None => {
                    if let Some(dup) = held.iter().find(|ip| set.contains(ip)) {
                        return Err(CniError::with_details(
                            error::DUPLICATE_ALLOCATION,
                            format!(
                                "failed to allocate for range {index}: {dup} has been allocated to {cid}, duplicate allocation is not allowed"
                            ),
                            format!("run DEL for container {cid} interface {ifname} before adding it again"),
                        ));
                    }
                    let mut chosen = None;
                    for (_, candidate) in set.walk(store.last_reserved(index)) {
                        if store
                            .reserve(candidate, cid, ifname, index)
                            .map_err(|e| store_error(cfg, e))?
                        {
                            chosen = Some(candidate);
                            reserved.push(candidate);
                            break;
                        }
                    }
                    let Some(ip) = chosen else {
                        return Err(CniError::with_details(
                            error::ADDRESS_UNAVAILABLE,
                            format!(
                                "failed to allocate for range {index}: no IP addresses available in range set: {set}"
                            ),
                            "every address is reserved; DEL or GC stale attachments, or widen the range",
                        ));
                    };
                    let range = set
                        .range_for(&ip)
                        .ok_or_else(|| CniError::new(error::INTERNAL, format!("{ip} not in range set {set}")))?;
                    (ip, range)
                }
            };
            ips.push(IpConfig {
                interface: None,
                address: IpNet {
                    addr: ip,
                    prefix: range.subnet.prefix,
                },
                gateway: Some(range.gateway),
            });
        }
        if !requested.is_empty() {
            let list: Vec<String> = requested.iter().map(IpAddr::to_string).collect();
            return Err(CniError::with_details(
                error::ADDRESS_UNAVAILABLE,
                format!("failed to allocate all requested IPs: {}", list.join(" ")),
                "a requested address lies in none of the configured ranges (or two fall in one range set)",
            ));
        }
        Ok(ips)
    }
}

impl Plugin for HostLocal {
    fn about(&self) -> String {
        format!("CNI host-local plugin (Rust reference) v{}", env!("CARGO_PKG_VERSION"))
    }

    fn add(&self, req: &Request) -> Result<CniResult, CniError> {
        let cfg = IpamConfig::load(&req.conf, &req.env.args, Needs::Allocation)?;
        let dns = match &cfg.resolv_conf {
            Some(path) => dns::parse_resolv_conf(path)?,
            None => Default::default(),
        };
        mark("host-local add: config read");
        let store =
            open_store(&cfg, true)?.ok_or_else(|| CniError::new(error::INTERNAL, "store vanished while opening"))?;
        mark("host-local add: store open and locked");
        let (cid, ifname) = (&req.env.container_id, &req.env.ifname);
        let mut reserved = Vec::new();
        let last_before: Vec<Option<IpAddr>> = (0..cfg.range_sets.len()).map(|i| store.last_reserved(i)).collect();
        let outcome = self.allocate(&cfg, &store, cid, ifname, &mut reserved);
        mark("host-local add: allocated");
        match outcome {
            Ok(ips) => Ok(CniResult {
                interfaces: Vec::new(),
                ips,
                routes: cfg.routes.clone(),
                dns,
            }),
            Err(e) => {
                // All or nothing: give back exactly what this ADD reserved, never an address the
                // attachment held before (a duplicate ADD must not free the original).
                let owner = store::Owner {
                    container_id: cid.trim().to_string(),
                    ifname: Some(ifname.to_string()),
                };
                for ip in reserved {
                    let _ = store.remove(ip, &owner);
                }
                for (index, previous) in last_before.into_iter().enumerate() {
                    if store.last_reserved(index) != previous {
                        let _ = store.restore_last_reserved(index, previous);
                    }
                }
                Err(e)
            }
        }
    }

    fn del(&self, req: &Request) -> Result<(), CniError> {
        let cfg = IpamConfig::load(&req.conf, &req.env.args, Needs::StoreOnly)?;
        let Some(store) = open_store(&cfg, false)? else {
            return Ok(());
        };
        store
            .release(&req.env.container_id, &req.env.ifname)
            .map(|_| ())
            .map_err(|e| store_error(&cfg, e))
    }

    fn check(&self, req: &Request) -> Result<(), CniError> {
        let cfg = IpamConfig::load(&req.conf, &req.env.args, Needs::StoreOnly)?;
        let found = match open_store(&cfg, false)? {
            Some(store) => !store
                .held_by(&req.env.container_id, &req.env.ifname)
                .map_err(|e| store_error(&cfg, e))?
                .is_empty(),
            None => false,
        };
        if found {
            Ok(())
        } else {
            Err(CniError::with_details(
                error::CHECK_FAILED,
                format!(
                    "host-local: Failed to find address added by container {}",
                    req.env.container_id
                ),
                format!(
                    "no reservation for interface {} in {}",
                    req.env.ifname,
                    cfg.data_dir.join(&cfg.network).display()
                ),
            ))
        }
    }

    fn gc(&self, req: &Request) -> Result<(), CniError> {
        let cfg = IpamConfig::load(&req.conf, "", Needs::StoreOnly)?;
        let Some(valid) = &req.conf.valid_attachments else {
            // No list means "nothing is known to be valid" only for a runtime that says so;
            // without the key we refuse to guess and remove nothing.
            return Ok(());
        };
        let Some(store) = open_store(&cfg, false)? else {
            return Ok(());
        };
        let reservations = store.reservations().map_err(|e| store_error(&cfg, e))?;
        let mut failures = Vec::new();
        for r in reservations {
            let keep = valid.iter().any(|a| {
                a.container_id == r.owner.container_id && r.owner.ifname.as_deref().is_none_or(|i| i == a.ifname)
            });
            if !keep {
                if let Err(e) = store.remove(r.ip, &r.owner) {
                    failures.push(format!("{}: {e}", r.ip));
                }
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(CniError::io(format!(
                "host-local GC could not remove {}",
                failures.join("; ")
            )))
        }
    }

    fn status(&self, req: &Request) -> Result<(), CniError> {
        let cfg = IpamConfig::load(&req.conf, "", Needs::StoreOnly)?;
        let unavailable =
            |msg: String, details: &str| CniError::with_details(error::PLUGIN_NOT_AVAILABLE, msg, details);
        let store = match Store::open(&cfg.data_dir, &cfg.network, true) {
            Ok(Some(store)) => store,
            Ok(None) => {
                return Err(unavailable(
                    format!("host-local store {} could not be created", cfg.data_dir.display()),
                    "ipam.dataDir must be a writable directory",
                ))
            }
            Err(e) => {
                return Err(unavailable(
                    format!(
                        "host-local store {} is not usable: {e}",
                        cfg.data_dir.join(&cfg.network).display()
                    ),
                    "ipam.dataDir must be a writable directory",
                ))
            }
        };
        store.probe_writable().map_err(|e| {
            unavailable(
                format!("host-local store {} is not writable: {e}", store.dir().display()),
                "ipam.dataDir must be a writable directory",
            )
        })?;
        let reservations = store.reservations().map_err(|e| store_error(&cfg, e))?;
        for (index, set) in cfg.range_sets.iter().enumerate() {
            let capacity = set.capacity();
            if capacity == u128::MAX {
                continue;
            }
            let used = reservations
                .iter()
                .filter(|r| set.range_for(&r.ip).is_some_and(|range| range.gateway != r.ip))
                .count() as u128;
            if used >= capacity {
                return Err(unavailable(
                    format!("host-local: range set {index} ({set}) has no free address"),
                    "ADD needs one address from every range set; DEL or GC stale attachments, or widen the range",
                ));
            }
        }
        Ok(())
    }
}
