//! Tests of `FirewallSnapshot` against a real kernel, in private namespaces only.
//!
//! The shared harness (`harness/mod.rs`) moves the process into private network and mount
//! namespaces before any test runs; a tmpfs is then mounted over `/run` so the xtables lock is
//! private. Each test starts in a fresh network namespace of its own. The host's namespaces are
//! never touched.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;
use std::process::{Command, Stdio};

mod harness;

use cni_conformance::lab::firewall::FirewallSnapshot;
use harness::Test;

type TestFn = fn();

const TESTS: &[(&str, TestFn)] = &[
    ("empty_namespace_snapshot_is_empty", empty_namespace_snapshot_is_empty),
    (
        "nft_table_chain_rule_with_comment_in_diff",
        nft_table_chain_rule_with_comment_in_diff,
    ),
    ("nft_rules_compare_as_multisets", nft_rules_compare_as_multisets),
    ("nft_set_element_counts", nft_set_element_counts),
    (
        "nft_anonymous_set_content_is_part_of_rule",
        nft_anonymous_set_content_is_part_of_rule,
    ),
    ("nft_chain_policy_change", nft_chain_policy_change),
    ("nft_large_ruleset_is_read_whole", nft_large_ruleset_is_read_whole),
    (
        "nft_counters_do_not_change_snapshot",
        nft_counters_do_not_change_snapshot,
    ),
    ("iptables_nft_masquerade_shows_up", iptables_nft_masquerade_shows_up),
    ("iptables_nft_comment_is_read", iptables_nft_comment_is_read),
    ("snapshot_creates_no_legacy_tables", snapshot_creates_no_legacy_tables),
    (
        "iptables_legacy_rules_show_as_entry_changes",
        iptables_legacy_rules_show_as_entry_changes,
    ),
    (
        "iptables_legacy_counters_do_not_change_snapshot",
        iptables_legacy_counters_do_not_change_snapshot,
    ),
    ("ip6tables_legacy_rule_shows_up", ip6tables_legacy_rule_shows_up),
];

fn main() {
    let tests = TESTS
        .iter()
        .map(|&(name, body)| {
            Test::new(name, move || {
                fresh_netns();
                body();
            })
        })
        .collect();
    harness::run_isolated(tests, private_run)
}

/// A tmpfs over `/run`, so the xtables lock the iptables tools take is private.
fn private_run() -> Result<(), String> {
    nix::mount::mount(
        Some("tmpfs"),
        "/run",
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("mode=0755"),
    )
    .map_err(|e| format!("mounting a private tmpfs over /run for the xtables lock: {e}"))
}

/// Moves the (single-threaded) process into a new, empty network namespace with `lo` up.
fn fresh_netns() {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
    run("ip", &["link", "set", "lo", "up"]);
}

/// Snapshot of the namespace the test runs in.
fn snapshot() -> FirewallSnapshot {
    let ns = File::open("/proc/thread-self/ns/net").expect("opening own netns");
    FirewallSnapshot::read(ns.as_fd()).expect("reading the firewall snapshot")
}

/// Runs a command and returns its stdout; panics with its stderr when it fails.
fn run(program: &str, args: &[&str]) -> String {
    run_with_input(program, args, "")
}

