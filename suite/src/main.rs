//! The `cni-conformance` command: dispatch to the mode, print usage and environment errors as one
//! line, and exit with the status (0 every `must` case passed, 1 a case failed, 2 usage or
//! environment error).

mod app;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use cni_conformance::cli::{Cli, Mode};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.mode {
        None => app::plugin::run(cli.plugin),
        Some(Mode::Runtime(args)) => app::runtime::run(args),
        Some(Mode::Invoke(args)) => app::invoke::run(args),
        Some(Mode::Cri(args)) => app::cri::run(args),
    };
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(app::Usage(e)) => {
            // One line, whatever the error chain holds (regex errors come with a caret diagram).
            let text = format!("{e:#}");
            let words: Vec<&str> = text.split_whitespace().collect();
            // Best effort: a closed or full stderr must not turn the exit status into a panic.
            let _ = writeln!(std::io::stderr(), "cni-conformance: {}", words.join(" "));
            ExitCode::from(2)
        }
    }
}
