//! The case runner: chooses cases and runs them; each selected case gets its own lab; `--jobs` cases run at once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use regex::Regex;

use crate::case::{review, status_of, Case, Ctx, Finding, Status, Target, Verdict};
use crate::invocation::Record;
use crate::lab::KeptLab;
use crate::version::SpecVersion;

/// How a run treats its cases.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Cases run at once.
    pub jobs: usize,
    /// `--strict`.
    pub strict: bool,
    /// `--keep`: keep the lab of a failed case.
    pub keep: bool,
}

/// What one case produced.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// The case.
    pub case: &'static Case,
    /// Its status.
    pub status: Status,
    /// The finding or skip reason, when not passed.
    pub finding: Option<Finding>,
    /// True when the finding is a spec-versus-reference difference.
    pub quirk: bool,
    /// Wall time.
    pub duration_ms: u64,
    /// Every invocation, in order.
    pub invocations: Vec<Record>,
    /// The invocation the finding is about.
    pub blame: Option<usize>,
    /// The kept lab, with `--keep`.
    pub kept: Option<KeptLab>,
    /// What peers did wrong (informational; indexes into `invocations`).
    pub peers: Vec<crate::case::PeerFinding>,
}

/// A case selector from `--filter`/`--skip`: a regular expression matched against id and title
/// (a plain word works as a substring).
#[derive(Debug, Clone)]
pub struct Selector {
    filters: Vec<Regex>,
    skips: Vec<Regex>,
}

impl Selector {
    /// Compiles the patterns.
    pub fn new(filters: &[String], skips: &[String]) -> Result<Self, regex::Error> {
        let compile = |ps: &[String]| ps.iter().map(|p| Regex::new(p)).collect::<Result<Vec<_>, _>>();
        Ok(Selector {
            filters: compile(filters)?,
            skips: compile(skips)?,
        })
    }

    /// True when the case is chosen.
    pub fn chooses(&self, case: &Case) -> bool {
        let hit = |r: &Regex| r.is_match(case.id) || r.is_match(case.title);
        (self.filters.is_empty() || self.filters.iter().any(hit)) && !self.skips.iter().any(hit)
    }
}

/// Why a case does not run for this target, when it cannot (the case is reported as skipped).
fn not_runnable(case: &Case, target: &Target) -> Option<String> {
    if let Some(reason) = &target.profile.unavailable {
        return Some(reason.clone());
    }
    if let (Some(why), "connectivity") = (&target.profile.no_peer, case.area()) {
        return Some(format!("the plugin has no peer to reach: {why}"));
    }
    // The VERSION cases judge the answer itself, so they run even when it is unusable.
    if case.area() == "version" {
        return None;
    }
    let claimed: Vec<SpecVersion> = if target.supported.is_empty() {
        // No usable VERSION answer: a runtime assumes 0.1.0 only
        // (docs/spec-notes.md#plugins-without-a-usable-version-answer).
        vec![SpecVersion(0, 1, 0)]
    } else {
        target.supported.iter().filter_map(|v| v.parse().ok()).collect()
    };
    let claims_since = claimed.iter().any(|v| *v >= case.applies.since);
    (!claims_since).then(|| {
        format!(
            "the rule exists from spec {} on; the plugin claims no such version",
            case.applies.since
        )
    })
}

/// The cases that apply to the target's kind, in catalogue order.
pub fn applicable<'c>(cases: &[&'c Case], target: &Target, sel: &Selector) -> Vec<&'c Case> {
    cases
        .iter()
        .copied()
        .filter(|c| c.applies.kinds.contains(&target.profile.kind) && sel.chooses(c))
        .collect()
}

/// Runs one case in a fresh lab.
pub fn run_case(case: &'static Case, target: &Target, opts: &RunOptions) -> CaseResult {
    let start = Instant::now();
    let mut result = CaseResult {
        case,
        status: Status::Skip,
        finding: None,
        quirk: false,
        duration_ms: 0,
        invocations: Vec::new(),
        blame: None,
        kept: None,
        peers: Vec::new(),
    };
    if let Some(reason) = not_runnable(case, target) {
        result.finding = Some(Finding {
            message: reason,
            ..Default::default()
        });
        return result;
    }
    let (verdict, ctx) = match Ctx::new(target) {
        Ok(mut ctx) => {
            ctx.purpose = case.id;
            // A bug in a case body must cost that case, not the run.
            let verdict = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (case.body)(&mut ctx)))
                .unwrap_or_else(|p| {
                    let what = p
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    Err(Verdict::Broken(format!("case body panicked: {what}")))
                });
            let verdict = review(&mut ctx, verdict);
            (verdict, Some(ctx))
        }
        Err(e) => (Err(Verdict::Broken(format!("could not build the lab: {e}"))), None),
    };
    result.status = status_of(case.level, &verdict, opts.strict);
    result.finding = match verdict {
        Ok(()) => None,
        Err(Verdict::Violation(f) | Verdict::Should(f)) => Some(f),
        Err(Verdict::Quirk(f)) => {
            result.quirk = true;
            Some(f)
        }
        Err(Verdict::Skip(m)) => Some(Finding {
            message: m,
            ..Default::default()
        }),
        Err(Verdict::Broken(m)) => Some(Finding {
            message: format!("the suite could not run this case: {m}"),
            ..Default::default()
        }),
    };
    if let Some(mut ctx) = ctx {
        if opts.keep && result.status == Status::Fail {
            result.kept = ctx.lab.keep().ok();
        }
        result.blame = ctx.blame.or(ctx.invocations.len().checked_sub(1));
        result.peers = std::mem::take(&mut ctx.peers);
        result.invocations = ctx.invocations;
    }
    result.duration_ms = start.elapsed().as_millis() as u64;
    result
}

/// Runs the cases on `opts.jobs` worker threads; `progress` sees each result as it finishes.
/// Results come back in catalogue order.
pub fn run_all(
    cases: &[&'static Case],
    target: &Target,
    opts: &RunOptions,
    progress: &(dyn Fn(&CaseResult, usize, usize) + Sync),
) -> Vec<CaseResult> {
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let slots: Mutex<Vec<Option<CaseResult>>> = Mutex::new(vec![None; cases.len()]);
    let workers = opts.jobs.clamp(1, cases.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(case) = cases.get(i) else { break };
                let r = run_case(case, target, opts);
                let n = done.fetch_add(1, Ordering::SeqCst) + 1;
                progress(&r, n, cases.len());
                if let Ok(mut v) = slots.lock() {
                    v[i] = Some(r);
                }
            });
        }
    });
    slots.into_inner().unwrap_or_default().into_iter().flatten().collect()
}
