//! Plugin mode: `cni-conformance [OPTIONS] <PLUGIN>`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use super::limits;
use super::output::{self, ReportFile};
use super::{usage, Usage};
use cni_conformance::case::{AddPremise, HangMemory, Target};
use cni_conformance::cli::{Format, PluginArgs};
use cni_conformance::report::{self, PluginInfo, Report};
use cni_conformance::runner::{self, RunOptions, Selector};
use cni_conformance::{cases, ns, preflight, profile};

/// `--list`: one line per case (id, level, title), or with `--format json` an array of
/// `{id, level, title, spec, links}`.
fn catalogue(format: Format) -> Result<String, Usage> {
    let level = |c: &cni_conformance::case::Case| format!("{:?}", c.level).to_lowercase();
    match format {
        Format::Human => Ok(cases::all()
            .iter()
            .map(|c| format!("{:<40} {:<6} {}\n", c.id, level(c), c.title))
            .collect()),
        Format::Json => {
            let list: Vec<serde_json::Value> = cases::all()
                .iter()
                .map(|c| {
                    serde_json::json!({
                        "id": c.id,
                        "level": level(c),
                        "title": c.title,
                        "spec": c.spec,
                        "links": cni_conformance::spec_ref::links(c.spec),
                    })
                })
                .collect();
            let text = serde_json::to_string_pretty(&list).map_err(|e| Usage(anyhow!("--list: {e}")))?;
            Ok(text + "\n")
        }
        Format::Junit => Err(Usage(anyhow!(
            "--list prints text or JSON (--format human or json), not JUnit"
        ))),
    }
}

/// Runs plugin mode; returns the exit status.
pub fn run(cli: PluginArgs) -> Result<u8, Usage> {
    if cli.vm.vm {
        return super::vm::run_plugin(cli);
    }
    if cli.list {
        output::stdout(&catalogue(cli.format)?)?;
        return Ok(0);
    }
    let limits = Limits {
        timeout: limits::seconds("--timeout", cli.timeout)?,
        jobs: limits::jobs(cli.jobs)?,
    };
    let report_file = cli.output.as_deref().map(ReportFile::open).transpose()?;
    let plugins = match cli.plugin.as_deref() {
        Some(p) => vec![usage(check_plugin(Some(p)))?],
        None => usage(bundled_plugins())?,
    };
    // Everything below needs namespaces. The bootstrap must happen while single-threaded.
    usage(ns::bootstrap_unprivileged().map_err(anyhow::Error::from))?;
    let mut reports = Vec::new();
    for plugin in plugins {
        reports.push(judge(&cli, &limits, plugin)?);
    }
    let text = match (cli.format, reports.as_slice()) {
        (Format::Human, _) => reports.iter().map(report::human).collect::<Vec<_>>().join("\n"),
        (Format::Json, [one]) => one.json(),
        (Format::Json, many) => serde_json::to_string_pretty(many).unwrap_or_default(),
        (Format::Junit, many) => report::junit_many(many),
    };
    output::stdout(&text)?;
    if let Some(file) = report_file {
        file.write(&text)?;
    }
    Ok(reports.iter().map(Report::exit_code).max().unwrap_or(0) as u8)
}

/// The numeric options, checked.
struct Limits {
    timeout: Duration,
    jobs: usize,
}

/// Without a plugin argument the command judges the reference plugins built next to it: bridge
/// (with the reference host-local as its IPAM delegate) and host-local on its own.
fn bundled_plugins() -> Result<Vec<PathBuf>> {
    let exe = std::env::current_exe().context("locating cni-conformance")?;
    let dir = exe
        .parent()
        .ok_or_else(|| anyhow!("no directory for {}", exe.display()))?;
    let plugins: Vec<PathBuf> = ["bridge", "host-local"].iter().map(|n| dir.join(n)).collect();
    let recorder = dir.join(cni_conformance::runtime::mode::RECORDER_BIN);
    if plugins.iter().chain([&recorder]).any(|p| !p.is_file()) {
        build_bundled(dir)?;
    }
    if let Some(missing) = plugins.iter().find(|p| !p.is_file()) {
        bail!(
            "no plugin given, and the bundled reference plugin {} is not built (cargo build --release builds it)",
            missing.display()
        );
    }
    Ok(plugins)
}

