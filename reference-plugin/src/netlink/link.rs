//! Link operations: look-up, bridge and veth creation, changes, bridge-port flags, deletion.

use std::os::fd::{AsRawFd, BorrowedFd};

use super::error::{Error, Result};
use super::rtnl::Rtnl;
use super::socket::{NLM_F_CREATE, NLM_F_ECHO, NLM_F_EXCL};
use super::types::{fill_random, Link, Mac, OperState};
use super::wire::{ne_i32, ne_u32, str_eq, string, Attrs, MsgBuf, NlMsg};

const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_SETLINK: u16 = 19;

const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_LINK: u16 = 5;
const IFLA_MASTER: u16 = 10;
const IFLA_PROTINFO: u16 = 12;
const IFLA_OPERSTATE: u16 = 16;
const IFLA_LINKINFO: u16 = 18;
const IFLA_AF_SPEC: u16 = 26;
pub(super) const IFLA_GROUP: u16 = 27;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_EXT_MASK: u16 = 29;
const IFLA_NUM_TX_QUEUES: u16 = 31;
const IFLA_NUM_RX_QUEUES: u16 = 32;
const IFLA_LINK_NETNSID: u16 = 37;

const IFLA_INET_CONF: u16 = 1;

const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const IFLA_INFO_SLAVE_KIND: u16 = 4;
const IFLA_INFO_SLAVE_DATA: u16 = 5;
const VETH_INFO_PEER: u16 = 1;
const IFLA_BR_VLAN_FILTERING: u16 = 7;

const IFLA_BRPORT_MODE: u16 = 4;
const IFLA_BRPORT_ISOLATED: u16 = 33;
const IFLA_BRIDGE_VLAN_INFO: u16 = 2;
const BRIDGE_VLAN_INFO_PVID: u16 = 1 << 1;
const BRIDGE_VLAN_INFO_UNTAGGED: u16 = 1 << 2;
const BRIDGE_VLAN_INFO_RANGE_BEGIN: u16 = 1 << 3;
const BRIDGE_VLAN_INFO_RANGE_END: u16 = 1 << 4;

const RTEXT_FILTER_BRVLAN: u32 = 1 << 1;
const RTEXT_FILTER_SKIP_STATS: u32 = 1 << 3;

const IFF_UP: u32 = libc::IFF_UP as u32;
const IFF_PROMISC: u32 = libc::IFF_PROMISC as u32;
const AF_BRIDGE: u8 = libc::AF_BRIDGE as u8;

/// Longest interface name the kernel accepts.
pub const IFNAMSIZ_MAX: usize = 15;

/// Writes a `struct ifinfomsg`.
fn ifinfomsg(buf: &mut MsgBuf, family: u8, index: u32, flags: u32, change: u32) {
    let mut h = [0u8; 16];
    h[0] = family;
    h[4..8].copy_from_slice(&index.to_ne_bytes());
    h[8..12].copy_from_slice(&flags.to_ne_bytes());
    h[12..16].copy_from_slice(&change.to_ne_bytes());
    buf.put(&h);
}

fn check_name(name: &str, op: impl FnOnce() -> String) -> Result<()> {
    if name.is_empty() || name.len() > IFNAMSIZ_MAX {
        return Err(Error::invalid(op(), "interface names are 1 to 15 bytes"));
    }
    Ok(())
}

/// Flags word and change mask for the `up`/`promisc` wishes.
fn flag_bits(up: Option<bool>, promisc: Option<bool>) -> (u32, u32) {
    let mut flags = 0;
    let mut change = 0;
    if let Some(up) = up {
        change |= IFF_UP;
        if up {
            flags |= IFF_UP;
        }
    }
    if let Some(p) = promisc {
        change |= IFF_PROMISC;
        if p {
            flags |= IFF_PROMISC;
        }
    }
    (flags, change)
}

