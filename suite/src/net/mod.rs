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

mod types;

pub use types::{AddrInfo, IpNet, LinkInfo, RouteInfo};

use std::os::fd::BorrowedFd;

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
}

/// Result alias for this module.
pub type NetResult<T> = Result<T, NetError>;

/// A route netlink socket bound to one network namespace.
pub struct Rtnl {
    #[allow(dead_code)]
    inner: (),
}

impl Rtnl {
    /// Opens a socket in the calling thread's network namespace.
    pub fn new() -> NetResult<Self> {
        unimplemented!("H2")
    }

    /// Opens a socket bound to the network namespace `netns` (an open `/proc/.../ns/net` or
    /// bind-mounted netns file), without moving the calling thread.
    pub fn in_netns(netns: BorrowedFd<'_>) -> NetResult<Self> {
        let _ = netns;
        unimplemented!("H2")
    }

    /// Every link in the namespace.
    pub fn links(&self) -> NetResult<Vec<LinkInfo>> {
        unimplemented!("H2")
    }

    /// The link called `name`, if any.
    pub fn link_by_name(&self, name: &str) -> NetResult<Option<LinkInfo>> {
        let _ = name;
        unimplemented!("H2")
    }

    /// Every address of every link, both families.
    pub fn addresses(&self) -> NetResult<Vec<AddrInfo>> {
        unimplemented!("H2")
    }

    /// Every route of both families in every table (main, local, and policy tables).
    pub fn routes(&self) -> NetResult<Vec<RouteInfo>> {
        unimplemented!("H2")
    }

    /// Creates a veth pair `name` <-> `peer`. When `peer_netns` is given the peer end is created
    /// directly in that namespace.
    pub fn create_veth(
        &self,
        name: &str,
        peer: &str,
        peer_netns: Option<BorrowedFd<'_>>,
    ) -> NetResult<()> {
        let _ = (name, peer, peer_netns);
        unimplemented!("H2")
    }

    /// Creates a Linux bridge.
    pub fn create_bridge(&self, name: &str) -> NetResult<()> {
        let _ = name;
        unimplemented!("H2")
    }

    /// Deletes a link by index.
    pub fn delete_link(&self, index: u32) -> NetResult<()> {
        let _ = index;
        unimplemented!("H2")
    }

    /// Sets a link administratively up or down.
    pub fn set_up(&self, index: u32, up: bool) -> NetResult<()> {
        let _ = (index, up);
        unimplemented!("H2")
    }

    /// Sets a link's MTU.
    pub fn set_mtu(&self, index: u32, mtu: u32) -> NetResult<()> {
        let _ = (index, mtu);
        unimplemented!("H2")
    }

    /// Enslaves a link to a master (bridge); `None` releases it.
    pub fn set_master(&self, index: u32, master: Option<u32>) -> NetResult<()> {
        let _ = (index, master);
        unimplemented!("H2")
    }

    /// Moves a link into another network namespace.
    pub fn move_to_netns(&self, index: u32, netns: BorrowedFd<'_>) -> NetResult<()> {
        let _ = (index, netns);
        unimplemented!("H2")
    }

    /// Adds an address (with prefix) to a link.
    pub fn add_address(&self, index: u32, addr: IpNet) -> NetResult<()> {
        let _ = (index, addr);
        unimplemented!("H2")
    }

    /// Removes an address from a link.
    pub fn del_address(&self, index: u32, addr: IpNet) -> NetResult<()> {
        let _ = (index, addr);
        unimplemented!("H2")
    }

    /// Adds a route in the main table. `dst` `None` means the default route of `gw`'s family.
    pub fn add_route(
        &self,
        dst: Option<IpNet>,
        gw: Option<std::net::IpAddr>,
        oif: Option<u32>,
    ) -> NetResult<()> {
        let _ = (dst, gw, oif);
        unimplemented!("H2")
    }

    /// Deletes a route from the main table, matched on destination (and gateway when given).
    pub fn del_route(
        &self,
        dst: Option<IpNet>,
        gw: Option<std::net::IpAddr>,
        family_v6: bool,
    ) -> NetResult<()> {
        let _ = (dst, gw, family_v6);
        unimplemented!("H2")
    }
}
