//! Builders for the request messages the client sends. Each returns a ready message; flags and
//! the exchange kind are chosen by the caller in `mod.rs`.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::RawFd;

use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, InfoVlan, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::AddressFamily;

use super::types::IpNet;

/// `RT_TABLE_MAIN`.
pub(super) const TABLE_MAIN: u8 = RouteHeader::RT_TABLE_MAIN;

/// A link message addressed to an existing link by index.
pub(super) fn link_by_index(index: u32) -> LinkMessage {
    let mut msg = LinkMessage::default();
    msg.header.index = index;
    msg
}

/// A link message carrying only attributes (for creation or lookup by name).
pub(super) fn link_with(attributes: Vec<LinkAttribute>) -> LinkMessage {
    let mut msg = LinkMessage::default();
    msg.attributes = attributes;
    msg
}

/// `RTM_NEWLINK` payload for a veth pair; the peer gets `IFLA_NET_NS_FD` when `peer_netns` is set.
pub(super) fn new_veth(name: &str, peer: &str, peer_netns: Option<RawFd>) -> LinkMessage {
    let mut peer_attrs = vec![LinkAttribute::IfName(peer.to_string())];
    if let Some(fd) = peer_netns {
        peer_attrs.push(LinkAttribute::NetNsFd(fd));
    }
    link_with(vec![
        LinkAttribute::IfName(name.to_string()),
        LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(link_with(peer_attrs)))),
        ]),
    ])
}

/// `RTM_NEWLINK` payload for an 802.1Q VLAN link with tag `id` on the link `parent`.
pub(super) fn new_vlan(name: &str, parent: u32, id: u16) -> LinkMessage {
    link_with(vec![
        LinkAttribute::IfName(name.to_string()),
        LinkAttribute::Link(parent),
        LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Vlan),
            LinkInfo::Data(InfoData::Vlan(vec![InfoVlan::Id(id)])),
        ]),
    ])
}

/// `RTM_NEWLINK` payload for a Linux bridge with default options.
pub(super) fn new_bridge(name: &str) -> LinkMessage {
    link_with(vec![
        LinkAttribute::IfName(name.to_string()),
        LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Bridge)]),
    ])
}

/// `RTM_SETLINK` payload changing only `IFF_UP`.
pub(super) fn set_up(index: u32, up: bool) -> LinkMessage {
    let mut msg = link_by_index(index);
    msg.header.flags = if up { LinkFlags::Up } else { LinkFlags::empty() };
    msg.header.change_mask = LinkFlags::Up;
    msg
}

/// An address message for `addr` on link `index`. IPv4 carries `IFA_LOCAL` and `IFA_ADDRESS`;
/// IPv6 carries `IFA_ADDRESS` and, when adding, `IFA_F_NODAD` so it is usable at once.
pub(super) fn address(index: u32, addr: IpNet, adding: bool) -> AddressMessage {
    let mut msg = AddressMessage::default();
    msg.header.index = index;
    msg.header.prefix_len = addr.prefix;
    match addr.addr {
        IpAddr::V4(v4) => {
            msg.header.family = AddressFamily::Inet;
            msg.header.scope = if v4.is_loopback() {
                AddressScope::Host
            } else {
                AddressScope::Universe
            };
            msg.attributes = vec![AddressAttribute::Local(addr.addr), AddressAttribute::Address(addr.addr)];
            if adding {
                if let Some(brd) = ipv4_broadcast(v4, addr.prefix) {
                    msg.attributes.push(AddressAttribute::Broadcast(brd));
                }
            }
        }
        IpAddr::V6(_) => {
            msg.header.family = AddressFamily::Inet6;
            msg.header.scope = AddressScope::Universe;
            msg.attributes = vec![AddressAttribute::Address(addr.addr)];
            if adding {
                msg.header.flags = AddressHeaderFlags::Nodad;
                msg.attributes.push(AddressAttribute::Flags(AddressFlags::Nodad));
            }
        }
    }
    msg
}

/// The directed broadcast address of `addr/prefix` (what `ip addr add ... brd +` sets), or
/// `None` for /31 and /32, which have none.
pub(super) fn ipv4_broadcast(addr: Ipv4Addr, prefix: u8) -> Option<Ipv4Addr> {
    (prefix < 31).then(|| Ipv4Addr::from(u32::from(addr) | (u32::MAX >> prefix)))
}

/// A main-table route message. For additions the route is `proto static`, unicast, scope link
/// without a gateway and universe with one; for deletions scope, type and protocol are left as
/// wildcards (`RT_SCOPE_NOWHERE`, 0, 0) as the kernel expects.
pub(super) fn route(
    ipv6: bool,
    dst: Option<IpNet>,
    gw: Option<IpAddr>,
    oif: Option<u32>,
    adding: bool,
) -> RouteMessage {
    let mut msg = RouteMessage::default();
    msg.header.address_family = if ipv6 {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    };
    msg.header.table = TABLE_MAIN;
    if adding {
        msg.header.protocol = RouteProtocol::Static;
        msg.header.kind = RouteType::Unicast;
        msg.header.scope = if gw.is_some() {
            RouteScope::Universe
        } else {
            RouteScope::Link
        };
    } else {
        msg.header.protocol = RouteProtocol::Unspec;
        msg.header.kind = RouteType::Unspec;
        msg.header.scope = RouteScope::NoWhere;
    }
    if let Some(dst) = dst {
        msg.header.destination_prefix_length = dst.prefix;
        msg.attributes
            .push(RouteAttribute::Destination(RouteAddress::from(dst.network())));
    }
    if let Some(gw) = gw {
        msg.attributes.push(RouteAttribute::Gateway(RouteAddress::from(gw)));
    }
    if let Some(oif) = oif {
        msg.attributes.push(RouteAttribute::Oif(oif));
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_broadcast_sets_the_host_bits() {
        let a: Ipv4Addr = "10.1.2.3".parse().unwrap();
        assert_eq!(ipv4_broadcast(a, 24), Some("10.1.2.255".parse().unwrap()));
        assert_eq!(ipv4_broadcast(a, 0), Some(Ipv4Addr::BROADCAST));
        assert_eq!(ipv4_broadcast(a, 30), Some("10.1.2.3".parse().unwrap()));
        assert_eq!(ipv4_broadcast(a, 31), None);
        assert_eq!(ipv4_broadcast(a, 32), None);
    }

    #[test]
    fn routes_clear_host_bits_and_pick_scope() {
        let dst: IpNet = "192.168.50.7/24".parse().unwrap();
        let add = route(false, Some(dst), None, Some(3), true);
        assert_eq!(add.header.destination_prefix_length, 24);
        assert!(add.attributes.contains(&RouteAttribute::Destination(RouteAddress::Inet(
            "192.168.50.0".parse().unwrap()
        ))));
        assert_eq!(add.header.scope, RouteScope::Link);
        assert_eq!(add.header.protocol, RouteProtocol::Static);
        let del = route(false, Some(dst), None, None, false);
        assert_eq!(del.header.scope, RouteScope::NoWhere);
        assert_eq!(del.header.table, TABLE_MAIN);
    }
}
