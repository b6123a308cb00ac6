//! ipMasq for the `bridge` plugin through nftables over netlink: no `nft` process, no iptables,
//! and a constant cost per attachment.
//!
//! # Design
//!
//! Everything lives in one table this module owns, `inet cni_rs_masquerade` (no other table
//! is ever read or changed), with one base chain `postrouting` (type `nat`, hook
//! `postrouting`, priority `srcnat` = 100, policy accept).
//!
//! For every (network, subnet) pair there is one hash set of source addresses and one rule:
//!
//! ```text
//! set masq_<net>_<subnet> { type ipv4_addr; comment "network=<net> subnet=<cidr>" }
//! ip saddr @masq_<net>_<subnet> ip daddr != <subnet> ip daddr != 224.0.0.0/4 masquerade
//! ```
//!
//! (`ip6` / `ipv6_addr` / `ff00::/8` for IPv6). An attachment is one set element, the container
//! address, whose comment is its owner `<network>/<containerID>/<ifname>`. So:
//!
//! - ADD and DEL add or remove one element: one atomic batch, O(1) in a hash set however many
//!   attachments exist, and the rule set never changes on the hot path.
//! - The semantics are the upstream plugin's, per address: a packet from a container address is
//!   masqueraded unless it goes to that address's own subnet or to multicast. Keying the set by
//!   subnet (rather than one set per network) keeps this exact when a network has several
//!   ranges, without interval sets or concatenations (whose updates are not O(1)).
//! - The set and its rule are created together in one batch in which the set is created with
//!   `NLM_F_EXCL`: whoever loses a race gets `EEXIST` and knows the other batch, already
//!   committed, created the rule. Table and chain use `NLM_F_CREATE` without `NLM_F_EXCL`, so
//!   64 concurrent first ADDs end with exactly one table, chain, set and rule per subnet.
//! - Sets are created lazily: `add` tries the element first and creates the set and rule only
//!   when the kernel says the set does not exist, so a steady-state ADD is a single batch.
//! - DEL, CHECK and GC read element comments, so an address reused by another container is
//!   never torn down by the previous owner's DEL, and GC can tell whose each element is.
//!
//! All calls act in the network namespace of the thread that called [`Masq::open`].

mod nft;

use std::collections::HashSet;
use std::net::IpAddr;

use crate::netlink::socket::{Failure, NlSocket, NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL};
use crate::netlink::wire::MsgBuf;
use crate::netlink::{Error, IpNet, Result};
use nft::{msg, Batch};

/// The nftables table this module owns (family `inet`).
pub const TABLE: &str = "cni_rs_masquerade";
/// The base chain inside [`TABLE`].
pub const CHAIN: &str = "postrouting";
const TABLE_COMMENT: &str = "Masquerading for the cni-conformance reference bridge plugin";
/// Longest set name the kernel accepts (`NFT_NAME_MAXLEN` minus the NUL).
const MAX_NAME: usize = 255;
/// How often a batch is retried when a concurrent change makes it fail.
const RETRIES: usize = 4;

/// The comment that marks an element as owned by one attachment: `<network>/<cid>/<ifname>`.
/// Longer than a user-data comment can hold, the tail is replaced by a hash of the whole, so
/// the tag stays unique and stable.
pub fn owner_tag(network: &str, container_id: &str, ifname: &str) -> String {
    let full = format!("{network}/{container_id}/{ifname}");
    if full.len() <= nft::MAX_COMMENT {
        return full;
    }
    let hash = crate::hash::fnv1a(full.as_bytes());
    let mut cut = nft::MAX_COMMENT - 18;
    while !full.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}~{hash:016x}", &full[..cut])
}

/// The set holding the masqueraded addresses of `subnet` (a network address) in `network`.
pub fn set_name(network: &str, subnet: &IpNet) -> String {
    let addr = subnet.addr.to_string().replace(':', "-");
    format!("masq_{network}_{addr}_{}", subnet.prefix)
}

fn set_comment(network: &str, subnet: &IpNet) -> String {
    format!("network={network} subnet={subnet}")
}

/// Reads `(network, subnet)` back from a set comment.
fn parse_set_comment(comment: &str) -> Option<(&str, IpNet)> {
    let rest = comment.strip_prefix("network=")?;
    let (network, subnet) = rest.rsplit_once(" subnet=")?;
    Some((network, subnet.parse().ok()?))
}