fn run_with_input(program: &str, args: &[&str], input: &str) -> String {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    child
        .stdin
        .take()
        .expect("child stdin")
        .write_all(input.as_bytes())
        .expect("writing child stdin");
    let out = child.wait_with_output().expect("waiting for child");
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn nft(script: &str) {
    run_with_input("nft", &["-f", "-"], script);
}

/// Checks that iptables-legacy can be used here; fails the test with the reason otherwise.
fn require_iptables_legacy(program: &str) {
    let out = Command::new(program)
        .args(["-t", "filter", "-S"])
        .output()
        .unwrap_or_else(|e| panic!("{program} is needed for this test but cannot be run: {e}"));
    assert!(
        out.status.success(),
        "{program} does not work in this namespace (is the ip_tables/ip6_tables kernel module \
         available?), so the legacy reader cannot be tested: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Sends a few UDP datagrams over loopback so that OUTPUT counters move.
fn send_loopback_traffic() {
    for target in ["127.0.0.1:9", "[::1]:9"] {
        let bind = if target.starts_with('[') {
            "[::1]:0"
        } else {
            "127.0.0.1:0"
        };
        let socket = std::net::UdpSocket::bind(bind).expect("binding a loopback UDP socket");
        for _ in 0..3 {
            socket.send_to(b"count me", target).expect("sending over loopback");
        }
    }
}

fn assert_lines(actual: &[String], expected: &[&str]) {
    assert_eq!(actual, expected, "diff lines were {actual:#?}");
}

// ---------------------------------------------------------------------------------------------

fn empty_namespace_snapshot_is_empty() {
    let first = snapshot();
    assert_eq!(first, FirewallSnapshot::default(), "fresh namespace: {first:#?}");
    // Reading must not create anything either (e.g. legacy tables instantiated by the probe).
    let second = snapshot();
    assert_eq!(second, FirewallSnapshot::default(), "second read: {second:#?}");
    assert!(second.diff(&first).is_empty());
}

fn nft_table_chain_rule_with_comment_in_diff() {
    let before = snapshot();
    nft("add table inet t\n\
         add chain inet t post { type nat hook postrouting priority 100 ; }\n\
         add rule inet t post oifname \"eth0\" masquerade comment \"x\"\n");
    let after = snapshot();
    let lines = after.diff(&before);
    assert_eq!(lines.len(), 3, "diff lines were {lines:#?}");
    assert_eq!(lines[0], "+ table inet t");
    assert_eq!(lines[1], "+ chain inet t post (nat postrouting 100)");
    assert!(
        lines[2].starts_with("+ rule inet t post: meta cmp masq #") && lines[2].ends_with(" comment \"x\""),
        "rule line: {}",
        lines[2]
    );
    // The reverse diff removes the same things.
    let reverse = before.diff(&after);
    assert_eq!(reverse.len(), 3);
    assert!(reverse.iter().all(|l| l.starts_with("- ")), "{reverse:#?}");

    nft("delete table inet t\n");
    let gone = snapshot();
    assert!(gone.diff(&before).is_empty(), "{:#?}", gone.diff(&before));
    assert_eq!(gone, before);
}

fn nft_rules_compare_as_multisets() {
    nft("add table ip f\n\
         add chain ip f fw { type filter hook forward priority 0 ; }\n\
         add rule ip f fw ip saddr 10.0.0.1 accept\n\
         add rule ip f fw ip saddr 10.0.0.2 drop\n");
    let two = snapshot();
    // The same rule again: one more occurrence of an identical rule.
    nft("add rule ip f fw ip saddr 10.0.0.1 accept\n");
    let three = snapshot();
    let lines = three.diff(&two);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].starts_with("+ rule ip f fw: payload cmp immediate #"),
        "{}",
        lines[0]
    );
    // Re-creating the same rules in another order (new handles) compares equal as a multiset.
    nft("flush chain ip f fw\n\
         add rule ip f fw ip saddr 10.0.0.2 drop\n\
         add rule ip f fw ip saddr 10.0.0.1 accept\n\
         add rule ip f fw ip saddr 10.0.0.1 accept\n");
    let reordered = snapshot();
    assert!(reordered.diff(&three).is_empty(), "{:#?}", reordered.diff(&three));
    // Different addresses must give different digests.
    let chain = &two.nft[0].chains[0];
    assert_ne!(chain.rules[0].summary, chain.rules[1].summary);
    nft("flush chain ip f fw\n");
    let flushed = snapshot();
    let lines = flushed.diff(&three);
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert!(lines.iter().all(|l| l.starts_with("- rule ip f fw: ")), "{lines:#?}");
}

fn nft_set_element_counts() {
    let before = snapshot();
    nft("add table inet s\n\
         add set inet s addrs { type ipv4_addr ; }\n\
         add element inet s addrs { 10.0.0.1, 10.0.0.2 }\n\
         add chain inet s in { type filter hook input priority 0 ; }\n\
         add rule inet s in ip saddr { 192.0.2.1, 192.0.2.2 } drop\n");
    let with_two = snapshot();
    let lines = with_two.diff(&before);
    assert_eq!(lines.len(), 4, "{lines:#?}");
    assert_eq!(lines[0], "+ table inet s");
    assert_eq!(lines[1], "+ chain inet s in (filter input 0)");
    assert!(lines[2].starts_with("+ rule inet s in: "), "{}", lines[2]);
    // The anonymous set of the rule is part of the rule, not listed as a set.
    assert_eq!(lines[3], "+ set inet s addrs (2 elements)");
    nft("add element inet s addrs { 10.0.0.3 }\n");
    let with_three = snapshot();
    assert_lines(&with_three.diff(&with_two), &["~ set inet s addrs: 2 -> 3 elements"]);
}

fn nft_chain_policy_change() {
    nft("add table ip p\nadd chain ip p in { type filter hook input priority 0 ; policy accept ; }\n");
    let accept = snapshot();
    nft("add chain ip p in { type filter hook input priority 0 ; policy drop ; }\n");
    let drop = snapshot();
    assert_lines(
        &drop.diff(&accept),
        &["~ chain ip p in: filter input 0 -> filter input 0 policy drop"],
    );
}

fn nft_counters_do_not_change_snapshot() {
    nft("add table inet c\n\
         add chain inet c out { type filter hook output priority 0 ; }\n\
         add rule inet c out meta l4proto udp counter\n\
         add rule inet c out counter accept comment \"counted\"\n");
    let quiet = snapshot();
    send_loopback_traffic();
    let listing = run("nft", &["list", "table", "inet", "c"]);
    assert!(
        listing.contains("counter packets") && !listing.contains("counter packets 0 "),
        "the counters did not move, so this test would prove nothing:\n{listing}"
    );
    let busy = snapshot();
    assert!(busy.diff(&quiet).is_empty(), "{:#?}", busy.diff(&quiet));
    assert_eq!(busy, quiet);
}

fn iptables_nft_masquerade_shows_up() {
    let before = snapshot();
    run(
        "iptables-nft",
        &["-t", "nat", "-A", "POSTROUTING", "-s", "10.0.0.2", "-j", "MASQUERADE"],
    );
    let after = snapshot();
    let lines = after.diff(&before);
    assert!(lines.contains(&"+ table ip nat".to_string()), "{lines:#?}");
    assert!(
        lines.contains(&"+ chain ip nat POSTROUTING (nat postrouting 100)".to_string()),
        "{lines:#?}"
    );
    let rules: Vec<&String> = lines.iter().filter(|l| l.starts_with("+ rule ")).collect();
    assert_eq!(rules.len(), 1, "{lines:#?}");
    assert!(
        rules[0].starts_with("+ rule ip nat POSTROUTING: payload cmp"),
        "{}",
        rules[0]
    );
    assert!(
        after.legacy.is_empty(),
        "iptables-nft must not create legacy tables: {:#?}",
        after.legacy
    );

    run(
        "iptables-nft",
        &["-t", "nat", "-D", "POSTROUTING", "-s", "10.0.0.2", "-j", "MASQUERADE"],
    );
    let deleted = snapshot();
    let lines = deleted.diff(&after);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].starts_with("- rule ip nat POSTROUTING: payload cmp"),
        "{}",
        lines[0]
    );
}

