//! Reading the nftables ruleset (tables, chains, rules, named sets) of the namespace an
//! [`NfSocket`] was opened in, for every family at once (`NFPROTO_UNSPEC` dumps).

use std::collections::HashMap;

use super::attr::{push_str_attr, Attr, Attrs};
use super::nfnl::{Dump, DumpError, NfMessage, NfSocket};
use super::{FirewallError, NftChain, NftRule, NftTable};
use crate::hash::Fnv1a;

// nf_tables message types (enum nf_tables_msg_types).
const NFT_MSG_GETTABLE: u16 = 1;
const NFT_MSG_GETCHAIN: u16 = 4;
const NFT_MSG_GETRULE: u16 = 7;
const NFT_MSG_GETSET: u16 = 10;
const NFT_MSG_GETSETELEM: u16 = 13;
const NFT_MSG_GETGEN: u16 = 16;

// Attributes (include/uapi/linux/netfilter/nf_tables.h).
const NFTA_TABLE_NAME: u16 = 1;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NFTA_HOOK_DEV: u16 = 3;
const NFTA_HOOK_DEVS: u16 = 4;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_RULE_USERDATA: u16 = 7;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_QUOTA_CONSUMED: u16 = 3;
const NFTA_MATCH_NAME: u16 = 1;
const NFTA_MATCH_INFO: u16 = 3;
/// Set element attributes that identify an element: KEY, DATA, FLAGS, OBJREF, KEY_END (not the
/// timeout/expiration, userdata or per-element expressions such as counters).
const ELEMENT_IDENTITY: [u16; 5] = [1, 2, 3, 9, 10];
const NFTA_SET_TABLE: u16 = 1;
const NFTA_SET_NAME: u16 = 2;
const NFTA_SET_FLAGS: u16 = 3;
const NFT_SET_ANONYMOUS: u32 = 0x1;
const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_GEN_ID: u16 = 1;
/// Rule userdata TLV type holding the comment (libnftnl's NFTNL_UDATA_RULE_COMMENT).
const UDATA_RULE_COMMENT: u8 = 0;
/// `NF_DROP`, the only other base-chain policy besides accept.
const NF_DROP: u32 = 0;
/// `NFPROTO_UNSPEC`: dump every family.
const NFPROTO_UNSPEC: u8 = 0;
/// How often a snapshot is retried when the ruleset changes while it is read.
const ATTEMPTS: usize = 5;

/// Reads every nftables table with its chains, rules and named sets.
pub(crate) fn read_ruleset(sock: &mut NfSocket) -> Result<Vec<NftTable>, FirewallError> {
    let mut last_detail = String::new();
    for _ in 0..ATTEMPTS {
        match read_once(sock) {
            Ok(Some(tables)) => return Ok(tables),
            Ok(None) => last_detail = "the ruleset kept changing while it was read".into(),
            Err(err) => return Err(err),
        }
    }
    Err(FirewallError::Decode {
        what: "nftables ruleset".into(),
        detail: format!("{last_detail} ({ATTEMPTS} attempts)"),
    })
}

