//! The command's modes. Library code does the work; these modules turn arguments into calls and
//! errors into the exit-2 contract.

pub mod cri;
pub mod invoke;
pub mod limits;
pub mod output;
pub mod plugin;
pub mod runtime;
pub mod vm;

/// An error that is the user's or the environment's (exit 2), not a finding.
pub struct Usage(pub anyhow::Error);

/// Marks an error as a usage or environment error.
pub fn usage<T>(r: anyhow::Result<T>) -> Result<T, Usage> {
    r.map_err(Usage)
}
