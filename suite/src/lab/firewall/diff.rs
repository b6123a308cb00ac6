//! Human-readable differences between two snapshots.

use std::collections::{BTreeMap, BTreeSet};

use super::{LegacyTable, NftChain, NftRule, NftTable};

/// Differences between two lists of nftables tables.
pub(crate) fn nft_tables(before: &[NftTable], after: &[NftTable]) -> Vec<String> {
    let old = by_key(before, |t| (t.family.as_str(), t.name.as_str()));
    let new = by_key(after, |t| (t.family.as_str(), t.name.as_str()));
    let mut lines = Vec::new();
    for key in union(&old, &new) {
        match (old.get(&key), new.get(&key)) {
            (None, Some(table)) => whole_table(&mut lines, '+', table),
            (Some(table), None) => whole_table(&mut lines, '-', table),
            (Some(was), Some(now)) => changed_table(&mut lines, was, now),
            (None, None) => {}
        }
    }
    lines
}

/// Differences between two lists of iptables-legacy tables.
pub(crate) fn legacy_tables(before: &[LegacyTable], after: &[LegacyTable]) -> Vec<String> {
    let old = by_key(before, |t| (t.family.as_str(), t.name.as_str()));
    let new = by_key(after, |t| (t.family.as_str(), t.name.as_str()));
    let mut lines = Vec::new();
    for key in union(&old, &new) {
        let (family, name) = key;
        match (old.get(&key), new.get(&key)) {
            (None, Some(t)) => lines.push(format!("+ iptables-legacy {family} {name}: {} entries", t.entries)),
            (Some(t), None) => lines.push(format!("- iptables-legacy {family} {name}: {} entries", t.entries)),
            (Some(was), Some(now)) if was.entries != now.entries => lines.push(format!(
                "~ iptables-legacy {family} {name}: {} -> {} entries",
                was.entries, now.entries
            )),
            (Some(was), Some(now)) if was.digest != now.digest => lines.push(format!(
                "~ iptables-legacy {family} {name}: {} entries, contents changed",
                now.entries
            )),
            _ => {}
        }
    }
    lines
}

fn whole_table(lines: &mut Vec<String>, sign: char, table: &NftTable) {
    lines.push(format!("{sign} table {} {}", table.family, table.name));
    let mut chains: Vec<&NftChain> = table.chains.iter().collect();
    chains.sort_by(|a, b| a.name.cmp(&b.name));
    for chain in chains {
        whole_chain(lines, sign, table, chain);
    }
    let mut sets: Vec<&(String, usize)> = table.sets.iter().collect();
    sets.sort();
    for (name, count) in sets {
        lines.push(format!("{sign} {}", set_line(table, name, *count)));
    }
}

fn whole_chain(lines: &mut Vec<String>, sign: char, table: &NftTable, chain: &NftChain) {
    lines.push(format!("{sign} {}", chain_line(table, chain)));
    let counts = rule_counts(&chain.rules);
    for (rule, count) in counts {
        for _ in 0..count {
            lines.push(format!("{sign} {}", rule_line(table, chain, rule)));
        }
    }
}

fn changed_table(lines: &mut Vec<String>, was: &NftTable, now: &NftTable) {
    let old = by_key(&was.chains, |c| c.name.as_str());
    let new = by_key(&now.chains, |c| c.name.as_str());
    for key in union(&old, &new) {
        match (old.get(key), new.get(key)) {
            (None, Some(chain)) => whole_chain(lines, '+', now, chain),
            (Some(chain), None) => whole_chain(lines, '-', was, chain),
            (Some(before), Some(after)) => changed_chain(lines, now, before, after),
            (None, None) => {}
        }
    }
    let old_sets: BTreeMap<&str, usize> = was.sets.iter().map(|(n, c)| (n.as_str(), *c)).collect();
    let new_sets: BTreeMap<&str, usize> = now.sets.iter().map(|(n, c)| (n.as_str(), *c)).collect();
    for name in union(&old_sets, &new_sets) {
        match (old_sets.get(name), new_sets.get(name)) {
            (None, Some(count)) => lines.push(format!("+ {}", set_line(now, name, *count))),
            (Some(count), None) => lines.push(format!("- {}", set_line(was, name, *count))),
            (Some(a), Some(b)) if a != b => lines.push(format!(
                "~ set {} {} {}: {a} -> {b} elements",
                now.family, now.name, name
            )),
            _ => {}
        }
    }
}

fn changed_chain(lines: &mut Vec<String>, table: &NftTable, before: &NftChain, after: &NftChain) {
    if before.base != after.base {
        lines.push(format!(
            "~ chain {} {} {}: {} -> {}",
            table.family,
            table.name,
            after.name,
            base_text(before),
            base_text(after)
        ));
    }
    let old = rule_counts(&before.rules);
    let new = rule_counts(&after.rules);
    for rule in union(&old, &new) {
        let had = old.get(rule).copied().unwrap_or(0);
        let has = new.get(rule).copied().unwrap_or(0);
        let (sign, times) = if has > had { ('+', has - had) } else { ('-', had - has) };
        for _ in 0..times {
            lines.push(format!("{sign} {}", rule_line(table, after, rule)));
        }
    }
}

