//! The runtime rules, each judged over the recorded logs of every scenario: how a runtime runs a
//! network configuration (SPEC.md 1.1.0 §"Section 3: Execution of Network Configurations") and
//! what it passes to each plugin.
//!
//! A rule body returns `Ok(())` when the rule holds in every scenario it applies to, or the first
//! [`Outcome`] that says otherwise, naming the scenario and the invocation.
//!
//! This module holds the rule model and the table ([`all`]); the bodies live by topic, each file
//! with its tests: `order`, `prev_result`, `config` (the request configuration), `environment`,
//! `check`, `gc_status` and `lifecycle`.

mod check;
mod config;
mod environment;
mod gc_status;
mod lifecycle;
mod order;
mod prev_result;

use serde_json::Value;

use super::evidence::ScenarioRun;
use super::log::Entry;
use crate::case::{Finding, Level};
use check::{check_disabled, check_lifecycle, check_version};
use config::{capabilities_removed, name_version, passthrough, runtime_config, stdin_schema, version_highest};
use environment::{cni_path, env_vars, netns_on_add, netns_on_del, plugin_netns, same_attachment};
use gc_status::{gc_disabled, gc_not_del, gc_request, gc_status_version, status_request};
use lifecycle::{attach_detach, chain_stops, del_after_failed, no_overlap};
use order::{add_order, check_order, del_order};
use prev_result::{prev_chained, prev_check, prev_del, prev_first};
/// Which invocation a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blame {
    /// Index into the runs.
    pub run: usize,
    /// Index into that run's log; `None` means the runtime command itself.
    pub entry: Option<usize>,
}

/// Why a rule did not simply pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The rule is broken.
    Violation(Finding, Blame),
    /// The runtime follows the reference code where it differs from the spec (docs/spec-notes.md).
    Quirk(Finding, Blame),
    /// Nothing in the logs lets the rule be judged.
    Skip(String),
}

/// One runtime rule.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// `runtime/<slug>`.
    pub id: &'static str,
    /// One line.
    pub title: &'static str,
    /// MUST or SHOULD.
    pub level: Level,
    /// Spec reference.
    pub spec: &'static str,
    /// The body.
    pub body: fn(&[ScenarioRun]) -> Result<(), Outcome>,
}

/// A violation found in run `run` (at log entry `entry`), its message prefixed with the scenario.
pub(super) fn violation(
    run: usize,
    entry: Option<usize>,
    runs: &[ScenarioRun],
    message: impl Into<String>,
    expected: impl Into<String>,
    seen: impl Into<String>,
) -> Outcome {
    let slug = runs.get(run).map_or("?", |r| r.scenario.slug);
    Outcome::Violation(
        Finding {
            message: format!("scenario {slug}: {}", message.into()),
            expected: Some(expected.into()),
            seen: Some(seen.into()),
        },
        Blame { run, entry },
    )
}

/// "ADD bridge": the verb and the plugin of a logged call.
pub(super) fn who(e: &Entry) -> String {
    format!("{} {}", e.command(), e.plugin)
}