fn iptables_legacy_rules_show_as_entry_changes() {
    require_iptables_legacy("iptables-legacy");
    let before = snapshot();
    run(
        "iptables-legacy",
        &["-t", "nat", "-A", "POSTROUTING", "-s", "10.0.0.2", "-j", "MASQUERADE"],
    );
    let one = snapshot();
    // nat: four built-in chain policies, the rule, the final ERROR entry.
    assert_lines(&one.diff(&before), &["+ iptables-legacy ipv4 nat: 6 entries"]);
    assert!(
        one.nft.is_empty(),
        "iptables-legacy must not create nftables tables: {:#?}",
        one.nft
    );

    run(
        "iptables-legacy",
        &["-t", "nat", "-A", "POSTROUTING", "-s", "10.0.0.3", "-j", "MASQUERADE"],
    );
    let two = snapshot();
    assert_lines(&two.diff(&one), &["~ iptables-legacy ipv4 nat: 6 -> 7 entries"]);

    // Same number of entries, different content.
    run(
        "iptables-legacy",
        &[
            "-t",
            "nat",
            "-R",
            "POSTROUTING",
            "2",
            "-s",
            "10.0.0.4",
            "-j",
            "MASQUERADE",
        ],
    );
    let replaced = snapshot();
    assert_lines(
        &replaced.diff(&two),
        &["~ iptables-legacy ipv4 nat: 7 entries, contents changed"],
    );

    run("iptables-legacy", &["-t", "nat", "-F", "POSTROUTING"]);
    let flushed = snapshot();
    // Back to built-in chains with ACCEPT policies only: treated as absent.
    assert!(flushed.diff(&before).is_empty(), "{:#?}", flushed.diff(&before));
    assert_eq!(flushed, before);

    run("iptables-legacy", &["-t", "filter", "-P", "FORWARD", "DROP"]);
    let policy = snapshot();
    assert_lines(&policy.diff(&flushed), &["+ iptables-legacy ipv4 filter: 4 entries"]);
}

