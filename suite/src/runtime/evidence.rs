//! What one scenario produced: the runtime command's own record and the recorder's log, with the
//! questions the rules ask of them.

use serde_json::{Map, Value};

use super::log::Entry;
use super::scenario::Scenario;
use crate::case::Finding;
use crate::cni::NormalResult;
use crate::invocation::{Exit, Record};

/// One scenario after the runtime command ran.
#[derive(Debug, Clone)]
pub struct ScenarioRun {
    /// The scenario.
    pub scenario: Scenario,
    /// The runtime command's run.
    pub command: Record,
    /// The recorded invocations, by start time.
    pub entries: Vec<Entry>,
    /// Set when the log could not be read.
    pub log_error: Option<String>,
}

/// The verbs that concern one attachment.
pub const ATTACHMENT_VERBS: [&str; 3] = ["ADD", "CHECK", "DEL"];

impl ScenarioRun {
    /// Entries of one verb, with their index in `entries`.
    pub fn calls<'a>(&'a self, verb: &'a str) -> impl Iterator<Item = (usize, &'a Entry)> + 'a {
        self.entries
            .iter()
            .enumerate()
            .filter(move |(_, e)| e.command() == verb)
    }

    /// Entries that concern the attachment (ADD, CHECK, DEL).
    pub fn attachment_calls(&self) -> impl Iterator<Item = (usize, &Entry)> + '_ {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| ATTACHMENT_VERBS.contains(&e.command()))
    }

    /// Position of the entry's plugin in the list.
    pub fn index(&self, e: &Entry) -> Option<usize> {
        self.scenario.index_of(&e.plugin)
    }

    /// Number of plugins in the list.
    pub fn len(&self) -> usize {
        self.scenario.types().len()
    }

    /// True when the list has no plugins (never for the built-in scenarios).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The stored plugin object of an entry's plugin.
    pub fn stored(&self, e: &Entry) -> Option<Map<String, Value>> {
        self.index(e).and_then(|i| self.scenario.plugins().get(i).cloned())
    }

    /// The final ADD result: stdout of the last successful ADD of the last plugin.
    pub fn final_result(&self) -> Option<(usize, Value)> {
        let last = self.len().checked_sub(1)?;
        self.calls("ADD")
            .filter(|(_, e)| e.exit_code == 0 && self.index(e) == Some(last))
            .last()
            .and_then(|(i, e)| e.stdout_json().map(|v| (i, v)))
    }

    /// True when the runtime completed the attachment: the whole chain was ADDed and the runtime
    /// command reported success (a runtime that rejects a result after ADD, e.g. an older libcni
    /// meeting a 1.1.0 result, has not attached anything).
    pub fn accepted(&self) -> bool {
        self.final_result().is_some() && self.command.exit.success()
    }

    /// The `cniVersion` the runtime sent on the first ADD.
    pub fn version_sent(&self) -> Option<String> {
        self.calls("ADD")
            .next()
            .and_then(|(_, e)| e.stdin_json())
            .and_then(|v| v.get("cniVersion").and_then(Value::as_str).map(str::to_string))
    }

    /// How the runtime command ended, for messages.
    pub fn command_outcome(&self) -> String {
        let tail: String = self
            .command
            .stderr
            .lines()
            .rev()
            .take(3)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join(" | ");
        match (&self.command.exit, tail.is_empty()) {
            (Exit::Code(0), _) | (_, true) => format!("runtime command: {}", self.command.exit),
            (exit, false) => format!("runtime command: {exit}; stderr ends: {tail}"),
        }
    }
}

/// When some scenario's runtime command made no plugin call at all, the finding every rule gets
/// in place of a pass or a skip (no rule holds "in every scenario" on no evidence), with the
/// index of the first such run.
pub fn silent_scenarios(runs: &[ScenarioRun]) -> Option<(usize, Finding)> {
    let silent: Vec<usize> = (0..runs.len()).filter(|&i| runs[i].entries.is_empty()).collect();
    let first = *silent.first()?;
    let slugs: Vec<&str> = silent.iter().map(|&i| runs[i].scenario.slug).collect();
    Some((
        first,
        Finding {
            message: format!(
                "the runtime made no plugin call in scenario{} {}, so no rule can pass on it",
                if slugs.len() == 1 { "" } else { "s" },
                slugs.join(", ")
            ),
            expected: Some("the runtime command ADDs a container to the network and DELs it again".into()),
            seen: Some(format!("no plugin call; {}", runs[first].command_outcome())),
        },
    ))
}

/// Two results describe the same attachment: same interfaces, addresses and routes (after the
/// lenient normalisation, so key order and empty fields do not matter).
pub fn same_result(a: &Value, b: &Value) -> bool {
    match (NormalResult::parse(a), NormalResult::parse(b)) {
        (Ok(x), Ok(y)) => {
            x.interfaces == y.interfaces
                && x.ips
                    .iter()
                    .map(|i| (i.address, i.gateway))
                    .eq(y.ips.iter().map(|i| (i.address, i.gateway)))
                && x.routes == y.routes
        }
        _ => a == b,
    }
}

/// Compact JSON for messages, cut at `max` characters.
pub fn short(v: &Value, max: usize) -> String {
    let s = v.to_string();
    if s.chars().count() <= max {
        s
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}