/// Every rule, in report order.
pub fn all() -> Vec<Rule> {
    vec![
        Rule {
            id: "runtime/attach-detach",
            title: "the runtime command ADDs the container to the network and DELs it again",
            level: Level::Must,
            spec: r#"SPEC.md 1.1.0 §"Lifecycle & Ordering" (an add is eventually followed by a delete)"#,
            body: attach_detach,
        },
        Rule {
            id: "runtime/add-order",
            title: "ADD runs the plugins in list order",
            level: Level::Must,
            spec: r#"SPEC.md 1.1.0 §"Adding an attachment" (plugins in list order)"#,
            body: add_order,
        },
        Rule {
            id: "runtime/del-reverse-order",
            title: "DEL runs every plugin in reverse list order",
            level: Level::Must,
            spec: r#"SPEC.md 1.1.0 §"Deleting an attachment" (plugins in reverse order)"#,
            body: del_order,
        },
        Rule {
            id: "runtime/check-order",
            title: "CHECK runs the plugins in list order",
            level: Level::Must,
            spec: r#"SPEC.md 1.1.0 §"Checking an attachment" (plugins in list order)"#,
            body: check_order,
        },
        Rule {
            id: "runtime/name-version-injected",
            title: "every plugin gets the list's name and one cniVersion from the configuration",
            level: Level::Must,
            spec: r#"SPEC.md 1.1.0 §"Deriving request configuration from plugin configuration" (cniVersion and name are always inserted)"#,
            body: name_version,
        },
        Rule {
            id: "runtime/version-highest",
            title: "the highest version of cniVersion ∪ cniVersions the runtime supports is used",
            level: Level::Must,
            spec: r#"SPEC.md 1.1.0 §"Version considerations" (the highest supported version of cniVersion and cniVersions)"#,
            body: version_highest,
        },
        Rule {
            id: "runtime/prev-result-first-add",
            title: "the first ADD gets no prevResult",
            level: Level::Must,
            spec: r#"SPEC.md 1.1.0 §"Adding an attachment" (no previous result for the first plugin); SPEC.md 1.1.0 §"Deriving request configuration from plugin configuration" (prevResult is not set for the first add)"#,
            body: prev_first,
        },
        Rule {
            id: "runtime/prev-result-chained",
            title: "ADD of plugin N gets plugin N-1's result as prevResult",
            level: Level::Must,
            spec: r#"SPEC.md 1.1.0 §"Adding an attachment" (the previous plugin's result); docs/spec-notes.md#prevresult-in-a-chain-of-adds"#,
            body: prev_chained,
        },
        Rule {
            id: "runtime/prev-result-check",
            title: "CHECK gets the final ADD result as prevResult, in the request's version",
            level: Level::Must,
            spec: r#"SPEC.md 1.1.0 §"Checking an attachment" (the final result of the add); SPEC.md 1.1.0 §"`CHECK`: Check container's networking is as expected" (runtime considerations: prevResult)"#,
            body: prev_check,
        },
        Rule {
            id: "runtime/prev-result-del",
            title: "DEL (0.4.0+) gets the final ADD result as prevResult, in the request's version",
            level: Level::Must,
            spec: r#"SPEC.md 1.1.0 §"Deleting an attachment" (the final result of the add); SPEC.md 0.4.0 §"Parameters" (DEL carries prevResult from 0.4.0 on)"#,
            body: prev_del,
        },
        Rule {
            id: "runtime/same-attachment",
            title: "ADD, CHECK and DEL use the same container id, netns and ifname; CHECK also the same args",
            level: Level::Must,
            spec: r#"SPEC.md 1.1.0 §"Checking an attachment" (the same attachment parameters as the add); SPEC.md 1.1.0 §"`CHECK`: Check container's networking is as expected" (every parameter but CNI_PATH as for ADD)"#,
            body: same_attachment,
        },
        Rule {
            id: "runtime/env-vars",
            title: "ADD/CHECK/DEL set CNI_COMMAND, CNI_CONTAINERID, CNI_IFNAME (and CNI_NETNS for ADD/CHECK)",
            level: Level::Must,
            spec: r#"SPEC.md 1.1.0 §"Parameters"; SPEC.md 1.1.0 §"`ADD`: Add container to network, or apply modifications" (required environment parameters)"#,
            body: env_vars,
        },
        Rule {
            id: "runtime/cni-path",
            title: "CNI_PATH is set on every call",
            level: Level::Must,
            spec: r#"SPEC.md 1.1.0 §"Attachment Parameters" (plugins get CNI_PATH); docs/spec-notes.md#cni_path-on-every-call"#,
            body: cni_path,
        },
        Rule {
            id: "runtime/netns-exists-on-add",
            title: "the container's network namespace exists when ADD and CHECK run",
            level: Level::Must,
            spec: r#"SPEC.md 1.1.0 §"Lifecycle & Ordering" (the namespace exists before any plugin runs)"#,
            body: netns_on_add,
        },
        Rule {
            id: "runtime/netns-exists-on-del",
            title: "DEL runs while the container's network namespace still exists",
            level: Level::Should,
            spec: r#"SPEC.md 1.1.0 §"Parameters" (CNI_NETNS); SPEC.md 1.1.0 §"Lifecycle & Ordering" (the runtime cleans up the container's namespace)"#,
            body: netns_on_del,
        },
        Rule {
            id: "runtime/plugin-in-runtime-netns",
            title: "plugins run in the runtime's network namespace, not the container's",
            level: Level::Must,
            spec: r#"SPEC.md 1.1.0 §"Section 2: Execution Protocol" > "Overview" (plugins run in the runtime's networking domain)"#,
            body: plugin_netns,
        },
        Rule {
            id: "runtime/check-disabled",
            title: "no CHECK is sent when disableCheck is true",
            level: Level::Must,
            spec: r#"SPEC.md 1.1.0 §"Configuration format" (disableCheck); SPEC.md 1.1.0 §"`CHECK`: Check container's networking is as expected" (runtime considerations)"#,
            body: check_disabled,
        },
        Rule {
            id: "runtime/check-version",
            title: "no CHECK is sent for a configuration below 0.4.0",
            level: Level::Must,
            spec: r#"SPEC.md 0.4.0 §"Parameters" (CHECK arrives in 0.4.0)"#,
            body: check_version,
        },
        Rule {
            id: "runtime/check-lifecycle",
            title: "CHECK only runs between a successful ADD and the DEL",
            level: Level::Must,
            spec: r#"SPEC.md 1.1.0 §"`CHECK`: Check container's networking is as expected" (runtime considerations: only between a successful ADD and the DEL)"#,
            body: check_lifecycle,
        },
        Rule {
            id: "runtime/runtime-config",
            title: "runtimeConfig holds only capabilities the plugin declared true",
            level: Level::Must,
            spec: r#"SPEC.md 1.1.0 §"Deriving `runtimeConfig`"; CONVENTIONS.md 1.1.0 §"Well-known Capabilities""#,
            body: runtime_config,
        },
        Rule {
            id: "runtime/capabilities-removed",
            title: "the capabilities key is removed from what the plugin reads",
            level: Level::Must,
            spec: r#"SPEC.md 1.1.0 §"Deriving request configuration from plugin configuration" (capabilities must not be set); docs/spec-notes.md#capabilities-left-in-the-request"#,
            body: capabilities_removed,
        },
        Rule {
            id: "runtime/config-passthrough",
            title: "plugin configuration keys reach the plugin unchanged",
            level: Level::Must,
            spec: r#"SPEC.md 1.1.0 §"Plugin configuration objects:" (other fields pass through unchanged); SPEC.md 1.1.0 §"Deriving request configuration from plugin configuration""#,
            body: passthrough,
        },
        Rule {
            id: "runtime/stdin-schema",
            title: "every request matches the plugin-configuration schema of its version",
            level: Level::Must,
            spec: r#"SPEC.md 1.1.0 §"Deriving request configuration from plugin configuration"; schemas/README.md (one schema per version sent)"#,
            body: stdin_schema,
        },
        Rule {
            id: "runtime/chain-stops-on-failure",
            title: "when a plugin's ADD fails, the rest of the chain is not run",
            level: Level::Must,
            spec: r#"SPEC.md 1.1.0 §"Adding an attachment" (halt at the first error)"#,
            body: chain_stops,
        },
        Rule {
            id: "runtime/del-after-failed-add",
            title: "a failed ADD is followed by a DEL",
            level: Level::Must,
            spec: r#"SPEC.md 1.1.0 §"Lifecycle & Ordering" (a delete follows even a failed add)"#,
            body: del_after_failed,
        },
        Rule {
            id: "runtime/no-overlap",
            title: "operations on one container never overlap, and GC runs alone",
            level: Level::Must,
            spec: r#"SPEC.md 1.1.0 §"Lifecycle & Ordering" (no parallel operations on one container; GC runs alone)"#,
            body: no_overlap,
        },
        Rule {
            id: "runtime/gc-status-version",
            title: "GC and STATUS are sent only for configurations of 1.1.0 or later",
            level: Level::Must,
            spec: r#"SPEC.md 1.1.0 §"`GC`: Clean up any stale resources" (new in 1.1.0); SPEC.md 1.1.0 §"`STATUS`: Check plugin status" (new in 1.1.0)"#,
            body: gc_status_version,
        },
        Rule {
            id: "runtime/gc-request",
            title: "GC reaches every plugin in list order with the live attachments as valid, no runtimeConfig or prevResult",
            level: Level::Must,
            spec: r#"SPEC.md 1.1.0 §"Garbage-collecting a network" (every plugin in list order); SPEC.md main@f1cb561 §"Deriving request configuration from plugin configuration" (cni.dev/valid-attachments; no runtimeConfig or prevResult); docs/spec-notes.md#the-gc-attachment-key"#,
            body: gc_request,
        },
        Rule {
            id: "runtime/gc-not-del",
            title: "GC never deletes a live attachment (no DEL of an attachment GC still lists, none amid the GC calls)",
            level: Level::Must,
            spec: r#"SPEC.md 1.1.0 §"`GC`: Clean up any stale resources" (GC is no substitute for DEL)"#,
            body: gc_not_del,
        },
        Rule {
            id: "runtime/gc-disabled",
            title: "no GC is sent when disableGC is true",
            level: Level::Must,
            spec: r#"SPEC.md main@f1cb561 §"Configuration format" (disableGC)"#,
            body: gc_disabled,
        },
        Rule {
            id: "runtime/status-request",
            title: "STATUS runs the plugins in list order without runtimeConfig or prevResult",
            level: Level::Must,
            spec: r#"SPEC.md 1.1.0 §"`STATUS`: Check plugin status"; SPEC.md 1.1.0 §"Deriving request configuration from plugin configuration" (runtimeConfig and prevResult belong to ADD, DEL and CHECK)"#,
            body: status_request,
        },
        super::hygiene::NO_PROCESS_LEFT,
    ]
}

