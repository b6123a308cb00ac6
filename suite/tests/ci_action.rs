//! The GitHub Actions integration (`ci/action.yml`, `ci/example-workflow.yml`) run here, step by
//! step, the way a runner would: this machine has no GitHub, so the test plays the runner. It
//! reads the composite action, replaces its `${{ ... }}` expressions with the inputs a workflow
//! would pass (defaults for the rest), sets the variables a runner sets (GITHUB_ACTION_PATH,
//! GITHUB_OUTPUT, RUNNER_TEMP) and runs every `run:` step with bash. `uses:` steps (the artifact
//! upload) cannot run without GitHub; their inputs are checked instead. The apt step is checked,
//! not run (CI installs the same packages before the tests).
//!
//! This machine has no `sudo`; runners do. A shim on PATH stands in for it (we already run as
//! root here), so the action's own command lines run unchanged.

mod common;
mod harness;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_yaml::Value;

use common::{tempdir, upstream, upstream_plugin};
use harness::{Need, Test};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn load(rel: &str) -> Value {
    let text = std::fs::read_to_string(repo_root().join(rel)).unwrap();
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{rel} is not valid YAML: {e}"))
}

/// The action's declared inputs with their defaults.
fn declared_inputs(action: &Value) -> BTreeMap<String, Option<String>> {
    action["inputs"]
        .as_mapping()
        .expect("action.yml has inputs")
        .iter()
        .map(|(k, v)| {
            let default = v.get("default").map(|d| match d {
                Value::String(s) => s.clone(),
                other => serde_yaml::to_string(other).unwrap().trim().to_string(),
            });
            (k.as_str().unwrap().to_string(), default)
        })
        .collect()
}

/// Every `${{ ... }}` expression in a text, trimmed.
fn expressions(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${{") {
        let after = &rest[start + 3..];
        let end = after.find("}}").expect("unterminated ${{ expression");
        found.push(after[..end].trim().to_string());
        rest = &after[end + 2..];
    }
    found
}

/// What a runner would put in place of the expressions this action uses.
struct Runner {
    inputs: BTreeMap<String, String>,
    temp: PathBuf,
}

impl Runner {
    fn eval(&self, expr: &str) -> String {
        if let Some(name) = expr.strip_prefix("inputs.") {
            return self
                .inputs
                .get(name)
                .cloned()
                .unwrap_or_else(|| panic!("the action reads undeclared input {name:?}"));
        }
        match expr {
            "runner.temp" => self.temp.display().to_string(),
            other => panic!("the test runner does not know the expression {other:?}; teach it or simplify the action"),
        }
    }

    fn substitute(&self, text: &str) -> String {
        let mut out = text.to_string();
        for expr in expressions(text) {
            // Match the expression however it was spaced in the file.
            let spaced = format!("${{{{ {expr} }}}}");
            let tight = format!("${{{{{expr}}}}}");
            let value = self.eval(&expr);
            out = out.replace(&spaced, &value).replace(&tight, &value);
        }
        out
    }
}

/// The outcome of running the action's steps.
struct ActionRun {
    /// Exit status of the first failing `run:` step, or 0.
    status: i32,
    /// The step outputs written to GITHUB_OUTPUT.
    outputs: BTreeMap<String, String>,
    /// Everything the steps printed.
    log: String,
    /// RUNNER_TEMP of this run; removed with the run.
    temp: PathBuf,
}

impl Drop for ActionRun {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.temp);
    }
}