/// Parses an `RTM_NEWLINK` message into a [`Link`].
pub(crate) fn parse_link(msg: &NlMsg<'_>) -> Option<Link> {
    let p = msg.payload;
    if p.len() < 16 {
        return None;
    }
    let index = u32::from_ne_bytes([p[4], p[5], p[6], p[7]]);
    let flags = u32::from_ne_bytes([p[8], p[9], p[10], p[11]]);
    let mut link = Link {
        index,
        name: String::new(),
        kind: None,
        mac: None,
        mtu: 0,
        flags,
        master: None,
        oper_state: OperState::Unknown,
        link: None,
        link_netnsid: None,
    };
    for (kind, value) in Attrs(&p[16..]) {
        match kind {
            IFLA_IFNAME => link.name = string(value),
            IFLA_ADDRESS if value.len() == 6 => {
                let mut m = [0u8; 6];
                m.copy_from_slice(value);
                link.mac = Some(Mac(m));
            }
            IFLA_MTU => link.mtu = ne_u32(value).unwrap_or(0),
            IFLA_MASTER => link.master = ne_u32(value).filter(|m| *m != 0),
            IFLA_OPERSTATE => link.oper_state = OperState::from_raw(value.first().copied().unwrap_or(0)),
            IFLA_LINK => link.link = ne_u32(value),
            IFLA_LINK_NETNSID => link.link_netnsid = ne_i32(value),
            IFLA_LINKINFO => {
                for (k, v) in Attrs(value) {
                    if k == IFLA_INFO_KIND {
                        link.kind = Some(string(v));
                    }
                }
            }
            _ => {}
        }
    }
    Some(link)
}

/// What to create with [`Rtnl::create_bridge`].
#[derive(Clone, Debug, Default)]
pub struct BridgeSpec<'a> {
    /// Bridge name.
    pub name: &'a str,
    /// MTU; the kernel's default when `None`.
    pub mtu: Option<u32>,
    /// Hardware address; the kernel picks one when `None`.
    pub mac: Option<Mac>,
    /// Promiscuous mode.
    pub promisc: bool,
    /// `vlan_filtering=1`.
    pub vlan_filtering: bool,
    /// Bring the bridge up as part of the creation.
    pub up: bool,
}

/// What to create with [`Rtnl::create_veth`]. "Local" is the namespace of the [`Rtnl`].
#[derive(Clone, Debug, Default)]
pub struct VethSpec<'a> {
    /// Name of the local end. For [`Rtnl::create_veth_random_name`] this is the prefix that 8
    /// random hex digits are appended to (e.g. `veth`).
    pub name: &'a str,
    /// MTU of the local end.
    pub mtu: Option<u32>,
    /// MAC of the local end (kernel-chosen when `None`).
    pub mac: Option<Mac>,
    /// Enslave the local end to this master (bridge) index at creation.
    pub master: Option<u32>,
    /// Bring the local end up at creation.
    pub up: bool,
    /// Name of the peer end.
    pub peer_name: &'a str,
    /// Create the peer directly in this namespace (e.g. the opened `CNI_NETNS`); local when
    /// `None`.
    pub peer_netns: Option<BorrowedFd<'a>>,
    /// MTU of the peer.
    pub peer_mtu: Option<u32>,
    /// MAC of the peer (kernel-chosen when `None`).
    pub peer_mac: Option<Mac>,
}

/// A change to an existing link with [`Rtnl::set_link`]; `None` fields are left alone. All
/// fields go out in one request.
#[derive(Clone, Debug, Default)]
pub struct LinkChange<'a> {
    /// Administrative state.
    pub up: Option<bool>,
    /// Promiscuous mode.
    pub promisc: Option<bool>,
    /// MTU.
    pub mtu: Option<u32>,
    /// Hardware address.
    pub mac: Option<Mac>,
    /// Master index; `Some(0)` releases the link from its master.
    pub master: Option<u32>,
    /// New name.
    pub name: Option<&'a str>,
    /// Move the link to this network namespace.
    pub netns: Option<BorrowedFd<'a>>,
    /// Put the link in this device group (`IFLA_GROUP`).
    pub group: Option<u32>,
    /// IPv4 per-link options to set, `(IPV4_DEVCONF_*, value)`, e.g.
    /// [`IPV4_DEVCONF_ARP_NOTIFY`](super::IPV4_DEVCONF_ARP_NOTIFY). The kernel applies them after
    /// the up/down change of the same request.
    pub ipv4_devconf: &'a [(u16, u32)],
}