fn requests(run: &ScenarioRun) -> impl Iterator<Item = (usize, &Entry, Value)> + '_ {
    run.entries
        .iter()
        .enumerate()
        .filter(|(_, e)| e.command() != "VERSION")
        .map(|(i, e)| (i, e, e.stdin_json().unwrap_or(Value::Null)))
}

/// Recorded logs the rules' tests judge.
#[cfg(test)]
mod fixtures {
    use serde_json::{json, Value};

    use crate::invocation::{Exit, Record};
    use crate::runtime::evidence::ScenarioRun;
    use crate::runtime::log::Entry;
    use crate::runtime::scenario;

    pub(super) fn entry(plugin: &str, verb: &str, at: u64, stdin: Value, stdout: Value) -> Entry {
        let env = [
            ("CNI_COMMAND", verb),
            ("CNI_CONTAINERID", "c1"),
            ("CNI_IFNAME", "eth0"),
            ("CNI_NETNS", "/run/netns/x"),
            ("CNI_PATH", "/bin"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        Entry {
            plugin: plugin.into(),
            argv: vec![plugin.into()],
            env,
            stdin: stdin.to_string(),
            stdout: if stdout.is_null() {
                String::new()
            } else {
                stdout.to_string()
            },
            stderr: String::new(),
            exit_code: 0,
            start_ns: at,
            end_ns: at + 1,
            pid: 1,
            netns: None,
            own_netns: None,
        }
    }

    pub(super) fn chain_run(entries: Vec<Entry>) -> Vec<ScenarioRun> {
        let s = scenario::all().into_iter().find(|s| s.slug == "chain").unwrap();
        let command = Record {
            program: "rt".into(),
            command: "runtime".into(),
            env: vec![],
            stdin: String::new(),
            stdout: String::new(),
            stderr: String::new(),
            stdout_dropped: 0,
            stderr_dropped: 0,
            exit: Exit::Code(0),
            duration_ms: 0,
            notes: vec![],
        };
        vec![ScenarioRun {
            scenario: s,
            command,
            entries,
            log_error: None,
        }]
    }

    pub(super) fn result(routes: usize) -> Value {
        let r: Vec<Value> = (0..routes).map(|i| json!({"dst": format!("10.{i}.0.0/16")})).collect();
        json!({"cniVersion":"1.0.0","interfaces":[{"name":"eth0"}],"ips":[{"address":"10.222.0.2/24"}],"routes": r})
    }

    /// An ADD of `plugin` in the chain scenario at `at`, with `prev` as prevResult.
    pub(super) fn chain_add(plugin: &str, at: u64, prev: Option<Value>, out: Value) -> Entry {
        let mut stdin = json!({"name":"cnicf-chain","cniVersion":"1.0.0","type":plugin});
        if let Some(prev) = prev {
            stdin["prevResult"] = prev;
        }
        entry(plugin, "ADD", at, stdin, out)
    }

    /// A DEL of `plugin` in the chain scenario at `at`, with the final result as prevResult.
    pub(super) fn chain_del(plugin: &str, at: u64) -> Entry {
        entry(
            plugin,
            "DEL",
            at,
            json!({"name":"cnicf-chain","cniVersion":"1.0.0","type":plugin,"prevResult":result(3)}),
            Value::Null,
        )
    }

    /// A well-behaved chain: its ADDs, then DELs in reverse order.
    pub(super) fn good_chain() -> Vec<Entry> {
        let mut entries = good_chain_adds();
        entries.extend([
            chain_del("recorder-c", 40),
            chain_del("recorder-b", 50),
            chain_del("recorder-a", 60),
        ]);
        entries
    }

    /// The three ADDs of a well-behaved chain, each passing on the previous result.
    pub(super) fn good_chain_adds() -> Vec<Entry> {
        vec![
            chain_add("recorder-a", 10, None, result(1)),
            chain_add("recorder-b", 20, Some(result(1)), result(2)),
            chain_add("recorder-c", 30, Some(result(2)), result(3)),
        ]
    }
}
