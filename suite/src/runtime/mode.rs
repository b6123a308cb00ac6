//! Runs runtime mode: stages every scenario, runs the runtime command once per scenario inside a
//! fresh lab, reads the recorder's log, and judges the rules.
//!
//! Where things live: each scenario gets a lab of its own, and its conf dir, bin dir, log and CRI
//! record sit in that lab's private `/run` ([`SCRATCH`]), so nothing of a run is ever on the
//! machine, even when the suite is killed. The runtime command runs in the lab (its PID, mount
//! and network namespaces, its writable layer over the machine's files) with
//! `CNI_CONFORMANCE_NETWORK`, `CNI_CONFORMANCE_CONF_DIR` and `CNI_CONFORMANCE_BIN_DIR` set (plus
//! `CNI_CONFORMANCE_SCENARIO`, the scenario's slug, and `CNI_CONFORMANCE_SUITE`, this binary,
//! for scripts that want `cni-conformance invoke`, and `CNI_CONFORMANCE_CRI_RECORD`, where a
//! CRI runtime's kubelet stand-in writes its record). Processes it leaves running are named in
//! its record (and judged by `runtime/no-process-left`) and die with the lab.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::cri_evidence::{self, CriContext, CriRun};
use super::evidence::{silent_scenarios, ScenarioRun};
use super::kubernetes;
use super::log;
use super::rules::{self, Blame, Outcome};
use super::scenario::{self, Scenario};
use crate::case::{status_of, Finding, Level, Status, Verdict};
use crate::cri::record::RECORD_ENV;
use crate::invocation::{self, Invocation, Record};
use crate::lab::Lab;
use crate::ns;
use crate::report::CaseReport;

/// Where each scenario's files are staged, inside its lab.
pub const SCRATCH: &str = "/run/cni-conformance";

/// File name of the recorder binary, looked up next to the suite binary.
pub const RECORDER_BIN: &str = "cni-conformance-recorder";

/// Errors that stop runtime mode before anything is judged (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum ModeError {
    /// The recorder binary is missing.
    #[error("the recording plugin {0} is missing (build it with cargo build, or set CNI_CONFORMANCE_RECORDER)")]
    NoRecorder(String),
    /// The runtime command is empty or cannot be resolved.
    #[error("runtime command: {0}")]
    Command(String),
    /// Staging or the lab failed.
    #[error("{0}")]
    Setup(String),
}

/// Options of a runtime-mode run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The runtime command and its arguments.
    pub command: Vec<String>,
    /// Limit for one run of the command.
    pub timeout: Duration,
    /// `--strict`.
    pub strict: bool,
    /// `--cri`: the runtime is a CRI runtime (the Kubernetes rules apply).
    pub cri: bool,
}

/// The recorder: `CNI_CONFORMANCE_RECORDER`, else next to the running binary.
pub fn recorder_path() -> Result<PathBuf, ModeError> {
    if let Ok(p) = std::env::var("CNI_CONFORMANCE_RECORDER") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            std::path::absolute(&p).map_err(|e| ModeError::NoRecorder(format!("{}: {e}", p.display())))
        } else {
            Err(ModeError::NoRecorder(p.display().to_string()))
        };
    }
    let exe = std::env::current_exe().map_err(|e| ModeError::NoRecorder(e.to_string()))?;
    let p = exe.with_file_name(RECORDER_BIN);
    if p.is_file() {
        Ok(p)
    } else {
        Err(ModeError::NoRecorder(p.display().to_string()))
    }
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The command with its program made absolute (it runs with `/` as working directory). A
/// program that is not an executable file (or, without a `/`, not on `PATH`) cannot be started:
/// a usage error before any scenario, not eleven scenarios of a command that never ran.
fn resolve(command: &[String]) -> Result<Vec<String>, ModeError> {
    let (prog, rest) = command
        .split_first()
        .ok_or_else(|| ModeError::Command("no command given after --".into()))?;
    let found = if prog.contains('/') {
        Some(std::path::absolute(prog).map_err(|e| ModeError::Command(format!("{prog}: {e}")))?)
    } else {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .map(|d| d.join(prog))
            .find(|p| executable(p))
    };
    let prog = match found {
        Some(p) if executable(&p) => p.display().to_string(),
        Some(p) => {
            let why = std::fs::metadata(&p).map_or_else(|e| e.to_string(), |_| "not an executable file".into());
            return Err(ModeError::Command(format!("{}: {why}", p.display())));
        }
        None => return Err(ModeError::Command(format!("{prog} is not on PATH"))),
    };
    Ok(std::iter::once(prog).chain(rest.iter().cloned()).collect())
}

