//! The command line (DESIGN §4, a fixed contract).

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

/// Report formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Text for people, with progress on stderr.
    Human,
    /// The JSON report.
    Json,
    /// JUnit XML.
    Junit,
}

/// Judges a CNI plugin binary against the CNI specification, inside private network namespaces.
#[derive(Debug, Parser)]
#[command(name = "cni-conformance", version, about, long_about = None)]
pub struct Cli {
    /// The plugin binary to judge.
    #[arg(required_unless_present = "list")]
    pub plugin: Option<PathBuf>,

    /// Network configuration to use: a plugin object, or a conflist whose last plugin is the one
    /// under test (default: the built-in profile for the plugin's file name).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Colon-separated CNI_PATH (default: the plugin's directory, /opt/cni/bin, /usr/lib/cni).
    #[arg(long, value_name = "DIRS")]
    pub cni_path: Option<String>,

    /// Report format on stdout.
    #[arg(long, value_enum, default_value = "human")]
    pub format: Format,

    /// Also write the report to this file.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Print the case ids and titles, one per line, and exit.
    #[arg(long)]
    pub list: bool,

    /// Run only cases whose id or title matches (regular expression; repeatable).
    #[arg(long, value_name = "PAT")]
    pub filter: Vec<String>,

    /// Do not run cases whose id or title matches (regular expression; repeatable).
    #[arg(long, value_name = "PAT")]
    pub skip: Vec<String>,

    /// Limit for one plugin invocation, in seconds; a plugin past it is killed.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub timeout: f64,

    /// Cases in parallel (default: number of CPUs).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,

    /// `should` failures and spec/reference differences fail the run.
    #[arg(long)]
    pub strict: bool,

    /// Keep the lab of a failed case for inspection and print how to enter it.
    #[arg(long)]
    pub keep: bool,
}
