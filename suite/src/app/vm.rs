//! `--vm`: the same run inside a QEMU guest. The library module `vm` boots the guest;
//! this edge checks the arguments on the host (so a usage error costs no boot), decides which
//! host files the guest needs, and renders the guest's JSON report in the user's format with the
//! same exit status as a host run.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use serde_json::Value;

use super::output::{self, ReportFile};
use super::plugin::{check_plugin, load_profile};
use super::{limits, usage, Usage};
use cni_conformance::cli::{
    Format, PluginArgs, RuntimeArgs, VmAccel, VmArgs, PLUGIN_KERNEL_PACKAGE, RUNTIME_KERNEL_PACKAGE,
};
use cni_conformance::report::{self, Report};
use cni_conformance::runner::Selector;
use cni_conformance::{preflight, vm};

/// Runs plugin mode inside a VM.
pub fn run_plugin(mut cli: PluginArgs) -> Result<u8, Usage> {
    if cli.list {
        // The catalogue is the same inside and out.
        cli.vm.vm = false;
        return super::plugin::run(cli);
    }
    if cli.keep {
        return Err(Usage(anyhow!(
            "--keep cannot be used with --vm: the labs die with the VM"
        )));
    }
    let cwd = usage(std::env::current_dir().context("cannot read the current directory"))?;
    let plugin = usage(check_plugin(cli.plugin.as_deref()))?;
    let (plugin_name, profile) = load_profile(&cli, &plugin)?;
    // What the guest would refuse, refused here without a boot.
    limits::seconds("--timeout", cli.timeout)?;
    limits::jobs(cli.jobs)?;
    let vm_timeout = limits::whole_seconds("--vm-timeout", cli.vm.vm_timeout)?;
    let report_file = cli.output.as_deref().map(ReportFile::open).transpose()?;
    usage(Selector::new(&cli.filter, &cli.skip).context("invalid --filter/--skip pattern"))?;
    let mut files = vec![vm::GuestFile {
        guest: plugin.clone(),
        host: plugin.clone(),
    }];
    if let Some(config) = &cli.config {
        let abs = cwd.join(config);
        files.push(vm::GuestFile {
            guest: abs.clone(),
            host: abs,
        });
    }
    let dirs = cni_path(&plugin, cli.cni_path.as_deref(), &cwd);
    usage(preflight::check_setup(&plugin, &plugin_name, &profile, &dirs).map_err(anyhow::Error::from))?;
    let mut types = Vec::new();
    for p in &profile.plugins {
        plugin_types(p, &mut types);
    }
    for ty in types {
        if let Some(found) = dirs.iter().map(|d| d.join(&ty)).find(|p| p.is_file()) {
            if found != plugin {
                files.push(vm::GuestFile {
                    guest: found.clone(),
                    host: found,
                });
            }
        }
    }
    // The recording plugin, beside the suite as the guest looks for it: the delegation cases put
    // it in front of the plugin's IPAM delegate.
    if let Ok(recorder) = cni_conformance::runtime::mode::recorder_path() {
        files.push(vm::GuestFile {
            guest: std::path::Path::new(vm::GUEST_SUITE).with_file_name(cni_conformance::runtime::mode::RECORDER_BIN),
            host: recorder,
        });
    }
    // Programs the lab runs besides plugins (the dhcp profile's DHCP server).
    for need in &profile.needs {
        if let cni_conformance::profile::LabNeed::DhcpServer(spec) = need {
            files.push(vm::GuestFile {
                guest: spec.dnsmasq.clone(),
                host: spec.dnsmasq.clone(),
            });
        }
    }

    let request = vm::Request {
        suite: usage(std::env::current_exe().context("cannot find the suite's own executable"))?,
        args: guest_args(&cli, &cwd),
        files,
        kernel: kernel_choice(&cli.vm, PLUGIN_KERNEL_PACKAGE),
        accel: accel_choice(cli.vm.vm_accel),
        timeout: vm_timeout,
        cache: vm::default_cache_dir(),
        share_host_root: false,
        env: Vec::new(),
    };
    boot_and_report(&request, cli.format, report_file)
}