/// One masqueraded address, as found in the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MasqEntry {
    /// The subnet whose set holds the address.
    pub subnet: IpNet,
    /// The container address.
    pub ip: IpAddr,
    /// The owner comment ([`owner_tag`]), if the element has one.
    pub owner: Option<String>,
}

/// One set element in a request: the address and, for additions, its owner comment.
type Elem<'a> = (IpAddr, Option<&'a str>);

/// One set-element message of a batch.
struct ElemStep<'a> {
    kind: u16,
    flags: u16,
    set: &'a str,
    elems: &'a [Elem<'a>],
}

/// A client of the kernel's nf_tables, bound to the caller's network namespace.
pub struct Masq {
    sock: NlSocket,
}

impl Masq {
    /// Opens an nfnetlink socket in the calling thread's network namespace. Nothing is
    /// created until it is needed.
    pub fn open() -> Result<Self> {
        let sock = NlSocket::open(libc::NETLINK_NETFILTER, false)
            .map_err(|e| Error::io("open NETLINK_NETFILTER socket", e))?;
        Ok(Self { sock })
    }

    fn check_network(network: &str, op: impl FnOnce() -> String) -> Result<()> {
        // The longest set name is "masq_<network>_<39-char IPv6 address>_128".
        let longest_set_name = network.len() + "masq___128".len() + 39;
        if network.is_empty() || network.contains(['/', ' ', '\0']) || longest_set_name > MAX_NAME {
            return Err(Error::invalid(
                op(),
                "network name must be non-empty, at most 206 bytes, without '/', space or NUL",
            ));
        }
        Ok(())
    }

    fn new_batch(&self) -> Batch {
        // Reserve enough sequence numbers for the batch's messages.
        let first = self.sock.next_seq();
        for _ in 0..64 {
            self.sock.next_seq();
        }
        Batch::begin(first)
    }

    /// Sends a closed batch; on failure returns the errno and the failing message's seq.
    fn send_batch(&self, batch: &mut Batch) -> std::result::Result<(), (u32, Failure)> {
        let last = batch.end();
        self.sock.transact_batch(batch.buf.bytes(), batch.first, last)
    }

    /// Makes sure the table, the chain, and for each subnet its set and rule exist, and puts
    /// back a rule someone deleted while its set stayed. Safe to call concurrently from many
    /// processes (a concurrent repair could at worst append a harmless duplicate rule).
    /// [`Masq::add`] creates what is missing by itself, so callers need this only to prepare a
    /// network ahead of time or to repair it (e.g. after a failed CHECK).
    pub fn ensure_network(&self, network: &str, subnets: &[IpNet]) -> Result<()> {
        Self::check_network(network, || format!("masquerade setup for network {network:?}"))?;
        for subnet in subnets {
            self.ensure_subnet(network, &subnet.network())?;
        }
        // Repair: a rule deleted by hand while its set stayed is put back.
        let rules = self.rules()?;
        for subnet in subnets.iter().map(IpNet::network) {
            let (set, comment) = (set_name(network, &subnet), set_comment(network, &subnet));
            let present = rules
                .iter()
                .any(|r| r.ends_in_masq && r.comment.as_deref() == Some(comment.as_str()) && r.lookups.contains(&set));
            if !present {
                let mut b = self.new_batch();
                b.message(msg::NEWRULE, NLM_F_CREATE | NLM_F_APPEND);
                nft::masq_rule(&mut b.buf, TABLE, CHAIN, &set, 0, &subnet, &comment);
                self.send_batch(&mut b)
                    .map_err(|(_, f)| f.into_error(format!("restore masquerade rule for {set}")))?;
            }
        }
        Ok(())
    }

    fn ensure_subnet(&self, network: &str, subnet: &IpNet) -> Result<()> {
        let set = set_name(network, subnet);
        let op = || format!("create masquerade set {set} for network {network:?} subnet {subnet}");
        let mut b = self.new_batch();
        b.message(msg::NEWTABLE, NLM_F_CREATE);
        nft::table(&mut b.buf, TABLE, TABLE_COMMENT);
        b.buf.finish();
        b.message(msg::NEWCHAIN, NLM_F_CREATE);
        nft::postrouting_chain(&mut b.buf, TABLE, CHAIN);
        b.buf.finish();
        let set_seq = b.message(msg::NEWSET, NLM_F_CREATE | NLM_F_EXCL);
        nft::addr_set(
            &mut b.buf,
            TABLE,
            &set,
            1,
            subnet.is_ipv6(),
            &set_comment(network, subnet),
        );
        b.buf.finish();
        b.message(msg::NEWRULE, NLM_F_CREATE | NLM_F_APPEND);
        nft::masq_rule(&mut b.buf, TABLE, CHAIN, &set, 1, subnet, &set_comment(network, subnet));
        match self.send_batch(&mut b) {
            Ok(()) => Ok(()),
            // The set exists, so the batch that created it (and its rule) has committed.
            Err((seq, f)) if seq == set_seq && f.errno() == Some(libc::EEXIST) => Ok(()),
            Err((_, f)) => Err(f.into_error(op())),
        }
    }

