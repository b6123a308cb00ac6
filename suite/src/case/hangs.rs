//! What a run remembers about verbs of the plugin under test that never returned.
//!
//! Every case has a lab of its own, but a plugin whose ADD hangs hangs in every lab: without a
//! memory each ADD-based case would wait its own `--timeout` (a quarter of an hour at the default
//! 30 s). Once a verb has timed out on a valid request, later invocations of that verb are not
//! run: they are reported as hanging, naming the first timeout. Each verb has its own memory (an
//! ADD that hangs says nothing about DEL).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The first timeout of one verb.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstTimeout {
    /// Where it happened: a case id, or "preflight".
    pub during: String,
    /// The limit it ran into.
    pub after: Duration,
}

impl FirstTimeout {
    /// One sentence for findings and records.
    pub fn describe(&self, verb: &str) -> String {
        format!(
            "{verb} of the plugin under test hangs: it did not return within {} s in {} (the first timeout), so the suite does not wait for it again",
            self.after.as_secs_f64(),
            self.during
        )
    }
}

/// Shared by every case of one run (clones share the same memory).
#[derive(Debug, Clone, Default)]
pub struct HangMemory {
    first: Arc<Mutex<BTreeMap<String, FirstTimeout>>>,
}

impl HangMemory {
    /// Notes that `verb` timed out, unless an earlier timeout of it is already known.
    pub fn remember(&self, verb: &str, during: &str, after: Duration) {
        if let Ok(mut m) = self.first.lock() {
            m.entry(verb.to_string()).or_insert_with(|| FirstTimeout {
                during: during.to_string(),
                after,
            });
        }
    }

    /// The first timeout of `verb`, if it has timed out.
    pub fn hung(&self, verb: &str) -> Option<FirstTimeout> {
        self.first.lock().ok().and_then(|m| m.get(verb).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_verb_keeps_its_first_timeout_and_clones_share_it() {
        let memory = HangMemory::default();
        let shared = memory.clone();
        assert!(memory.hung("ADD").is_none());
        shared.remember("ADD", "preflight", Duration::from_secs(5));
        shared.remember("ADD", "add/result-schema", Duration::from_secs(5));
        let first = memory.hung("ADD").unwrap();
        assert_eq!(first.during, "preflight");
        assert!(first.describe("ADD").contains("within 5 s in preflight"));
        assert!(memory.hung("DEL").is_none(), "a hanging ADD says nothing about DEL");
    }
}