/// Runs runtime mode inside a VM that sees the host's files (read-only, with a writable layer in
/// guest memory), so the runtime command and whatever it runs are there at their host paths.
pub fn run_runtime(args: RuntimeArgs) -> Result<u8, Usage> {
    if args.command.is_empty() {
        return Err(Usage(anyhow!("runtime: no command given after --")));
    }
    // What the guest would refuse, refused here without a boot.
    limits::seconds("--timeout", args.timeout)?;
    let vm_timeout = limits::whole_seconds("--vm-timeout", args.vm.vm_timeout)?;
    let report_file = args.output.as_deref().map(ReportFile::open).transpose()?;
    let suite = usage(std::env::current_exe().context("cannot find the suite's own executable"))?;
    usage(cni_conformance::runtime::mode::recorder_path().map_err(anyhow::Error::from))?;
    let cwd = usage(std::env::current_dir().context("cannot read the current directory"))?;
    let mut guest = vec![
        cwd.display().to_string(),
        "runtime".into(),
        "--format".into(),
        "json".into(),
        "--timeout".into(),
        args.timeout.to_string(),
        "--progress".into(),
    ];
    if args.strict {
        guest.push("--strict".into());
    }
    if args.cri {
        guest.push("--cri".into());
    }
    guest.push("--".into());
    guest.extend(args.command.iter().cloned());
    let request = vm::Request {
        suite,
        args: guest,
        files: Vec::new(),
        kernel: kernel_choice(&args.vm, RUNTIME_KERNEL_PACKAGE),
        accel: accel_choice(args.vm.vm_accel),
        timeout: vm_timeout,
        cache: vm::default_cache_dir(),
        share_host_root: true,
        env: passed_env(),
    };
    boot_and_report(&request, args.format, report_file)
}

/// The host environment the runtime command sees in the guest too: the search path, locale,
/// home and temporary directory, and every `CNI_*` variable (a runtime may read `CNI_PATH`, the
/// suite reads `CNI_CONFORMANCE_RECORDER`).
fn passed_env() -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(k, v)| {
            let named = matches!(
                k.as_str(),
                "PATH" | "HOME" | "USER" | "LANG" | "LC_ALL" | "TZ" | "TMPDIR"
            );
            (named || k.starts_with("CNI_")) && !v.contains('\n')
        })
        .collect()
}

/// The kernel `--vm` boots: `--kernel`, else `--kernel-package`, else the mode's `default_package`.
fn kernel_choice(opts: &VmArgs, default_package: &str) -> vm::KernelChoice {
    match &opts.kernel {
        Some(image) => vm::KernelChoice::File {
            image: image.clone(),
            modules: opts.modules.clone(),
        },
        None => vm::KernelChoice::Debian(opts.kernel_package.as_deref().unwrap_or(default_package).to_string()),
    }
}

fn accel_choice(accel: VmAccel) -> vm::AccelChoice {
    match accel {
        VmAccel::Auto => vm::AccelChoice::Auto,
        VmAccel::Kvm => vm::AccelChoice::Kvm,
        VmAccel::Tcg => vm::AccelChoice::Tcg,
    }
}

