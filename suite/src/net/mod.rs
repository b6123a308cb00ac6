//! Synchronous rtnetlink client used by the lab and by kernel-truth checks.
//!
//! Design: a [`Rtnl`] owns one `NETLINK_ROUTE` socket. A netlink socket stays bound to the network
//! namespace it was created in, whatever thread later uses it, so [`Rtnl::in_netns`] creates the
//! socket on a short-lived thread that has entered the target namespace and hands it back. No
//! thread of the suite ever stays in a foreign namespace, which avoids the Rust `setns` pitfalls
//! (thread pools, async executors and `std` internals all assume a fixed namespace per thread).
//!
//! The suite deliberately uses the low-level `netlink-packet-route` + `netlink-sys` crates without
//! an async runtime (the same choice netavark made): every call is a request and a bounded read of
//! its answer, which keeps errors local and the code free of executor state.

mod build;
pub(crate) mod conn;
mod decode;
mod types;

pub use types::{AddrInfo, BadCidr, IpNet, LinkInfo, RouteInfo};

use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::{Mutex, MutexGuard};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::address::AddressMessage;
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use netlink_packet_route::route::RouteMessage;
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use conn::{Conn, Exchange};

/// Errors from netlink requests.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The kernel answered a request with an error code.
    #[error("netlink {op}: {source}")]
    Kernel {
        /// What was asked (e.g. "create veth eth0").
        op: String,
        /// The errno the kernel returned.
        source: std::io::Error,
    },
    /// The socket could not be opened or used.
    #[error("netlink socket: {0}")]
    Socket(#[source] std::io::Error),
    /// Entering a namespace to open a socket failed.
    #[error("entering network namespace: {0}")]
    Namespace(#[source] std::io::Error),
    /// A message from the kernel could not be decoded.
    #[error("decoding netlink message: {0}")]
    Decode(String),
    /// A named link was not found.
    #[error("no link named {0:?}")]
    NoSuchLink(String),
    /// The request itself is malformed and was not sent (e.g. a route without destination and
    /// gateway, whose family cannot be known).
    #[error("invalid netlink request: {0}")]
    InvalidRequest(String),
}

impl NetError {
    /// The errno of a [`NetError::Kernel`] answer (positive, e.g. `libc::EEXIST`), `None` for
    /// every other error.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetError::Kernel { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// Result alias for this module.
pub type NetResult<T> = Result<T, NetError>;

/// A route netlink socket bound to one network namespace.
///
/// Requests are serialised by an internal lock, so an `Rtnl` can be shared between threads; it is
/// `Send` and `Sync`.
pub struct Rtnl {
    conn: Mutex<Conn<RouteNetlinkMessage>>,
}

impl std::fmt::Debug for Rtnl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rtnl").finish_non_exhaustive()
    }
}

impl Rtnl {
    /// Opens a socket in the calling thread's network namespace.
    pub fn new() -> NetResult<Self> {
        Ok(Self {
            conn: Mutex::new(Conn::open(netlink_sys::protocols::NETLINK_ROUTE)?),
        })
    }

    /// Opens a socket bound to the network namespace `netns` (an open `/proc/.../ns/net` or
    /// bind-mounted netns file), without moving the calling thread.
    pub fn in_netns(netns: BorrowedFd<'_>) -> NetResult<Self> {
        std::thread::scope(|scope| {
            let opener = scope.spawn(move || {
                // Only this short-lived thread enters the namespace; it ends right after.
                nix::sched::setns(netns, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(|e| NetError::Namespace(e.into()))?;
                Rtnl::new()
            });
            opener.join().unwrap_or_else(|_| {
                Err(NetError::Namespace(std::io::Error::other(
                    "the thread opening the socket panicked",
                )))
            })
        })
    }

    fn lock(&self) -> MutexGuard<'_, Conn<RouteNetlinkMessage>> {
        // A panic while holding the lock cannot leave the socket half-read in a way the next
        // exchange does not cope with (stale sequence numbers are skipped), so poisoning is ignored.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn dump(&self, message: RouteNetlinkMessage, op: &str) -> NetResult<Vec<RouteNetlinkMessage>> {
        self.lock().request(message, Exchange::Dump, op)
    }

