//! Watching the calls the plugin under test makes to its IPAM delegate.
//!
//! The spec makes delegation the plugin's business (SPEC 1.1.0 §4): it finds the delegate on
//! `CNI_PATH`, gives it the same environment and the complete configuration, and must pass CHECK,
//! DEL, GC and STATUS on to it. To see those calls, the suite puts a directory first in the
//! plugin's `CNI_PATH` holding the recording plugin under the delegate's name: it logs each call
//! and forwards it, unchanged, to the real delegate found further along the path.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::{Ctx, Verdict};
use crate::ns;
use crate::runtime::log::{self, Entry};
use crate::runtime::mode::recorder_path;
use crate::runtime::recorder::SIDECAR;

/// Where the stand-in lives, inside the lab.
const DIR: &str = "/run/cni-conformance-delegate";

/// A watched delegate.
#[derive(Debug, Clone)]
pub struct Delegate {
    /// Its type (`host-local`).
    pub kind: String,
    log: PathBuf,
}

impl Ctx<'_> {
    /// The IPAM type the plugin under test's configuration delegates to (none when the plugin
    /// under test is itself an IPAM plugin).
    pub fn ipam_type(&self) -> Option<String> {
        if self.target.profile.kind == crate::profile::PluginKind::Ipam {
            return None;
        }
        self.target
            .profile
            .plugins
            .last()?
            .pointer("/ipam/type")?
            .as_str()
            .filter(|t| !t.is_empty())
            .map(str::to_string)
    }

    /// Puts the recording stand-in for the plugin's IPAM delegate first in `CNI_PATH` for every
    /// later call; a skip when the configuration names no delegate or it cannot be found.
    pub fn watch_delegate(&mut self) -> Result<Delegate, Verdict> {
        let kind = self
            .ipam_type()
            .ok_or_else(|| Verdict::Skip("the configuration gives the plugin no IPAM delegate".into()))?;
        let real = self.target.find_plugin(&kind).ok_or_else(|| {
            Verdict::Skip(format!(
                "the IPAM delegate {kind:?} is not in CNI_PATH {}",
                self.target.cni_path_env()
            ))
        })?;
        let recorder = recorder_path().map_err(|e| Verdict::Skip(e.to_string()))?;
        let log = Path::new(DIR).join("calls.jsonl");
        let sidecar = json!({"log": log, "forward": {&kind: real}}).to_string();
        let (k, l) = (kind.clone(), log.clone());
        ns::run_in(None, Some(self.lab.mnt()), move || {
            let io = |what: &'static str| ns::io_err(what);
            std::fs::create_dir_all(DIR).map_err(io("delegate stand-in dir"))?;
            std::os::unix::fs::symlink(&recorder, Path::new(DIR).join(&k)).map_err(io("delegate stand-in"))?;
            std::fs::write(Path::new(DIR).join(SIDECAR), &sidecar).map_err(io("delegate sidecar"))?;
            std::fs::write(&l, "").map_err(io("delegate log"))
        })?;
        self.delegate_dir = Some(PathBuf::from(DIR));
        Ok(Delegate { kind, log })
    }

    /// Every call the delegate got so far, in order.
    pub fn delegate_calls(&self, d: &Delegate) -> Result<Vec<Entry>, Verdict> {
        let path = d.log.clone();
        let read = ns::run_in(None, Some(self.lab.mnt()), move || Ok(log::read(&path)))?;
        read.map_err(|e| Verdict::Broken(format!("reading the delegate's calls: {e}")))
    }

    /// Adds a call the delegate got to the case's invocations (so a finding can show it).
    pub fn record_delegate_call(&mut self, d: &Delegate, e: &Entry) -> usize {
        self.invocations.push(e.record(
            d.kind.clone(),
            "called by the plugin under test (seen through the suite's delegate stand-in)".into(),
        ));
        self.invocations.len() - 1
    }

    /// The delegate's calls with this `CNI_COMMAND`.
    pub fn delegate_calls_of(&self, d: &Delegate, verb: &str) -> Result<Vec<Entry>, Verdict> {
        Ok(self
            .delegate_calls(d)?
            .into_iter()
            .filter(|e| e.command() == verb)
            .collect())
    }
}
