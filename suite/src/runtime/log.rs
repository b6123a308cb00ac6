//! The recorder's log: one JSON line per plugin invocation, appended with `O_APPEND` in a single
//! `write(2)` so invocations running at the same time never interleave.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// What the recorder saw of `CNI_NETNS`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetnsSeen {
    /// The path as given.
    pub path: String,
    /// The path exists.
    pub exists: bool,
    /// The path is a network namespace (nsfs) that could be opened.
    pub is_netns: bool,
    /// (device, inode) of the namespace, when it is one.
    pub id: Option<(u64, u64)>,
}

/// One recorded invocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The plugin type (the file name it was run as).
    pub plugin: String,
    /// argv.
    pub argv: Vec<String>,
    /// The whole environment.
    pub env: BTreeMap<String, String>,
    /// stdin as read (lossy UTF-8).
    pub stdin: String,
    /// What the recorder printed on stdout.
    pub stdout: String,
    /// What it printed on stderr.
    pub stderr: String,
    /// Its exit status.
    pub exit_code: i32,
    /// Start, nanoseconds since the Unix epoch.
    pub start_ns: u64,
    /// End, nanoseconds since the Unix epoch.
    pub end_ns: u64,
    /// Process id.
    pub pid: u32,
    /// `CNI_NETNS` as seen at the start, when it was set and not empty.
    pub netns: Option<NetnsSeen>,
    /// (device, inode) of the network namespace the plugin itself ran in.
    pub own_netns: Option<(u64, u64)>,
}

impl Entry {
    /// This call as a report's invocation record, its environment cut to the `CNI_*` variables.
    pub fn record(&self, program: String, note: String) -> crate::invocation::Record {
        crate::invocation::Record {
            program,
            command: self.command().to_string(),
            env: self
                .env
                .iter()
                .filter(|(k, _)| k.starts_with("CNI_"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            stdin: self.stdin.clone(),
            stdout: self.stdout.clone(),
            stderr: self.stderr.clone(),
            stdout_dropped: 0,
            stderr_dropped: 0,
            exit: crate::invocation::Exit::Code(self.exit_code),
            duration_ms: self.end_ns.saturating_sub(self.start_ns) / 1_000_000,
            notes: vec![note],
        }
    }

    /// `CNI_COMMAND`, or "" when unset.
    pub fn command(&self) -> &str {
        self.env.get("CNI_COMMAND").map_or("", String::as_str)
    }

    /// An env var, when set.
    pub fn var(&self, k: &str) -> Option<&str> {
        self.env.get(k).map(String::as_str)
    }

    /// stdin parsed as JSON, when it is JSON.
    pub fn stdin_json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.stdin).ok()
    }

    /// stdout parsed as JSON, when it is JSON.
    pub fn stdout_json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(self.stdout.trim()).ok()
    }
}

/// Errors reading the log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The file could not be read.
    #[error("recorder log {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A line is not a log entry.
    #[error("recorder log {path} line {line}: {problem}")]
    Corrupt {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        problem: String,
    },
}

/// Appends one entry as one line.
pub fn append(path: &Path, e: &Entry) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(e).map_err(std::io::Error::other)?;
    line.push(b'\n');
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o666)
        .open(path)?;
    f.write_all(&line)
}

/// Reads every entry, sorted by start time (a missing file is an empty log).
pub fn read(path: &Path) -> Result<Vec<Entry>, LogError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => {
            return Err(LogError::Io {
                path: path.display().to_string(),
                source,
            })
        }
    };
    let mut entries = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str::<Entry>(l).map_err(|e| LogError::Corrupt {
                path: path.display().to_string(),
                line: i + 1,
                problem: e.to_string(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    entries.sort_by_key(|e| (e.start_ns, e.end_ns));
    Ok(entries)
}