/// Under `cargo run` (which builds only this binary), builds what a bare run judges and uses
/// beside it: the reference plugins and the recording plugin, into the same target directory.
/// Outside a cargo build tree it does nothing (the caller reports what is missing).
fn build_bundled(bin_dir: &Path) -> Result<()> {
    let (Some(cargo), Some(target_dir)) = (std::env::var_os("CARGO"), bin_dir.parent()) else {
        return Ok(());
    };
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    if !manifest.is_file() {
        return Ok(());
    }
    let release = bin_dir.file_name().is_some_and(|n| n == "release");
    eprintln!("cni-conformance: building the bundled reference plugins and the recording plugin first");
    let mut cmd = std::process::Command::new(cargo);
    cmd.args([
        "build",
        "--quiet",
        "-p",
        "cni-reference-plugins",
        "-p",
        "cni-conformance",
    ])
    .args([
        "--bin",
        "bridge",
        "--bin",
        "host-local",
        "--bin",
        cni_conformance::runtime::mode::RECORDER_BIN,
    ])
    .arg("--manifest-path")
    .arg(&manifest)
    .arg("--target-dir")
    .arg(target_dir);
    if release {
        cmd.arg("--release");
    }
    let status = cmd.status().context("running cargo build for the bundled plugins")?;
    if !status.success() {
        bail!("building the bundled reference plugins failed ({status})");
    }
    Ok(())
}

/// The plugin's file name and the profile it is judged with (`--config`, else the built-in one
/// for that name); also used by `--vm`, which loads it on the host before booting.
pub(super) fn load_profile(cli: &PluginArgs, plugin: &Path) -> Result<(String, profile::Profile), Usage> {
    let plugin_name = plugin
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let profile = usage(match &cli.config {
        Some(file) => profile::from_file(file, &plugin_name).map_err(anyhow::Error::from),
        None => profile::builtin(&plugin_name).map_err(anyhow::Error::from),
    })?;
    Ok((plugin_name, profile))
}

/// Judges one plugin and returns its report. Every set-up problem is found before the first case.
fn judge(cli: &PluginArgs, limits: &Limits, plugin: PathBuf) -> Result<Report, Usage> {
    let (plugin_name, profile) = load_profile(cli, &plugin)?;
    let selector = usage(Selector::new(&cli.filter, &cli.skip).context("invalid --filter/--skip pattern"))?;
    let cni_path = cni_path(&plugin, cli.cni_path.as_deref());
    usage(preflight::check_setup(&plugin, &plugin_name, &profile, &cni_path).map_err(anyhow::Error::from))?;

    let start = Instant::now();
    let mut target = Target {
        plugin: plugin.clone(),
        plugin_name,
        cni_path,
        profile,
        supported: Vec::new(),
        version: None,
        common_versions: Vec::new(),
        timeout: limits.timeout,
        strict: cli.strict,
        path_env: std::env::var("PATH")
            .unwrap_or_else(|_| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()),
        hangs: HangMemory::default(),
        add_premise: AddPremise::Untried,
    };
    let all = cases::all();
    let chosen = runner::applicable(&all, &target, &selector);
    if chosen.is_empty() {
        return Err(Usage(anyhow!(
            "no case matches the filters for this {:?} plugin",
            target.profile.kind
        )));
    }
    usage(preflight::versions(&mut target).map_err(anyhow::Error::from))?;
    usage(preflight::trial_add(&mut target).map_err(anyhow::Error::from))?;

    let opts = RunOptions {
        jobs: limits.jobs,
        strict: cli.strict,
        keep: cli.keep,
    };
    let human = cli.format == Format::Human || cli.vm.progress;
    let progress = |r: &runner::CaseResult, done: usize, total: usize| {
        if human {
            output::stderr_line(&report::progress_line(r, done, total));
        }
    };
    let results = runner::run_all(&chosen, &target, &opts, &progress);
    let info = PluginInfo {
        path: plugin.display().to_string(),
        versions: target.supported.clone(),
        tested_version: target.version.clone(),
        kind: target.profile.kind,
        profile: target.profile.origin.clone(),
    };
    Ok(Report::new(info, results, start.elapsed().as_millis() as u64))
}

/// The plugin path must name an executable regular file (also used by `--vm`, which checks it on
/// the host before booting).
pub(super) fn check_plugin(path: Option<&Path>) -> Result<PathBuf> {
    let path = path.ok_or_else(|| anyhow!("no plugin given"))?;
    let meta = std::fs::metadata(path).with_context(|| format!("plugin {}", path.display()))?;
    if !meta.is_file() {
        bail!("plugin {} is not a regular file", path.display());
    }
    if meta.permissions().mode() & 0o111 == 0 {
        bail!("plugin {} is not executable", path.display());
    }
    // Absolute but not resolved: the file name picks the profile, and a symlink's name counts.
    std::path::absolute(path).with_context(|| format!("plugin {}", path.display()))
}

/// `--cni-path`, or the plugin's directory followed by the usual install directories.
fn cni_path(plugin: &Path, given: Option<&str>) -> Vec<PathBuf> {
    if let Some(dirs) = given {
        return dirs.split(':').filter(|d| !d.is_empty()).map(PathBuf::from).collect();
    }
    cni_conformance::cni::path::with_default_dirs(plugin.parent())
}
