//! nf_tables messages, encoded by hand: batches, the table, the base chain, per-subnet sets,
//! the per-subnet rule, set elements, and the parsing of set and element dumps.
//!
//! Conventions of the nf_tables netlink API: every integer attribute is big-endian, strings are
//! NUL-terminated, each message starts with a `struct nfgenmsg`, and changes travel in a batch
//! framed by `NFNL_MSG_BATCH_BEGIN`/`END` that the kernel applies atomically.

use std::net::IpAddr;

use crate::netlink::wire::{string, Attrs, MsgBuf, NlMsg};
use crate::netlink::IpNet;

/// `NFNL_SUBSYS_NFTABLES`.
const SUBSYS: u16 = 10;
const BATCH_BEGIN: u16 = 0x10;
const BATCH_END: u16 = 0x11;
/// `NFPROTO_INET`: the table serves IPv4 and IPv6.
const NFPROTO_INET: u8 = 1;
const NFPROTO_IPV4: u8 = 2;
const NFPROTO_IPV6: u8 = 10;

/// nf_tables message types.
pub(crate) mod msg {
    pub(crate) const NEWTABLE: u16 = 0;
    pub(crate) const NEWCHAIN: u16 = 3;
    pub(crate) const NEWRULE: u16 = 6;
    pub(crate) const GETRULE: u16 = 7;
    pub(crate) const NEWSET: u16 = 9;
    pub(crate) const GETSET: u16 = 10;
    pub(crate) const NEWSETELEM: u16 = 12;
    pub(crate) const GETSETELEM: u16 = 13;
    pub(crate) const DELSETELEM: u16 = 14;
}

const NFTA_TABLE_NAME: u16 = 1;
const NFTA_TABLE_FLAGS: u16 = 2;
const NFTA_TABLE_USERDATA: u16 = 6;

const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NF_INET_POST_ROUTING: u32 = 4;
/// `srcnat` priority.
const PRIORITY_SRCNAT: i32 = 100;
const NF_ACCEPT: u32 = 1;

const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_RULE_USERDATA: u16 = 7;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;

const NFTA_SET_TABLE: u16 = 1;
const NFTA_SET_NAME: u16 = 2;
const NFTA_SET_FLAGS: u16 = 3;
const NFTA_SET_KEY_TYPE: u16 = 4;
const NFTA_SET_KEY_LEN: u16 = 5;
const NFTA_SET_ID: u16 = 10;
const NFTA_SET_USERDATA: u16 = 13;
/// nft's data type numbers, so `nft list` prints the keys as addresses.
const TYPE_IPADDR: u32 = 7;
const TYPE_IP6ADDR: u32 = 8;

const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_USERDATA: u16 = 6;

const NFT_REG_1: u32 = 1;
const NFT_META_NFPROTO: u32 = 15;
const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;
const NFT_CMP_EQ: u32 = 0;
const NFT_CMP_NEQ: u32 = 1;

/// libnftnl user-data TLV types of a comment: tables, chains, rules and elements use 0, sets 7.
const UDATA_COMMENT: u8 = 0;
const UDATA_SET_COMMENT: u8 = 7;

/// Longest comment a user-data TLV can carry (one length byte, including the NUL).
pub(crate) const MAX_COMMENT: usize = 254;

/// A comment in libnftnl's user-data format, so `nft list` shows it.
fn udata_comment(kind: u8, text: &str) -> Vec<u8> {
    let text = &text.as_bytes()[..text.len().min(MAX_COMMENT)];
    let mut v = Vec::with_capacity(text.len() + 3);
    v.push(kind);
    v.push((text.len() + 1) as u8);
    v.extend_from_slice(text);
    v.push(0);
    v
}

/// Reads the comment of type `kind` out of user data.
fn read_comment(udata: &[u8], kind: u8) -> Option<String> {
    let mut rest = udata;
    while rest.len() >= 2 {
        let (t, len) = (rest[0], rest[1] as usize);
        let value = rest.get(2..2 + len)?;
        if t == kind {
            return Some(string(value));
        }
        rest = &rest[2 + len..];
    }
    None
}