fn executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Everything one scenario produced: the run, and the CRI record if the command wrote one.
fn run_scenario(
    s: &Scenario,
    recorder: &Path,
    command: &[String],
    opts: &Options,
) -> Result<(ScenarioRun, CriRun), ModeError> {
    let lab = Lab::new().map_err(|e| ModeError::Setup(format!("scenario {}: lab: {e}", s.slug)))?;
    // The command runs from the suite's working directory, so relative paths in it work.
    let cwd = std::env::current_dir()
        .map(|d| quote(&d.display().to_string()))
        .unwrap_or_else(|_| "/".into());
    let line: Vec<String> = command.iter().map(|a| quote(a)).collect();
    let script = format!("#!/bin/sh\ncd {cwd} || exit 2\nexec {}\n", line.join(" "));
    let (staged, wrapper, cri_record) = ns::run_in(None, Some(lab.mnt()), move || {
        use std::os::unix::fs::PermissionsExt;
        let io = |what: &'static str| ns::io_err(what);
        let staged = scenario::stage(s, Path::new(SCRATCH), recorder).map_err(io("staging"))?;
        // An invocation takes a program without arguments: a two-line script carries them.
        let wrapper = staged.dir.join("run-runtime.sh");
        std::fs::write(&wrapper, &script).map_err(io("wrapper"))?;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).map_err(io("wrapper"))?;
        // The CRI record starts empty and writable by anyone, like the log.
        let cri_record = staged.dir.join(cri_evidence::RECORD_FILE);
        std::fs::write(&cri_record, "").map_err(io("CRI record"))?;
        std::fs::set_permissions(&cri_record, std::fs::Permissions::from_mode(0o666)).map_err(io("CRI record"))?;
        Ok((staged, wrapper, cri_record))
    })
    .map_err(|e| ModeError::Setup(format!("scenario {}: staging: {e}", s.slug)))?;
    let mut env: Vec<(String, String)> = std::env::vars().filter(|(k, _)| !k.starts_with("CNI_")).collect();
    let suite = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    env.extend([
        ("CNI_CONFORMANCE_NETWORK".to_string(), s.network()),
        ("CNI_CONFORMANCE_CONF_DIR".into(), staged.conf_dir.display().to_string()),
        ("CNI_CONFORMANCE_BIN_DIR".into(), staged.bin_dir.display().to_string()),
        ("CNI_CONFORMANCE_SCENARIO".into(), s.slug.to_string()),
        ("CNI_CONFORMANCE_SUITE".into(), suite),
        (RECORD_ENV.into(), cri_record.display().to_string()),
    ]);
    let inv = Invocation {
        program: wrapper,
        env,
        stdin: Vec::new(),
        timeout: opts.timeout,
        output_cap: invocation::DEFAULT_OUTPUT_CAP,
        lab: Some(&lab),
    };
    let mut record = invocation::run(&inv);
    record.program = command.join(" ");
    // The report shows what the suite added, not the whole inherited environment.
    record.env.retain(|(k, _)| k.starts_with("CNI_CONFORMANCE_"));
    record.command = format!("runtime command, scenario {}", s.slug);
    let log_path = staged.log.clone();
    let read = ns::run_in(None, Some(lab.mnt()), move || {
        Ok((log::read(&log_path), CriRun::read(&cri_record)))
    });
    drop(lab);
    let (entries, log_error, cri) = match read {
        Ok((Ok(e), cri)) => (e, None, cri),
        Ok((Err(e), cri)) => (Vec::new(), Some(e.to_string()), cri),
        Err(e) => (Vec::new(), Some(e.to_string()), CriRun::default()),
    };
    let run = ScenarioRun {
        scenario: s.clone(),
        command: record,
        entries,
        log_error,
    };
    Ok((run, cri))
}

