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
            (None, Some(t)) => lines.push(format!(
                "+ iptables-legacy {family} {name}: {} entries",
                t.entries
            )),
            (Some(t), None) => lines.push(format!(
                "- iptables-legacy {family} {name}: {} entries",
                t.entries
            )),
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
        let (sign, times) = if has > had {
            ('+', has - had)
        } else {
            ('-', had - has)
        };
        for _ in 0..times {
            lines.push(format!("{sign} {}", rule_line(table, after, rule)));
        }
    }
}

fn chain_line(table: &NftTable, chain: &NftChain) -> String {
    match &chain.base {
        Some(base) => format!(
            "chain {} {} {} ({base})",
            table.family, table.name, chain.name
        ),
        None => format!("chain {} {} {}", table.family, table.name, chain.name),
    }
}

fn base_text(chain: &NftChain) -> String {
    chain.base.clone().unwrap_or_else(|| "regular chain".into())
}

fn rule_line(table: &NftTable, chain: &NftChain, rule: &NftRule) -> String {
    let mut line = format!(
        "rule {} {} {}: {}",
        table.family, table.name, chain.name, rule.summary
    );
    if let Some(comment) = &rule.comment {
        line.push_str(&format!(" comment {comment:?}"));
    }
    line
}

fn set_line(table: &NftTable, name: &str, count: usize) -> String {
    format!(
        "set {} {} {name} ({count} elements)",
        table.family, table.name
    )
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