fn nfgenmsg(buf: &mut MsgBuf, family: u8, res_id: u16) {
    let mut h = [0u8; 4];
    h[0] = family;
    h[2..4].copy_from_slice(&res_id.to_be_bytes());
    buf.put(&h);
}

/// A batch under construction: its buffer and the sequence numbers it uses.
pub(crate) struct Batch {
    pub(crate) buf: MsgBuf,
    next_seq: u32,
    /// Sequence number of the first message inside the batch.
    pub(crate) first: u32,
}

impl Batch {
    /// Starts a batch whose messages are numbered from `seq`.
    pub(crate) fn begin(seq: u32) -> Self {
        let mut buf = MsgBuf::new();
        buf.begin(BATCH_BEGIN, crate::netlink::socket::NLM_F_REQUEST, seq);
        nfgenmsg(&mut buf, 0, SUBSYS);
        buf.finish();
        Self {
            buf,
            next_seq: seq.wrapping_add(1),
            first: seq.wrapping_add(1),
        }
    }

    /// Starts an nf_tables message inside the batch and returns its sequence number.
    pub(crate) fn message(&mut self, kind: u16, flags: u16) -> u32 {
        use crate::netlink::socket::{NLM_F_ACK, NLM_F_REQUEST};
        let seq = self.next_seq;
        self.next_seq = seq.wrapping_add(1);
        self.buf
            .begin(SUBSYS << 8 | kind, NLM_F_REQUEST | NLM_F_ACK | flags, seq);
        nfgenmsg(&mut self.buf, NFPROTO_INET, 0);
        seq
    }

    /// Closes the batch; returns the sequence number of its last message.
    pub(crate) fn end(&mut self) -> u32 {
        let last = self.next_seq.wrapping_sub(1);
        self.buf.finish();
        self.buf
            .begin(BATCH_END, crate::netlink::socket::NLM_F_REQUEST, self.next_seq);
        nfgenmsg(&mut self.buf, 0, SUBSYS);
        self.buf.finish();
        last
    }
}

/// A request outside a batch (a GET), with `NLM_F_ACK` or a dump flag.
pub(crate) fn get_request(buf: &mut MsgBuf, kind: u16, flags: u16, seq: u32) {
    use crate::netlink::socket::NLM_F_REQUEST;
    buf.begin(SUBSYS << 8 | kind, NLM_F_REQUEST | flags, seq);
    nfgenmsg(buf, NFPROTO_INET, 0);
}

/// `NEWTABLE` body: the table, with a comment.
pub(crate) fn table(buf: &mut MsgBuf, name: &str, comment: &str) {
    buf.attr_str(NFTA_TABLE_NAME, name);
    buf.attr_be32(NFTA_TABLE_FLAGS, 0);
    buf.attr(NFTA_TABLE_USERDATA, &udata_comment(UDATA_COMMENT, comment));
}

/// `NEWCHAIN` body: the `nat` base chain at `postrouting`, priority `srcnat`, policy accept.
pub(crate) fn postrouting_chain(buf: &mut MsgBuf, table: &str, name: &str) {
    buf.attr_str(NFTA_CHAIN_TABLE, table);
    buf.attr_str(NFTA_CHAIN_NAME, name);
    let hook = buf.nest(NFTA_CHAIN_HOOK);
    buf.attr_be32(NFTA_HOOK_HOOKNUM, NF_INET_POST_ROUTING);
    buf.attr_be32(NFTA_HOOK_PRIORITY, PRIORITY_SRCNAT as u32);
    buf.end_nest(hook);
    buf.attr_be32(NFTA_CHAIN_POLICY, NF_ACCEPT);
    buf.attr_str(NFTA_CHAIN_TYPE, "nat");
}

/// `NEWSET` body: a hash set of addresses of `subnet`'s family.
pub(crate) fn addr_set(buf: &mut MsgBuf, table: &str, name: &str, id: u32, v6: bool, comment: &str) {
    buf.attr_str(NFTA_SET_TABLE, table);
    buf.attr_str(NFTA_SET_NAME, name);
    buf.attr_be32(NFTA_SET_FLAGS, 0);
    let (kind, len) = if v6 { (TYPE_IP6ADDR, 16) } else { (TYPE_IPADDR, 4) };
    buf.attr_be32(NFTA_SET_KEY_TYPE, kind);
    buf.attr_be32(NFTA_SET_KEY_LEN, len);
    buf.attr_be32(NFTA_SET_ID, id);
    buf.attr(NFTA_SET_USERDATA, &udata_comment(UDATA_SET_COMMENT, comment));
}