    fn ack(&self, message: RouteNetlinkMessage, extra_flags: u16, op: &str) -> NetResult<()> {
        self.lock().request(message, Exchange::Ack(extra_flags), op).map(drop)
    }

    /// Sends a single-object `RTM_GETLINK` and decodes its answer; `ENODEV` means no such link.
    fn get_link(&self, query: LinkMessage, op: &str) -> NetResult<Option<LinkInfo>> {
        match self
            .lock()
            .request(RouteNetlinkMessage::GetLink(query), Exchange::Ack(0), op)
        {
            Ok(answers) => Ok(answers.iter().find_map(|m| match m {
                RouteNetlinkMessage::NewLink(link) => Some(decode::link_info(link)),
                _ => None,
            })),
            Err(e) if e.errno() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every link in the namespace.
    pub fn links(&self) -> NetResult<Vec<LinkInfo>> {
        let answers = self.dump(RouteNetlinkMessage::GetLink(LinkMessage::default()), "dump links")?;
        Ok(answers
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(link) => Some(decode::link_info(link)),
                _ => None,
            })
            .collect())
    }

    /// The link called `name`, if any.
    pub fn link_by_name(&self, name: &str) -> NetResult<Option<LinkInfo>> {
        // The kernel refuses names that cannot exist (empty, longer than IFNAMSIZ-1) with EINVAL.
        if name.is_empty() || name.len() > 15 || name.contains('\0') {
            return Ok(None);
        }
        let query = build::link_with(vec![LinkAttribute::IfName(name.to_string())]);
        self.get_link(query, &format!("get link {name}"))
    }

    /// The link with interface index `index`, if any.
    pub fn link_by_index(&self, index: u32) -> NetResult<Option<LinkInfo>> {
        if index == 0 || index > i32::MAX as u32 {
            return Ok(None);
        }
        self.get_link(build::link_by_index(index), &format!("get link index {index}"))
    }

    /// The index of the link called `name`, or [`NetError::NoSuchLink`].
    pub fn index_of(&self, name: &str) -> NetResult<u32> {
        self.link_by_name(name)?
            .map(|l| l.index)
            .ok_or_else(|| NetError::NoSuchLink(name.to_string()))
    }