/// One consistent read, or `None` when the ruleset changed meanwhile.
fn read_once(sock: &mut NfSocket) -> Result<Option<Vec<NftTable>>, FirewallError> {
    let started_at = generation(sock)?;
    let Some(tables) = dump_all(sock, NFT_MSG_GETTABLE, "tables")? else {
        return Ok(None);
    };
    let Some(chains) = dump_all(sock, NFT_MSG_GETCHAIN, "chains")? else {
        return Ok(None);
    };
    let Some(rules) = dump_all(sock, NFT_MSG_GETRULE, "rules")? else {
        return Ok(None);
    };
    let Some(sets) = dump_all(sock, NFT_MSG_GETSET, "sets")? else {
        return Ok(None);
    };

    let mut out: Vec<NftTable> = tables
        .iter()
        .map(|msg| NftTable {
            family: family_name(msg.family).to_string(),
            name: string_attr(msg, NFTA_TABLE_NAME),
            chains: Vec::new(),
            sets: Vec::new(),
        })
        .collect();
    for msg in &chains {
        let table = string_attr(msg, NFTA_CHAIN_TABLE);
        let chain = decode_chain(msg);
        if let Some(t) = find_table(&mut out, msg.family, &table) {
            t.chains.push(chain);
        }
    }
    let mut anonymous = AnonymousSets::new();
    for msg in &sets {
        let flags = Attrs::new(&msg.attrs)
            .get(NFTA_SET_FLAGS)
            .and_then(|a| a.be_u32())
            .unwrap_or(0);
        let table = string_attr(msg, NFTA_SET_TABLE);
        let name = string_attr(msg, NFTA_SET_NAME);
        let Some(elements) = set_elements(sock, msg.family, &table, &name)? else {
            return Ok(None);
        };
        if flags & NFT_SET_ANONYMOUS != 0 {
            let content = content_digest(&elements);
            anonymous.insert((msg.family, table, name), content);
        } else if let Some(t) = find_table(&mut out, msg.family, &table) {
            t.sets.push((name, elements.len()));
        }
    }
    for msg in &rules {
        let table = string_attr(msg, NFTA_RULE_TABLE);
        let chain = string_attr(msg, NFTA_RULE_CHAIN);
        let rule = decode_rule(msg, &table, &anonymous);
        let target =
            find_table(&mut out, msg.family, &table).and_then(|t| t.chains.iter_mut().find(|c| c.name == chain));
        if let Some(c) = target {
            c.rules.push(rule);
        }
    }
    if generation(sock)? != started_at {
        return Ok(None);
    }
    Ok(Some(out))
}

/// The ruleset generation id; it changes with every committed transaction.
fn generation(sock: &mut NfSocket) -> Result<u32, FirewallError> {
    let reply = sock
        .get(NFT_MSG_GETGEN, NFPROTO_UNSPEC, &[])
        .map_err(|e| kernel_error(e, "NFT_MSG_GETGEN"))?;
    reply
        .messages
        .iter()
        .find_map(|m| Attrs::new(&m.attrs).get(NFTA_GEN_ID).and_then(|a| a.be_u32()))
        .ok_or_else(|| FirewallError::Decode {
            what: "NFT_MSG_NEWGEN".into(),
            detail: "no NFTA_GEN_ID attribute".into(),
        })
}

/// Dumps one object kind for all families; `None` when the dump was interrupted.
fn dump_all(sock: &mut NfSocket, msg: u16, what: &str) -> Result<Option<Vec<NfMessage>>, FirewallError> {
    let dump: Dump = sock
        .dump(msg, NFPROTO_UNSPEC, &[])
        .map_err(|e| kernel_error(e, &format!("dumping nftables {what}")))?;
    Ok((!dump.interrupted).then_some(dump.messages))
}

/// The elements of set `set` in `table` (each the raw attributes of one `NFTA_LIST_ELEM`);
/// `None` when the set vanished meanwhile.
fn set_elements(
    sock: &mut NfSocket,
    family: u8,
    table: &str,
    set: &str,
) -> Result<Option<Vec<Vec<u8>>>, FirewallError> {
    let mut attrs = Vec::new();
    push_str_attr(&mut attrs, NFTA_SET_ELEM_LIST_TABLE, table);
    push_str_attr(&mut attrs, NFTA_SET_ELEM_LIST_SET, set);
    let dump = match sock.dump(NFT_MSG_GETSETELEM, family, &attrs) {
        Ok(dump) => dump,
        Err(DumpError::Kernel(code)) if code == libc::ENOENT => return Ok(None),
        Err(e) => return Err(kernel_error(e, &format!("dumping elements of set {table} {set}"))),
    };
    if dump.interrupted {
        return Ok(None);
    }
    let elements = dump
        .messages
        .iter()
        .filter_map(|m| Attrs::new(&m.attrs).get(NFTA_SET_ELEM_LIST_ELEMENTS))
        .flat_map(|list| list.nested().filter(|a| a.kind == NFTA_LIST_ELEM))
        .map(|elem| elem.data.to_vec())
        .collect();
    Ok(Some(elements))
}

/// Digest of a set's content, independent of the order the kernel lists elements in and of
/// per-element state (expiration time, counters).
fn content_digest(elements: &[Vec<u8>]) -> String {
    let mut each: Vec<String> = elements
        .iter()
        .map(|elem| {
            let mut digest = Fnv1a::new();
            for attr in Attrs::new(elem).filter(|a| ELEMENT_IDENTITY.contains(&a.kind)) {
                digest.write(&attr.kind.to_ne_bytes());
                digest.write(attr.data);
            }
            digest.hex()
        })
        .collect();
    each.sort();
    let mut digest = Fnv1a::new();
    for hex in &each {
        digest.write(hex.as_bytes());
    }
    digest.hex()
}

