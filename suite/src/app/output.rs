//! Writing what the user asked for: the report on stdout, `--output FILE`, progress on stderr.
//!
//! stdout closed by the reader (`| head -c 10`) is the reader's choice: the rest is dropped and the
//! run ends quietly with its verdict. Any other write error (`> /dev/full`) is an environment
//! error: one line, exit 2. Progress on stderr is best effort and never stops a run. `--output` is
//! opened before the run, so a path that cannot be written costs no run.

use std::fs::File;
use std::io::{ErrorKind, Seek, Write};
use std::path::{Path, PathBuf};

use anyhow::anyhow;

use super::Usage;

/// Writes `text` to stdout and flushes it.
pub fn stdout(text: &str) -> Result<(), Usage> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Usage(anyhow!("cannot write the report to stdout: {e}"))),
    }
}

/// Writes one line to stderr, ignoring failures (a closed or full stderr must not end a run).
pub fn stderr_line(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
}

/// `--output FILE`, opened for writing before the run.
pub struct ReportFile {
    path: PathBuf,
    file: File,
    /// The suite created the file: it is removed again if the run ends without a report.
    created: bool,
    written: bool,
}

impl ReportFile {
    /// Opens (or creates) `path` for writing without truncating it yet.
    pub fn open(path: &Path) -> Result<Self, Usage> {
        let existed = path.exists();
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| Usage(anyhow!("cannot write --output {}: {e}", path.display())))?;
        Ok(ReportFile {
            path: path.to_path_buf(),
            file,
            created: !existed,
            written: false,
        })
    }

    /// Replaces the file's content with `text` (a device or pipe, e.g. `/dev/stderr`, just gets
    /// the text).
    pub fn write(mut self, text: &str) -> Result<(), Usage> {
        self.written = true;
        let file = &mut self.file;
        let regular = file.metadata().is_ok_and(|m| m.is_file());
        let result = (if regular {
            file.set_len(0).and_then(|()| file.rewind())
        } else {
            Ok(())
        })
        .and_then(|()| file.write_all(text.as_bytes()))
        .and_then(|()| file.flush());
        result.map_err(|e| Usage(anyhow!("cannot write --output {}: {e}", self.path.display())))
    }
}

impl Drop for ReportFile {
    fn drop(&mut self) {
        if self.created && !self.written {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
