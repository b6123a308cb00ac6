//! Set-up problems are the user's or the machine's, not the plugin's: each one is exit 2 and one
//! line on stderr, decided before the first case (no progress line, no report), or, for a kernel
//! feature the machine lacks, a run of skips that says why. Every test here failed before the
//! checks existed (exit 1 and a page of `must` failures, a panic, or a run that went on).

mod common;
mod harness;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{statuses, suite, tempdir, upstream, upstream_plugin};
use harness::Test;

/// Runs the CLI; expects exit 2, one line on stderr starting `cni-conformance:`, nothing on
/// stdout, and an answer before any case could have run; returns the line.
fn refused(args: &[&str]) -> String {
    let start = Instant::now();
    let out = suite().args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "{args:?}: want one line, got:\n{err}"
    );
    assert!(err.starts_with("cni-conformance: "), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    assert!(
        out.stdout.is_empty(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{args:?}: took {:?}, so cases ran",
        start.elapsed()
    );
    err.trim_end().to_string()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn executable(dir: &Path, name: &str, text: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = write(dir, name, text);
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

const BRIDGE_CONF: &str = r#"{"cniVersion":"1.0.0","name":"NAME","type":"bridge","bridge":"cni-set0",
  "ipam":{"type":"IPAM","ranges":[[{"subnet":"10.93.0.0/24"}]]}}"#;

fn bridge_conf(dir: &Path, file: &str, name: &str, ipam: &str) -> PathBuf {
    write(dir, file, &BRIDGE_CONF.replace("NAME", name).replace("IPAM", ipam))
}

fn a_network_name_the_spec_forbids_is_refused() {
    let bridge = upstream("bridge");
    let dir = tempdir("setup-name");
    let conf = bridge_conf(&dir, "n.json", "a/b/../c", "host-local");
    let line = refused(&["--config", conf.to_str().unwrap(), bridge.to_str().unwrap()]);
    assert!(line.contains("network name \"a/b/../c\""), "{line}");
    let _ = std::fs::remove_dir_all(dir);
}

fn an_unknown_cni_version_is_refused() {
    let bridge = upstream("bridge");
    let dir = tempdir("setup-version");
    let conf = write(
        &dir,
        "v.json",
        &BRIDGE_CONF
            .replace("1.0.0", "9.9.9")
            .replace("NAME", "n")
            .replace("IPAM", "host-local"),
    );
    let line = refused(&["--config", conf.to_str().unwrap(), bridge.to_str().unwrap()]);
    assert!(line.contains("cniVersion \"9.9.9\""), "{line}");
    let _ = std::fs::remove_dir_all(dir);
}

fn a_cni_path_directory_that_does_not_exist_is_refused() {
    let bridge = upstream("bridge");
    let line = refused(&["--cni-path", "/nonexistent", bridge.to_str().unwrap()]);
    assert!(line.contains("/nonexistent does not exist"), "{line}");
}

fn an_ipam_plugin_missing_from_the_path_is_refused() {
    let bridge = upstream("bridge");
    let dir = tempdir("setup-ipam");
    let conf = bridge_conf(&dir, "i.json", "n", "no-such-ipam");
    let line = refused(&["--config", conf.to_str().unwrap(), bridge.to_str().unwrap()]);
    assert!(
        line.contains("IPAM plugin \"no-such-ipam\" is not in CNI_PATH"),
        "{line}"
    );
    // A chain member is looked for the same way.
    let list = write(
        &dir,
        "l.conflist",
        r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"no-such-first"},{"type":"tuning"}]}"#,
    );
    let tuning = upstream("tuning");
    let line = refused(&["--config", list.to_str().unwrap(), tuning.to_str().unwrap()]);
    assert!(line.contains("chain member \"no-such-first\""), "{line}");
    let _ = std::fs::remove_dir_all(dir);
}