fn iptables_legacy_counters_do_not_change_snapshot() {
    require_iptables_legacy("iptables-legacy");
    run("iptables-legacy", &["-A", "OUTPUT", "-o", "lo", "-j", "ACCEPT"]);
    let quiet = snapshot();
    assert_eq!(quiet.legacy.len(), 1, "{:#?}", quiet.legacy);
    send_loopback_traffic();
    let listing = run("iptables-legacy", &["-L", "OUTPUT", "-v", "-n", "-x"]);
    let moved = listing
        .lines()
        .filter(|l| l.contains("ACCEPT"))
        .any(|l| l.split_whitespace().next().is_some_and(|p| p != "0"));
    assert!(
        moved,
        "the counters did not move, so this test would prove nothing:\n{listing}"
    );
    let busy = snapshot();
    assert!(busy.diff(&quiet).is_empty(), "{:#?}", busy.diff(&quiet));
    assert_eq!(busy, quiet);
}

fn ip6tables_legacy_rule_shows_up() {
    require_iptables_legacy("ip6tables-legacy");
    let before = snapshot();
    run("ip6tables-legacy", &["-A", "OUTPUT", "-d", "::1", "-j", "ACCEPT"]);
    let after = snapshot();
    // filter: three built-in chain policies, the rule, the final ERROR entry.
    assert_lines(&after.diff(&before), &["+ iptables-legacy ipv6 filter: 5 entries"]);
    run("ip6tables-legacy", &["-D", "OUTPUT", "-d", "::1", "-j", "ACCEPT"]);
    assert_eq!(snapshot(), before);
}