fn expr_begin(buf: &mut MsgBuf, name: &str) -> (crate::netlink::wire::Nest, crate::netlink::wire::Nest) {
    let elem = buf.nest(NFTA_LIST_ELEM);
    buf.attr_str(NFTA_EXPR_NAME, name);
    let data = buf.nest(NFTA_EXPR_DATA);
    (elem, data)
}

fn expr_end(buf: &mut MsgBuf, nests: (crate::netlink::wire::Nest, crate::netlink::wire::Nest)) {
    buf.end_nest(nests.1);
    buf.end_nest(nests.0);
}

fn data_value(buf: &mut MsgBuf, kind: u16, bytes: &[u8]) {
    let n = buf.nest(kind);
    buf.attr(NFTA_DATA_VALUE, bytes);
    buf.end_nest(n);
}

fn meta_nfproto(buf: &mut MsgBuf) {
    let e = expr_begin(buf, "meta");
    buf.attr_be32(1, NFT_REG_1); // NFTA_META_DREG
    buf.attr_be32(2, NFT_META_NFPROTO); // NFTA_META_KEY
    expr_end(buf, e);
}

fn cmp(buf: &mut MsgBuf, op: u32, bytes: &[u8]) {
    let e = expr_begin(buf, "cmp");
    buf.attr_be32(1, NFT_REG_1); // NFTA_CMP_SREG
    buf.attr_be32(2, op); // NFTA_CMP_OP
    data_value(buf, 3, bytes); // NFTA_CMP_DATA
    expr_end(buf, e);
}

fn network_payload(buf: &mut MsgBuf, offset: u32, len: u32) {
    let e = expr_begin(buf, "payload");
    buf.attr_be32(1, NFT_REG_1); // NFTA_PAYLOAD_DREG
    buf.attr_be32(2, NFT_PAYLOAD_NETWORK_HEADER); // NFTA_PAYLOAD_BASE
    buf.attr_be32(3, offset); // NFTA_PAYLOAD_OFFSET
    buf.attr_be32(4, len); // NFTA_PAYLOAD_LEN
    expr_end(buf, e);
}

fn lookup(buf: &mut MsgBuf, set: &str, set_id: u32) {
    let e = expr_begin(buf, "lookup");
    buf.attr_str(1, set); // NFTA_LOOKUP_SET
    buf.attr_be32(2, NFT_REG_1); // NFTA_LOOKUP_SREG
    buf.attr_be32(4, set_id); // NFTA_LOOKUP_SET_ID
    expr_end(buf, e);
}

/// `reg1 = reg1 & mask` (xor 0).
fn mask(buf: &mut MsgBuf, mask: &[u8]) {
    let e = expr_begin(buf, "bitwise");
    buf.attr_be32(1, NFT_REG_1); // NFTA_BITWISE_SREG
    buf.attr_be32(2, NFT_REG_1); // NFTA_BITWISE_DREG
    buf.attr_be32(3, mask.len() as u32); // NFTA_BITWISE_LEN
    data_value(buf, 4, mask); // NFTA_BITWISE_MASK
    data_value(buf, 5, &[0u8; 16][..mask.len()]); // NFTA_BITWISE_XOR
    expr_end(buf, e);
}

/// The prefix mask of `prefix` bits in `len` bytes.
fn prefix_mask(prefix: u8, len: usize) -> [u8; 16] {
    let mut m = [0u8; 16];
    let mut bits = usize::from(prefix);
    for byte in m.iter_mut().take(len) {
        let take = bits.min(8);
        *byte = if take == 0 { 0 } else { 0xffu8 << (8 - take) };
        bits -= take;
    }
    m
}

fn addr_bytes(ip: &IpAddr) -> ([u8; 16], usize) {
    let mut b = [0u8; 16];
    match ip {
        IpAddr::V4(a) => {
            b[..4].copy_from_slice(&a.octets());
            (b, 4)
        }
        IpAddr::V6(a) => {
            b.copy_from_slice(&a.octets());
            (b, 16)
        }
    }
}