fn a_plugin_whose_interpreter_is_missing_is_refused() {
    let dir = tempdir("setup-interp");
    let plugin = executable(&dir, "myplugin", "#!/nonexistent/interpreter\n");
    let conf = write(&dir, "p.json", r#"{"cniVersion":"1.0.0","name":"n","type":"myplugin"}"#);
    let line = refused(&["--config", conf.to_str().unwrap(), plugin.to_str().unwrap()]);
    assert!(line.contains("/nonexistent/interpreter"), "{line}");
    let _ = std::fs::remove_dir_all(dir);
}

fn out_of_range_numbers_are_refused_in_every_mode() {
    let bridge = upstream("bridge");
    let bridge = bridge.to_str().unwrap();
    let dir = tempdir("setup-range");
    let conf = write(&dir, "c.json", r#"{"cniVersion":"1.0.0","name":"n","type":"bridge"}"#);
    let conf = conf.to_str().unwrap();
    for args in [
        vec!["--timeout", "1e20", bridge],
        vec!["--timeout", "inf", bridge],
        vec!["--jobs", "0", bridge],
        vec!["--vm", "--vm-timeout", "18446744073709551615", bridge],
        vec!["runtime", "--timeout", "1e20", "--", "true"],
        vec!["invoke", "add", "--config", conf, "--timeout", "1e20"],
        vec!["cri", "--endpoint", "unix:///nonexistent.sock", "--timeout", "1e20"],
    ] {
        let line = refused(&args);
        assert!(
            line.contains("--timeout") || line.contains("--jobs") || line.contains("--vm-timeout"),
            "{args:?}: {line}"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

fn an_output_file_that_cannot_be_written_is_refused_before_the_run() {
    let bridge = upstream("bridge");
    let line = refused(&["--output", "/proc/x", bridge.to_str().unwrap()]);
    assert!(line.contains("--output /proc/x"), "{line}");
    let line = refused(&["runtime", "--output", "/proc/x", "--", "true"]);
    assert!(line.contains("--output /proc/x"), "{line}");
}

fn a_runtime_command_that_cannot_be_started_is_refused() {
    for cmd in ["/nonexistent/cmd", "no-such-command-anywhere"] {
        let line = refused(&["runtime", "--", cmd]);
        assert!(line.contains(cmd), "{line}");
    }
}

/// A plugin that makes a `dummy` link, a kind this machine's kernel may lack: with the module the
/// run is judged; without it, every case skips with the kernel as the reason instead of 21
/// `must` failures.
fn a_kernel_feature_missing_for_a_config_plugin_turns_the_run_into_skips() {
    let dir = tempdir("setup-kernel");
    let plugin = executable(
        &dir,
        "dummyplug",
        r#"#!/bin/sh
case "$CNI_COMMAND" in
VERSION) echo '{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}';;
ADD) nsenter --net="$CNI_NETNS" ip link add "$CNI_IFNAME" type dummy >&2 || { echo '{"code":100,"msg":"cannot create the link"}'; exit 1; }
     echo '{"cniVersion":"1.0.0","interfaces":[{"name":"'"$CNI_IFNAME"'","sandbox":"'"$CNI_NETNS"'"}]}';;
DEL) [ -n "$CNI_NETNS" ] && nsenter --net="$CNI_NETNS" ip link del "$CNI_IFNAME" 2>/dev/null; exit 0;;
esac
"#,
    );
    let conf = write(
        &dir,
        "d.json",
        r#"{"cniVersion":"1.0.0","name":"d","type":"dummyplug"}"#,
    );
    let out = suite()
        .args([
            plugin.to_str().unwrap(),
            "--config",
            conf.to_str().unwrap(),
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let st = statuses(&report);
    // Whether this kernel has dummy links, probed the way the plugin needs it: in a namespace.
    let probe = std::process::Command::new("unshare")
        .args(["--net", "sh", "-c", "ip link add d0 type dummy"])
        .output()
        .unwrap();
    if probe.status.success() {
        assert!(st.values().any(|s| s != "skip"), "{st:?}");
    } else {
        assert_eq!(out.status.code(), Some(0), "{st:?}");
        assert!(st.values().all(|s| s == "skip"), "{st:?}");
        let reason = report["cases"][5]["message"].as_str().unwrap();
        assert!(reason.contains("kernel lacks"), "{reason}");
        assert!(reason.contains("Unknown device type"), "{reason}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// A list without a name, and an `ipam` without the `type` of its plugin, are configuration
/// mistakes: refused before the first case, not judged as the plugin's failures.
fn a_config_without_a_list_name_or_an_ipam_type_is_refused() {
    let bridge = upstream("bridge");
    let dir = tempdir("setup-fields");
    let unnamed = write(
        &dir,
        "unnamed.conflist",
        r#"{"cniVersion":"1.0.0","plugins":[{"type":"bridge","bridge":"cni-set0","ipam":{"type":"host-local","subnet":"10.93.0.0/24"}}]}"#,
    );
    let line = refused(&["--config", unnamed.to_str().unwrap(), bridge.to_str().unwrap()]);
    assert!(line.contains("needs a \"name\""), "{line}");
    let untyped = write(
        &dir,
        "untyped.json",
        r#"{"cniVersion":"1.0.0","name":"n","type":"bridge","bridge":"cni-set0","ipam":{"subnet":"10.93.0.0/24"}}"#,
    );
    let line = refused(&["--config", untyped.to_str().unwrap(), bridge.to_str().unwrap()]);
    assert!(line.contains("\"ipam\" object needs a string \"type\""), "{line}");
    let _ = std::fs::remove_dir_all(dir);
}

fn main() {
    harness::run(vec![
        Test::new(
            "a_network_name_the_spec_forbids_is_refused",
            a_network_name_the_spec_forbids_is_refused,
        )
        .needs(upstream_plugin("bridge")),
        Test::new("an_unknown_cni_version_is_refused", an_unknown_cni_version_is_refused)
            .needs(upstream_plugin("bridge")),
        Test::new(
            "a_config_without_a_list_name_or_an_ipam_type_is_refused",
            a_config_without_a_list_name_or_an_ipam_type_is_refused,
        )
        .needs(upstream_plugin("bridge")),
        Test::new(
            "a_cni_path_directory_that_does_not_exist_is_refused",
            a_cni_path_directory_that_does_not_exist_is_refused,
        )
        .needs(upstream_plugin("bridge")),
        Test::new(
            "an_ipam_plugin_missing_from_the_path_is_refused",
            an_ipam_plugin_missing_from_the_path_is_refused,
        )
        .needs(upstream_plugin("bridge"))
        .needs(upstream_plugin("tuning")),
        Test::new(
            "a_plugin_whose_interpreter_is_missing_is_refused",
            a_plugin_whose_interpreter_is_missing_is_refused,
        ),
        Test::new(
            "out_of_range_numbers_are_refused_in_every_mode",
            out_of_range_numbers_are_refused_in_every_mode,
        )
        .needs(upstream_plugin("bridge")),
        Test::new(
            "an_output_file_that_cannot_be_written_is_refused_before_the_run",
            an_output_file_that_cannot_be_written_is_refused_before_the_run,
        )
        .needs(upstream_plugin("bridge")),
        Test::new(
            "a_runtime_command_that_cannot_be_started_is_refused",
            a_runtime_command_that_cannot_be_started_is_refused,
        ),
        Test::new(
            "a_kernel_feature_missing_for_a_config_plugin_turns_the_run_into_skips",
            a_kernel_feature_missing_for_a_config_plugin_turns_the_run_into_skips,
        ),
    ])
}
