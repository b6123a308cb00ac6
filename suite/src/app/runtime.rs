//! Runtime mode: `cni-conformance runtime [OPTIONS] -- CMD...`. The library's
//! [`cni_conformance::runtime::mode`] does the work; this edge checks arguments, prints progress
//! and writes the report.

use std::time::Instant;

use super::output::{self, ReportFile};
use super::{limits, usage, Usage};
use cni_conformance::cli::{Format, RuntimeArgs};
use cni_conformance::ns;
use cni_conformance::profile::PluginKind;
use cni_conformance::report::{self, PluginInfo, Report};
use cni_conformance::runtime::mode::{self, Options};
use cni_conformance::runtime::scenario;

/// Runs runtime mode; returns the exit status.
pub fn run(args: RuntimeArgs) -> Result<u8, Usage> {
    let timeout = limits::seconds("--timeout", args.timeout)?;
    if args.vm.vm {
        return super::vm::run_runtime(args);
    }
    let report_file = args.output.as_deref().map(ReportFile::open).transpose()?;
    usage(ns::bootstrap_unprivileged().map_err(anyhow::Error::from))?;
    let opts = Options {
        command: args.command.clone(),
        timeout,
        strict: args.strict,
        cri: args.cri,
    };
    let human = args.format == Format::Human || args.vm.progress;
    let start = Instant::now();
    let progress = |r: &cni_conformance::runtime::evidence::ScenarioRun, done: usize, total: usize| {
        if human {
            output::stderr_line(&format!(
                "[{done:>2}/{total}] scenario {:<9} {} plugin calls, {}",
                r.scenario.slug,
                r.entries.len(),
                r.command.exit
            ));
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
    output::stdout(&text)?;
    if let Some(file) = report_file {
        file.write(&text)?;
    }
    Ok(report.exit_code() as u8)
}
