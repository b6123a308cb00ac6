//! The `bridge` interface plugin (digest §8), on the crate's own rtnetlink client
//! ([`crate::netlink`]) and nftables masquerading ([`crate::masq`]).
//!
//! What it adds to the upstream behaviour (issue 4):
//! - DEL removes everything ADD made even when the netns is gone or `CNI_NETNS` is empty: the
//!   host veth is found through `prevResult`, the masquerade entries through the attachment's
//!   identity and `prevResult`'s addresses;
//! - CHECK also verifies MTU, bridge membership and the masquerade entry;
//! - GC removes masquerade entries of stale attachments (and macspoofchk rules whose veth is
//!   gone) and forwards GC to IPAM; STATUS forwards to IPAM;
//! - any failure after the IPAM ADD undoes the ADD: veth deleted, masquerading removed, IPAM DEL.
//!
//! One module per verb: [`add`], [`del`], [`check`]; [`config`] parses and validates;
//! [`masquerade`] adapts the nftables module to the attachment's identity; [`spoofcheck`]
//! installs the `macspoofchk` rules; [`linger`] keeps the
//! exit fast after nftables deletions.

pub mod add;
pub mod check;
pub mod config;
pub mod del;
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

/// `crate::cni::ipnet::IpNet` → the netlink client's `IpNet`.
pub(crate) fn to_nl(net: crate::cni::ipnet::IpNet) -> crate::netlink::IpNet {
    crate::netlink::IpNet {
        addr: net.addr,
        prefix: net.prefix,
    }
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
