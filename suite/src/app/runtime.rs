//! Runtime mode: `cni-conformance runtime [OPTIONS] -- CMD...` (DESIGN §6). Not built yet.

use super::Usage;
use cni_conformance::cli::RuntimeArgs;

/// Runs runtime mode.
pub fn run(_args: RuntimeArgs) -> Result<u8, Usage> {
    Err(Usage(anyhow::anyhow!(
        "runtime mode is not available in this build yet"
    )))
}
