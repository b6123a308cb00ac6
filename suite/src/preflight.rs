//! Before the cases: ask every chain member which versions it supports and pick the version the
//! cases run at (the highest released version all of them claim).

use anyhow::{Context, Result};
use serde_json::{json, Value};

use crate::case::Target;
use crate::invocation::{self, Invocation};
use crate::lab::Lab;
use crate::version::SpecVersion;

/// What a VERSION answer says about support. A plugin that rejects VERSION as an unknown command
/// is a 0.1.0 plugin (spec-upgrades); an answer of `{"cniVersion":"0.2.0"}` alone means 0.1.0 and
/// 0.2.0 (libcni's reading).
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

/// Fills `target.supported` and `target.version`. Fails only when no lab can be built.
pub fn versions(target: &mut Target) -> Result<()> {
    let lab = Lab::new().context("building the preflight lab")?;
    let ask = |program: &std::path::Path| {
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
        supported_from_answer(&rec.stdout, rec.exit.success())
    };
    target.supported = ask(&target.plugin);
    let mut common: Vec<SpecVersion> = target
        .supported
        .iter()
        .filter_map(|v| v.parse().ok())
        .filter(SpecVersion::is_released)
        .collect();
    // Every other chain member and every IPAM delegate must speak the version too, or the run
    // would judge the plugin on its peers' refusals.
    let n = target.profile.plugins.len();
    let mut peers: Vec<String> = Vec::new();
    for (i, member) in target.profile.plugins.iter().enumerate() {
        if i + 1 < n {
            peers.extend(member.get("type").and_then(Value::as_str).map(str::to_string));
        }
        let ipam = member.pointer("/ipam/type").and_then(Value::as_str);
        peers.extend(
            ipam.filter(|t| *t != target.plugin_name || i + 1 < n)
                .map(str::to_string),
        );
    }
    peers.sort();
    peers.dedup();
    for ty in peers {
        if let Some(path) = target.find_plugin(&ty) {
            let theirs: Vec<SpecVersion> = ask(&path).iter().filter_map(|v| v.parse().ok()).collect();
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