/// Runs every scenario and judges the rules; `progress` is called after each scenario.
pub fn run(opts: &Options, progress: &dyn Fn(&ScenarioRun, usize, usize)) -> Result<Vec<CaseReport>, ModeError> {
    let recorder = recorder_path()?;
    let command = resolve(&opts.command)?;
    let scenarios = scenario::all();
    let mut runs = Vec::new();
    let mut cri = CriContext {
        declared: opts.cri,
        runs: Vec::new(),
    };
    let mut failure = None;
    for (n, s) in scenarios.iter().enumerate() {
        match run_scenario(s, &recorder, &command, opts) {
            Ok((r, c)) => {
                progress(&r, n + 1, scenarios.len());
                runs.push(r);
                cri.runs.push(c);
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(judge(&runs, &cri, opts.strict))
}

/// Judges every rule over the runs: the `runtime/*` rules, then the Kubernetes rules. When a
/// scenario saw no plugin call, every `runtime/*` rule that did not fail already fails with that
/// (a pass or a skip would rest on nothing).
pub fn judge(runs: &[ScenarioRun], cri: &CriContext, strict: bool) -> Vec<CaseReport> {
    let silent = silent_scenarios(runs);
    let general = rules::all().into_iter().map(|rule| {
        let start = Instant::now();
        let outcome = match ((rule.body)(runs), &silent) {
            (Ok(()) | Err(Outcome::Skip(_)), Some((run, finding))) => {
                Err(Outcome::Violation(finding.clone(), Blame { run: *run, entry: None }))
            }
            (outcome, _) => outcome,
        };
        let meta = Meta {
            id: rule.id,
            title: rule.title,
            level: rule.level,
            spec: rule.spec,
        };
        judge_one(meta, outcome, start, runs, strict)
    });
    let kubernetes = kubernetes::all().into_iter().map(|rule| {
        let start = Instant::now();
        let outcome = (rule.body)(runs, cri);
        let meta = Meta {
            id: rule.id,
            title: rule.title,
            level: rule.level,
            spec: rule.spec,
        };
        judge_one(meta, outcome, start, runs, strict)
    });
    general.chain(kubernetes).collect()
}

/// What the report says of a rule besides its outcome.
struct Meta {
    id: &'static str,
    title: &'static str,
    level: Level,
    spec: &'static str,
}

fn judge_one(
    rule: Meta,
    outcome: Result<(), Outcome>,
    start: Instant,
    runs: &[ScenarioRun],
    strict: bool,
) -> CaseReport {
    let (verdict, blame): (Result<(), Verdict>, Option<Blame>) = match outcome {
        Ok(()) => (Ok(()), None),
        Err(Outcome::Skip(why)) => (Err(Verdict::Skip(why)), None),
        Err(Outcome::Violation(f, b)) => (Err(Verdict::Violation(f)), Some(b)),
        Err(Outcome::Quirk(f, b)) => (Err(Verdict::Quirk(f)), Some(b)),
    };
    let status = status_of(rule.level, &verdict, strict);
    let quirk = matches!(verdict, Err(Verdict::Quirk(_)));
    let finding = match verdict {
        Ok(()) => Finding::default(),
        Err(Verdict::Skip(m)) | Err(Verdict::Broken(m)) => Finding {
            message: m,
            ..Default::default()
        },
        Err(Verdict::Violation(f)) | Err(Verdict::Should(f)) | Err(Verdict::Quirk(f)) => f,
    };
    let (invocations, blame_index) = match (blame, status) {
        (Some(b), s) if s != Status::Pass => {
            let run = &runs[b.run];
            (records(run), Some(b.entry.map_or(0, |i| i + 1)))
        }
        _ => (Vec::new(), None),
    };
    CaseReport {
        id: rule.id.into(),
        title: rule.title.into(),
        level: rule.level,
        status,
        spec: rule.spec.into(),
        links: crate::spec_ref::links(rule.spec),
        message: finding.message,
        expected: finding.expected,
        seen: finding.seen,
        spec_vs_reference: quirk,
        duration_ms: start.elapsed().as_millis() as u64,
        blame: blame_index,
        kept_lab: None,
        invocations,
    }
}

/// The runtime command's record followed by every recorded plugin call of the scenario.
fn records(run: &ScenarioRun) -> Vec<Record> {
    let mut out = vec![run.command.clone()];
    out.extend(
        run.entries
            .iter()
            .map(|e| e.record(e.plugin.clone(), format!("scenario {}", run.scenario.slug))),
    );
    out
}
