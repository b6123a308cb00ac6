//! `cni-conformance invoke`: a libcni-like runner for humans and scripts. Not built yet.

use super::Usage;
use cni_conformance::cli::InvokeArgs;

/// Runs invoke mode.
pub fn run(_args: InvokeArgs) -> Result<u8, Usage> {
    Err(Usage(anyhow::anyhow!("invoke is not available in this build yet")))
}