fn decode_chain(msg: &NfMessage) -> NftChain {
    let attrs = Attrs::new(&msg.attrs);
    let name = string_attr(msg, NFTA_CHAIN_NAME);
    let base = attrs.clone().get(NFTA_CHAIN_HOOK).map(|hook| {
        let hooks = hook.nested();
        let number = hooks.clone().get(NFTA_HOOK_HOOKNUM).and_then(|a| a.be_u32());
        let priority = hooks
            .clone()
            .get(NFTA_HOOK_PRIORITY)
            .and_then(|a| a.be_u32())
            .map(|p| p as i32);
        let kind = attrs
            .clone()
            .get(NFTA_CHAIN_TYPE)
            .map(|a| a.string())
            .unwrap_or_else(|| "?".into());
        let hook_name = number.map_or_else(|| "?".to_string(), |n| hook_name(msg.family, n));
        let priority = priority.map_or_else(|| "?".to_string(), |p| p.to_string());
        let mut base = format!("{kind} {hook_name} {priority}");
        if let Some(dev) = hooks.clone().get(NFTA_HOOK_DEV) {
            base.push_str(&format!(" dev {}", dev.string()));
        }
        if let Some(devs) = hooks.clone().get(NFTA_HOOK_DEVS) {
            let names: Vec<String> = devs.nested().map(|d| d.string()).collect();
            base.push_str(&format!(" devices {}", names.join(",")));
        }
        let policy = attrs.clone().get(NFTA_CHAIN_POLICY).and_then(|a| a.be_u32());
        if policy == Some(NF_DROP) {
            base.push_str(" policy drop");
        }
        base
    });
    NftChain {
        name,
        base,
        rules: Vec::new(),
    }
}

fn decode_rule(msg: &NfMessage, table: &str, anonymous: &AnonymousSets) -> NftRule {
    let attrs = Attrs::new(&msg.attrs);
    let mut names = Vec::new();
    let mut digest = Fnv1a::new();
    let mut comment = attrs.clone().get(NFTA_RULE_USERDATA).and_then(|a| comment_of(a.data));
    if let Some(list) = attrs.clone().get(NFTA_RULE_EXPRESSIONS) {
        for elem in list.nested().filter(|a| a.kind == NFTA_LIST_ELEM) {
            let expr = elem.nested();
            let name = expr.clone().get(NFTA_EXPR_NAME).map(|a| a.string()).unwrap_or_default();
            digest.write(name.as_bytes());
            digest.write(&[0]);
            if let Some(data) = expr.clone().get(NFTA_EXPR_DATA) {
                let sets = AnonymousLookup {
                    family: msg.family,
                    table,
                    anonymous,
                };
                digest_expression_data(&mut digest, &name, data, &sets);
                if comment.is_none() && name == "match" {
                    comment = comment_match(data);
                }
                if let Some(xt) = xtables_extension(&name, data) {
                    names.push(format!("{name}:{xt}"));
                    continue;
                }
            }
            names.push(name);
        }
    }
    let summary = if names.is_empty() {
        format!("(no expressions) #{}", digest.hex())
    } else {
        format!("{} #{}", names.join(" "), digest.hex())
    };
    NftRule { comment, summary }
}

/// Mixes an expression's configuration into the digest, attribute by attribute, leaving out
/// state the kernel updates while packets flow (counter values, quota consumption, last-seen
/// timestamps). A reference to an anonymous set is replaced by the digest of the set's content,
/// so rules differing only in an inline set differ, and the kernel's `__setN` numbering does not.
fn digest_expression_data(digest: &mut Fnv1a, name: &str, data: Attr<'_>, sets: &AnonymousLookup<'_>) {
    if matches!(name, "counter" | "last") {
        return;
    }
    for attr in data.nested() {
        if name == "quota" && attr.kind == NFTA_QUOTA_CONSUMED {
            continue;
        }
        digest.write(&attr.kind.to_ne_bytes());
        match sets.content_of(attr) {
            Some(content) => {
                digest.write(b"anonymous set ");
                digest.write(content.as_bytes());
            }
            None => digest.write(attr.data),
        }
    }
}