/// Runs the composite action with these inputs (the rest take their defaults).
fn run_action(given: &[(&str, &str)]) -> ActionRun {
    let action = load("ci/action.yml");
    assert_eq!(action["runs"]["using"].as_str(), Some("composite"));
    let declared = declared_inputs(&action);
    let mut inputs = BTreeMap::new();
    for (name, default) in &declared {
        if let Some(d) = default {
            inputs.insert(name.clone(), d.clone());
        }
    }
    for (k, v) in given {
        assert!(declared.contains_key(*k), "test passes undeclared input {k}");
        inputs.insert(k.to_string(), v.to_string());
    }
    for (name, default) in &declared {
        let required = action["inputs"][name.as_str()]["required"].as_bool() == Some(true);
        assert!(
            !required || inputs.contains_key(name),
            "required input {name} not given (default {default:?})"
        );
    }
    let temp = tempdir("action-runner");
    let shims = temp.join("shims");
    std::fs::create_dir_all(&shims).unwrap();
    // Runners have sudo; here we are root already. The shim drops sudo's own options.
    let sudo = shims.join("sudo");
    std::fs::write(
        &sudo,
        "#!/bin/sh\nwhile [ $# -gt 0 ]; do case \"$1\" in -E|-n|-H) shift;; *) break;; esac; done\nexec \"$@\"\n",
    )
    .unwrap();
    Command::new("chmod").arg("0755").arg(&sudo).status().unwrap();
    let output_file = temp.join("github_output");
    std::fs::write(&output_file, "").unwrap();
    let runner = Runner {
        inputs,
        temp: temp.clone(),
    };
    let path = format!("{}:{}", shims.display(), std::env::var("PATH").unwrap_or_default());

    let mut log = String::new();
    let mut status = 0;
    let steps = action["runs"]["steps"].as_sequence().expect("steps");
    for step in steps {
        let name = step["name"].as_str().unwrap_or("(unnamed)");
        if let Some(uses) = step.get("uses").and_then(Value::as_str) {
            // Cannot run here: check that its inputs resolve to what earlier steps made.
            let with = step["with"].as_mapping().expect("uses step has with");
            for (_, v) in with {
                if let Some(s) = v.as_str() {
                    let _ = runner.substitute(s);
                }
            }
            log.push_str(&format!("== {name}: `uses: {uses}` not run here\n"));
            continue;
        }
        let script = step["run"]
            .as_str()
            .unwrap_or_else(|| panic!("step {name} has neither run nor uses"));
        assert_eq!(
            step["shell"].as_str(),
            Some("bash"),
            "composite run steps must name their shell"
        );
        if script.contains("apt-get install") {
            log.push_str(&format!("== {name}: apt step checked, not run\n"));
            continue;
        }
        let mut cmd = Command::new("bash");
        // What a runner runs for `shell: bash`.
        cmd.args(["--noprofile", "--norc", "-e", "-o", "pipefail", "-c"])
            .arg(runner.substitute(script))
            .env("PATH", &path)
            .env("GITHUB_ACTION_PATH", repo_root().join("ci"))
            .env("GITHUB_OUTPUT", &output_file)
            .env("RUNNER_TEMP", &temp)
            .current_dir(repo_root());
        if let Some(env) = step.get("env").and_then(Value::as_mapping) {
            for (k, v) in env {
                cmd.env(k.as_str().unwrap(), runner.substitute(v.as_str().unwrap_or("")));
            }
        }
        let out = cmd.output().unwrap();
        log.push_str(&format!(
            "== {name}: exit {:?}\n{}{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
        if !out.status.success() {
            status = out.status.code().unwrap_or(-1);
            break;
        }
    }
    let outputs = std::fs::read_to_string(&output_file)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    ActionRun {
        status,
        outputs,
        log,
        temp,
    }
}

/// Reads a JUnit file and returns (tests, failures).
fn junit_counts(path: &Path) -> (u64, u64) {
    let xml = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let attr = |name: &str| -> u64 {
        let key = format!("{name}=\"");
        let start = xml.find(&key).unwrap_or_else(|| panic!("no {name} in {xml}")) + key.len();
        xml[start..].split('"').next().unwrap().parse().unwrap()
    };
    (attr("tests"), attr("failures"))
}

fn action_declares_what_it_reads_and_installs_what_the_vm_needs() {
    let action = load("ci/action.yml");
    let declared = declared_inputs(&action);
    let text = std::fs::read_to_string(repo_root().join("ci/action.yml")).unwrap();
    for expr in expressions(&text) {
        if let Some(name) = expr.strip_prefix("inputs.") {
            assert!(declared.contains_key(name), "action reads undeclared input {name}");
        }
    }
    let steps = action["runs"]["steps"].as_sequence().unwrap();
    let apt = steps
        .iter()
        .filter_map(|s| s["run"].as_str())
        .find(|r| r.contains("apt-get install"))
        .expect("the action installs its packages");
    for package in ["qemu-system-x86", "busybox-static", "iptables", "nftables"] {
        assert!(apt.contains(package), "the action does not install {package}");
    }
    assert_eq!(
        action["outputs"]["reports"]["value"].as_str(),
        Some("${{ steps.run.outputs.reports }}")
    );
    assert!(
        steps.iter().any(|s| s["id"].as_str() == Some("run")),
        "the output names a step id that does not exist"
    );
}

fn example_workflow_uses_the_action_with_declared_inputs() {
    let workflow = load("ci/example-workflow.yml");
    let declared = declared_inputs(&load("ci/action.yml"));
    let steps = workflow["jobs"]["conformance"]["steps"]
        .as_sequence()
        .expect("job steps");
    let ours: Vec<&Value> = steps
        .iter()
        .filter(|s| s["uses"].as_str().is_some_and(|u| u.contains("cni-conformance/ci@")))
        .collect();
    assert_eq!(ours.len(), 1, "the example uses the action once");
    let with = ours[0]["with"].as_mapping().unwrap();
    for (k, _) in with {
        let k = k.as_str().unwrap();
        assert!(
            declared.contains_key(k),
            "the example passes {k}, which the action does not declare"
        );
    }
    assert!(with.contains_key("plugin"));
    // The matrix's empty kernel means "runner only": the example must not run a VM for it.
    assert!(workflow["jobs"]["conformance"]["strategy"]["matrix"]["kernel"]
        .as_sequence()
        .unwrap()
        .iter()
        .any(|k| k.as_str() == Some("")));
}

fn action_on_the_runner_passes_a_good_plugin_and_fails_a_broken_one() {
    let bridge = upstream("bridge");
    let good = run_action(&[
        ("plugin", bridge.to_str().unwrap()),
        ("args", "--filter ^version/ --filter ^error/ --timeout 10"),
    ]);
    assert_eq!(good.status, 0, "{}", good.log);
    let reports = PathBuf::from(good.outputs.get("reports").expect("reports output"));
    assert!(reports.starts_with(&good.temp), "{reports:?}");
    let (tests, failures) = junit_counts(&reports.join("runner.xml"));
    assert!(tests >= 10, "{tests} tests");
    assert_eq!(failures, 0);
    assert!(good.log.contains("runner: exit 0"), "{}", good.log);

    // A plugin that answers VERSION with garbage: the step (and so the job) fails, and the report
    // still lands where the upload step looks. Named like a plugin with a built-in profile.
    let dir = tempdir("action-broken");
    let broken = dir.join("bridge");
    std::fs::write(&broken, "#!/bin/sh\necho not-json\nexit 0\n").unwrap();
    Command::new("chmod").arg("0755").arg(&broken).status().unwrap();
    let bad = run_action(&[("plugin", broken.to_str().unwrap()), ("args", "--filter ^version/")]);
    assert_eq!(bad.status, 1, "{}", bad.log);
    let reports = PathBuf::from(bad.outputs.get("reports").unwrap());
    let (_, failures) = junit_counts(&reports.join("runner.xml"));
    assert!(failures > 0, "{}", bad.log);
    let _ = std::fs::remove_dir_all(dir);
}

fn action_in_a_vm_writes_its_own_report() {
    let bridge = upstream("bridge");
    let run = run_action(&[
        ("plugin", bridge.to_str().unwrap()),
        ("on-runner", "false"),
        ("vm-kernel-package", "linux-image-cloud-amd64"),
        ("args", "--filter ^version/"),
    ]);
    assert_eq!(run.status, 0, "{}", run.log);
    let reports = PathBuf::from(run.outputs.get("reports").unwrap());
    assert!(
        !reports.join("runner.xml").exists(),
        "on-runner=false still ran on the runner"
    );
    let (tests, failures) = junit_counts(&reports.join("vm-linux-image-cloud-amd64.xml"));
    assert!(tests >= 3, "{tests}");
    assert_eq!(failures, 0);
}

fn main() {
    harness::run(vec![
        Test::new(
            "action_declares_what_it_reads_and_installs_what_the_vm_needs",
            action_declares_what_it_reads_and_installs_what_the_vm_needs,
        ),
        Test::new(
            "example_workflow_uses_the_action_with_declared_inputs",
            example_workflow_uses_the_action_with_declared_inputs,
        ),
        Test::new(
            "action_on_the_runner_passes_a_good_plugin_and_fails_a_broken_one",
            action_on_the_runner_passes_a_good_plugin_and_fails_a_broken_one,
        )
        .needs(upstream_plugin("bridge")),
        Test::new(
            "action_in_a_vm_writes_its_own_report",
            action_in_a_vm_writes_its_own_report,
        )
        .needs(upstream_plugin("bridge"))
        .needs(Need::program(
            "qemu-system-x86_64",
            "qemu-system-x86",
            "CNI_CONFORMANCE_SKIP_VM",
        )),
    ])
}
