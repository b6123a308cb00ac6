//! Before the cases: everything about the set-up that would otherwise show up as a page of
//! plugin failures is decided here, once. [`check_setup`] reads the files (the plugin and every
//! peer found and runnable, `CNI_PATH` real); [`versions`] asks every chain member which
//! versions it supports and picks the version the cases run at (the highest released version all
//! of them claim); [`trial_add`] makes one valid ADD, to learn whether ADD works at all, whether
//! the kernel lacks what the plugin needs, and whether ADD hangs.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::case::{AddPremise, Ctx, Target, Verdict};
use crate::invocation::{self, Exit, Invocation};
use crate::lab::Lab;
use crate::profile::Profile;
use crate::version::SpecVersion;

/// A set-up problem: the run cannot judge the plugin (exit 2, one line).
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    /// No lab could be built.
    #[error("cannot build a lab (network and mount namespaces): {0}")]
    Lab(String),
    /// A directory of `CNI_PATH` does not exist.
    #[error("CNI_PATH directory {0} does not exist (--cni-path)")]
    NoSuchDir(String),
    /// A peer the configuration names is not in `CNI_PATH`.
    #[error("{role} {name:?} is not in CNI_PATH {path} (--cni-path)")]
    PeerMissing {
        /// "chain member" or "IPAM plugin".
        role: &'static str,
        /// Its `type`.
        name: String,
        /// The searched directories.
        path: String,
    },
    /// The plugin or a peer cannot be executed.
    #[error("{what} {program} cannot be run: {reason}")]
    NotRunnable {
        /// "plugin", "chain member" or "IPAM plugin".
        what: &'static str,
        /// Its path.
        program: String,
        /// Why.
        reason: String,
    },
}

/// The peers a configuration makes the plugin run: chain members before it and every IPAM
/// delegate (the plugin itself, when it is the IPAM plugin tested directly, excluded), with role.
pub fn peers(profile: &Profile, plugin_name: &str) -> Vec<(&'static str, String)> {
    let n = profile.plugins.len();
    let mut out: Vec<(&'static str, String)> = Vec::new();
    for (i, member) in profile.plugins.iter().enumerate() {
        if i + 1 < n {
            out.extend(
                member
                    .get("type")
                    .and_then(Value::as_str)
                    .map(|t| ("chain member", t.to_string())),
            );
        }
        let ipam = member.pointer("/ipam/type").and_then(Value::as_str);
        out.extend(
            ipam.filter(|t| *t != plugin_name || i + 1 < n)
                .map(|t| ("IPAM plugin", t.to_string())),
        );
    }
    out.sort();
    out.dedup();
    out
}

/// Checks what can be checked without running anything: every `CNI_PATH` directory exists, the
/// plugin and every peer the configuration names are there, executable, and (for scripts) have
/// their interpreter.
pub fn check_setup(
    plugin: &Path,
    plugin_name: &str,
    profile: &Profile,
    cni_path: &[PathBuf],
) -> Result<(), PreflightError> {
    if let Some(dir) = cni_path.iter().find(|d| !d.is_dir()) {
        return Err(PreflightError::NoSuchDir(dir.display().to_string()));
    }
    runnable("plugin", plugin)?;
    let shown = cni_path
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(":");
    for (role, name) in peers(profile, plugin_name) {
        let found = cni_path.iter().map(|d| d.join(&name)).find(|p| p.is_file());
        let Some(found) = found else {
            return Err(PreflightError::PeerMissing {
                role,
                name,
                path: shown,
            });
        };
        runnable(role, &found)?;
    }
    Ok(())
}

/// An executable file, and for a script an interpreter that exists.
fn runnable(what: &'static str, program: &Path) -> Result<(), PreflightError> {
    use std::os::unix::fs::PermissionsExt;
    let refuse = |reason: String| PreflightError::NotRunnable {
        what,
        program: program.display().to_string(),
        reason,
    };
    let meta = std::fs::metadata(program).map_err(|e| refuse(e.to_string()))?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err(refuse("not an executable file".into()));
    }
    if let Some(interpreter) = interpreter(program) {
        let usable = std::fs::metadata(&interpreter).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
        if !usable {
            return Err(refuse(format!(
                "its interpreter {} (#! line) is not an executable file",
                interpreter.display()
            )));
        }
    }
    Ok(())
}

/// The interpreter a `#!` line names.
fn interpreter(program: &Path) -> Option<PathBuf> {
    use std::io::Read;
    let mut head = [0u8; 256];
    let n = std::fs::File::open(program).and_then(|mut f| f.read(&mut head)).ok()?;
    let line = head[..n].strip_prefix(b"#!")?;
    let line = line.split(|&b| b == b'\n').next()?;
    let text = String::from_utf8_lossy(line);
    text.split_whitespace().next().map(PathBuf::from)
}

/// What a VERSION answer says about support. A plugin that rejects VERSION as an unknown command
/// is a 0.1.0 plugin; an answer of `{"cniVersion":"0.2.0"}` alone means 0.1.0 and 0.2.0 (libcni's
/// reading: docs/spec-notes.md#plugins-without-a-usable-version-answer).
pub fn supported_from_answer(stdout: &str, success: bool) -> Vec<String> {
    let doc: Option<Value> = serde_json::from_str(stdout.trim()).ok();
    if !success {
        let legacy = doc
            .as_ref()
            .and_then(|d| d.get("msg"))
            .and_then(Value::as_str)
            .is_some_and(|m| m.contains("unknown CNI_COMMAND"));
        return if legacy { vec!["0.1.0".into()] } else { Vec::new() };
    }
    let Some(doc) = doc else { return Vec::new() };
    match doc.get("supportedVersions").and_then(Value::as_array) {
        Some(list) => list.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        None if doc.get("cniVersion").and_then(Value::as_str) == Some("0.2.0") => {
            vec!["0.1.0".into(), "0.2.0".into()]
        }
        None => Vec::new(),
    }
}