    /// Every address of every link, both families.
    pub fn addresses(&self) -> NetResult<Vec<AddrInfo>> {
        let answers = self.dump(
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
            "dump addresses",
        )?;
        Ok(answers
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(addr) => decode::addr_info(addr),
                _ => None,
            })
            .collect())
    }

    /// The addresses (both families) of the link with index `index`.
    pub fn addresses_of(&self, index: u32) -> NetResult<Vec<AddrInfo>> {
        let mut all = self.addresses()?;
        all.retain(|a| a.index == index);
        Ok(all)
    }

    /// Every route of both families in every table (main, local, and policy tables).
    pub fn routes(&self) -> NetResult<Vec<RouteInfo>> {
        let mut routes = Vec::new();
        for (family, name) in [
            (AddressFamily::Inet, "dump IPv4 routes"),
            (AddressFamily::Inet6, "dump IPv6 routes"),
        ] {
            let mut query = RouteMessage::default();
            query.header.address_family = family;
            // Without strict checking the kernel ignores the table in a dump request and
            // returns every table.
            let answers = self.dump(RouteNetlinkMessage::GetRoute(query), name)?;
            routes.extend(answers.iter().filter_map(|m| match m {
                RouteNetlinkMessage::NewRoute(route) => decode::route_info(route),
                _ => None,
            }));
        }
        Ok(routes)
    }

    /// Creates a veth pair `name` <-> `peer`. When `peer_netns` is given the peer end is created
    /// directly in that namespace.
    pub fn create_veth(&self, name: &str, peer: &str, peer_netns: Option<BorrowedFd<'_>>) -> NetResult<()> {
        let op = match peer_netns {
            Some(fd) => format!("create veth {name}/{peer} (peer in netns fd {})", fd.as_raw_fd()),
            None => format!("create veth {name}/{peer}"),
        };
        let msg = build::new_veth(name, peer, peer_netns.map(|fd| fd.as_raw_fd()));
        self.ack(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL, &op)
    }

    /// Creates an 802.1Q VLAN link `name` with tag `id` on the link with index `parent`.
    pub fn create_vlan(&self, name: &str, parent: u32, id: u16) -> NetResult<()> {
        let op = format!("create vlan {name} (id {id} on link {parent})");
        self.ack(
            RouteNetlinkMessage::NewLink(build::new_vlan(name, parent, id)),
            NLM_F_CREATE | NLM_F_EXCL,
            &op,
        )
    }

    /// Creates a Linux bridge.
    pub fn create_bridge(&self, name: &str) -> NetResult<()> {
        self.ack(
            RouteNetlinkMessage::NewLink(build::new_bridge(name)),
            NLM_F_CREATE | NLM_F_EXCL,
            &format!("create bridge {name}"),
        )
    }

    /// Deletes a link by index.
    pub fn delete_link(&self, index: u32) -> NetResult<()> {
        self.ack(
            RouteNetlinkMessage::DelLink(build::link_by_index(index)),
            0,
            &format!("delete link index {index}"),
        )
    }

    /// Sets a link administratively up or down.
    pub fn set_up(&self, index: u32, up: bool) -> NetResult<()> {
        let state = if up { "up" } else { "down" };
        self.ack(
            RouteNetlinkMessage::SetLink(build::set_up(index, up)),
            0,
            &format!("set link index {index} {state}"),
        )
    }

    /// Sets a link's MTU.
    pub fn set_mtu(&self, index: u32, mtu: u32) -> NetResult<()> {
        let mut msg = build::link_by_index(index);
        msg.attributes.push(LinkAttribute::Mtu(mtu));
        self.ack(
            RouteNetlinkMessage::SetLink(msg),
            0,
            &format!("set mtu {mtu} on link index {index}"),
        )
    }

    /// Sets a link's hardware (MAC) address.
    pub fn set_mac(&self, index: u32, mac: [u8; 6]) -> NetResult<()> {
        let mut msg = build::link_by_index(index);
        msg.attributes.push(LinkAttribute::Address(mac.to_vec()));
        self.ack(
            RouteNetlinkMessage::SetLink(msg),
            0,
            &format!("set mac {} on link index {index}", decode::hex_colon(&mac)),
        )
    }

    /// Enslaves a link to a master (bridge); `None` releases it.
    pub fn set_master(&self, index: u32, master: Option<u32>) -> NetResult<()> {
        let mut msg = build::link_by_index(index);
        msg.attributes.push(LinkAttribute::Controller(master.unwrap_or(0)));
        let op = match master {
            Some(m) => format!("set master of link index {index} to index {m}"),
            None => format!("release link index {index} from its master"),
        };
        self.ack(RouteNetlinkMessage::SetLink(msg), 0, &op)
    }

    /// Moves a link into another network namespace.
    pub fn move_to_netns(&self, index: u32, netns: BorrowedFd<'_>) -> NetResult<()> {
        let mut msg = build::link_by_index(index);
        msg.attributes.push(LinkAttribute::NetNsFd(netns.as_raw_fd()));
        self.ack(
            RouteNetlinkMessage::SetLink(msg),
            0,
            &format!("move link index {index} to netns fd {}", netns.as_raw_fd()),
        )
    }

    /// Adds an address (with prefix) to a link. IPv6 addresses are added with `IFA_F_NODAD`, so
    /// they are usable at once instead of staying tentative while duplicate detection runs.
    pub fn add_address(&self, index: u32, addr: IpNet) -> NetResult<()> {
        self.ack(
            RouteNetlinkMessage::NewAddress(build::address(index, addr, true)),
            NLM_F_CREATE | NLM_F_EXCL,
            &format!("add address {addr} to link index {index}"),
        )
    }

    /// Removes an address from a link.
    pub fn del_address(&self, index: u32, addr: IpNet) -> NetResult<()> {
        self.ack(
            RouteNetlinkMessage::DelAddress(build::address(index, addr, false)),
            0,
            &format!("delete address {addr} from link index {index}"),
        )
    }

    /// Adds a route in the main table. `dst` `None` means the default route of `gw`'s family.
    pub fn add_route(&self, dst: Option<IpNet>, gw: Option<std::net::IpAddr>, oif: Option<u32>) -> NetResult<()> {
        let op = route_op("add", dst, gw, oif);
        let ipv6 = match (dst, gw) {
            (Some(d), Some(g)) if d.is_ipv6() != g.is_ipv6() => {
                return Err(NetError::InvalidRequest(format!(
                    "{op}: destination and gateway are of different families"
                )))
            }
            (Some(d), _) => d.is_ipv6(),
            (None, Some(g)) => g.is_ipv6(),
            (None, None) => {
                return Err(NetError::InvalidRequest(format!(
                    "{op}: a route needs a destination or a gateway"
                )))
            }
        };
        let msg = build::route(ipv6, dst, gw, oif, true);
        self.ack(RouteNetlinkMessage::NewRoute(msg), NLM_F_CREATE | NLM_F_EXCL, &op)
    }

    /// Deletes a route from the main table, matched on destination (and gateway when given).
    pub fn del_route(&self, dst: Option<IpNet>, gw: Option<std::net::IpAddr>, family_v6: bool) -> NetResult<()> {
        let op = route_op("delete", dst, gw, None);
        let mismatch = dst.map(|d| d.is_ipv6()).into_iter().chain(gw.map(|g| g.is_ipv6()));
        if mismatch.into_iter().any(|v6| v6 != family_v6) {
            return Err(NetError::InvalidRequest(format!(
                "{op}: address family does not match family_v6={family_v6}"
            )));
        }
        let msg = build::route(family_v6, dst, gw, None, false);
        self.ack(RouteNetlinkMessage::DelRoute(msg), 0, &op)
    }
}

