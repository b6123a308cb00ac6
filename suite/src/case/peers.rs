//! Charging what a case found to the call that caused it: the plugin under test, or a peer (a
//! chain member or delegate the profile put beside it).
//!
//! A chained plugin is judged at the end of a chain (tuning after bridge); a trace the chain
//! leaves may be bridge's. While a case tracks changes ([`Ctx::track_changes`]), every
//! invocation is bracketed by host snapshots, so a trace can be matched to the call that made
//! it. Only what the plugin under test did is judged; what a peer did is reported apart, as
//! information that never changes the exit status.

use serde::{Deserialize, Serialize};

use super::Ctx;
use crate::lab::snapshot::Change;

/// Something a peer did wrong in a case, reported beside the verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerFinding {
    /// The peer's file name (`bridge`, `host-local`).
    pub peer: String,
    /// One sentence.
    pub message: String,
    /// What it left or did.
    pub seen: String,
    /// Index of the peer's invocation into the case's invocations.
    pub invocation: usize,
}

/// Traces split by who made them.
#[derive(Debug, Default)]
pub struct Charged {
    /// Lines charged to the plugin under test (including those no call could be matched to).
    pub own: Vec<String>,
    /// Lines made by peers, with the invocation that made each.
    pub peers: Vec<(usize, String)>,
}

fn subject(what: &str) -> &str {
    what.split([':', '=']).next().unwrap_or(what).trim()
}

impl Ctx<'_> {
    /// From now on, brackets every invocation with host snapshots (see [`Ctx::charge`]).
    pub fn track_changes(&mut self) {
        self.tracking = true;
    }

    /// The invocation whose snapshots show it making `change` (the last one that did).
    fn maker(&self, change: &Change) -> Option<usize> {
        let exact = self
            .changes
            .iter()
            .rev()
            .find(|(_, diff)| diff.iter().any(|d| d.sign == change.sign && d.what == change.what));
        let by_subject = || {
            self.changes
                .iter()
                .rev()
                .find(|(_, diff)| diff.iter().any(|d| subject(&d.what) == subject(&change.what)))
        };
        exact.or_else(by_subject).map(|(i, _)| *i)
    }

    /// True when invocation `idx` ran the plugin under test.
    pub fn is_own(&self, idx: usize) -> bool {
        self.invocations
            .get(idx)
            .is_some_and(|r| r.program == self.target.plugin.display().to_string())
    }

    /// The last invocation of the plugin under test with this verb.
    pub fn own_call(&self, verb: &str) -> Option<usize> {
        (0..self.invocations.len())
            .rev()
            .find(|i| self.is_own(*i) && self.invocations[*i].command == verb)
    }

    /// A peer's file name, from its invocation.
    fn peer_name(&self, idx: usize) -> String {
        self.invocations.get(idx).map_or_else(String::new, |r| {
            std::path::Path::new(&r.program)
                .file_name()
                .map_or(r.program.clone(), |n| n.to_string_lossy().into_owned())
        })
    }

    /// Splits `traces` by the call that made them.
    pub fn charge(&self, traces: &[Change]) -> Charged {
        let mut out = Charged::default();
        for t in traces {
            match self.maker(t) {
                Some(idx) if !self.is_own(idx) => out.peers.push((idx, t.to_string())),
                _ => out.own.push(t.to_string()),
            }
        }
        out
    }

    /// Reports what peers did (one finding per peer invocation) and returns the lines that are the
    /// plugin under test's.
    pub fn charge_and_report(&mut self, traces: &[Change], message: &str) -> Vec<String> {
        let charged = self.charge(traces);
        let mut by_call: Vec<(usize, Vec<String>)> = Vec::new();
        for (idx, line) in charged.peers {
            match by_call.iter_mut().find(|(i, _)| *i == idx) {
                Some((_, lines)) => lines.push(line),
                None => by_call.push((idx, vec![line])),
            }
        }
        for (idx, lines) in by_call {
            let by = format!(
                "{message} (made by {}'s {})",
                self.peer_name(idx),
                self.invocations.get(idx).map_or("", |r| r.command.as_str())
            );
            self.report_peer(idx, &by, lines.join("; "));
        }
        charged.own
    }

    /// A peer's call `idx` failed where the case needed it: reported as the peer's finding, and
    /// the case skips (the plugin under test could not be judged).
    pub fn peer_failed(&mut self, idx: usize, what: &str) -> super::Verdict {
        let rec = &self.invocations[idx];
        let seen = format!("{}: {}", rec.exit, super::first_line(&rec.stdout, &rec.stderr));
        let peer = self.peer_name(idx);
        self.report_peer(idx, what, seen.clone());
        super::Verdict::Skip(format!(
            "chain member {peer} {what} ({seen}); the plugin under test could not be judged"
        ))
    }

    /// Adds a peer finding about invocation `idx`.
    pub fn report_peer(&mut self, idx: usize, message: &str, seen: String) {
        self.peers.push(PeerFinding {
            peer: self.peer_name(idx),
            message: message.to_string(),
            seen,
            invocation: idx,
        });
    }
}