/// Boots the guest, shows its progress (human format), and prints its report in `format` on
/// stdout (and to `output`); returns the guest's exit status, which the report must agree with.
fn boot_and_report(request: &vm::Request, format: Format, report_file: Option<ReportFile>) -> Result<u8, Usage> {
    let human = format == Format::Human;
    let mut say = |line: &str| {
        if human {
            output::stderr_line(&format!("vm: {line}"));
        }
    };
    let mut progress = |line: &str| {
        if human {
            output::stderr_line(line);
        }
    };
    let outcome = usage(vm::run(request, &mut say, &mut progress).map_err(anyhow::Error::from))?;
    if human {
        let t = outcome.timings;
        output::stderr_line(&format!(
            "vm: kernel {}, {}, {} vCPUs; initramfs {}; build {:.1} s, boot {:.1} s, suite {:.1} s, shutdown {:.1} s, total {:.1} s; guest CPU busy {}, QEMU CPU {:.1} s",
            outcome.kernel,
            outcome.accel.name(),
            t.cpus,
            if outcome.image_cached { "cached" } else { "built" },
            t.build.as_secs_f64(),
            t.boot.as_secs_f64(),
            t.suite.as_secs_f64(),
            t.shutdown.as_secs_f64(),
            t.total.as_secs_f64(),
            t.guest_busy.map_or("unknown".to_string(), |b| format!("{:.0}%", b * 100.0)),
            t.qemu_cpu.as_secs_f64()
        ));
        if let Some(note) = &outcome.module_note {
            output::stderr_line(&format!("vm: {note}"));
        }
    }
    if outcome.status == 2 || outcome.status < 0 || outcome.status > 1 {
        // A usage or environment error inside: pass its one line on.
        let line = outcome
            .stderr
            .iter()
            .rev()
            .find(|l| l.starts_with("cni-conformance: "))
            .or(outcome.stderr.last())
            .map(|l| l.trim_start_matches("cni-conformance: ").to_string())
            .unwrap_or_else(|| format!("the suite exited with status {} inside the VM", outcome.status));
        return Err(Usage(anyhow!("{line} (inside the VM)")));
    }
    let report: Report =
        usage(serde_json::from_str(outcome.stdout.trim()).context("the report the VM sent back is not a JSON report"))?;
    let text = match format {
        Format::Human => report::human(&report),
        Format::Json => report.json(),
        Format::Junit => report::junit(&report),
    };
    output::stdout(&text)?;
    if let Some(file) = report_file {
        file.write(&text)?;
    }
    let code = report.exit_code() as u8;
    if i32::from(code) != outcome.status {
        return Err(Usage(anyhow!(
            "the suite inside the VM exited {} but its report says {code}",
            outcome.status
        )));
    }
    Ok(code)
}

/// The suite's arguments inside the guest: the user's, minus what the host handles (--vm and its
/// options, --format, --output), plus JSON on stdout and progress on stderr. The first line is
/// the working directory, so relative paths mean the same inside.
fn guest_args(cli: &PluginArgs, cwd: &Path) -> Vec<String> {
    let mut a = vec![cwd.display().to_string()];
    let mut opt = |name: &str, value: String| {
        a.push(name.to_string());
        a.push(value);
    };
    if let Some(c) = &cli.config {
        opt("--config", c.display().to_string());
    }
    if let Some(p) = &cli.cni_path {
        opt("--cni-path", p.clone());
    }
    for f in &cli.filter {
        opt("--filter", f.clone());
    }
    for s in &cli.skip {
        opt("--skip", s.clone());
    }
    opt("--timeout", cli.timeout.to_string());
    if let Some(j) = cli.jobs {
        opt("--jobs", j.to_string());
    }
    opt("--format", "json".into());
    if cli.strict {
        a.push("--strict".into());
    }
    a.push("--progress".into());
    if let Some(p) = &cli.plugin {
        a.push("--".into());
        a.push(p.display().to_string());
    }
    a
}

/// Every `"type"` string in a plugin object, at any depth (the plugin's own, its IPAM's, a
/// delegate's).
fn plugin_types(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, val) in map {
                match (k.as_str(), val) {
                    ("type", Value::String(t)) if !t.contains('/') && !out.contains(t) => out.push(t.clone()),
                    _ => plugin_types(val, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| plugin_types(i, out)),
        _ => {}
    }
}

/// `--cni-path`, or the plugin's directory and the usual install directories (as on the host).
fn cni_path(plugin: &Path, given: Option<&str>, cwd: &Path) -> Vec<PathBuf> {
    if let Some(dirs) = given {
        return dirs.split(':').filter(|d| !d.is_empty()).map(|d| cwd.join(d)).collect();
    }
    cni_conformance::cni::path::with_default_dirs(plugin.parent())
}
