//! The `bridge` interface plugin, on the crate's own rtnetlink client
//! ([`crate::netlink`]) and nftables masquerading ([`crate::masq`]).
//!
//! What it adds to the upstream behaviour:
//! - DEL removes everything ADD made even when the netns is gone or `CNI_NETNS` is empty: the
//!   host veth is found through `prevResult`, the masquerade entries through the attachment's
//!   identity and `prevResult`'s addresses;
//! - CHECK also verifies MTU, bridge membership and the masquerade entry;
//! - GC removes masquerade entries of stale attachments (and macspoofchk rules whose veth is
//!   gone), deletes retired veth ends a DEL left behind (see [`del`]) and forwards GC to IPAM;
//!   STATUS forwards to IPAM;
//! - any failure after the IPAM ADD undoes the ADD: veth deleted, masquerading removed, IPAM DEL.
//!
//! What it does differently on the way: the gratuitous ARP announcing a new container's
//! addresses (upstream relies on `arp_notify`, set before the link comes up) is sent by the
//! child ADD leaves behind, just after ADD's own work, so the bridge's flood of it to every port
//! is not part of ADD's latency (see [`crate::netlink::Announcement`]); `arp_notify` is still
//! set, but once the link is up, so later link-ups and MAC changes are announced by the kernel.
//!
//! One module per verb: [`add`], [`del`], [`check`]; [`config`] parses and validates;
//! [`gateway_port`] makes the `<bridge>.<vlan>` port that carries the gateway with `vlan`;
//! [`masquerade`] adapts the nftables module to the attachment's identity; [`spoofcheck`]
//! installs the `macspoofchk` rules; [`linger`] keeps the
//! exit fast: one child holds the nftables socket, sends ADD's gratuitous ARP and deletes
//! retired veth pairs in batches.

pub mod add;
pub mod check;
pub mod config;
pub mod del;
pub mod gateway_port;
pub mod linger;
pub mod masquerade;
pub mod spoofcheck;

use crate::cni::delegate;
use crate::cni::dispatch::{Plugin, Request};
use crate::cni::error::{self, CniError};
use crate::cni::result::CniResult;
use config::BridgeConfig;

/// The bridge plugin.
#[derive(Debug, Default, Clone, Copy)]
pub struct Bridge;

/// A netlink failure as a CNI error (code 103) with the operation that failed.
pub(crate) fn kernel(e: crate::netlink::Error) -> CniError {
    CniError::new(error::KERNEL_OPERATION_FAILED, e.to_string())
}

impl Plugin for Bridge {
    fn about(&self) -> String {
        format!("CNI bridge plugin (Rust reference) v{}", env!("CARGO_PKG_VERSION"))
    }

    fn add(&self, req: &Request) -> Result<CniResult, CniError> {
        add::add(req)
    }

    fn del(&self, req: &Request) -> Result<(), CniError> {
        del::del(req)
    }

    fn check(&self, req: &Request) -> Result<(), CniError> {
        check::check(req)
    }

    fn gc(&self, req: &Request) -> Result<(), CniError> {
        let cfg = BridgeConfig::load(&req.conf, "", false)?;
        let mut failures = Vec::new();
        if let Err(e) = sweep_tombstones() {
            failures.push(e);
        }
        if cfg.ip_masq {
            if let Some(valid) = &req.conf.valid_attachments {
                if let Err(e) = masquerade::gc(&req.conf.name, valid) {
                    failures.push(e);
                }
            }
        }
        if cfg.macspoofchk {
            if let Some(valid) = &req.conf.valid_attachments {
                let host = crate::netlink::Rtnl::new().map_err(kernel)?;
                let exists = |name: &str| host.link_by_name(name).is_ok_and(|l| l.is_some());
                if let Err(e) = spoofcheck::gc(valid, exists) {
                    failures.push(e);
                }
            }
        }
        if let Some(ipam) = &cfg.ipam_type {
            if let Err(e) = delegate::run(ipam, &req.env.path_dirs(), "GC", &req.stdin) {
                failures.push(e.context(format!("IPAM plugin {ipam} GC")));
            }
        }
        join_errors(failures)
    }

    fn status(&self, req: &Request) -> Result<(), CniError> {
        let cfg = BridgeConfig::load(&req.conf, "", false)?;
        if let Some(ipam) = &cfg.ipam_type {
            delegate::run(ipam, &req.env.path_dirs(), "STATUS", &req.stdin)?;
        }
        Ok(())
    }
}

/// Delete the retired veth ends in the host namespace: the device group
/// [`linger::RETIRED_GROUP`], and links named [`del::TOMBSTONE_PREFIX`]… that are down and
/// released from any bridge. Normally a DEL's child has deleted them within milliseconds, so
/// any found here outlived a child that died.
fn sweep_tombstones() -> Result<(), CniError> {
    let host = crate::netlink::Rtnl::new().map_err(kernel)?;
    host.delete_link_group(linger::RETIRED_GROUP).map_err(kernel)?;
    for link in host.links().map_err(kernel)? {
        let retired = link.name.starts_with(del::TOMBSTONE_PREFIX)
            && link.is_kind("veth")
            && !link.is_up()
            && link.master.is_none();
        if retired {
            host.delete_link(link.index).map_err(kernel)?;
        }
    }
    Ok(())
}

/// One error stays as it is; several are joined (`; `), keeping the first code.
pub(crate) fn join_errors(mut errors: Vec<CniError>) -> Result<(), CniError> {
    match errors.len() {
        0 => Ok(()),
        1 => Err(errors.remove(0)),
        _ => {
            let code = errors[0].code;
            let msg = errors.iter().map(|e| e.msg.clone()).collect::<Vec<_>>().join("; ");
            Err(CniError::new(code, msg))
        }
    }
}