/// The comment of an iptables-nft rule, kept in an xt `comment` match (`xt_comment_info`).
fn comment_match(data: Attr<'_>) -> Option<String> {
    let attrs = data.nested();
    let name = attrs.clone().get(NFTA_MATCH_NAME)?.string();
    if name != "comment" {
        return None;
    }
    Some(attrs.get(NFTA_MATCH_INFO)?.string())
}

/// The extension name of an iptables-nft compatibility expression (`match` / `target`), e.g.
/// "MASQUERADE", which says more in a summary than the bare expression name.
fn xtables_extension(name: &str, data: Attr<'_>) -> Option<String> {
    if name != "match" && name != "target" {
        return None;
    }
    // NFTA_MATCH_NAME and NFTA_TARGET_NAME are both attribute 1.
    Some(data.nested().get(NFTA_MATCH_NAME)?.string())
}

/// Content digests of anonymous sets, by (family, table, set name).
type AnonymousSets = HashMap<(u8, String, String), String>;

/// The anonymous sets a rule of one table can refer to.
struct AnonymousLookup<'a> {
    family: u8,
    table: &'a str,
    anonymous: &'a AnonymousSets,
}

impl AnonymousLookup<'_> {
    /// The content digest when `attr` is a string naming an anonymous set of the rule's table.
    fn content_of(&self, attr: Attr<'_>) -> Option<&String> {
        let name = std::str::from_utf8(attr.data.strip_suffix(&[0])?).ok()?;
        if !name.starts_with("__") {
            return None;
        }
        self.anonymous
            .get(&(self.family, self.table.to_string(), name.to_string()))
    }
}

/// The comment stored in rule userdata (TLVs of u8 type, u8 length, value).
fn comment_of(mut udata: &[u8]) -> Option<String> {
    while udata.len() >= 2 {
        let (kind, len) = (udata[0], usize::from(udata[1]));
        let value = udata.get(2..2 + len)?;
        if kind == UDATA_RULE_COMMENT {
            let text = value.split(|b| *b == 0).next().unwrap_or_default();
            return Some(String::from_utf8_lossy(text).into_owned());
        }
        udata = &udata[2 + len..];
    }
    None
}

fn find_table<'t>(tables: &'t mut [NftTable], family: u8, name: &str) -> Option<&'t mut NftTable> {
    let family = family_name(family);
    tables.iter_mut().find(|t| t.family == family && t.name == name)
}

fn string_attr(msg: &NfMessage, kind: u16) -> String {
    Attrs::new(&msg.attrs).get(kind).map(|a| a.string()).unwrap_or_default()
}

fn kernel_error(err: DumpError, op: &str) -> FirewallError {
    match err {
        DumpError::Kernel(code) => FirewallError::Io {
            op: op.to_string(),
            source: std::io::Error::from_raw_os_error(code),
        },
        DumpError::Other(e) => e,
    }
}

/// nft's name for an NFPROTO_* family number.
fn family_name(family: u8) -> &'static str {
    match family {
        1 => "inet",
        2 => "ip",
        3 => "arp",
        5 => "netdev",
        7 => "bridge",
        10 => "ip6",
        _ => "unknown",
    }
}

/// nft's name for hook `number` of `family`.
fn hook_name(family: u8, number: u32) -> String {
    let name = match (family, number) {
        (3, 0) => "input",
        (3, 1) => "output",
        (3, 2) => "forward",
        (5, 0) => "ingress",
        (5, 1) => "egress",
        (_, 0) => "prerouting",
        (_, 1) => "input",
        (_, 2) => "forward",
        (_, 3) => "output",
        (_, 4) => "postrouting",
        (_, 5) => "ingress",
        _ => return format!("hook{number}"),
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::comment_of;

    #[test]
    fn comment_is_read_from_userdata_tlv() {
        let udata = [0u8, 3, b'h', b'i', 0];
        assert_eq!(comment_of(&udata).as_deref(), Some("hi"));
        let other_first = [7u8, 1, 9, 0, 2, b'x', 0];
        assert_eq!(comment_of(&other_first).as_deref(), Some("x"));
        assert_eq!(comment_of(&[1u8, 1, 0]), None);
    }
}
