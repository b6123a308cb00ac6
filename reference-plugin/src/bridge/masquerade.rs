//! The bridge's view of masquerading: entries belong to one attachment
//! `(network, containerID, ifname)` and cover its addresses. This adapter maps those calls onto
//! the nftables module [`crate::masq`] (one hash-set element per address, so ADD and DEL cost
//! the same with 1 or 1,000 attachments) and its errors onto CNI errors.

use super::kernel;
use crate::cni::config::Attachment;
use crate::cni::error::{self, CniError};
use crate::ipnet::IpNet;
use crate::masq::Masq;

fn open() -> Result<Masq, CniError> {
    Masq::open().map_err(kernel)
}

/// Masquerade traffic from `addrs` of the attachment that leaves their subnets.
pub fn setup(network: &str, container_id: &str, ifname: &str, addrs: &[IpNet]) -> Result<(), CniError> {
    let masq = open()?;
    for addr in addrs {
        masq.add(network, container_id, ifname, *addr).map_err(kernel)?;
    }
    Ok(())
}

/// Remove the attachment's masquerade entries (idempotent). With addresses (from the netns or
/// `prevResult`) only those are looked up; without any, the network's entries are scanned for
/// the attachment's owner tag. When something was removed, returns the still open nftables
/// socket: its last close waits for the kernel, so the caller keeps it open until it has
/// handed its descriptors over with [`super::linger::hand_over`].
pub fn teardown(network: &str, container_id: &str, ifname: &str, addrs: &[IpNet]) -> Result<Option<Masq>, CniError> {
    let masq = open()?;
    let ips = (!addrs.is_empty()).then_some(addrs);
    let removed = masq.del(network, container_id, ifname, ips).map_err(kernel)?;
    Ok((removed > 0).then_some(masq))
}

/// Fail unless every address of the attachment is masqueraded for it.
pub fn check(network: &str, container_id: &str, ifname: &str, addrs: &[IpNet]) -> Result<(), CniError> {
    if addrs.is_empty() {
        return Ok(());
    }
    let masq = open()?;
    if masq.check(network, container_id, ifname, addrs).map_err(kernel)? {
        Ok(())
    } else {
        let list: Vec<String> = addrs.iter().map(IpNet::to_string).collect();
        Err(CniError::with_details(
            error::CHECK_FAILED,
            format!(
                "masquerade entry missing for {} of {network}/{container_id}/{ifname}",
                list.join(", ")
            ),
            format!(
                "expected an element owned by the attachment in table inet {}",
                crate::masq::TABLE
            ),
        ))
    }
}

/// Remove the masquerade entries of `network` whose attachment is not in `valid`.
pub fn gc(network: &str, valid: &[Attachment]) -> Result<(), CniError> {
    let masq = open()?;
    let pairs: Vec<(&str, &str)> = valid
        .iter()
        .map(|a| (a.container_id.as_str(), a.ifname.as_str()))
        .collect();
    let removed = masq.gc(network, &pairs).map_err(kernel)?;
    if removed > 0 {
        super::linger::hand_over_open_files();
    }
    Ok(())
}
