//! Runtime mode: `cni-conformance runtime [OPTIONS] -- CMD...` (DESIGN §6). The library's
//! [`cni_conformance::runtime::mode`] does the work; this edge checks arguments, prints progress
//! and writes the report.

use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};

use super::{usage, Usage};
use cni_conformance::cli::{Format, RuntimeArgs};
use cni_conformance::ns;
use cni_conformance::profile::PluginKind;
use cni_conformance::report::{self, PluginInfo, Report};
use cni_conformance::runtime::mode::{self, Options};
use cni_conformance::runtime::scenario;

/// Runs runtime mode; returns the exit status.
pub fn run(args: RuntimeArgs) -> Result<u8, Usage> {
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        return Err(Usage(anyhow!("--timeout must be a positive number of seconds")));
    }
    if args.vm.vm {
        return super::vm::run_runtime(args);
    }
    usage(ns::bootstrap_unprivileged().map_err(anyhow::Error::from))?;
    let opts = Options {
        command: args.command.clone(),
        timeout: Duration::from_secs_f64(args.timeout),
        strict: args.strict,
        cri: args.cri,
    };
    let human = args.format == Format::Human || args.vm.progress;
    let start = Instant::now();
    let progress = |r: &cni_conformance::runtime::evidence::ScenarioRun, done: usize, total: usize| {
        if human {
            eprintln!(
                "[{done:>2}/{total}] scenario {:<9} {} plugin calls, {}",
                r.scenario.slug,
                r.entries.len(),
                r.command.exit
            );
        }
    };
    let cases = usage(mode::run(&opts, &progress).map_err(anyhow::Error::from))?;
    let mut versions: Vec<String> = scenario::all().iter().flat_map(|s| s.versions()).collect();
    versions.sort();
    versions.dedup();
    let info = PluginInfo {
        path: format!("runtime: {}", args.command.join(" ")),
        versions,
        tested_version: None,
        kind: PluginKind::Interface,
        profile: format!(
            "runtime mode, {} scenarios with recording plugins",
            scenario::all().len()
        ),
    };
    let report = Report::from_cases(info, cases, start.elapsed().as_millis() as u64);
    let text = match args.format {
        Format::Human => report::human(&report),
        Format::Json => report.json(),
        Format::Junit => report::junit(&report),
    };
    print!("{text}");
    if let Some(path) = &args.output {
        usage(std::fs::write(path, &text).with_context(|| format!("cannot write --output {}", path.display())))?;
    }
    Ok(report.exit_code() as u8)
}