    /// One batch with one set-element message.
    fn element_batch(&self, steps: &[ElemStep<'_>]) -> std::result::Result<(), Failure> {
        let mut b = self.new_batch();
        for step in steps {
            b.message(step.kind, step.flags);
            let list = nft::elements_begin(&mut b.buf, TABLE, step.set);
            for (ip, comment) in step.elems {
                nft::element(&mut b.buf, ip, *comment);
            }
            b.buf.end_nest(list);
            b.buf.finish();
        }
        self.send_batch(&mut b).map_err(|(_, f)| f)
    }

    /// Masquerades traffic from `ip` (with its prefix: the subnet it may reach unmasqueraded)
    /// for the attachment `(network, container_id, ifname)`. Idempotent; takes the address
    /// over if another attachment owned it. Usually one batch.
    pub fn add(&self, network: &str, container_id: &str, ifname: &str, ip: IpNet) -> Result<()> {
        let op = || format!("masquerade {ip} for {network}/{container_id}/{ifname}");
        Self::check_network(network, op)?;
        let subnet = ip.network();
        let set = set_name(network, &subnet);
        let tag = owner_tag(network, container_id, ifname);
        let elem = [(ip.addr, Some(tag.as_str()))];
        let mut last = None;
        for _ in 0..RETRIES {
            let insert = ElemStep {
                kind: msg::NEWSETELEM,
                flags: NLM_F_CREATE | NLM_F_EXCL,
                set: &set,
                elems: &elem,
            };
            match self.element_batch(std::slice::from_ref(&insert)) {
                Ok(()) => return Ok(()),
                Err(f) if f.errno() == Some(libc::ENOENT) => {
                    self.ensure_subnet(network, &subnet)?;
                    last = Some(f);
                }
                Err(f) if f.errno() == Some(libc::EEXIST) => {
                    match self.get_element(&set, &ip.addr).map_err(|f| f.into_error(op()))? {
                        Some(owner) if owner.as_deref() == Some(tag.as_str()) => return Ok(()),
                        Some(_) => {
                            let key = [(ip.addr, None)];
                            let remove = ElemStep {
                                kind: msg::DELSETELEM,
                                flags: 0,
                                set: &set,
                                elems: &key,
                            };
                            let replaced = self.element_batch(&[remove, insert]);
                            match replaced {
                                Ok(()) => return Ok(()),
                                Err(f) => last = Some(f),
                            }
                        }
                        None => last = Some(f),
                    }
                }
                Err(f) => return Err(f.into_error(op())),
            }
        }
        Err(match last {
            Some(f) => f.into_error(op()),
            None => Error::invalid(op(), "gave up after concurrent changes"),
        })
    }

    /// The element `ip` of `set`: `None` if absent (or the set/table is), else its comment.
    fn get_element(&self, set: &str, ip: &IpAddr) -> std::result::Result<Option<Option<String>>, Failure> {
        let mut buf = MsgBuf::new();
        let seq = self.sock.next_seq();
        nft::get_request(&mut buf, msg::GETSETELEM, NLM_F_ACK, seq);
        let list = nft::elements_begin(&mut buf, TABLE, set);
        nft::element(&mut buf, ip, None);
        buf.end_nest(list);
        buf.finish();
        let mut found = Vec::new();
        match self
            .sock
            .transact(buf.bytes(), seq, |m| nft::parse_elements(m, &mut found))
        {
            Ok(()) => Ok(found.into_iter().find(|(a, _)| a == ip).map(|(_, c)| c)),
            Err(f) if f.errno() == Some(libc::ENOENT) => Ok(None),
            Err(f) => Err(f),
        }
    }

    /// `(set name, subnet)` of every set of `network`.
    fn network_sets(&self, network: &str) -> Result<Vec<(String, IpNet)>> {
        let mut buf = MsgBuf::new();
        let seq = self.sock.next_seq();
        nft::get_request(&mut buf, msg::GETSET, NLM_F_DUMP, seq);
        nft::set_filter(&mut buf, TABLE);
        buf.finish();
        let mut sets = Vec::new();
        let res = self.sock.transact(buf.bytes(), seq, |m| {
            if let Some(s) = nft::parse_set(m) {
                sets.push(s);
            }
        });
        match res {
            Ok(()) => {}
            Err(f) if f.errno() == Some(libc::ENOENT) => return Ok(Vec::new()),
            Err(f) => return Err(f.into_error(format!("list masquerade sets of {network:?}"))),
        }
        Ok(sets
            .into_iter()
            .filter_map(|s| {
                let (net, subnet) = parse_set_comment(s.comment.as_deref()?)?;
                (net == network).then_some((s.name, subnet))
            })
            .collect())
    }

    fn set_elements(&self, set: &str) -> Result<Vec<(IpAddr, Option<String>)>> {
        let mut buf = MsgBuf::new();
        let seq = self.sock.next_seq();
        nft::get_request(&mut buf, msg::GETSETELEM, NLM_F_DUMP, seq);
        let list = nft::elements_begin(&mut buf, TABLE, set);
        buf.end_nest(list);
        buf.finish();
        let mut out = Vec::new();
        match self
            .sock
            .transact(buf.bytes(), seq, |m| nft::parse_elements(m, &mut out))
        {
            Ok(()) => Ok(out),
            Err(f) if f.errno() == Some(libc::ENOENT) => Ok(Vec::new()),
            Err(f) => Err(f.into_error(format!("list elements of set {set}"))),
        }
    }

    /// Every masqueraded address of `network`.
    pub fn entries(&self, network: &str) -> Result<Vec<MasqEntry>> {
        let mut out = Vec::new();
        for (set, subnet) in self.network_sets(network)? {
            for (ip, owner) in self.set_elements(&set)? {
                out.push(MasqEntry { subnet, ip, owner });
            }
        }
        Ok(out)
    }

    /// Deletes `(set, ip)` pairs in one batch, retrying when a concurrent change made an
    /// element vanish. Returns how many were deleted.
    fn delete_elements(&self, doomed: &[(String, IpAddr)], op: impl Fn() -> String) -> Result<usize> {
        let mut remaining: Vec<(String, IpAddr)> = doomed.to_vec();
        for _ in 0..RETRIES {
            if remaining.is_empty() {
                return Ok(0);
            }
            let mut sets: Vec<&str> = remaining.iter().map(|(s, _)| s.as_str()).collect();
            sets.sort_unstable();
            sets.dedup();
            let per_set: Vec<Vec<Elem<'_>>> = sets
                .iter()
                .map(|s| {
                    remaining
                        .iter()
                        .filter(|(n, _)| n == s)
                        .map(|(_, ip)| (*ip, None))
                        .collect()
                })
                .collect();
            let steps: Vec<ElemStep<'_>> = sets
                .iter()
                .zip(&per_set)
                .map(|(set, elems)| ElemStep {
                    kind: msg::DELSETELEM,
                    flags: 0,
                    set,
                    elems,
                })
                .collect();
            match self.element_batch(&steps) {
                Ok(()) => return Ok(remaining.len()),
                Err(f) if f.errno() == Some(libc::ENOENT) => {
                    // Someone removed one of them meanwhile: keep only those still present.
                    let mut still = Vec::new();
                    for (set, ip) in remaining {
                        if self.get_element(&set, &ip).map_err(|f| f.into_error(op()))?.is_some() {
                            still.push((set, ip));
                        }
                    }
                    remaining = still;
                }
                Err(f) => return Err(f.into_error(op())),
            }
        }
        Err(Error::invalid(op(), "gave up after concurrent changes"))
    }

    /// Stops masquerading for the attachment `(network, container_id, ifname)`. With `ips`
    /// (e.g. from prevResult, with their prefixes) it looks only at those addresses; with
    /// `None` it scans the network's sets for elements owned by the attachment. Elements owned
    /// by another attachment are left alone. Idempotent; returns how many were removed.
    pub fn del(&self, network: &str, container_id: &str, ifname: &str, ips: Option<&[IpNet]>) -> Result<usize> {
        let op = || format!("remove masquerade for {network}/{container_id}/{ifname}");
        Self::check_network(network, op)?;
        let tag = owner_tag(network, container_id, ifname);
        let mut doomed = Vec::new();
        match ips {
            Some(ips) => {
                for ip in ips {
                    let set = set_name(network, &ip.network());
                    let owner = self.get_element(&set, &ip.addr).map_err(|f| f.into_error(op()))?;
                    if owner.flatten().as_deref() == Some(tag.as_str()) {
                        doomed.push((set, ip.addr));
                    }
                }
            }
            None => {
                for (set, _) in self.network_sets(network)? {
                    for (ip, owner) in self.set_elements(&set)? {
                        if owner.as_deref() == Some(tag.as_str()) {
                            doomed.push((set.clone(), ip));
                        }
                    }
                }
            }
        }
        self.delete_elements(&doomed, op)
    }

    /// True when every address in `ips` is masqueraded for this attachment: the element exists
    /// with this owner, and the rule of its subnet is in the chain. False for an empty list.
    pub fn check(&self, network: &str, container_id: &str, ifname: &str, ips: &[IpNet]) -> Result<bool> {
        let op = || format!("check masquerade for {network}/{container_id}/{ifname}");
        Self::check_network(network, op)?;
        let tag = owner_tag(network, container_id, ifname);
        if ips.is_empty() {
            return Ok(false);
        }
        for ip in ips {
            let set = set_name(network, &ip.network());
            let owner = self.get_element(&set, &ip.addr).map_err(|f| f.into_error(op()))?;
            if owner.flatten().as_deref() != Some(tag.as_str()) {
                return Ok(false);
            }
        }
        // The rules could have been removed by hand while the sets stayed.
        let rules = self.rules()?;
        Ok(ips.iter().all(|ip| {
            let subnet = ip.network();
            let (set, comment) = (set_name(network, &subnet), set_comment(network, &subnet));
            rules
                .iter()
                .any(|r| r.ends_in_masq && r.comment.as_deref() == Some(comment.as_str()) && r.lookups.contains(&set))
        }))
    }

    /// Every rule of the base chain.
    fn rules(&self) -> Result<Vec<nft::RuleInfo>> {
        let mut buf = MsgBuf::new();
        let seq = self.sock.next_seq();
        nft::get_request(&mut buf, msg::GETRULE, NLM_F_DUMP, seq);
        nft::rule_filter(&mut buf, TABLE, CHAIN);
        buf.finish();
        let mut out = Vec::new();
        match self.sock.transact(buf.bytes(), seq, |m| out.extend(nft::parse_rule(m))) {
            Ok(()) => Ok(out),
            Err(f) if f.errno() == Some(libc::ENOENT) => Ok(Vec::new()),
            Err(f) => Err(f.into_error(format!("list rules of {TABLE} {CHAIN}"))),
        }
    }

    /// Removes every element of `network` whose owner is not one of the `valid`
    /// `(container_id, ifname)` attachments. Returns how many were removed.
    pub fn gc(&self, network: &str, valid: &[(&str, &str)]) -> Result<usize> {
        let op = || format!("garbage-collect masquerade of network {network:?}");
        Self::check_network(network, op)?;
        let keep: HashSet<String> = valid.iter().map(|(c, i)| owner_tag(network, c, i)).collect();
        let mut doomed = Vec::new();
        for (set, _) in self.network_sets(network)? {
            for (ip, owner) in self.set_elements(&set)? {
                if !owner.is_some_and(|o| keep.contains(&o)) {
                    doomed.push((set.clone(), ip));
                }
            }
        }
        self.delete_elements(&doomed, op)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_tags() {
        let subnet: IpNet = "fd00:1::/64".parse().unwrap();
        assert_eq!(set_name("mynet", &subnet), "masq_mynet_fd00-1--_64");
        let v4: IpNet = "10.1.0.0/24".parse().unwrap();
        assert_eq!(set_name("mynet", &v4), "masq_mynet_10.1.0.0_24");
        let c = set_comment("my net", &v4);
        assert_eq!(parse_set_comment(&c), Some(("my net", v4)));
        assert_eq!(owner_tag("n", "c1", "eth0"), "n/c1/eth0");
        let long = "x".repeat(300);
        let t1 = owner_tag("n", &long, "eth0");
        let t2 = owner_tag("n", &long, "eth1");
        assert!(t1.len() <= nft::MAX_COMMENT && t1 != t2);
        assert_eq!(t1, owner_tag("n", &long, "eth0"));
    }
}
