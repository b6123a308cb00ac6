//! The case model: one spec rule, one id, one body.
//!
//! Adding a case is a local change: write a body `fn(&mut Ctx) -> Result<(), Verdict>` in the
//! area's file under `cases/` and add one [`Case`] entry to that file's `CASES` list. The body
//! returns `Ok(())` when the rule holds, and `Err(verdict)` otherwise (`?` works on every
//! [`Ctx`] helper, which turn plugin misbehaviour into findings).

mod ctx;
mod ctx_variant;
mod delegate;
mod evidence;
mod hangs;
mod peers;

pub(crate) use ctx::{first_line, truncate};
pub use ctx::{AddOutcome, AddPremise, Attachment, Ctx, Target};
pub use ctx_variant::Variant;
pub use delegate::Delegate;
pub use evidence::review;
pub use hangs::{FirstTimeout, HangMemory};
pub use peers::{Charged, PeerFinding};

use crate::profile::PluginKind;
use crate::version::SpecVersion;

/// How strongly the spec words the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// MUST: a violation fails the run.
    Must,
    /// SHOULD: a violation is a warning (a failure under `--strict`).
    Should,
}

/// Outcome of one case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The rule holds.
    Pass,
    /// A `must` rule is broken (or anything under `--strict`).
    Fail,
    /// A `should` rule is broken, or the plugin follows the reference code where it differs from
    /// the spec.
    Warn,
    /// The case cannot run here; the message says why.
    Skip,
}

/// What went wrong, for the report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Finding {
    /// One sentence.
    pub message: String,
    /// What the rule expects.
    pub expected: Option<String>,
    /// What the plugin did.
    pub seen: Option<String>,
}

/// Why a case body stopped short of passing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The rule is broken.
    Violation(Finding),
    /// A part of the rule that the spec words as "should" (or calls "not critical") is broken,
    /// in a case whose rule is otherwise `must`: a warning (a failure under `--strict`).
    Should(Finding),
    /// The plugin follows the reference code where it differs from the spec (docs/spec-notes.md).
    Quirk(Finding),
    /// The case cannot run here.
    Skip(String),
    /// The suite itself failed (lab or probe error); reported as a failure of a `must` case (a
    /// warning of a `should` case) so it is never hidden.
    Broken(String),
}

impl Verdict {
    /// A violation with expected and seen values.
    pub fn violation(message: impl Into<String>, expected: impl Into<String>, seen: impl Into<String>) -> Self {
        Verdict::Violation(Finding {
            message: message.into(),
            expected: Some(expected.into()),
            seen: Some(seen.into()),
        })
    }

    /// A violation with only a message.
    pub fn fail(message: impl Into<String>) -> Self {
        Verdict::Violation(Finding {
            message: message.into(),
            ..Default::default()
        })
    }

    /// A broken "should" part of a `must` case, with expected and seen values.
    pub fn should(message: impl Into<String>, expected: impl Into<String>, seen: impl Into<String>) -> Self {
        Verdict::Should(Finding {
            message: message.into(),
            expected: Some(expected.into()),
            seen: Some(seen.into()),
        })
    }

    /// The same finding at `should` level: for the part of a `must` case that the spec words as
    /// "should" (anything but a violation is returned unchanged).
    pub fn soften(self) -> Self {
        match self {
            Verdict::Violation(f) => Verdict::Should(f),
            other => other,
        }
    }

    /// A spec-versus-reference difference.
    pub fn quirk(message: impl Into<String>, expected: impl Into<String>, seen: impl Into<String>) -> Self {
        Verdict::Quirk(Finding {
            message: message.into(),
            expected: Some(expected.into()),
            seen: Some(seen.into()),
        })
    }
}

macro_rules! suite_error_is_broken {
    ($($t:ty),*) => {$(
        impl From<$t> for Verdict {
            fn from(e: $t) -> Self {
                Verdict::Broken(e.to_string())
            }
        }
    )*};
}
suite_error_is_broken!(
    crate::lab::LabError,
    crate::net::NetError,
    crate::ns::NsError,
    crate::probe::ProbeError
);

/// Which plugins and versions a case applies to.
#[derive(Debug, Clone, Copy)]
pub struct Applies {
    /// Plugin kinds.
    pub kinds: &'static [PluginKind],
    /// Lowest spec version the rule exists in (the case runs only when the plugin supports one).
    pub since: SpecVersion,
}

/// All kinds.
pub const ANY_KIND: &[PluginKind] = &[PluginKind::Interface, PluginKind::Ipam, PluginKind::Chained];
/// Plugins that create or modify interfaces.
pub const WITH_INTERFACES: &[PluginKind] = &[PluginKind::Interface, PluginKind::Chained];

/// One conformance case.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// Stable id `area/slug`.
    pub id: &'static str,
    /// One line.
    pub title: &'static str,
    /// MUST or SHOULD.
    pub level: Level,
    /// Spec reference: section and version.
    pub spec: &'static str,
    /// Applicability.
    pub applies: Applies,
    /// The body.
    pub body: fn(&mut Ctx) -> Result<(), Verdict>,
}

impl Case {
    /// The area (the part before `/`).
    pub fn area(&self) -> &'static str {
        self.id.split('/').next().unwrap_or(self.id)
    }
}

/// Maps a body's verdict to a status, given the case level and `--strict`.
pub fn status_of(level: Level, verdict: &Result<(), Verdict>, strict: bool) -> Status {
    match verdict {
        Ok(()) => Status::Pass,
        Err(Verdict::Skip(_)) => Status::Skip,
        // Never hidden, but a `should` case never fails a run on its own.
        Err(Verdict::Broken(_)) if level == Level::Must || strict => Status::Fail,
        Err(Verdict::Violation(_)) if level == Level::Must || strict => Status::Fail,
        Err(Verdict::Quirk(_) | Verdict::Should(_)) if strict => Status::Fail,
        Err(_) => Status::Warn,
    }
}
