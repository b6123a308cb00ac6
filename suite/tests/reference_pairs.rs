//! The reference plugins are interchangeable with Debian's upstream ones one at a time:
//! the reference `bridge` delegating to upstream `host-local`, and upstream `bridge` delegating to
//! the reference `host-local`, each judged by the suite like any plugin.

mod common;
mod harness;

use common::{reference_plugins, statuses, suite, upstream, upstream_plugin, UPSTREAM};
use harness::Test;
use std::collections::BTreeMap;
use std::path::Path;

/// Judges `plugin` with `cni_path`; returns the exit code and the case statuses.
fn judge(plugin: &Path, cni_path: &Path) -> (i32, BTreeMap<String, String>) {
    let out = suite()
        .arg(plugin)
        .arg("--cni-path")
        .arg(cni_path)
        .args(["--format", "json", "--jobs", "2"])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}); stderr: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap_or(-1), statuses(&report))
}

fn with_status<'a>(st: &'a BTreeMap<String, String>, status: &str) -> Vec<&'a str> {
    st.iter()
        .filter(|(_, s)| *s == status)
        .map(|(id, _)| id.as_str())
        .collect()
}

fn reference_bridge_with_upstream_host_local_passes_without_warnings() {
    let reference = reference_plugins();
    let (code, st) = judge(&reference.join("bridge"), Path::new(UPSTREAM));
    assert_eq!(code, 0, "{st:?}");
    assert!(with_status(&st, "fail").is_empty(), "{st:?}");
    assert!(with_status(&st, "warn").is_empty(), "{st:?}");
    for id in [
        "add/result-matches-kernel",
        "ipam/unique-parallel",
        "del/leaves-no-trace",
        "connectivity/container-to-container",
        "connectivity/masquerade",
    ] {
        assert_eq!(st.get(id).map(String::as_str), Some("pass"), "{id}: {st:?}");
    }
}

fn upstream_bridge_with_reference_host_local_judged_like_upstream_alone() {
    let bridge = upstream("bridge");
    let reference = reference_plugins();
    let (alone_code, alone) = judge(&bridge, Path::new(UPSTREAM));
    let (pair_code, pair) = judge(&bridge, &reference);
    assert_eq!(pair_code, alone_code, "pair {pair:?}\nalone {alone:?}");
    assert!(with_status(&pair, "fail").is_empty(), "{pair:?}");
    // Upstream bridge's own findings (e.g. VERSION not echoing) stay; the reference host-local
    // adds none and removes none.
    assert_eq!(
        with_status(&pair, "warn"),
        with_status(&alone, "warn"),
        "pair {pair:?}\nalone {alone:?}"
    );
    assert_eq!(
        with_status(&pair, "skip"),
        with_status(&alone, "skip"),
        "pair {pair:?}\nalone {alone:?}"
    );
    assert!(with_status(&pair, "pass").len() > 40, "{pair:?}");
}

fn main() {
    harness::run(vec![
        Test::new(
            "reference_bridge_with_upstream_host_local_passes_without_warnings",
            reference_bridge_with_upstream_host_local_passes_without_warnings,
        )
        .needs(upstream_plugin("host-local")),
        Test::new(
            "upstream_bridge_with_reference_host_local_judged_like_upstream_alone",
            upstream_bridge_with_reference_host_local_judged_like_upstream_alone,
        )
        .needs(upstream_plugin("bridge")),
    ])
}