/// `daddr != prefix` for the packet's family.
fn daddr_not_in(buf: &mut MsgBuf, net: &IpNet) {
    let (addr, len) = addr_bytes(&net.network().addr);
    let offset = if len == 4 { 16 } else { 24 };
    network_payload(buf, offset, len as u32);
    if net.prefix as usize != len * 8 {
        mask(buf, &prefix_mask(net.prefix, len)[..len]);
    }
    cmp(buf, NFT_CMP_NEQ, &addr[..len]);
}

/// `NEWRULE` body for one subnet:
/// `ip saddr @<set> ip daddr != <subnet> ip daddr != 224.0.0.0/4 masquerade`
/// (`ip6 ... ff00::/8` for IPv6), with `comment` as the rule's comment.
pub(crate) fn masq_rule(
    buf: &mut MsgBuf,
    table: &str,
    chain: &str,
    set: &str,
    set_id: u32,
    subnet: &IpNet,
    comment: &str,
) {
    buf.attr_str(NFTA_RULE_TABLE, table);
    buf.attr_str(NFTA_RULE_CHAIN, chain);
    let exprs = buf.nest(NFTA_RULE_EXPRESSIONS);
    let v6 = subnet.is_ipv6();
    meta_nfproto(buf);
    cmp(buf, NFT_CMP_EQ, &[if v6 { NFPROTO_IPV6 } else { NFPROTO_IPV4 }]);
    let (saddr_offset, len) = if v6 { (8, 16) } else { (12, 4) };
    network_payload(buf, saddr_offset, len);
    lookup(buf, set, set_id);
    daddr_not_in(buf, subnet);
    let multicast: IpNet = if v6 {
        IpNet::new(
            "ff00::".parse().unwrap_or(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)),
            8,
        )
    } else {
        IpNet::new(IpAddr::V4(std::net::Ipv4Addr::new(224, 0, 0, 0)), 4)
    }
    .unwrap_or(*subnet);
    daddr_not_in(buf, &multicast);
    let e = buf.nest(NFTA_LIST_ELEM);
    buf.attr_str(NFTA_EXPR_NAME, "masq");
    buf.end_nest(e);
    buf.end_nest(exprs);
    buf.attr(NFTA_RULE_USERDATA, &udata_comment(UDATA_COMMENT, comment));
}

/// Set-element message body naming the set; elements follow with [`element`] inside the
/// returned nest, closed with `end_nest`.
pub(crate) fn elements_begin(buf: &mut MsgBuf, table: &str, set: &str) -> crate::netlink::wire::Nest {
    buf.attr_str(NFTA_SET_ELEM_LIST_TABLE, table);
    buf.attr_str(NFTA_SET_ELEM_LIST_SET, set);
    buf.nest(NFTA_SET_ELEM_LIST_ELEMENTS)
}

/// One element: the address key and, when given, its comment.
pub(crate) fn element(buf: &mut MsgBuf, ip: &IpAddr, comment: Option<&str>) {
    let e = buf.nest(NFTA_LIST_ELEM);
    let (addr, len) = addr_bytes(ip);
    data_value(buf, NFTA_SET_ELEM_KEY, &addr[..len]);
    if let Some(c) = comment {
        buf.attr(NFTA_SET_ELEM_USERDATA, &udata_comment(UDATA_COMMENT, c));
    }
    buf.end_nest(e);
}

/// Body of a set dump / single-set request restricted to one table.
pub(crate) fn set_filter(buf: &mut MsgBuf, table: &str) {
    buf.attr_str(NFTA_SET_TABLE, table);
}

/// A set of the table, as dumped.
pub(crate) struct SetInfo {
    /// Set name.
    pub(crate) name: String,
    /// Its comment (`network=... subnet=...`).
    pub(crate) comment: Option<String>,
}