/// One VLAN (or range of VLANs) on a bridge port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BridgeVlan {
    /// First VLAN id.
    pub vid: u16,
    /// Last VLAN id of a range (equal to `vid` for one VLAN).
    pub vid_end: u16,
    /// Port VLAN id: untagged ingress frames get this VLAN.
    pub pvid: bool,
    /// Frames of this VLAN leave the port untagged.
    pub untagged: bool,
}

impl BridgeVlan {
    /// A single tagged VLAN.
    pub fn tagged(vid: u16) -> Self {
        Self {
            vid,
            vid_end: vid,
            pvid: false,
            untagged: false,
        }
    }
}

/// Bridge-port settings for [`Rtnl::set_bridge_port`]; `None`/empty fields are left alone.
#[derive(Clone, Debug, Default)]
pub struct BridgePortSettings<'a> {
    /// Hairpin mode (`IFLA_BRPORT_MODE`).
    pub hairpin: Option<bool>,
    /// Port isolation (`IFLA_BRPORT_ISOLATED`).
    pub isolated: Option<bool>,
    /// VLANs to add to the port.
    pub add_vlans: &'a [BridgeVlan],
}

fn put_vlans(buf: &mut MsgBuf, vlans: &[BridgeVlan]) {
    for v in vlans {
        let mut flags = 0u16;
        if v.pvid {
            flags |= BRIDGE_VLAN_INFO_PVID;
        }
        if v.untagged {
            flags |= BRIDGE_VLAN_INFO_UNTAGGED;
        }
        let mut entry = |flags: u16, vid: u16| {
            let mut b = [0u8; 4];
            b[..2].copy_from_slice(&flags.to_ne_bytes());
            b[2..].copy_from_slice(&vid.to_ne_bytes());
            buf.attr(IFLA_BRIDGE_VLAN_INFO, &b);
        };
        if v.vid_end > v.vid {
            entry(flags | BRIDGE_VLAN_INFO_RANGE_BEGIN, v.vid);
            entry(flags | BRIDGE_VLAN_INFO_RANGE_END, v.vid_end);
        } else {
            entry(flags, v.vid);
        }
    }
}

/// One transmit and one receive queue for a veth end. Without them the kernel allocates one
/// queue per possible CPU and then, on the registered device, lowers the number in use to one,
/// waiting for an RCU grace period each time (two per pair, tens of milliseconds on a loaded
/// machine). The queues in use are the same either way.
fn put_single_queue(buf: &mut MsgBuf) {
    buf.attr_u32(IFLA_NUM_TX_QUEUES, 1);
    buf.attr_u32(IFLA_NUM_RX_QUEUES, 1);
}

/// A random interface name: `prefix` followed by 8 lowercase hex digits.
pub fn random_link_name(prefix: &str) -> String {
    let mut b = [0u8; 4];
    fill_random(&mut b);
    format!("{prefix}{:08x}", u32::from_ne_bytes(b))
}

