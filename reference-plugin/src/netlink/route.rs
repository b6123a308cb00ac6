//! Route operations: add, replace, delete, list.

use std::net::IpAddr;

use super::addr::{ip_bytes, parse_ip};
use super::error::{Error, Result};
use super::rtnl::Rtnl;
use super::socket::{NLM_F_APPEND, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};
use super::types::{Family, IpNet, Route, RT_SCOPE_LINK, RT_SCOPE_UNIVERSE};
use super::wire::{ne_u32, Attrs, MsgBuf, NlMsg};

const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;
const RTM_GETROUTE: u16 = 26;

const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_PREFSRC: u16 = 7;
const RTA_METRICS: u16 = 8;
const RTA_TABLE: u16 = 15;
const RTAX_MTU: u16 = 2;
const RTAX_ADVMSS: u16 = 8;

const RT_SCOPE_NOWHERE: u8 = 255;
const RT_TABLE_COMPAT: u8 = 252;
const RTM_F_CLONED: u32 = 0x200;

/// Writes a `struct rtmsg`.
fn rtmsg(buf: &mut MsgBuf, family: u8, dst_len: u8, table: u32, protocol: u8, scope: u8, kind: u8) {
    let mut h = [0u8; 12];
    h[0] = family;
    h[1] = dst_len;
    h[4] = if table < 256 { table as u8 } else { RT_TABLE_COMPAT };
    h[5] = protocol;
    h[6] = scope;
    h[7] = kind;
    buf.put(&h);
}

fn same_family(a: &IpAddr, b: &IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

fn parse_route(msg: &NlMsg<'_>) -> Option<Route> {
    let p = msg.payload;
    if p.len() < 12 {
        return None;
    }
    let (family, dst_len) = (p[0], p[1]);
    let flags = u32::from_ne_bytes([p[8], p[9], p[10], p[11]]);
    if flags & RTM_F_CLONED != 0 {
        return None;
    }
    let zero = match family {
        f if f == libc::AF_INET as u8 => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        f if f == libc::AF_INET6 as u8 => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        _ => return None,
    };
    let mut route = Route::to(IpNet::as_written(zero, 0)?);
    route.table = u32::from(p[4]);
    route.protocol = p[5];
    route.scope = Some(p[6]);
    route.kind = p[7];
    for (kind, value) in Attrs(&p[12..]) {
        match kind {
            RTA_DST => route.dst = IpNet::as_written(parse_ip(family, value)?, dst_len)?,
            RTA_GATEWAY => route.gw = parse_ip(family, value),
            RTA_PREFSRC => route.src = parse_ip(family, value),
            RTA_OIF => route.oif = ne_u32(value),
            RTA_PRIORITY => route.priority = ne_u32(value),
            RTA_TABLE => route.table = ne_u32(value).unwrap_or(route.table),
            RTA_METRICS => {
                for (mk, mv) in Attrs(value) {
                    match mk {
                        RTAX_MTU => route.mtu = ne_u32(mv),
                        RTAX_ADVMSS => route.advmss = ne_u32(mv),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Some(route)
}

impl Rtnl {
    fn route_request(&self, msg_type: u16, flags: u16, route: &Route, delete: bool) -> Result<(MsgBuf, u32)> {
        let op = || format!("route {route:?}");
        let (dst, dst_len, family) = ip_bytes(&route.dst.addr);
        for other in [route.gw, route.src].into_iter().flatten() {
            if !same_family(&other, &route.dst.addr) {
                return Err(Error::invalid(op(), "gateway/source family differs from destination"));
            }
        }
        let scope = match (route.scope, delete) {
            (Some(s), _) => s,
            (None, true) => RT_SCOPE_NOWHERE,
            (None, false) if route.gw.is_none() && route.dst.is_ipv6() => RT_SCOPE_UNIVERSE,
            (None, false) if route.gw.is_none() => RT_SCOPE_LINK,
            (None, false) => RT_SCOPE_UNIVERSE,
        };
        let (protocol, kind) = if delete { (0, 0) } else { (route.protocol, route.kind) };
        let mut buf = MsgBuf::new();
        let seq = self.begin(&mut buf, msg_type, Rtnl::ACK | flags);
        rtmsg(&mut buf, family, route.dst.prefix, route.table, protocol, scope, kind);
        if route.dst.prefix > 0 {
            buf.attr(RTA_DST, &dst[..dst_len]);
        }
        if let Some(gw) = route.gw {
            let (b, l, _) = ip_bytes(&gw);
            buf.attr(RTA_GATEWAY, &b[..l]);
        }
        if let Some(src) = route.src {
            let (b, l, _) = ip_bytes(&src);
            buf.attr(RTA_PREFSRC, &b[..l]);
        }
        if let Some(oif) = route.oif {
            buf.attr_u32(RTA_OIF, oif);
        }
        if let Some(prio) = route.priority {
            buf.attr_u32(RTA_PRIORITY, prio);
        }
        buf.attr_u32(RTA_TABLE, route.table);
        if !delete && (route.mtu.is_some() || route.advmss.is_some()) {
            let m = buf.nest(RTA_METRICS);
            if let Some(mtu) = route.mtu {
                buf.attr_u32(RTAX_MTU, mtu);
            }
            if let Some(mss) = route.advmss {
                buf.attr_u32(RTAX_ADVMSS, mss);
            }
            buf.end_nest(m);
        }
        Ok((buf, seq))
    }

    /// Adds `route`. Fails with `EEXIST` when an identical route exists.
    pub fn add_route(&self, route: &Route) -> Result<()> {
        let (mut buf, seq) = self.route_request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, route, false)?;
        self.ack(&mut buf, seq, || format!("add route {route:?}"))
    }

    /// Adds `route` even when a route to the same destination exists (`NLM_F_APPEND`): IPv6
    /// merges them into one multipath route, IPv4 keeps them side by side. Still fails with
    /// `EEXIST` for an identical route.
    pub fn append_route(&self, route: &Route) -> Result<()> {
        let (mut buf, seq) = self.route_request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_APPEND, route, false)?;
        self.ack(&mut buf, seq, || format!("append route {route:?}"))
    }

    /// Adds `route`, replacing a route with the same destination, table, priority (and type).
    pub fn replace_route(&self, route: &Route) -> Result<()> {
        let (mut buf, seq) = self.route_request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, route, false)?;
        self.ack(&mut buf, seq, || format!("replace route {route:?}"))
    }

    /// Deletes the route matching `route`'s destination, table and whichever of gateway,
    /// output interface, priority and scope are set. Returns `false` when none matched.
    pub fn del_route(&self, route: &Route) -> Result<bool> {
        let (mut buf, seq) = self.route_request(RTM_DELROUTE, 0, route, true)?;
        match self.ack(&mut buf, seq, || format!("delete route {route:?}")) {
            Ok(()) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The routes of `family` in `table` (every table, including `local`, when `None`).
    pub fn routes(&self, family: Family, table: Option<u32>) -> Result<Vec<Route>> {
        let mut buf = MsgBuf::new();
        let seq = self.begin(&mut buf, RTM_GETROUTE, Rtnl::DUMP);
        rtmsg(&mut buf, family.raw(), 0, table.unwrap_or(0), 0, 0, 0);
        if let Some(t) = table {
            buf.attr_u32(RTA_TABLE, t);
        }
        let mut out = Vec::new();
        self.collect(
            &mut buf,
            seq,
            |m| {
                if let Some(r) = parse_route(m) {
                    if table.is_none_or(|t| t == r.table) {
                        out.push(r);
                    }
                }
            },
            || "list routes".to_string(),
        )?;
        Ok(out)
    }
}
