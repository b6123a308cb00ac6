//! Snapshot of a namespace's packet-filter state: the nftables ruleset read over nfnetlink
//! (this also covers iptables-nft, whose tables are nftables tables) and the iptables-legacy
//! tables read with `getsockopt(IPT_SO_GET_ENTRIES)` / `IP6T_SO_GET_ENTRIES`. No `nft` or
//! `iptables` process is run.
//!
//! What is compared: nftables tables (family, name), chains (name; for base chains type, hook,
//! priority, devices and a drop policy), rules (expression names plus a digest of their
//! configuration, with counter/quota/last state left out and anonymous sets replaced by their
//! content; comment from the rule userdata or an xt `comment` match), named sets and maps (name
//! and element count); iptables-legacy tables (entry count and a digest with counters zeroed).
//!
//! Not covered: nftables flowtables and stateful objects (named counters, quotas, limits, ct
//! helpers...), table flags (dormant), set definitions (key type, timeout) and the content of
//! named sets beyond their element count; which individual legacy rule changed (only the table's
//! entry count and digest are kept).

use std::os::fd::BorrowedFd;

mod attr;
mod diff;
mod legacy;
mod netns;
mod nfnl;
mod nft;

/// Errors while reading packet-filter state.
#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    /// A socket call failed.
    #[error("{op}: {source}")]
    Io {
        /// What was attempted.
        op: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A message could not be decoded.
    #[error("decoding {what}: {detail}")]
    Decode {
        /// Which message.
        what: String,
        /// Why.
        detail: String,
    },
}

/// One nftables rule, reduced to what identifies it across snapshots.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NftRule {
    /// The rule's comment (from `NFTA_RULE_USERDATA`), if it has one.
    pub comment: Option<String>,
    /// A readable, stable summary of the rule's expressions: their names in order (iptables-nft
    /// compatibility expressions with their extension, e.g. "target:MASQUERADE"), then " #" and a
    /// 16-hex-digit digest of the expressions' configuration, so two different rules do not
    /// compare equal (e.g. "meta cmp masq #0123456789abcdef").
    pub summary: String,
}

/// One nftables chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NftChain {
    /// Chain name.
    pub name: String,
    /// For base chains: "type hook priority" (e.g. "nat postrouting 100"), followed by
    /// " dev NAME" / " devices A,B" for netdev-style hooks and " policy drop" when the policy is
    /// drop; `None` for regular chains.
    pub base: Option<String>,
    /// Rules in kernel order.
    pub rules: Vec<NftRule>,
}

/// One nftables table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NftTable {
    /// Family name: "ip", "ip6", "inet", "arp", "bridge", "netdev".
    pub family: String,
    /// Table name.
    pub name: String,
    /// Chains in kernel order.
    pub chains: Vec<NftChain>,
    /// Named sets in the table with their element counts.
    pub sets: Vec<(String, usize)>,
}

/// One iptables-legacy table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyTable {
    /// "ipv4" or "ipv6".
    pub family: String,
    /// Table name (filter, nat, mangle, raw).
    pub name: String,
    /// Number of entries (rules including chain heads and policies).
    pub entries: u32,
    /// Digest of the entry blob with counters zeroed, so two equal rulesets compare equal.
    pub digest: String,
}

/// Everything the packet filter holds in one namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FirewallSnapshot {
    /// nftables tables (iptables-nft included).
    pub nft: Vec<NftTable>,
    /// iptables-legacy tables that hold something: a table that does not exist, and one with only
    /// its built-in chains, ACCEPT policies and no rules, are absent. Sorted by (family, name).
    pub legacy: Vec<LegacyTable>,
}

impl FirewallSnapshot {
    /// Reads the packet-filter state of the namespace `netns` without moving the calling thread.
    ///
    /// The sockets are opened on a short-lived thread that joins `netns`; everything else runs on
    /// the calling thread. nftables objects are read in one generation (retried when the ruleset
    /// changes meanwhile). Needs CAP_NET_ADMIN (and CAP_NET_RAW for the legacy raw sockets) over
    /// the namespace, and CAP_SYS_ADMIN to join it.
    ///
    /// iptables-legacy: asking the kernel for a table creates it in that namespace, so the tables
    /// that exist are taken from `/proc/thread-self/net/ip{,6}_tables_names` when readable (real
    /// root). Root of a user namespace cannot read that list; then filter, nat, mangle, raw and
    /// security are asked for, which instantiates them (empty) in `netns`. Either way a table
    /// holding only its built-in chains with ACCEPT policies and no rules filters nothing and is
    /// left out, so both paths give the same snapshot.
    pub fn read(netns: BorrowedFd<'_>) -> Result<Self, FirewallError> {
        let (mut socket, probes) =
            netns::run_in_netns(netns, || Ok((nfnl::NfSocket::open()?, legacy::open_probes()?)))?;
        let nft = nft::read_ruleset(&mut socket)?;
        let legacy = legacy::read_tables(&probes)?;
        Ok(Self { nft, legacy })
    }

    /// Human-readable differences from `before` to `self`, one line each ("+ rule ...",
    /// "- chain ..."); empty when equal.
    ///
    /// Order is deterministic: nftables tables sorted by (family, name), inside each its chains
    /// sorted by name (each followed by its rule changes), then its sets; then iptables-legacy
    /// tables. Rules compare as multisets per chain: handles and positions are ignored.
    pub fn diff(&self, before: &FirewallSnapshot) -> Vec<String> {
        let mut lines = diff::nft_tables(&before.nft, &self.nft);
        lines.extend(diff::legacy_tables(&before.legacy, &self.legacy));
        lines
    }
}
