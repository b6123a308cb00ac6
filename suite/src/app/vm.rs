//! `--vm`: the same run inside a QEMU guest (DESIGN §7). Not built yet.

use super::Usage;
use cni_conformance::cli::PluginArgs;

/// Runs plugin mode inside a VM.
pub fn run_plugin(_args: PluginArgs) -> Result<u8, Usage> {
    Err(Usage(anyhow::anyhow!("--vm is not available in this build yet")))
}
