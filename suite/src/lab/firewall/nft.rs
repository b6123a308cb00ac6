//! Reading the nftables ruleset (tables, chains, rules, named sets) of the namespace an
//! [`NfSocket`] was opened in, for every family at once (`NFPROTO_UNSPEC` dumps).

use super::attr::{push_str_attr, Attr, Attrs};
use super::digest::Fnv1a;
use super::nfnl::{Dump, DumpError, NfMessage, NfSocket};
use super::{FirewallError, NftChain, NftRule, NftTable};

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
    for msg in &rules {
        let table = string_attr(msg, NFTA_RULE_TABLE);
        let chain = string_attr(msg, NFTA_RULE_CHAIN);
        let rule = decode_rule(msg);
        let target = find_table(&mut out, msg.family, &table)
            .and_then(|t| t.chains.iter_mut().find(|c| c.name == chain));
        if let Some(c) = target {
            c.rules.push(rule);
        }
    }
    for msg in &sets {
        let flags = Attrs::new(&msg.attrs)
            .get(NFTA_SET_FLAGS)
            .and_then(|a| a.be_u32())
            .unwrap_or(0);
        if flags & NFT_SET_ANONYMOUS != 0 {
            continue;
        }
        let table = string_attr(msg, NFTA_SET_TABLE);
        let name = string_attr(msg, NFTA_SET_NAME);
        let Some(count) = element_count(sock, msg.family, &table, &name)? else {
            return Ok(None);
        };
        if let Some(t) = find_table(&mut out, msg.family, &table) {
            t.sets.push((name, count));
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
        .find_map(|m| {
            Attrs::new(&m.attrs)
                .get(NFTA_GEN_ID)
                .and_then(|a| a.be_u32())
        })
        .ok_or_else(|| FirewallError::Decode {
            what: "NFT_MSG_NEWGEN".into(),
            detail: "no NFTA_GEN_ID attribute".into(),
        })
}

/// Dumps one object kind for all families; `None` when the dump was interrupted.
fn dump_all(
    sock: &mut NfSocket,
    msg: u16,
    what: &str,
) -> Result<Option<Vec<NfMessage>>, FirewallError> {
    let dump: Dump = sock
        .dump(msg, NFPROTO_UNSPEC, &[])
        .map_err(|e| kernel_error(e, &format!("dumping nftables {what}")))?;
    Ok((!dump.interrupted).then_some(dump.messages))
}

/// Number of elements in set `set` of `table`; `None` when the set vanished meanwhile.
fn element_count(
    sock: &mut NfSocket,
    family: u8,
    table: &str,
    set: &str,
) -> Result<Option<usize>, FirewallError> {
    let mut attrs = Vec::new();
    push_str_attr(&mut attrs, NFTA_SET_ELEM_LIST_TABLE, table);
    push_str_attr(&mut attrs, NFTA_SET_ELEM_LIST_SET, set);
    let dump = match sock.dump(NFT_MSG_GETSETELEM, family, &attrs) {
        Ok(dump) => dump,
        Err(DumpError::Kernel(code)) if code == libc::ENOENT => return Ok(None),
        Err(e) => {
            return Err(kernel_error(
                e,
                &format!("dumping elements of set {table} {set}"),
            ))
        }
    };
    if dump.interrupted {
        return Ok(None);
    }
    let count = dump
        .messages
        .iter()
        .filter_map(|m| Attrs::new(&m.attrs).get(NFTA_SET_ELEM_LIST_ELEMENTS))
        .map(|list| list.nested().filter(|a| a.kind == NFTA_LIST_ELEM).count())
        .sum();
    Ok(Some(count))
}

fn decode_chain(msg: &NfMessage) -> NftChain {
    let attrs = Attrs::new(&msg.attrs);
    let name = string_attr(msg, NFTA_CHAIN_NAME);
    let base = attrs.clone().get(NFTA_CHAIN_HOOK).map(|hook| {
        let hooks = hook.nested();
        let number = hooks
            .clone()
            .get(NFTA_HOOK_HOOKNUM)
            .and_then(|a| a.be_u32());
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
        let policy = attrs
            .clone()
            .get(NFTA_CHAIN_POLICY)
            .and_then(|a| a.be_u32());
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

fn decode_rule(msg: &NfMessage) -> NftRule {
    let attrs = Attrs::new(&msg.attrs);
    let mut names = Vec::new();
    let mut digest = Fnv1a::new();
    if let Some(list) = attrs.clone().get(NFTA_RULE_EXPRESSIONS) {
        for elem in list.nested().filter(|a| a.kind == NFTA_LIST_ELEM) {
            let expr = elem.nested();
            let name = expr
                .clone()
                .get(NFTA_EXPR_NAME)
                .map(|a| a.string())
                .unwrap_or_default();
            digest.write(name.as_bytes());
            digest.write(&[0]);
            if let Some(data) = expr.clone().get(NFTA_EXPR_DATA) {
                digest_expression_data(&mut digest, &name, data);
            }
            names.push(name);
        }
    }
    let comment = attrs
        .clone()
        .get(NFTA_RULE_USERDATA)
        .and_then(|a| comment_of(a.data));
    let summary = if names.is_empty() {
        format!("(no expressions) #{}", digest.hex())
    } else {
        format!("{} #{}", names.join(" "), digest.hex())
    };
    NftRule { comment, summary }
}

/// Mixes an expression's configuration into the digest, leaving out state the kernel updates
/// while packets flow (counter values, quota consumption, last-seen timestamps).
fn digest_expression_data(digest: &mut Fnv1a, name: &str, data: Attr<'_>) {
    match name {
        "counter" | "last" => {}
        "quota" => {
            for attr in data.nested().filter(|a| a.kind != NFTA_QUOTA_CONSUMED) {
                digest.write(&attr.kind.to_ne_bytes());
                digest.write(attr.data);
            }
        }
        _ => digest.write(data.data),
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
    tables
        .iter_mut()
        .find(|t| t.family == family && t.name == name)
}

fn string_attr(msg: &NfMessage, kind: u16) -> String {
    Attrs::new(&msg.attrs)
        .get(kind)
        .map(|a| a.string())
        .unwrap_or_default()
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
