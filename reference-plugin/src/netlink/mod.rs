//! A synchronous rtnetlink client for the `bridge` plugin: no async runtime, no `ip` process.
//!
//! - [`Rtnl`] owns one `NETLINK_ROUTE` socket bound to one network namespace. Open it in the
//!   host namespace with [`Rtnl::new`], in a container's with [`Rtnl::in_netns`] (the thread
//!   enters the namespace, opens the socket and comes back; the socket stays bound there).
//! - Links ([`Rtnl::link_by_name`], [`Rtnl::create_bridge`], [`Rtnl::create_veth`] ...),
//!   addresses ([`Rtnl::add_address`] ...) and routes ([`Rtnl::add_route`] ...) are each one
//!   request and its acknowledgement. A veth pair is created with one request: the host end
//!   enslaved to the bridge and up, the container end created directly in the container's
//!   namespace (`IFLA_NET_NS_FD`), so nothing is ever visible half-configured in the wrong place.
//! - Forwarding switches and IPv4 per-link options go over netlink too
//!   ([`Rtnl::forwarding`], [`Rtnl::set_ipv4_devconf`]): `/proc/sys/net` lookups slow down with
//!   the number of namespaces (see the `netconf` module).
//! - [`run_in_netns`] and the sysctl helpers ([`write_sysctls_in`]) do the few things netlink
//!   cannot, inside the namespace for the time of the job.
//!
//! Messages are encoded by hand ([`wire`](self)) rather than with a netlink crate: the same
//! encoder serves nf_tables in [`crate::masq`], and a request costs one small allocation.

mod addr;
mod detach;
mod error;
mod garp;
mod link;
mod netconf;
mod netns;
mod route;
mod rtnl;
pub(crate) mod socket;
mod sysctl;
mod types;
pub(crate) mod wire;

pub use detach::GroupDelete;
pub use error::{Error, Result};
pub use garp::Announcement;
pub use link::{random_link_name, BridgePortSettings, BridgeSpec, BridgeVlan, LinkChange, VethSpec, IFNAMSIZ_MAX};
pub use netconf::IPV4_DEVCONF_ARP_NOTIFY;
pub use netns::{run_in_netns, NetNs};
pub use rtnl::Rtnl;
pub use sysctl::{read_sysctl, read_sysctl_in, write_sysctl, write_sysctls_in};
pub use types::{
    Address, Family, IpNet, Link, Mac, OperState, ParseError, Route, RT_SCOPE_HOST, RT_SCOPE_LINK, RT_SCOPE_UNIVERSE,
    RT_TABLE_MAIN,
};