impl Rtnl {
    fn get_link(&self, index: u32, name: Option<&str>) -> Result<Option<Link>> {
        let mut buf = MsgBuf::new();
        let seq = self.begin(&mut buf, RTM_GETLINK, Rtnl::ACK);
        ifinfomsg(&mut buf, 0, index, 0, 0);
        if let Some(name) = name {
            buf.attr_str(IFLA_IFNAME, name);
        }
        buf.attr_u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
        let mut found = None;
        let res = self.collect(
            &mut buf,
            seq,
            |m| found = found.take().or_else(|| parse_link(m)),
            || match name {
                Some(n) => format!("get link {n:?}"),
                None => format!("get link #{index}"),
            },
        );
        match res {
            Ok(()) => Ok(found),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The link called `name`, or `None`.
    pub fn link_by_name(&self, name: &str) -> Result<Option<Link>> {
        check_name(name, || format!("get link {name:?}"))?;
        self.get_link(0, Some(name))
    }

    /// The link with index `index`, or `None`.
    pub fn link_by_index(&self, index: u32) -> Result<Option<Link>> {
        self.get_link(index, None)
    }

    /// Every link in the namespace.
    pub fn links(&self) -> Result<Vec<Link>> {
        let mut buf = MsgBuf::new();
        let seq = self.begin(&mut buf, RTM_GETLINK, Rtnl::DUMP);
        ifinfomsg(&mut buf, 0, 0, 0, 0);
        buf.attr_u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
        let mut out = Vec::new();
        self.collect(
            &mut buf,
            seq,
            |m| out.extend(parse_link(m)),
            || "list links".to_string(),
        )?;
        Ok(out)
    }

    /// Sends a creation request with `NLM_F_ECHO` and returns the created link: from the
    /// kernel's echo when it sends one (Linux 6.3+), otherwise by looking it up.
    fn create_link(
        &self,
        buf: &mut MsgBuf,
        seq: u32,
        name: &str,
        master: Option<u32>,
        op: impl FnOnce() -> String,
    ) -> Result<Link> {
        let mut echoed = None;
        self.collect(
            buf,
            seq,
            |m| {
                if m.kind == RTM_NEWLINK {
                    if let Some(l) = parse_link(m) {
                        if l.name == name {
                            echoed = Some(l);
                        }
                    }
                }
            },
            op,
        )?;
        match echoed {
            // The echo shows the link as registered, before the kernel applied IFLA_MASTER;
            // the acknowledgement says the master was set.
            Some(l) => Ok(Link {
                master: master.or(l.master),
                ..l
            }),
            None => self
                .link_by_name(name)?
                .ok_or_else(|| Error::invalid(format!("create link {name:?}"), "created link vanished")),
        }
    }

    /// Creates a Linux bridge. Fails with `EEXIST` ([`Error::is_exists`]) when a link of that
    /// name exists, whatever its kind; an existing bridge is never modified.
    pub fn create_bridge(&self, spec: &BridgeSpec<'_>) -> Result<Link> {
        let op = || format!("create bridge {:?}", spec.name);
        check_name(spec.name, op)?;
        let mut buf = MsgBuf::new();
        let seq = self.begin(
            &mut buf,
            RTM_NEWLINK,
            Rtnl::ACK | NLM_F_CREATE | NLM_F_EXCL | NLM_F_ECHO,
        );
        let (flags, change) = flag_bits(Some(spec.up), Some(spec.promisc));
        ifinfomsg(&mut buf, 0, 0, flags, change);
        buf.attr_str(IFLA_IFNAME, spec.name);
        if let Some(mtu) = spec.mtu {
            buf.attr_u32(IFLA_MTU, mtu);
        }
        if let Some(mac) = spec.mac {
            buf.attr(IFLA_ADDRESS, &mac.0);
        }
        let info = buf.nest(IFLA_LINKINFO);
        buf.attr_str(IFLA_INFO_KIND, "bridge");
        if spec.vlan_filtering {
            let data = buf.nest(IFLA_INFO_DATA);
            buf.attr_u8(IFLA_BR_VLAN_FILTERING, 1);
            buf.end_nest(data);
        }
        buf.end_nest(info);
        self.create_link(&mut buf, seq, spec.name, None, op)
    }

    fn veth_request(&self, spec: &VethSpec<'_>, name: &str) -> (MsgBuf, u32) {
        let mut buf = MsgBuf::new();
        let seq = self.begin(
            &mut buf,
            RTM_NEWLINK,
            Rtnl::ACK | NLM_F_CREATE | NLM_F_EXCL | NLM_F_ECHO,
        );
        let (flags, change) = flag_bits(spec.up.then_some(true), None);
        ifinfomsg(&mut buf, 0, 0, flags, change);
        buf.attr_str(IFLA_IFNAME, name);
        if let Some(mtu) = spec.mtu {
            buf.attr_u32(IFLA_MTU, mtu);
        }
        if let Some(mac) = spec.mac {
            buf.attr(IFLA_ADDRESS, &mac.0);
        }
        if let Some(master) = spec.master {
            buf.attr_u32(IFLA_MASTER, master);
        }
        put_single_queue(&mut buf);
        let info = buf.nest(IFLA_LINKINFO);
        buf.attr_str(IFLA_INFO_KIND, "veth");
        let data = buf.nest(IFLA_INFO_DATA);
        let peer = buf.nest(VETH_INFO_PEER);
        // The peer is always created down: the kernel opens it before the pair is linked,
        // and opening a veth without a peer fails (ENOTCONN). Bring it up from its namespace.
        ifinfomsg(&mut buf, 0, 0, 0, 0);
        buf.attr_str(IFLA_IFNAME, spec.peer_name);
        if let Some(mtu) = spec.peer_mtu {
            buf.attr_u32(IFLA_MTU, mtu);
        }
        if let Some(mac) = spec.peer_mac {
            buf.attr(IFLA_ADDRESS, &mac.0);
        }
        if let Some(ns) = spec.peer_netns {
            buf.attr_u32(IFLA_NET_NS_FD, ns.as_raw_fd() as u32);
        }
        put_single_queue(&mut buf);
        buf.end_nest(peer);
        buf.end_nest(data);
        buf.end_nest(info);
        (buf, seq)
    }

    /// Creates a veth pair in one request: the local end `spec.name` here (optionally
    /// enslaved and up), the peer `spec.peer_name` directly in `spec.peer_netns`, down.
    /// Returns the local end. `EEXIST` means one of the two names is taken.
    pub fn create_veth(&self, spec: &VethSpec<'_>) -> Result<Link> {
        let op = || format!("create veth {:?} <-> {:?}", spec.name, spec.peer_name);
        check_name(spec.name, op)?;
        check_name(spec.peer_name, op)?;
        let (mut buf, seq) = self.veth_request(spec, spec.name);
        self.create_link(&mut buf, seq, spec.name, spec.master, op)
    }

    /// Like [`Rtnl::create_veth`], but the local end is named `spec.name` + 8 random hex
    /// digits, retried up to 10 times when that name is taken. If the *peer* name is taken the
    /// error is `EEXIST` with an operation text saying so (`peer ... already exists`).
    pub fn create_veth_random_name(&self, spec: &VethSpec<'_>) -> Result<Link> {
        let prefix = spec.name;
        if prefix.len() + 8 > IFNAMSIZ_MAX {
            return Err(Error::invalid(
                format!("create veth with prefix {prefix:?}"),
                "prefix too long for 8 random digits",
            ));
        }
        check_name(spec.peer_name, || format!("create veth peer {:?}", spec.peer_name))?;
        let mut last_err = None;
        for _ in 0..10 {
            let name = random_link_name(prefix);
            let (mut buf, seq) = self.veth_request(spec, &name);
            let op = || format!("create veth {:?} <-> {:?}", name, spec.peer_name);
            match self.create_link(&mut buf, seq, &name, spec.master, op) {
                Ok(link) => return Ok(link),
                Err(e) if e.is_exists() => {
                    if self.link_by_name(&name)?.is_none() {
                        return Err(Error::Kernel {
                            op: format!(
                                "create veth: peer {:?} already exists (local end {:?})",
                                spec.peer_name, name
                            ),
                            source: std::io::Error::from_raw_os_error(libc::EEXIST),
                            ext: None,
                        });
                    }
                    last_err = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| Error::invalid("create veth", "no free random name after 10 tries")))
    }

    /// Applies `change` to the link `index` in one request.
    pub fn set_link(&self, index: u32, change: &LinkChange<'_>) -> Result<()> {
        let mut buf = MsgBuf::new();
        let seq = self.begin(&mut buf, RTM_SETLINK, Rtnl::ACK);
        let (flags, mask) = flag_bits(change.up, change.promisc);
        ifinfomsg(&mut buf, 0, index, flags, mask);
        if let Some(mtu) = change.mtu {
            buf.attr_u32(IFLA_MTU, mtu);
        }
        if let Some(mac) = change.mac {
            buf.attr(IFLA_ADDRESS, &mac.0);
        }
        if let Some(master) = change.master {
            buf.attr_u32(IFLA_MASTER, master);
        }
        if let Some(name) = change.name {
            check_name(name, || format!("rename link #{index}"))?;
            buf.attr_str(IFLA_IFNAME, name);
        }
        if let Some(ns) = change.netns {
            buf.attr_u32(IFLA_NET_NS_FD, ns.as_raw_fd() as u32);
        }
        if let Some(group) = change.group {
            buf.attr_u32(IFLA_GROUP, group);
        }
        if !change.ipv4_devconf.is_empty() {
            let spec = buf.nest(IFLA_AF_SPEC);
            let inet = buf.nest(libc::AF_INET as u16);
            let conf = buf.nest(IFLA_INET_CONF);
            for (option, value) in change.ipv4_devconf {
                buf.attr_u32(*option, *value);
            }
            buf.end_nest(conf);
            buf.end_nest(inet);
            buf.end_nest(spec);
        }
        self.ack(&mut buf, seq, || format!("set link #{index} {change:?}"))
    }

    /// Sets a link up or down.
    pub fn set_up(&self, index: u32, up: bool) -> Result<()> {
        self.set_link(
            index,
            &LinkChange {
                up: Some(up),
                ..Default::default()
            },
        )
    }

    /// Deletes the link `index`. Returns `false` when it did not exist.
    pub fn delete_link(&self, index: u32) -> Result<bool> {
        let mut buf = MsgBuf::new();
        let seq = self.begin(&mut buf, RTM_DELLINK, Rtnl::ACK);
        ifinfomsg(&mut buf, 0, index, 0, 0);
        match self.ack(&mut buf, seq, || format!("delete link #{index}")) {
            Ok(()) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Deletes the link called `name` (one request). Returns `false` when it did not exist.
    pub fn delete_link_by_name(&self, name: &str) -> Result<bool> {
        check_name(name, || format!("delete link {name:?}"))?;
        let mut buf = MsgBuf::new();
        let seq = self.begin(&mut buf, RTM_DELLINK, Rtnl::ACK);
        ifinfomsg(&mut buf, 0, 0, 0, 0);
        buf.attr_str(IFLA_IFNAME, name);
        match self.ack(&mut buf, seq, || format!("delete link {name:?}")) {
            Ok(()) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Sets bridge-port flags and adds VLANs on the port `index` (enslaved to a bridge), in one
    /// `AF_BRIDGE` request.
    pub fn set_bridge_port(&self, index: u32, settings: &BridgePortSettings<'_>) -> Result<()> {
        let mut buf = MsgBuf::new();
        let seq = self.begin(&mut buf, RTM_SETLINK, Rtnl::ACK);
        ifinfomsg(&mut buf, AF_BRIDGE, index, 0, 0);
        if settings.hairpin.is_some() || settings.isolated.is_some() {
            let proto = buf.nest(IFLA_PROTINFO);
            if let Some(h) = settings.hairpin {
                buf.attr_u8(IFLA_BRPORT_MODE, h.into());
            }
            if let Some(i) = settings.isolated {
                buf.attr_u8(IFLA_BRPORT_ISOLATED, i.into());
            }
            buf.end_nest(proto);
        }
        if !settings.add_vlans.is_empty() {
            let spec = buf.nest(IFLA_AF_SPEC);
            put_vlans(&mut buf, settings.add_vlans);
            buf.end_nest(spec);
        }
        self.ack(&mut buf, seq, || format!("set bridge port #{index} {settings:?}"))
    }

    /// Removes VLANs from the bridge port `index`.
    pub fn del_bridge_vlans(&self, index: u32, vlans: &[BridgeVlan]) -> Result<()> {
        let mut buf = MsgBuf::new();
        let seq = self.begin(&mut buf, RTM_DELLINK, Rtnl::ACK);
        ifinfomsg(&mut buf, AF_BRIDGE, index, 0, 0);
        let spec = buf.nest(IFLA_AF_SPEC);
        put_vlans(&mut buf, vlans);
        buf.end_nest(spec);
        self.ack(&mut buf, seq, || {
            format!("delete VLANs {vlans:?} from bridge port #{index}")
        })
    }

    /// `(hairpin, isolated)` of the bridge port `index`, or `None` when it is not a bridge port.
    pub fn bridge_port_flags(&self, index: u32) -> Result<Option<(bool, bool)>> {
        let mut buf = MsgBuf::new();
        let seq = self.begin(&mut buf, RTM_GETLINK, Rtnl::ACK);
        ifinfomsg(&mut buf, 0, index, 0, 0);
        buf.attr_u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
        let mut out = None;
        self.collect(
            &mut buf,
            seq,
            |m| {
                let Some(attrs) = m.payload.get(16..) else {
                    return;
                };
                for (k, v) in Attrs(attrs) {
                    if k != IFLA_LINKINFO {
                        continue;
                    }
                    let mut is_bridge_port = false;
                    let mut flags = (false, false);
                    for (ik, iv) in Attrs(v) {
                        match ik {
                            IFLA_INFO_SLAVE_KIND => is_bridge_port = str_eq(iv, "bridge"),
                            IFLA_INFO_SLAVE_DATA => {
                                for (pk, pv) in Attrs(iv) {
                                    let on = pv.first().is_some_and(|b| *b != 0);
                                    match pk {
                                        IFLA_BRPORT_MODE => flags.0 = on,
                                        IFLA_BRPORT_ISOLATED => flags.1 = on,
                                        _ => {}
                                    }
                                }
                            }
                            _ => {}
                        }
                    }
                    if is_bridge_port {
                        out = Some(flags);
                    }
                }
            },
            || format!("get bridge port flags of #{index}"),
        )?;
        Ok(out)
    }

    /// The VLANs configured on the bridge port (or bridge) `index`, one entry per VLAN id.
    pub fn bridge_vlans(&self, index: u32) -> Result<Vec<BridgeVlan>> {
        let mut buf = MsgBuf::new();
        let seq = self.begin(&mut buf, RTM_GETLINK, Rtnl::DUMP);
        ifinfomsg(&mut buf, AF_BRIDGE, 0, 0, 0);
        buf.attr_u32(IFLA_EXT_MASK, RTEXT_FILTER_BRVLAN);
        let mut out = Vec::new();
        self.collect(
            &mut buf,
            seq,
            |m| {
                let p = m.payload;
                if p.len() < 16 || u32::from_ne_bytes([p[4], p[5], p[6], p[7]]) != index {
                    return;
                }
                for (k, v) in Attrs(&p[16..]) {
                    if k != IFLA_AF_SPEC {
                        continue;
                    }
                    for (vk, vv) in Attrs(v) {
                        if vk != IFLA_BRIDGE_VLAN_INFO || vv.len() < 4 {
                            continue;
                        }
                        let flags = u16::from_ne_bytes([vv[0], vv[1]]);
                        let vid = u16::from_ne_bytes([vv[2], vv[3]]);
                        out.push(BridgeVlan {
                            vid,
                            vid_end: vid,
                            pvid: flags & BRIDGE_VLAN_INFO_PVID != 0,
                            untagged: flags & BRIDGE_VLAN_INFO_UNTAGGED != 0,
                        });
                    }
                }
            },
            || format!("list VLANs of bridge port #{index}"),
        )?;
        Ok(out)
    }
}
