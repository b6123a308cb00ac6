//! Turns decoded rtnetlink messages into the suite's plain [`LinkInfo`], [`AddrInfo`] and
//! [`RouteInfo`] values.

use std::net::IpAddr;

use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{self, LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteMetric, RouteVia};
use netlink_packet_route::AddressFamily;

use super::types::{AddrInfo, IpNet, LinkInfo, RouteInfo};

/// The fields of a link message. Never fails: a missing attribute leaves its field empty.
pub(super) fn link_info(msg: &LinkMessage) -> LinkInfo {
    let mut info = LinkInfo {
        index: msg.header.index,
        name: String::new(),
        kind: None,
        mac: None,
        mtu: 0,
        admin_up: msg.header.flags.contains(LinkFlags::Up),
        promisc: msg.header.flags.contains(LinkFlags::Promisc),
        oper_state: "unknown".to_string(),
        master: None,
        link: None,
        link_netnsid: None,
    };
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(name) => info.name = name.clone(),
            LinkAttribute::Address(bytes) => info.mac = Some(hex_colon(bytes)),
            LinkAttribute::Mtu(mtu) => info.mtu = *mtu,
            LinkAttribute::OperState(state) => info.oper_state = state.to_string().to_ascii_lowercase(),
            LinkAttribute::Controller(master) if *master != 0 => info.master = Some(*master),
            LinkAttribute::Link(link) => info.link = Some(*link),
            LinkAttribute::LinkNetNsId(id) => info.link_netnsid = Some(*id),
            LinkAttribute::LinkInfo(infos) => {
                info.kind = infos.iter().find_map(|i| match i {
                    link::LinkInfo::Kind(kind) => Some(kind.to_string()),
                    _ => None,
                })
            }
            _ => {}
        }
    }
    info
}

/// The address a message describes; `None` for messages of other families or without an address.
pub(super) fn addr_info(msg: &AddressMessage) -> Option<AddrInfo> {
    // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer's on point-to-point
    // links and equal to IFA_LOCAL everywhere else. IPv6 only sends IFA_ADDRESS.
    let local = msg.attributes.iter().find_map(|a| match a {
        AddressAttribute::Local(ip) => Some(*ip),
        _ => None,
    });
    let address = msg.attributes.iter().find_map(|a| match a {
        AddressAttribute::Address(ip) => Some(*ip),
        _ => None,
    });
    let ip = local.or(address)?;
    let family_matches = matches!(
        (msg.header.family, ip),
        (AddressFamily::Inet, IpAddr::V4(_)) | (AddressFamily::Inet6, IpAddr::V6(_))
    );
    if !family_matches {
        return None;
    }
    Some(AddrInfo {
        index: msg.header.index,
        addr: IpNet::new(ip, msg.header.prefix_len)?,
        scope: msg.header.scope.into(),
    })
}

