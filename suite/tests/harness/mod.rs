//! The one harness of the suite's test binaries that list their own tests (`harness = false`):
//! a thin layer over `libtest-mimic`, so every binary takes libtest's flags (`--list`,
//! `--ignored`, `--exact`, `--skip`, name filters) and `cargo nextest` can list and run it. The
//! crate is preferred to a hand-written loop because nextest's listing protocol
//! (`--list --format terse`, `--ignored`) is exactly what it implements.
//!
//! A test states what it needs from the machine ([`Need`]). Whether a need is met is decided when
//! the tests are listed, so `--list --ignored` (and nextest) see the tests that cannot run here:
//! - met: the test runs;
//! - unmet, and its opt-out variable (e.g. `CNI_CONFORMANCE_SKIP_UPSTREAM=1`) is set: the test is
//!   ignored, and a normal run prints `ignored, <reason>`;
//! - unmet without the opt-out: the test runs and fails with the install command (a missing tool
//!   is never a silent pass).
//!
//! [`run_isolated`] is for tests that need private namespaces: the process enters new network and
//! mount namespaces while it is still single-threaded (directly as root, otherwise by re-executing
//! itself under `unshare --user --map-root-user --net --mount`), and the tests run one after the
//! other on the main thread. Listing never isolates or runs anything.

#![allow(dead_code)]

use std::os::unix::process::CommandExt;
use std::process::Command;

use libtest_mimic::{Arguments, Completion, Failed, Trial};

/// Set in the environment of the re-executed child so it does not re-execute again.
const ISOLATED_MARK: &str = "CNI_CONFORMANCE_TEST_ISOLATED";

/// Something a test needs from the machine: an upstream plugin, a program, a VM toolchain.
#[derive(Debug, Clone)]
pub struct Need {
    /// What is needed, as a reader would name it ("/usr/lib/cni/bridge").
    what: String,
    /// Whether this machine has it.
    present: bool,
    /// How to get it ("apt-get install containernetworking-plugins").
    install: String,
    /// The variable that, set to `1`, turns "missing" from a failure into an ignored test.
    opt_out: &'static str,
}

impl Need {
    /// A need; `present` is decided by the caller when the tests are listed.
    pub fn new(what: impl Into<String>, present: bool, install: impl Into<String>, opt_out: &'static str) -> Need {
        Need {
            what: what.into(),
            present,
            install: install.into(),
            opt_out,
        }
    }

    /// A program found in a directory of `PATH`.
    pub fn program(program: &str, package: &str, opt_out: &'static str) -> Need {
        let present = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
            .unwrap_or(false);
        Need::new(program, present, format!("apt-get install {package}"), opt_out)
    }

    fn unmet(&self) -> Option<Unmet> {
        if self.present {
            return None;
        }
        Some(if std::env::var(self.opt_out).as_deref() == Ok("1") {
            Unmet::OptedOut(format!("{} is not installed ({}=1)", self.what, self.opt_out))
        } else {
            Unmet::Missing(format!(
                "{} is missing: {} (or set {}=1 to skip)",
                self.what, self.install, self.opt_out
            ))
        })
    }
}

/// Why a test cannot run as it is.
enum Unmet {
    /// Missing and opted out of: the test is ignored with this reason.
    OptedOut(String),
    /// Missing: the test fails with this message.
    Missing(String),
}

type Body = Box<dyn FnOnce() -> Result<(), String> + Send>;

/// A named test, what it needs, and its body.
pub struct Test {
    name: String,
    needs: Vec<Need>,
    body: Body,
}

impl Test {
    /// A test whose body panics on failure.
    pub fn new(name: impl Into<String>, body: impl FnOnce() + Send + 'static) -> Test {
        Test::fallible(name, move || {
            body();
            Ok(())
        })
    }

    /// A test whose body returns its failure message.
    pub fn fallible(name: impl Into<String>, body: impl FnOnce() -> Result<(), String> + Send + 'static) -> Test {
        Test {
            name: name.into(),
            needs: Vec::new(),
            body: Box::new(body),
        }
    }

    /// Adds something the test needs from the machine.
    pub fn needs(mut self, need: Need) -> Test {
        self.needs.push(need);
        self
    }

    /// The libtest-mimic trial. An opted-out test carries the ignored flag while listing (and
    /// under `--ignored`, which selects by it); in a normal run it is not flagged, so that its
    /// body is replaced by a runtime "ignored" that prints the reason (libtest-mimic prints none
    /// for flagged tests).
    fn into_trial(self, args: &Arguments) -> Trial {
        let (mut missing, mut opted_out) = (Vec::new(), Vec::new());
        for unmet in self.needs.iter().filter_map(Need::unmet) {
            match unmet {
                Unmet::Missing(message) => missing.push(message),
                Unmet::OptedOut(reason) => opted_out.push(reason),
            }
        }
        let ignored = missing.is_empty() && !opted_out.is_empty();
        let body = self.body;
        let trial = Trial::ignorable_test(self.name, move || {
            if !missing.is_empty() {
                return Err(Failed::from(missing.join("; ")));
            }
            if !opted_out.is_empty() {
                return Ok(Completion::ignored_with(opted_out.join("; ")));
            }
            body().map(|()| Completion::Completed).map_err(Failed::from)
        });
        trial.with_ignored_flag(ignored && (args.list || args.ignored))
    }
}

/// Runs `tests` like libtest (in parallel unless `--test-threads` says otherwise) and exits.
pub fn run(tests: Vec<Test>) -> ! {
    let args = Arguments::from_args();
    conclude(&args, tests)
}

/// Runs `tests` in private namespaces, one after the other on the main thread, and exits.
/// `setup` runs once inside them before the first test (mounts, a check that the namespace is
/// fresh); when it fails, nothing runs. Listing neither isolates nor calls `setup`.
pub fn run_isolated(tests: Vec<Test>, setup: impl FnOnce() -> Result<(), String>) -> ! {
    let mut args = Arguments::from_args();
    if !args.list {
        if let Err(e) = enter_private_namespaces().and_then(|()| setup()) {
            eprintln!("refusing to run the tests: {e}");
            std::process::exit(101);
        }
    }
    // The tests share the namespaces and move the main thread between network namespaces.
    args.test_threads = Some(1);
    conclude(&args, tests)
}

fn conclude(args: &Arguments, tests: Vec<Test>) -> ! {
    let trials = tests.into_iter().map(|t| t.into_trial(args)).collect();
    libtest_mimic::run(args, trials).exit()
}

/// Moves this (still single-threaded) process into new network and mount namespaces, with every
/// mount private so nothing mounted here reaches the host.
fn enter_private_namespaces() -> Result<(), String> {
    if std::env::var_os(ISOLATED_MARK).is_none() && !nix::unistd::geteuid().is_root() {
        let exe = std::env::current_exe().map_err(|e| format!("finding this test binary: {e}"))?;
        let err = Command::new("unshare")
            .args(["--user", "--map-root-user", "--net", "--mount", "--"])
            .arg(exe)
            .args(std::env::args_os().skip(1))
            .env(ISOLATED_MARK, "1")
            .exec();
        return Err(format!(
            "re-executing under `unshare --user --map-root-user --net --mount` (util-linux): {err}"
        ));
    }
    if std::env::var_os(ISOLATED_MARK).is_none() {
        use nix::sched::{unshare, CloneFlags};
        unshare(CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWNS)
            .map_err(|e| format!("unshare(CLONE_NEWNET | CLONE_NEWNS): {e}"))?;
    }
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| format!("making the private mount namespace's mounts private: {e}"))
}
