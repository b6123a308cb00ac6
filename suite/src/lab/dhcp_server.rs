//! A DHCP segment for plugins whose addresses come from DHCP: a namespace of the lab holding a
//! bridge with the server's address and a real DHCP server (dnsmasq) on it, and one port on the
//! bridge for every container that asks for one.
//!
//! ```text
//!  [lab-dhcp ns] lab-dhcp0 (bridge, 10.91.0.1/24, dnsmasq) -- dpN <-veth-> CNI_IFNAME [container]
//! ```
//!
//! dnsmasq runs in the foreground with no configuration file, DNS off, its lease file and log in
//! the lab's private `/run`, so nothing of it exists outside the lab.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use super::sandbox::Sandbox;
use super::service::{Service, ServiceSpec, SERVICE_DIR};
use super::{LabError, NETNS_DIR};
use crate::net::{IpNet, Rtnl};
use crate::ns;

/// Name of the bridge the server and the containers share.
pub const SEGMENT_BRIDGE: &str = "lab-dhcp0";
/// Name of the namespace file of the server's namespace.
pub const SERVER_NETNS: &str = "lab-dhcp";

/// What the DHCP server hands out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpServerSpec {
    /// The dnsmasq binary.
    pub dnsmasq: PathBuf,
    /// The server's own address on the segment, a CIDR (it is also the router it announces).
    pub server: String,
    /// First address of the pool.
    pub range_start: String,
    /// Last address of the pool.
    pub range_end: String,
}

/// The running segment.
#[derive(Debug)]
pub struct DhcpSegment {
    netns: OwnedFd,
    leases: PathBuf,
    ports: AtomicU32,
    server: Service,
}

impl DhcpSegment {
    /// Builds the namespace and bridge and starts dnsmasq; returns once it listens on port 67.
    pub(super) fn start(sandbox: &Sandbox, spec: &DhcpServerSpec) -> Result<Self, LabError> {
        let mnt = sandbox.mnt();
        let server_net: IpNet = spec
            .server
            .parse()
            .map_err(|e| LabError::Other(format!("DHCP server address {:?}: {e}", spec.server)))?;
        let netns = ns::create_netns_file(mnt, &Path::new(NETNS_DIR).join(SERVER_NETNS))?;
        let rtnl = Rtnl::in_netns(netns.as_fd())?;
        rtnl.create_bridge(SEGMENT_BRIDGE)?;
        let bridge = rtnl.index_of(SEGMENT_BRIDGE)?;
        rtnl.add_address(bridge, server_net)?;
        rtnl.set_up(bridge, true)?;

        let leases = Path::new(SERVICE_DIR).join("dnsmasq.leases");
        let netmask = prefix_to_mask(server_net.prefix);
        let args = vec![
            "--keep-in-foreground".to_string(),
            "--conf-file=/dev/null".into(),
            "--port=0".into(),
            // No user switch: the lab's files stay writable and no passwd entry is needed.
            "--user=".into(),
            "--group=".into(),
            format!("--interface={SEGMENT_BRIDGE}"),
            "--bind-interfaces".into(),
            format!("--dhcp-range={},{},{netmask},1h", spec.range_start, spec.range_end),
            format!("--dhcp-leasefile={}", leases.display()),
            format!("--pid-file={}", Path::new(SERVICE_DIR).join("dnsmasq.pid").display()),
            "--dhcp-authoritative".into(),
            "--no-ping".into(),
            "--log-facility=-".into(),
            "--log-dhcp".into(),
        ];
        let mut server = Service::start(
            &ServiceSpec {
                name: "dnsmasq".into(),
                program: spec.dnsmasq.clone(),
                args,
            },
            sandbox,
            netns.as_fd(),
        )?;
        let net = netns.as_fd();
        server.wait_ready(mnt, || listens_on_dhcp_port(net))?;
        Ok(DhcpSegment {
            netns,
            leases,
            ports: AtomicU32::new(0),
            server,
        })
    }

    /// Gives the container namespace `container` a link `ifname` on the segment (a veth whose
    /// other end is a bridge port), up, as an interface plugin would before it calls its IPAM.
    pub(super) fn plug(&self, container: BorrowedFd<'_>, ifname: &str) -> Result<(), LabError> {
        let n = self.ports.fetch_add(1, Ordering::SeqCst);
        let port = format!("dp{n}");
        let rtnl = Rtnl::in_netns(self.netns.as_fd())?;
        rtnl.create_veth(&port, ifname, Some(container))?;
        let port_index = rtnl.index_of(&port)?;
        rtnl.set_master(port_index, Some(rtnl.index_of(SEGMENT_BRIDGE)?))?;
        rtnl.set_up(port_index, true)?;
        let inside = Rtnl::in_netns(container)?;
        inside.set_up(inside.index_of(ifname)?, true)?;
        Ok(())
    }

    /// The server's lease file inside the lab.
    pub fn lease_file(&self) -> &Path {
        &self.leases
    }

    /// The dnsmasq service.
    pub fn server(&self) -> &Service {
        &self.server
    }
}

/// Active leases from a dnsmasq lease file ("expiry mac ip hostname client-id" per line), one
/// line each without the expiry time (it moves on every renewal).
pub fn parse_leases(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f.as_slice() {
                [_expiry, mac, ip, _host, client, ..] => Some(format!("dhcp lease {ip} mac={mac} client={client}")),
                [_expiry, mac, ip, ..] => Some(format!("dhcp lease {ip} mac={mac}")),
                _ => None,
            }
        })
        .collect()
}

/// True once a socket in the namespace `net` listens on UDP port 67.
fn listens_on_dhcp_port(net: BorrowedFd<'_>) -> Result<bool, LabError> {
    Ok(ns::run_in(Some(net), None, || {
        let table = std::fs::read_to_string("/proc/thread-self/net/udp").unwrap_or_default();
        Ok(table
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().nth(1))
            .any(|local| local.ends_with(":0043")))
    })?)
}

fn prefix_to_mask(prefix: u8) -> std::net::Ipv4Addr {
    let bits = u32::MAX.checked_shl(32 - u32::from(prefix.min(32))).unwrap_or(0);
    std::net::Ipv4Addr::from(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_dnsmasq_lease_lines_without_expiry() {
        let text =
            "1700000000 aa:bb:cc:dd:ee:ff 10.91.0.23 * ff:00:11\n\n1700000100 02:00:00:00:00:01 10.91.0.24 host\n";
        assert_eq!(
            parse_leases(text),
            [
                "dhcp lease 10.91.0.23 mac=aa:bb:cc:dd:ee:ff client=ff:00:11",
                "dhcp lease 10.91.0.24 mac=02:00:00:00:00:01"
            ]
        );
    }

    #[test]
    fn masks_from_prefixes() {
        assert_eq!(prefix_to_mask(24).to_string(), "255.255.255.0");
        assert_eq!(prefix_to_mask(0).to_string(), "0.0.0.0");
        assert_eq!(prefix_to_mask(32).to_string(), "255.255.255.255");
    }
}