/// Describes a route request for error messages, e.g. `add route default via 10.0.0.1 dev 3`.
fn route_op(verb: &str, dst: Option<IpNet>, gw: Option<std::net::IpAddr>, oif: Option<u32>) -> String {
    let mut op = match dst {
        Some(d) => format!("{verb} route {d}"),
        None => format!("{verb} route default"),
    };
    if let Some(gw) = gw {
        op.push_str(&format!(" via {gw}"));
    }
    if let Some(oif) = oif {
        op.push_str(&format!(" dev index {oif}"));
    }
    op
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn rtnl_can_move_between_threads() {
        assert_send_sync::<Rtnl>();
    }

    #[test]
    fn route_ops_name_the_request() {
        let dst: IpNet = "10.0.0.0/8".parse().unwrap();
        assert_eq!(
            route_op("add", Some(dst), Some("10.0.0.1".parse().unwrap()), Some(3)),
            "add route 10.0.0.0/8 via 10.0.0.1 dev index 3"
        );
        assert_eq!(route_op("delete", None, None, None), "delete route default");
    }

    #[test]
    fn errno_is_only_reported_for_kernel_answers() {
        let k = NetError::Kernel {
            op: "x".into(),
            source: std::io::Error::from_raw_os_error(libc::ENODEV),
        };
        assert_eq!(k.errno(), Some(libc::ENODEV));
        assert_eq!(NetError::NoSuchLink("a".into()).errno(), None);
    }
}
