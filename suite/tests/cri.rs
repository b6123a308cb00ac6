//! The kubelet stand-in on its own (`cni-conformance cri`): every way it cannot do its job is one
//! line on stderr and exit 2, quickly. Its run against a real CRI runtime is in runtime.rs.

mod common;
mod harness;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{suite, tempdir};
use harness::{Need, Test};

/// Runs the stand-in; returns (exit code, stderr, seconds taken).
fn stand_in(args: &[&str]) -> (Option<i32>, String, f64) {
    let start = Instant::now();
    let out = suite().arg("cri").args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        start.elapsed().as_secs_f64(),
    )
}

fn one_line(stderr: &str) -> &str {
    let lines: Vec<&str> = stderr.trim_end().lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    lines[0]
}

fn a_missing_endpoint_is_one_line_and_exit_2() {
    let (code, err, secs) = stand_in(&["--endpoint", "unix:///nonexistent/cri.sock"]);
    assert_eq!(code, Some(2));
    let line = one_line(&err);
    assert!(
        line.contains("cannot reach the CRI endpoint unix:///nonexistent/cri.sock"),
        "{line}"
    );
    assert!(secs < 5.0);
}

fn bad_arguments_are_one_line_and_exit_2() {
    for args in [
        &["--endpoint", "ftp://x"][..],
        &["--endpoint", "/x.sock", "--port", "99999:80"],
        &["--endpoint", "/x.sock", "--ingress-bandwidth", "fast"],
        &["--endpoint", "/x.sock", "--timeout", "0"],
    ] {
        let (code, err, _) = stand_in(args);
        assert_eq!(code, Some(2), "{args:?}");
        one_line(&err);
    }
}

/// A socket that accepts and never answers: the stand-in gives up at --timeout, in one line.
fn an_endpoint_that_never_answers_times_out_in_one_line() {
    let dir = tempdir("cri-silent");
    let sock = dir.join("silent.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let holder = std::thread::spawn(move || {
        let mut held = Vec::new();
        listener.set_nonblocking(true).unwrap();
        let until = Instant::now() + Duration::from_secs(3);
        while Instant::now() < until {
            if let Ok((s, _)) = listener.accept() {
                held.push(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let endpoint = format!("unix://{}", sock.display());
    let (code, err, secs) = stand_in(&["--endpoint", &endpoint, "--timeout", "1"]);
    assert_eq!(code, Some(2));
    let line = one_line(&err);
    assert!(line.contains("Version") && line.contains("1 s"), "{line}");
    assert!(secs < 4.0, "took {secs} s");
    holder.join().unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

/// containerd without its CRI plugin answers gRPC but not runtime.v1: an unknown CRI version.
fn an_endpoint_without_cri_v1_is_an_unknown_version() {
    let dir = tempdir("cri-no-v1");
    let d = dir.display();
    // Its own network and mount namespaces, a tmpfs for all its state, killed at the end.
    let script = format!(
        "set -e; mount --make-rprivate /; mount -t tmpfs tmpfs {d}
         printf 'version = 2\\nroot = \"{d}/root\"\\nstate = \"{d}/state\"\\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\\n[grpc]\\n  address = \"{d}/c.sock\"\\n[plugins.\"io.containerd.internal.v1.opt\"]\\n  path = \"{d}/opt\"\\n' > {d}/config.toml
         containerd --config {d}/config.toml >{d}/log 2>&1 & pid=$!
         trap 'kill $pid; wait $pid' EXIT
         i=0; until ctr --address {d}/c.sock version >/dev/null 2>&1; do i=$((i+1)); [ $i -lt 100 ] || exit 9; sleep 0.1; done
         rc=0; {s} cri --endpoint unix://{d}/c.sock --timeout 10 2>{d}/err.txt || rc=$?; echo $rc > {d}/code.txt
         cat {d}/code.txt {d}/err.txt",
        s = env!("CARGO_BIN_EXE_cni-conformance"),
    );
    let mut child = Command::new("unshare")
        .args(["--net", "--mount", "sh", "-c", &script])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert!(child.wait().unwrap().success(), "{out}");
    let mut lines = out.lines().filter(|l| !l.trim().is_empty());
    assert_eq!(lines.next(), Some("2"), "{out}");
    let line = lines.next().unwrap_or_default();
    assert!(line.contains("does not answer CRI v1"), "{out}");
    assert_eq!(lines.next(), None, "one line: {out}");
    let _ = std::fs::remove_dir_all(dir);
}

/// containerd's `program`, needed unless CNI_CONFORMANCE_SKIP_RUNTIMES=1.
fn containerd(program: &str) -> Need {
    let path = std::path::Path::new("/usr/bin").join(program);
    Need::new(
        path.display().to_string(),
        path.is_file(),
        "apt-get install containerd",
        "CNI_CONFORMANCE_SKIP_RUNTIMES",
    )
}

fn main() {
    harness::run(vec![
        Test::new(
            "a_missing_endpoint_is_one_line_and_exit_2",
            a_missing_endpoint_is_one_line_and_exit_2,
        ),
        Test::new(
            "bad_arguments_are_one_line_and_exit_2",
            bad_arguments_are_one_line_and_exit_2,
        ),
        Test::new(
            "an_endpoint_that_never_answers_times_out_in_one_line",
            an_endpoint_that_never_answers_times_out_in_one_line,
        ),
        Test::new(
            "an_endpoint_without_cri_v1_is_an_unknown_version",
            an_endpoint_without_cri_v1_is_an_unknown_version,
        )
        .needs(containerd("containerd"))
        .needs(containerd("ctr")),
    ])
}
