//! Only the plugin under test is charged: what a peer (the chain member before it, an IPAM
//! delegate) leaves or refuses is a peer finding, reported apart in every format, and never
//! changes the verdict. Debian's chained plugins are judged after upstream bridge, whose DEL
//! without a netns leaves its NAT chain (plugins#810): that used to be charged to them.

mod common;
mod harness;

use common::{suite, upstream_plugin};
use harness::Test;
use serde_json::Value;

const TRACE_CASES: &[&str] = &["del/netns-gone-leaves-no-trace", "del/empty-netns-leaves-no-trace"];

fn report(plugin: &str, format: &str) -> (Option<i32>, String) {
    let out = suite()
        .arg(format!("/usr/lib/cni/{plugin}"))
        .args(["--format", format, "--filter"])
        .arg(format!("^({})$", TRACE_CASES.join("|")))
        .output()
        .unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The chained plugin passes the trace cases; bridge's leftovers are peer findings about bridge's
/// own invocation, and the human and JUnit reports show them too.
fn chained_plugin_is_not_charged_with_bridges_leftovers(plugin: &'static str) {
    let (code, json) = report(plugin, "json");
    assert_eq!(code, Some(0), "{json}");
    let doc: Value = serde_json::from_str(&json).unwrap();
    for case in doc["cases"].as_array().unwrap() {
        let id = case["id"].as_str().unwrap();
        assert_eq!(
            case["status"], "pass",
            "{plugin}: {id} charged the plugin: {}",
            case["seen"]
        );
        let peers: Vec<&Value> = doc["peers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["case"] == id)
            .collect();
        assert!(!peers.is_empty(), "{plugin}: {id} has no peer finding");
        for p in peers {
            assert_eq!(p["peer"], "bridge", "{p}");
            let inv = &case["invocations"][p["invocation"].as_u64().unwrap() as usize];
            assert!(
                inv["program"].as_str().unwrap().ends_with("/bridge"),
                "the peer finding points at {inv}"
            );
            assert!(
                p["seen"].as_str().unwrap().contains("CNI-"),
                "bridge's NAT chain is not named: {p}"
            );
        }
    }
    let (_, human) = report(plugin, "human");
    assert!(
        human.contains("peers (informational") && human.contains("PEER bridge in del/netns-gone-leaves-no-trace"),
        "{human}"
    );
    let (_, junit) = report(plugin, "junit");
    assert!(
        junit.contains("peers (informational)\" tests=\"0\"")
            && junit.contains("bridge in del/empty-netns-leaves-no-trace"),
        "{junit}"
    );
}

fn main() {
    let mut tests = Vec::new();
    for plugin in ["tuning", "portmap", "bandwidth", "firewall"] {
        tests.push(
            Test::new(format!("{plugin}_is_not_charged_with_bridges_leftovers"), move || {
                chained_plugin_is_not_charged_with_bridges_leftovers(plugin)
            })
            .needs(upstream_plugin(plugin))
            .needs(upstream_plugin("bridge")),
        );
    }
    harness::run(tests)
}
