//! Rough edges, one test each (each failed before its fix): stdout closed by the
//! reader or full, plugin output with terminal escapes in the human report, `invoke` with a
//! read-only cache directory.

mod common;
mod harness;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{suite, tempdir, upstream, upstream_plugin};
use harness::Test;

/// Runs the suite with stdout a pipe whose reader is already gone; returns (exit code, stderr).
fn with_closed_stdout(args: &[&str]) -> (Option<i32>, String) {
    let mut child = suite()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    (child.wait().unwrap().code(), err)
}

fn a_closed_stdout_ends_the_run_quietly() {
    let host_local = upstream("host-local");
    let host_local = host_local.to_str().unwrap();
    // (arguments, the run's own verdict: runtime mode fails `true`, which attaches nothing)
    for (args, verdict) in [
        (vec!["--list"], 0),
        (vec![host_local, "--filter", "^version/answers$"], 0),
        (vec![host_local, "--filter", "^version/answers$", "--format", "json"], 0),
        (vec!["runtime", "--", "true"], 1),
    ] {
        let (code, err) = with_closed_stdout(&args);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(code, Some(verdict), "{args:?}: {err}");
    }
}

fn a_full_stdout_is_one_line_and_exit_2() {
    let host_local = upstream("host-local");
    let host_local = host_local.to_str().unwrap();
    for args in [
        vec!["--list"],
        vec![host_local, "--filter", "^version/answers$", "--format", "json"],
        vec!["runtime", "--format", "json", "--", "true"],
    ] {
        let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
        let out = suite().args(&args).stdout(full).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        let last = err.trim_end().lines().last().unwrap_or("");
        assert!(
            last.starts_with("cni-conformance: cannot write the report to stdout"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

/// A plugin whose DEL fails noisily: ESC sequences that clear the screen and retitle the
/// terminal, a carriage return, a NUL. The human report shows them escaped.
fn plugin_output_is_escaped_in_the_human_report() {
    let dir = tempdir("escapes");
    let plugin = dir.join("noisy");
    std::fs::write(
        &plugin,
        "#!/bin/sh\n\
         case \"$CNI_COMMAND\" in\n\
         VERSION) echo '{\"cniVersion\":\"1.0.0\",\"supportedVersions\":[\"1.0.0\"]}';;\n\
         ADD) echo '{\"cniVersion\":\"1.0.0\"}';;\n\
         *) printf '\\033[2J\\033]0;pwned\\007 nul:\\000: cr\\rgone\\n' >&2; exit 1;;\n\
         esac\n",
    )
    .unwrap();
    Command::new("chmod").arg("755").arg(&plugin).status().unwrap();
    let conf = dir.join("c.json");
    std::fs::write(&conf, r#"{"cniVersion":"1.0.0","name":"n","type":"noisy"}"#).unwrap();
    let out = suite()
        .args([
            plugin.to_str().unwrap(),
            "--config",
            conf.to_str().unwrap(),
            "--filter",
            "^del/without-add$",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("FAIL del/without-add"), "{text}");
    for raw in ['\u{1b}', '\u{7}', '\0', '\r'] {
        assert!(!text.contains(raw), "raw {raw:?} in the report:\n{text}");
    }
    assert!(
        text.contains("\\x1b[2J\\x1b]0;pwned\\x07 nul:\\x00: cr\\x0dgone"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// `invoke add` with a cache directory it cannot write runs no plugin (so nothing is left
/// attached) and reports the I/O failure with its well-known code, 5.
fn invoke_checks_its_cache_dir_before_add() {
    let dir = tempdir("ro-cache");
    let data = dir.join("data");
    let cache = dir.join("cache");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(&cache).unwrap();
    let conf = dir.join("hl.json");
    std::fs::write(
        &conf,
        format!(
            r#"{{"cniVersion":"1.0.0","name":"hl","type":"host-local",
               "ipam":{{"type":"host-local","subnet":"10.94.0.0/24","dataDir":"{}"}}}}"#,
            data.display()
        ),
    )
    .unwrap();
    // A read-only bind mount in a mount namespace of its own: root ignores file modes.
    let script = format!(
        "mount --bind {c} {c} && mount -o remount,bind,ro {c} && exec {exe} invoke add --config {conf} \
         --netns /proc/self/ns/net --container-id ro1 --cache-dir {c} --cni-path /usr/lib/cni",
        c = cache.display(),
        exe = env!("CARGO_BIN_EXE_cni-conformance"),
        conf = conf.display()
    );
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let error: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(error["code"], 5, "{error}");
    assert!(error["msg"].as_str().unwrap().contains("Read-only"), "{error}");
    assert!(walk(&data).is_empty(), "ADD ran: {:?}", walk(&data));
    let _ = std::fs::remove_dir_all(dir);
}

/// Every file under `dir` (host-local's reservations).
fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p.display().to_string());
        }
    }
    out
}

fn main() {
    harness::run(vec![
        Test::new(
            "a_closed_stdout_ends_the_run_quietly",
            a_closed_stdout_ends_the_run_quietly,
        )
        .needs(upstream_plugin("host-local")),
        Test::new(
            "a_full_stdout_is_one_line_and_exit_2",
            a_full_stdout_is_one_line_and_exit_2,
        )
        .needs(upstream_plugin("host-local")),
        Test::new(
            "plugin_output_is_escaped_in_the_human_report",
            plugin_output_is_escaped_in_the_human_report,
        ),
        Test::new(
            "invoke_checks_its_cache_dir_before_add",
            invoke_checks_its_cache_dir_before_add,
        )
        .needs(upstream_plugin("host-local")),
    ])
}
