//! Reports: JSON, JUnit and human text, all built from one [`Report`].

mod human;
mod junit;

pub use human::{progress_line, render as human};
pub use junit::{render as junit, render_many as junit_many};

use serde::{Deserialize, Serialize};

use crate::case::{Level, Status};
use crate::invocation::Record;
use crate::runner::CaseResult;

/// Tool identity.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tool {
    /// "cni-conformance".
    pub name: String,
    /// Crate version.
    pub version: String,
}

/// The plugin judged.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PluginInfo {
    /// Path given on the command line.
    pub path: String,
    /// Its `supportedVersions`.
    pub versions: Vec<String>,
    /// The version the cases ran at.
    pub tested_version: Option<String>,
    /// Plugin kind.
    pub kind: crate::profile::PluginKind,
    /// Where the configuration came from.
    pub profile: String,
}

/// One case in the report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaseReport {
    /// `area/slug`.
    pub id: String,
    /// Title.
    pub title: String,
    /// must / should.
    pub level: Level,
    /// pass / fail / warn / skip.
    pub status: Status,
    /// The references the case rests on (spec sections, docs of this repository), as written;
    /// see [`crate::spec_ref`].
    pub spec: String,
    /// Where to read each reference of `spec`, in order: an address of the spec text at the cited
    /// version, or a path in this repository.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<String>,
    /// Finding or skip reason ("" on pass).
    pub message: String,
    /// What the rule expects, when the case failed or warned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// What the plugin did, when the case failed or warned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seen: Option<String>,
    /// True when the finding is a difference between the spec and the reference code (libcni, skel,
    /// upstream plugins), explained in docs/spec-notes.md.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub spec_vs_reference: bool,
    /// Wall time.
    pub duration_ms: u64,
    /// Index into `invocations` of the one the finding is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blame: Option<usize>,
    /// How to enter the kept lab (`--keep`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept_lab: Option<String>,
    /// Every plugin invocation of the case.
    pub invocations: Vec<Record>,
}

/// What a peer (a chain member or delegate beside the plugin under test) did wrong in a case:
/// informational, never part of the verdict or the exit status.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerReport {
    /// The case it was seen in.
    pub case: String,
    /// The peer's file name.
    pub peer: String,
    /// One sentence.
    pub message: String,
    /// What it left or did.
    pub seen: String,
    /// Index of the peer's invocation into that case's `invocations`.
    pub invocation: usize,
}

/// Totals.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Summary {
    /// Cases passed.
    pub passed: usize,
    /// Cases failed.
    pub failed: usize,
    /// Cases warned.
    pub warned: usize,
    /// Cases skipped.
    pub skipped: usize,
    /// Wall time of the whole run.
    pub duration_ms: u64,
}

/// A whole run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// Tool identity.
    pub tool: Tool,
    /// The plugin.
    pub plugin: PluginInfo,
    /// The cases, in catalogue order.
    pub cases: Vec<CaseReport>,
    /// What peers did wrong, by case (informational).
    #[serde(default)]
    pub peers: Vec<PeerReport>,
    /// Totals.
    pub summary: Summary,
}

impl Report {
    /// Builds the report from case results.
    pub fn new(plugin: PluginInfo, results: Vec<CaseResult>, duration_ms: u64) -> Self {
        let mut summary = Summary {
            duration_ms,
            ..Default::default()
        };
        let mut peers = Vec::new();
        let cases = results
            .into_iter()
            .map(|r| {
                peers.extend(r.peers.into_iter().map(|p| PeerReport {
                    case: r.case.id.into(),
                    peer: p.peer,
                    message: p.message,
                    seen: p.seen,
                    invocation: p.invocation,
                }));
                match r.status {
                    Status::Pass => summary.passed += 1,
                    Status::Fail => summary.failed += 1,
                    Status::Warn => summary.warned += 1,
                    Status::Skip => summary.skipped += 1,
                }
                let f = r.finding.unwrap_or_default();
                CaseReport {
                    id: r.case.id.into(),
                    title: r.case.title.into(),
                    level: r.case.level,
                    status: r.status,
                    spec: r.case.spec.into(),
                    links: crate::spec_ref::links(r.case.spec),
                    message: f.message,
                    expected: f.expected,
                    seen: f.seen,
                    spec_vs_reference: r.quirk,
                    duration_ms: r.duration_ms,
                    blame: if r.status == Status::Pass { None } else { r.blame },
                    kept_lab: r.kept.map(|k| k.enter),
                    invocations: r.invocations,
                }
            })
            .collect();
        Report {
            tool: Tool {
                name: "cni-conformance".into(),
                version: env!("CARGO_PKG_VERSION").into(),
            },
            plugin,
            cases,
            peers,
            summary,
        }
    }

    /// Builds a report from finished case reports (runtime mode judges rules, not [`CaseResult`]s).
    pub fn from_cases(plugin: PluginInfo, cases: Vec<CaseReport>, duration_ms: u64) -> Self {
        let mut summary = Summary {
            duration_ms,
            ..Default::default()
        };
        for c in &cases {
            match c.status {
                Status::Pass => summary.passed += 1,
                Status::Fail => summary.failed += 1,
                Status::Warn => summary.warned += 1,
                Status::Skip => summary.skipped += 1,
            }
        }
        Report {
            tool: Tool {
                name: "cni-conformance".into(),
                version: env!("CARGO_PKG_VERSION").into(),
            },
            plugin,
            cases,
            peers: Vec::new(),
            summary,
        }
    }

    /// Exit status: 1 when any case failed, else 0.
    pub fn exit_code(&self) -> i32 {
        i32::from(self.summary.failed > 0)
    }

    /// The JSON report.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"cannot serialise report: {e}\"}}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_failed_case(spec: &str) -> Report {
        let plugin = PluginInfo {
            path: "/opt/cni/bin/example".into(),
            versions: vec!["1.1.0".into()],
            tested_version: Some("1.1.0".into()),
            kind: crate::profile::PluginKind::Interface,
            profile: "built-in".into(),
        };
        let case = CaseReport {
            id: "del/idempotent".into(),
            title: "DEL succeeds three times in a row after an ADD".into(),
            level: Level::Must,
            status: Status::Fail,
            spec: spec.into(),
            links: crate::spec_ref::links(spec),
            message: "the second DEL failed".into(),
            expected: None,
            seen: None,
            spec_vs_reference: false,
            duration_ms: 1,
            blame: None,
            kept_lab: None,
            invocations: Vec::new(),
        };
        Report::from_cases(plugin, vec![case], 1)
    }

    #[test]
    fn every_format_shows_where_to_read_the_rule() {
        let spec = r#"SPEC.md 1.1.0 §"`DEL`: Remove container from network, or un-apply modifications" (plugins must accept repeated DELs); docs/spec-notes.md#error-codes"#;
        let report = one_failed_case(spec);
        let url = "https://github.com/containernetworking/cni/blob/spec-v1.1.0/SPEC.md#del-remove-container-from-network-or-un-apply-modifications";
        let json: serde_json::Value = serde_json::from_str(&report.json()).expect("the report is JSON");
        assert_eq!(json["cases"][0]["spec"], spec);
        assert_eq!(
            json["cases"][0]["links"],
            serde_json::json!([url, "docs/spec-notes.md#error-codes"])
        );
        let text = human(&report);
        assert!(
            text.contains(&format!(
                "    see:      {url}\n    see:      docs/spec-notes.md#error-codes\n"
            )),
            "{text}"
        );
        assert!(junit(&report).contains(&format!("see: {url}")));
    }
}
