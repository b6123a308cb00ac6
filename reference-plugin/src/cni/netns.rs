//! Is `CNI_NETNS` the plugin's own network namespace?
//!
//! Two namespace references name the same namespace when they resolve to the same inode of the
//! nsfs file system. A reference that cannot be opened is "not ours" (DEL must work when the
//! namespace is already gone).

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Whether `netns` names the network namespace this process runs in.
pub fn is_own_netns(netns: &str) -> bool {
    if netns.is_empty() {
        return false;
    }
    let Ok(theirs) = std::fs::metadata(Path::new(netns)) else {
        return false;
    };
    let Ok(ours) = std::fs::metadata("/proc/self/ns/net") else {
        return false;
    };
    theirs.dev() == ours.dev() && theirs.ino() == ours.ino()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_namespace_is_recognised() {
        assert!(is_own_netns("/proc/self/ns/net"));
        assert!(!is_own_netns("/nonexistent/netns"));
        assert!(!is_own_netns(""));
        assert!(!is_own_netns("/proc/self/ns/mnt"));
    }
}