fn nft_anonymous_set_content_is_part_of_rule() {
    nft("add table ip a\n\
         add chain ip a in { type filter hook input priority 0 ; }\n\
         add rule ip a in ip saddr { 192.0.2.1, 192.0.2.2 } drop\n");
    let first = snapshot();
    // Same rule text shape, different inline set content: must differ.
    nft("flush chain ip a in\nadd rule ip a in ip saddr { 192.0.2.1, 192.0.2.3 } drop\n");
    let other = snapshot();
    let lines = other.diff(&first);
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(lines
        .iter()
        .any(|l| l.starts_with("- rule ip a in: payload lookup immediate #")));
    assert!(lines
        .iter()
        .any(|l| l.starts_with("+ rule ip a in: payload lookup immediate #")));
    // Back to the first content, created after another anonymous set so the kernel numbers it
    // differently (__set1 instead of __set0): compares equal to the first snapshot.
    nft("flush chain ip a in\n\
         add rule ip a in ip daddr { 198.51.100.1, 198.51.100.2 } drop\n\
         add rule ip a in ip saddr { 192.0.2.2, 192.0.2.1 } drop\n");
    let listing = run("nft", &["-a", "list", "chain", "ip", "a", "in"]);
    nft(&format!(
        "delete rule ip a in handle {}\n",
        handle_of(&listing, "198.51.100.1")
    ));
    let again = snapshot();
    assert!(again.diff(&first).is_empty(), "{:#?}\n{listing}", again.diff(&first));
}

/// The handle nft prints for the rule whose line contains `needle`.
fn handle_of(listing: &str, needle: &str) -> String {
    let line = listing
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no rule with {needle} in\n{listing}"));
    line.rsplit("# handle ").next().expect("handle").trim().to_string()
}

fn iptables_nft_comment_is_read() {
    let before = snapshot();
    run(
        "iptables-nft",
        &[
            "-t",
            "filter",
            "-A",
            "FORWARD",
            "-s",
            "10.0.0.2",
            "-m",
            "comment",
            "--comment",
            "cni pod x",
            "-j",
            "ACCEPT",
        ],
    );
    let after = snapshot();
    let lines = after.diff(&before);
    let rules: Vec<&String> = lines.iter().filter(|l| l.starts_with("+ rule ")).collect();
    assert_eq!(rules.len(), 1, "{lines:#?}");
    assert!(
        rules[0].starts_with("+ rule ip filter FORWARD: payload cmp match:comment counter immediate #")
            && rules[0].ends_with(" comment \"cni pod x\""),
        "{}",
        rules[0]
    );
}

fn snapshot_creates_no_legacy_tables() {
    // Asking the kernel for a legacy table creates it; the reader avoids that whenever it can
    // read the namespace's table list (as real root). As root of a user namespace that list is
    // unreadable and the reader falls back to asking (documented); check which case this is.
    let _ = snapshot();
    for file in [
        "/proc/thread-self/net/ip_tables_names",
        "/proc/thread-self/net/ip6_tables_names",
    ] {
        match std::fs::read_to_string(file) {
            Ok(names) => assert_eq!(names, "", "{file} after a snapshot"),
            Err(err) => assert_eq!(
                err.kind(),
                std::io::ErrorKind::PermissionDenied,
                "{file} is unreadable for an unexpected reason"
            ),
        }
    }
}

fn nft_large_ruleset_is_read_whole() {
    // Enough rules that the dumps span many netlink datagrams. Loaded in batches: without
    // CAP_NET_ADMIN in the initial namespace nft cannot enlarge its socket buffer for one batch.
    nft("add table inet big\nadd chain inet big fw { type filter hook forward priority 0 ; }\n");
    for batch in 0..15 {
        let mut script = String::new();
        for i in batch * 200..(batch + 1) * 200 {
            script.push_str(&format!(
                "add rule inet big fw ip saddr 10.{}.{}.1 counter accept comment \"r{i}\"\n",
                i / 256,
                i % 256
            ));
        }
        nft(&script);
    }
    let first = snapshot();
    let rules = &first.nft[0].chains[0].rules;
    assert_eq!(rules.len(), 3000);
    assert_eq!(rules[0].comment.as_deref(), Some("r0"));
    assert_eq!(rules[2999].comment.as_deref(), Some("r2999"));
    let distinct: std::collections::BTreeSet<&String> = rules.iter().map(|r| &r.summary).collect();
    assert_eq!(distinct.len(), 3000, "every rule matches another address");
    assert_eq!(snapshot(), first);
}