/// The route a message describes; `None` for families other than IPv4 and IPv6.
pub(super) fn route_info(msg: &RouteMessage) -> Option<RouteInfo> {
    let ipv6 = match msg.header.address_family {
        AddressFamily::Inet => false,
        AddressFamily::Inet6 => true,
        _ => return None,
    };
    let mut info = RouteInfo {
        table: u32::from(msg.header.table),
        dst: None,
        ipv6,
        gateway: None,
        oif: None,
        priority: None,
        scope: msg.header.scope.into(),
        kind: msg.header.kind.into(),
        protocol: msg.header.protocol.into(),
        mtu: None,
        advmss: None,
    };
    for attr in &msg.attributes {
        match attr {
            RouteAttribute::Table(table) => info.table = *table,
            RouteAttribute::Destination(dst) => {
                info.dst = route_ip(dst).and_then(|ip| IpNet::new(ip, msg.header.destination_prefix_length))
            }
            RouteAttribute::Gateway(gw) => info.gateway = route_ip(gw),
            RouteAttribute::Via(RouteVia::Inet(gw)) => info.gateway = Some(IpAddr::V4(*gw)),
            RouteAttribute::Via(RouteVia::Inet6(gw)) => info.gateway = Some(IpAddr::V6(*gw)),
            RouteAttribute::Oif(oif) => info.oif = Some(*oif),
            RouteAttribute::Priority(p) => info.priority = Some(*p),
            RouteAttribute::Metrics(metrics) => {
                for metric in metrics {
                    match metric {
                        RouteMetric::Mtu(mtu) => info.mtu = Some(*mtu),
                        RouteMetric::Advmss(mss) => info.advmss = Some(*mss),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Some(info)
}

fn route_ip(addr: &RouteAddress) -> Option<IpAddr> {
    match addr {
        RouteAddress::Inet(ip) => Some(IpAddr::V4(*ip)),
        RouteAddress::Inet6(ip) => Some(IpAddr::V6(*ip)),
        _ => None,
    }
}

/// Lower-case colon-separated hex, e.g. `02:42:ac:11:00:02`.
pub(crate) fn hex_colon(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_route::address::AddressScope;
    use netlink_packet_route::link::{InfoKind, State};
    use netlink_packet_route::route::{RouteProtocol, RouteScope, RouteType};

    #[test]
    fn link_fields_are_read_from_header_and_attributes() {
        let mut msg = LinkMessage::default();
        msg.header.index = 7;
        msg.header.flags = LinkFlags::Up | LinkFlags::Promisc;
        msg.attributes = vec![
            LinkAttribute::IfName("veth0".into()),
            LinkAttribute::Address(vec![0x02, 0xAB, 0, 1, 2, 3]),
            LinkAttribute::Mtu(1400),
            LinkAttribute::OperState(State::LowerLayerDown),
            LinkAttribute::Controller(3),
            LinkAttribute::Link(9),
            LinkAttribute::LinkNetNsId(0),
            LinkAttribute::LinkInfo(vec![link::LinkInfo::Kind(InfoKind::Veth)]),
        ];
        let info = link_info(&msg);
        assert_eq!(info.index, 7);
        assert_eq!(info.name, "veth0");
        assert_eq!(info.mac.as_deref(), Some("02:ab:00:01:02:03"));
        assert_eq!(info.mtu, 1400);
        assert!(info.admin_up && info.promisc);
        assert_eq!(info.oper_state, "lowerlayerdown");
        assert_eq!(info.master, Some(3));
        assert_eq!(info.link, Some(9));
        assert_eq!(info.link_netnsid, Some(0));
        assert_eq!(info.kind.as_deref(), Some("veth"));

        msg.header.flags = LinkFlags::empty();
        msg.attributes = vec![LinkAttribute::Controller(0)];
        let bare = link_info(&msg);
        assert!(!bare.admin_up && !bare.promisc);
        assert_eq!(bare.master, None);
        assert_eq!(bare.kind, None);
    }

    #[test]
    fn ipv4_addresses_prefer_the_local_attribute() {
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet;
        msg.header.prefix_len = 32;
        msg.header.index = 4;
        msg.header.scope = AddressScope::Universe;
        msg.attributes = vec![
            AddressAttribute::Address("10.0.0.2".parse().unwrap()),
            AddressAttribute::Local("10.0.0.1".parse().unwrap()),
        ];
        let info = addr_info(&msg).unwrap();
        assert_eq!(info.addr.to_string(), "10.0.0.1/32");
        assert_eq!((info.index, info.scope), (4, 0));

        msg.header.family = AddressFamily::Inet6;
        assert!(addr_info(&msg).is_none(), "family mismatch must be dropped");
    }

    #[test]
    fn routes_take_the_table_attribute_and_metrics() {
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet6;
        msg.header.table = 252;
        msg.header.destination_prefix_length = 64;
        msg.header.protocol = RouteProtocol::Static;
        msg.header.scope = RouteScope::Universe;
        msg.header.kind = RouteType::Unicast;
        msg.attributes = vec![
            RouteAttribute::Table(1000),
            RouteAttribute::Destination(RouteAddress::Inet6("2001:db8::".parse().unwrap())),
            RouteAttribute::Gateway(RouteAddress::Inet6("fe80::1".parse().unwrap())),
            RouteAttribute::Oif(3),
            RouteAttribute::Priority(1024),
            RouteAttribute::Metrics(vec![RouteMetric::Mtu(1280), RouteMetric::Advmss(1220)]),
        ];
        let r = route_info(&msg).unwrap();
        assert_eq!(r.table, 1000);
        assert!(r.ipv6);
        assert_eq!(r.dst.unwrap().to_string(), "2001:db8::/64");
        assert_eq!(r.gateway.unwrap().to_string(), "fe80::1");
        assert_eq!((r.oif, r.priority), (Some(3), Some(1024)));
        assert_eq!((r.protocol, r.kind, r.scope), (4, 1, 0));
        assert_eq!((r.mtu, r.advmss), (Some(1280), Some(1220)));

        msg.attributes.clear();
        msg.header.table = 254;
        let default = route_info(&msg).unwrap();
        assert_eq!((default.table, default.dst), (254, None));
    }
}