/// Fills `target.supported` and `target.version`. Fails when no lab can be built, or when the
/// plugin or a peer cannot be started at all (a missing dynamic loader, a bad executable).
pub fn versions(target: &mut Target) -> Result<(), PreflightError> {
    let lab = Lab::new().map_err(|e| PreflightError::Lab(e.to_string()))?;
    let ask = |what: &'static str, program: &Path| -> Result<Vec<String>, PreflightError> {
        let rec = invocation::run(&Invocation {
            program: program.to_path_buf(),
            env: vec![
                ("CNI_COMMAND".into(), "VERSION".into()),
                ("PATH".into(), target.path_env.clone()),
            ],
            stdin: json!({"cniVersion": "1.1.0"}).to_string().into_bytes(),
            timeout: target.timeout,
            output_cap: invocation::DEFAULT_OUTPUT_CAP,
            lab: Some(&lab),
        });
        match &rec.exit {
            Exit::NotStarted(reason) => Err(PreflightError::NotRunnable {
                what,
                program: program.display().to_string(),
                reason: reason.clone(),
            }),
            Exit::TimedOut if program == target.plugin => {
                target.hangs.remember("VERSION", "preflight", target.timeout);
                Ok(Vec::new())
            }
            _ => Ok(supported_from_answer(&rec.stdout, rec.exit.success())),
        }
    };
    target.supported = ask("plugin", &target.plugin)?;
    let mut common: Vec<SpecVersion> = target
        .supported
        .iter()
        .filter_map(|v| v.parse().ok())
        .filter(SpecVersion::is_released)
        .collect();
    // Every other chain member and every IPAM delegate must speak the version too, or the run
    // would judge the plugin on its peers' refusals.
    for (role, ty) in peers(&target.profile, &target.plugin_name) {
        if let Some(path) = target.find_plugin(&ty) {
            let theirs: Vec<SpecVersion> = ask(role, &path)?.iter().filter_map(|v| v.parse().ok()).collect();
            common.retain(|v| theirs.contains(v));
        }
    }
    common.sort();
    target.common_versions = common.clone();
    // A plugin without a usable VERSION answer is treated as 0.1.0-only, as runtimes do.
    target.version = if target.supported.is_empty() {
        Some("0.1.0".into())
    } else {
        common.last().map(ToString::to_string)
    };
    Ok(())
}

/// What a failed ADD printed when the kernel lacks a feature the configuration needs (a link
/// kind whose module is missing: `EOPNOTSUPP`, "Unknown device type").
const KERNEL_LACKS: &[&str] = &[
    "operation not supported",
    "eopnotsupp",
    "unknown device type",
    "address family not supported",
    "protocol not supported",
];

/// One valid ADD (and its DEL) in a lab of its own, before the cases. It sets
/// `target.add_premise`; a failure that names a missing kernel feature makes the whole run skip
/// with that reason (`profile.unavailable`); an ADD that never returns is remembered in
/// `target.hangs`, so no case waits for it again.
pub fn trial_add(target: &mut Target) -> Result<(), PreflightError> {
    if target.profile.unavailable.is_some() || target.version.is_none() {
        return Ok(());
    }
    let mut ctx = Ctx::new(target).map_err(|e| PreflightError::Lab(format!("the lab the profile needs: {e}")))?;
    ctx.purpose = "preflight (one valid ADD before the cases)";
    let outcome = match ctx.attachment() {
        Ok(att) => ctx.add(&att).map(|out| (att, out)),
        Err(v) => Err(v),
    };
    let premise = match outcome {
        Ok((att, out)) => {
            let _ = ctx.del(&att, Some(&out.result));
            AddPremise::Works
        }
        Err(Verdict::Skip(_)) => AddPremise::Untried,
        Err(Verdict::Violation(f) | Verdict::Should(f) | Verdict::Quirk(f)) => {
            AddPremise::Fails(format!("{}: {}", f.message, f.seen.unwrap_or_default()))
        }
        Err(Verdict::Broken(m)) => AddPremise::Fails(m),
    };
    let printed = ctx
        .blame
        .and_then(|i| ctx.invocations.get(i))
        .map(|r| format!("{}\n{}", r.stdout, r.stderr))
        .unwrap_or_default();
    drop(ctx);
    if let AddPremise::Fails(_) = &premise {
        let telling = printed.lines().map(str::trim).find(|l| {
            let lower = l.to_lowercase();
            KERNEL_LACKS.iter().any(|k| lower.contains(k))
        });
        if let Some(line) = telling {
            target.profile.unavailable = Some(format!(
                "this kernel lacks a feature the configuration needs: a valid ADD failed with {:?} \
                 (run with --vm to judge it in a guest kernel that has it)",
                crate::case::truncate(line, 200)
            ));
        }
    }
    target.add_premise = premise;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_version_answers_like_libcni() {
        assert_eq!(
            supported_from_answer(r#"{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}"#, true),
            ["0.4.0", "1.0.0"]
        );
        assert_eq!(
            supported_from_answer(r#"{"cniVersion":"0.2.0"}"#, true),
            ["0.1.0", "0.2.0"]
        );
        assert_eq!(
            supported_from_answer(r#"{"code":4,"msg":"unknown CNI_COMMAND: VERSION"}"#, false),
            ["0.1.0"]
        );
        assert!(supported_from_answer("garbage", true).is_empty());
    }
}