/// Parses a `NEWSET` message of a dump.
pub(crate) fn parse_set(m: &NlMsg<'_>) -> Option<SetInfo> {
    let attrs = m.payload.get(4..)?;
    let mut name = None;
    let mut comment = None;
    for (k, v) in Attrs(attrs) {
        match k {
            NFTA_SET_NAME => name = Some(string(v)),
            NFTA_SET_USERDATA => comment = read_comment(v, UDATA_SET_COMMENT),
            _ => {}
        }
    }
    Some(SetInfo { name: name?, comment })
}

/// Parses the elements of a `NEWSETELEM` message: `(address, comment)` pairs.
pub(crate) fn parse_elements(m: &NlMsg<'_>, out: &mut Vec<(IpAddr, Option<String>)>) {
    let Some(attrs) = m.payload.get(4..) else {
        return;
    };
    for (k, v) in Attrs(attrs) {
        if k != NFTA_SET_ELEM_LIST_ELEMENTS {
            continue;
        }
        for (ek, ev) in Attrs(v) {
            if ek != NFTA_LIST_ELEM {
                continue;
            }
            let mut key = None;
            let mut comment = None;
            for (ak, av) in Attrs(ev) {
                match ak {
                    NFTA_SET_ELEM_KEY => {
                        for (dk, dv) in Attrs(av) {
                            if dk == NFTA_DATA_VALUE {
                                key = bytes_to_ip(dv);
                            }
                        }
                    }
                    NFTA_SET_ELEM_USERDATA => comment = read_comment(av, UDATA_COMMENT),
                    _ => {}
                }
            }
            if let Some(ip) = key {
                out.push((ip, comment));
            }
        }
    }
}

fn bytes_to_ip(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(b).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(b).ok()?)),
        _ => None,
    }
}

/// Body of a rule dump restricted to one chain.
pub(crate) fn rule_filter(buf: &mut MsgBuf, table: &str, chain: &str) {
    buf.attr_str(NFTA_RULE_TABLE, table);
    buf.attr_str(NFTA_RULE_CHAIN, chain);
}

/// What a dumped rule is made of, as far as the masquerade cares.
pub(crate) struct RuleInfo {
    /// The rule's comment.
    pub(crate) comment: Option<String>,
    /// The sets it looks addresses up in.
    pub(crate) lookups: Vec<String>,
    /// Its last expression is `masq`.
    pub(crate) ends_in_masq: bool,
}

/// Parses a `NEWRULE` message of a dump.
pub(crate) fn parse_rule(m: &NlMsg<'_>) -> Option<RuleInfo> {
    let attrs = m.payload.get(4..)?;
    let mut info = RuleInfo {
        comment: None,
        lookups: Vec::new(),
        ends_in_masq: false,
    };
    for (k, v) in Attrs(attrs) {
        match k {
            NFTA_RULE_USERDATA => info.comment = read_comment(v, UDATA_COMMENT),
            NFTA_RULE_EXPRESSIONS => {
                for (_, expr) in Attrs(v) {
                    let mut name = String::new();
                    for (ek, ev) in Attrs(expr) {
                        match ek {
                            NFTA_EXPR_NAME => name = string(ev),
                            NFTA_EXPR_DATA if name == "lookup" => {
                                for (lk, lv) in Attrs(ev) {
                                    if lk == 1 {
                                        info.lookups.push(string(lv)); // NFTA_LOOKUP_SET
                                    }
                                }
                            }
                            _ => {}
                        }
                    }
                    info.ends_in_masq = name == "masq";
                }
            }
            _ => {}
        }
    }
    Some(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_masks() {
        assert_eq!(&prefix_mask(24, 4)[..4], &[255, 255, 255, 0]);
        assert_eq!(&prefix_mask(4, 4)[..4], &[0xf0, 0, 0, 0]);
        assert_eq!(&prefix_mask(0, 4)[..4], &[0, 0, 0, 0]);
        assert_eq!(&prefix_mask(8, 16)[..2], &[0xff, 0]);
        assert_eq!(&prefix_mask(65, 16)[7..9], &[0xff, 0x80]);
    }

    #[test]
    fn comment_round_trip() {
        let u = udata_comment(UDATA_SET_COMMENT, "net=a");
        assert_eq!(read_comment(&u, UDATA_SET_COMMENT).as_deref(), Some("net=a"));
        assert_eq!(read_comment(&u, UDATA_COMMENT), None);
    }
}
