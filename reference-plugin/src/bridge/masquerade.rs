//! The bridge's view of masquerading: entries belong to one attachment
//! `(network, containerID, ifname)` and cover its addresses. This adapter turns those into calls
//! of the nftables module [`crate::masq`].
//!
//! Until that module offers its API, `ipMasq: true` is refused with code 2 instead of being
//! silently ignored.

use crate::cni::config::Attachment;
use crate::cni::error::{self, CniError};
use crate::cni::ipnet::IpNet;

fn unavailable() -> CniError {
    CniError::with_details(
        error::UNSUPPORTED_FIELD,
        "ipMasq: true is not supported by this build yet",
        "the nftables masquerade backend is not wired in; set ipMasq to false",
    )
}

/// Masquerade traffic from `addrs` of the attachment leaving their subnets.
pub fn setup(
    network: &str,
    container_id: &str,
    ifname: &str,
    addrs: &[IpNet],
) -> Result<(), CniError> {
    let _ = (network, container_id, ifname, addrs);
    Err(unavailable())
}

/// Remove the attachment's masquerade entries (idempotent).
pub fn teardown(
    network: &str,
    container_id: &str,
    ifname: &str,
    addrs: &[IpNet],
) -> Result<(), CniError> {
    let _ = (network, container_id, ifname, addrs);
    Ok(())
}

/// Fail unless the attachment's masquerade entries exist for every address.
pub fn check(
    network: &str,
    container_id: &str,
    ifname: &str,
    addrs: &[IpNet],
) -> Result<(), CniError> {
    let _ = (network, container_id, ifname, addrs);
    Err(unavailable())
}

/// Remove the masquerade entries of `network` whose attachment is not in `valid`.
pub fn gc(network: &str, valid: &[Attachment]) -> Result<(), CniError> {
    let _ = (network, valid);
    Ok(())
}
