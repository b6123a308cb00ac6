//! `--keep`: a lab outlives the suite when its init is told to stay.

use super::sandbox::{in_user_namespace, Sandbox};
use super::LabError;

/// A lab kept alive after the suite exits.
#[derive(Debug, Clone)]
pub struct KeptLab {
    /// PID of the lab's init (in the machine's PID namespace).
    pub pid: u32,
    /// The command that opens a shell in the lab host.
    pub enter: String,
}

pub(super) fn keep(sandbox: &mut Sandbox) -> Result<KeptLab, LabError> {
    sandbox
        .keep()
        .map_err(|e| LabError::Other(format!("keep the lab: {e}")))?;
    let pid = sandbox.init_pid();
    let user = if in_user_namespace() {
        " --user --preserve-credentials"
    } else {
        ""
    };
    Ok(KeptLab {
        pid,
        enter: format!(
            "nsenter --target {pid} --mount --net --pid --uts --ipc{user} -- sh   (containers: ip netns list; remove the lab: kill {pid})"
        ),
    })
}