fn chain_line(table: &NftTable, chain: &NftChain) -> String {
    match &chain.base {
        Some(base) => format!("chain {} {} {} ({base})", table.family, table.name, chain.name),
        None => format!("chain {} {} {}", table.family, table.name, chain.name),
    }
}

fn base_text(chain: &NftChain) -> String {
    chain.base.clone().unwrap_or_else(|| "regular chain".into())
}

fn rule_line(table: &NftTable, chain: &NftChain, rule: &NftRule) -> String {
    let mut line = format!("rule {} {} {}: {}", table.family, table.name, chain.name, rule.summary);
    if let Some(comment) = &rule.comment {
        line.push_str(&format!(" comment {comment:?}"));
    }
    line
}

fn set_line(table: &NftTable, name: &str, count: usize) -> String {
    format!("set {} {} {name} ({count} elements)", table.family, table.name)
}

fn rule_counts(rules: &[NftRule]) -> BTreeMap<&NftRule, usize> {
    let mut counts = BTreeMap::new();
    for rule in rules {
        *counts.entry(rule).or_insert(0) += 1;
    }
    counts
}

fn by_key<'a, T, K: Ord>(items: &'a [T], key: impl Fn(&'a T) -> K) -> BTreeMap<K, &'a T> {
    items.iter().map(|item| (key(item), item)).collect()
}

fn union<K: Ord + Copy, A, B>(a: &BTreeMap<K, A>, b: &BTreeMap<K, B>) -> BTreeSet<K> {
    a.keys().chain(b.keys()).copied().collect()
}

#[cfg(test)]
mod tests {
    use super::super::{FirewallSnapshot, LegacyTable, NftChain, NftRule, NftTable};

    fn rule(summary: &str, comment: Option<&str>) -> NftRule {
        NftRule {
            comment: comment.map(str::to_string),
            summary: summary.to_string(),
        }
    }

    fn table(name: &str, rules: Vec<NftRule>, sets: Vec<(String, usize)>) -> NftTable {
        NftTable {
            family: "ip".into(),
            name: name.into(),
            chains: vec![NftChain {
                name: "POSTROUTING".into(),
                base: Some("nat postrouting 100".into()),
                rules,
            }],
            sets,
        }
    }

    fn legacy(entries: u32, digest: &str) -> LegacyTable {
        LegacyTable {
            family: "ipv4".into(),
            name: "nat".into(),
            entries,
            digest: digest.into(),
        }
    }

    #[test]
    fn whole_table_added_and_removed_in_order() {
        let before = FirewallSnapshot::default();
        let after = FirewallSnapshot {
            nft: vec![
                table("z", vec![rule("masq #1", Some("c"))], vec![("s".into(), 2)]),
                table("a", vec![], vec![]),
            ],
            legacy: vec![legacy(6, "d")],
        };
        assert_eq!(
            after.diff(&before),
            [
                "+ table ip a",
                "+ chain ip a POSTROUTING (nat postrouting 100)",
                "+ table ip z",
                "+ chain ip z POSTROUTING (nat postrouting 100)",
                "+ rule ip z POSTROUTING: masq #1 comment \"c\"",
                "+ set ip z s (2 elements)",
                "+ iptables-legacy ipv4 nat: 6 entries",
            ]
        );
        let back = before.diff(&after);
        assert_eq!(back.len(), 7);
        assert!(back.iter().all(|l| l.starts_with("- ")));
    }

    #[test]
    fn rules_are_multisets_and_order_is_ignored() {
        let a = rule("x #1", None);
        let b = rule("y #2", None);
        let before = FirewallSnapshot {
            nft: vec![table("t", vec![a.clone(), b.clone(), a.clone()], vec![])],
            legacy: vec![],
        };
        let reordered = FirewallSnapshot {
            nft: vec![table("t", vec![b.clone(), a.clone(), a.clone()], vec![])],
            legacy: vec![],
        };
        assert!(reordered.diff(&before).is_empty());
        let one_less = FirewallSnapshot {
            nft: vec![table("t", vec![a.clone(), b], vec![])],
            legacy: vec![],
        };
        assert_eq!(one_less.diff(&before), ["- rule ip t POSTROUTING: x #1"]);
    }

    #[test]
    fn changes_inside_a_table() {
        let before = FirewallSnapshot {
            nft: vec![table("t", vec![], vec![("s".into(), 1)])],
            legacy: vec![legacy(6, "d1")],
        };
        let mut after = before.clone();
        after.nft[0].chains[0].base = Some("nat postrouting 100 policy drop".into());
        after.nft[0].sets[0].1 = 3;
        after.legacy[0] = legacy(6, "d2");
        assert_eq!(
            after.diff(&before),
            [
                "~ chain ip t POSTROUTING: nat postrouting 100 -> nat postrouting 100 policy drop",
                "~ set ip t s: 1 -> 3 elements",
                "~ iptables-legacy ipv4 nat: 6 entries, contents changed",
            ]
        );
        after.legacy[0] = legacy(7, "d3");
        assert_eq!(
            after.diff(&before).last().map(String::as_str),
            Some("~ iptables-legacy ipv4 nat: 6 -> 7 entries")
        );
    }
}
