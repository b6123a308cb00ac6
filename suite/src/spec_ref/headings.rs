//! The headings of the CNI texts the catalogue cites, in document order, with their levels
//! (`##` = 2). They are copied from the files at the git refs named in [`EDITIONS`]; the ignored
//! test `headings_match_a_cni_checkout` compares them with a checkout.

use super::{CniDoc, Edition};

const SPEC_0_1_0: &[(u8, &str)] = &[
    (1, "Container Networking Interface Proposal"),
    (2, "Overview"),
    (2, "General considerations"),
    (2, "CNI Plugin"),
    (3, "Overview"),
    (3, "Parameters"),
    (3, "Result"),
    (3, "Network Configuration"),
    (3, "Example configurations"),
    (3, "IP Allocation"),
    (4, "IP Address Management (IPAM) Interface"),
    (4, "Notes"),
    (2, "Well-known Error Codes"),
];

const SPEC_0_2_0: &[(u8, &str)] = &[
    (1, "Container Networking Interface Proposal"),
    (2, "Version"),
    (2, "Overview"),
    (2, "General considerations"),
    (2, "CNI Plugin"),
    (3, "Overview"),
    (3, "Parameters"),
    (3, "Result"),
    (3, "Network Configuration"),
    (3, "Example configurations"),
    (3, "IP Allocation"),
    (4, "IP Address Management (IPAM) Interface"),
    (4, "Notes"),
    (2, "Well-known Error Codes"),
];

const SPEC_0_3_0: &[(u8, &str)] = &[
    (1, "Container Networking Interface Proposal"),
    (2, "Version"),
    (2, "Overview"),
    (2, "General considerations"),
    (2, "CNI Plugin"),
    (3, "Overview"),
    (3, "Parameters"),
    (3, "Result"),
    (3, "Network Configuration"),
    (3, "Example configurations"),
    (3, "Network Configuration Lists"),
    (4, "Network Configuration List Error Handling"),
    (4, "Example network configuration lists"),
    (4, "Network configuration list runtime examples"),
    (3, "IP Allocation"),
    (4, "IP Address Management (IPAM) Interface"),
    (4, "Notes"),
    (3, "Well-known Structures"),
    (4, "IP"),
    (4, "Routes"),
    (4, "DNS"),
    (2, "Well-known Error Codes"),
];

const SPEC_0_3_1: &[(u8, &str)] = &[
    (1, "Container Networking Interface Proposal"),
    (2, "Version"),
    (2, "Overview"),
    (2, "General considerations"),
    (2, "CNI Plugin"),
    (3, "Overview"),
    (3, "Parameters"),
    (3, "Result"),
    (3, "Network Configuration"),
    (3, "Example configurations"),
    (3, "Network Configuration Lists"),
    (4, "Network Configuration List Error Handling"),
    (4, "Example network configuration lists"),
    (4, "Network configuration list runtime examples"),
    (3, "IP Allocation"),
    (4, "IP Address Management (IPAM) Interface"),
    (4, "Notes"),
    (3, "Well-known Structures"),
    (4, "IPs"),
    (4, "Routes"),
    (4, "DNS"),
    (2, "Well-known Error Codes"),
];

const SPEC_0_4_0: &[(u8, &str)] = &[
    (1, "Container Network Interface Specification"),
    (2, "Version"),
    (4, "Released versions"),
    (2, "Overview"),
    (2, "General considerations"),
    (2, "CNI Plugin"),
    (3, "Overview"),
    (3, "Parameters"),
    (3, "Result"),
    (3, "Network Configuration"),
    (3, "Example configurations"),
    (3, "Network Configuration Lists"),
    (4, "Network Configuration List Error Handling"),
    (4, "Example network configuration lists"),
    (4, "Network configuration list runtime examples"),
    (3, "IP Allocation"),
    (4, "IP Address Management (IPAM) Interface"),
    (4, "Notes"),
    (3, "Well-known Structures"),
    (4, "IPs"),
    (4, "Routes"),
    (4, "DNS"),
    (2, "Well-known Error Codes"),
];

const SPEC_1_0_0: &[(u8, &str)] = &[
    (1, "Container Network Interface (CNI) Specification"),
    (2, "Version"),
    (4, "Released versions"),
    (2, "Overview"),
    (2, "Summary"),
    (2, "Section 1: Network configuration format"),
    (3, "Configuration format"),
    (4, "Plugin configuration objects:"),
    (4, "Example configuration"),
    (2, "Section 2: Execution Protocol"),
    (3, "Overview"),
    (3, "Parameters"),
    (3, "Errors"),
    (3, "CNI operations"),
    (4, "`ADD`: Add container to network, or apply modifications"),
    (4, "`DEL`: Remove container from network, or un-apply modifications"),
    (4, "`CHECK`: Check container's networking is as expected"),
    (4, "`VERSION`: probe plugin version support"),
    (2, "Section 3: Execution of Network Configurations"),
    (3, "Lifecycle & Ordering"),
    (3, "Attachment Parameters"),
    (3, "Adding an attachment"),
    (3, "Deleting an attachment"),
    (3, "Checking an attachment"),
    (3, "Deriving execution configuration from plugin configuration"),
    (4, "Deriving `runtimeConfig`"),
    (2, "Section 4: Plugin Delegation"),
    (3, "Delegated Plugin protocol"),
    (3, "Delegated plugin execution procedure"),
    (2, "Section 5: Result Types"),
    (3, "Success"),
    (4, "Delegated plugins (IPAM)"),
    (3, "Error"),
    (3, "Version"),
    (2, "Appendix: Examples"),
    (3, "Add example"),
    (3, "Check example"),
    (3, "Delete example"),
];

const SPEC_1_1_0: &[(u8, &str)] = &[
    (1, "Container Network Interface (CNI) Specification"),
    (2, "Version"),
    (4, "Released versions"),
    (2, "Overview"),
    (2, "Summary"),
    (2, "Section 1: Network configuration format"),
    (3, "Configuration format"),
    (4, "Plugin configuration objects:"),
    (4, "Example configuration"),
    (3, "Version considerations"),
    (2, "Section 2: Execution Protocol"),
    (3, "Overview"),
    (3, "Parameters"),
    (3, "Errors"),
    (3, "CNI operations"),
    (4, "`ADD`: Add container to network, or apply modifications"),
    (4, "`DEL`: Remove container from network, or un-apply modifications"),
    (4, "`CHECK`: Check container's networking is as expected"),
    (4, "`STATUS`: Check plugin status"),
    (4, "`VERSION`: probe plugin version support"),
    (4, "`GC`: Clean up any stale resources"),
    (2, "Section 3: Execution of Network Configurations"),
    (3, "Lifecycle & Ordering"),
    (3, "Attachment Parameters"),
    (3, "Adding an attachment"),
    (3, "Deleting an attachment"),
    (3, "Checking an attachment"),
    (3, "Garbage-collecting a network"),
    (3, "Deriving request configuration from plugin configuration"),
    (4, "Deriving `runtimeConfig`"),
    (2, "Section 4: Plugin Delegation"),
    (3, "Delegated Plugin protocol"),
    (3, "Delegated plugin execution procedure"),
    (2, "Section 5: Result Types"),
    (3, "ADD Success"),
    (4, "Delegated plugins (IPAM)"),
    (3, "VERSION Success"),
    (3, "Error"),
    (3, "Version"),
    (2, "Appendix: Examples"),
    (3, "Add example"),
    (3, "Check example"),
    (3, "Delete example"),
];

const CONVENTIONS_1_1_0: &[(u8, &str)] = &[
    (1, "Extension conventions"),
    (2, "Plugins"),
    (2, "Runtimes"),
    (1, "Current conventions"),
    (
        2,
        "Dynamic Plugin specific fields (Capabilities / Runtime Configuration)",
    ),
    (3, "Well-known Capabilities"),
    (2, "\"args\" in network config"),
    (2, "CNI_ARGS"),
    (2, "Chained Plugins"),
];

/// The last commit on the CNI repository's main branch that changed SPEC.md (2025-12-15): the
/// text after 1.1.0 that the catalogue cites where it differs from the tag.
const MAIN_COMMIT: &str = "f1cb561cf6428390c852979a4b29f571cc229d36";

/// Every text a reference may cite.
pub static EDITIONS: &[Edition] = &[
    spec("0.1.0", "spec-v0.1.0", SPEC_0_1_0),
    spec("0.2.0", "spec-v0.2.0", SPEC_0_2_0),
    spec("0.3.0", "spec-v0.3.0", SPEC_0_3_0),
    spec("0.3.1", "spec-v0.3.1", SPEC_0_3_1),
    spec("0.4.0", "spec-v0.4.0", SPEC_0_4_0),
    spec("1.0.0", "spec-v1.0.0", SPEC_1_0_0),
    spec("1.1.0", "spec-v1.1.0", SPEC_1_1_0),
    // The headings on main are those of 1.1.0; the text under some of them changed.
    spec("main@f1cb561", MAIN_COMMIT, SPEC_1_1_0),
    Edition {
        doc: CniDoc::Conventions,
        label: "1.1.0",
        git_ref: "spec-v1.1.0",
        headings: CONVENTIONS_1_1_0,
    },
];

const fn spec(label: &'static str, git_ref: &'static str, headings: &'static [(u8, &'static str)]) -> Edition {
    Edition {
        doc: CniDoc::Spec,
        label,
        git_ref,
        headings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec_ref::markdown_headings;

    /// Compares every embedded list with the file at its git ref, read from a clone of
    /// containernetworking/cni (bare or not) named by `CNI_GIT_DIR`.
    #[test]
    #[ignore = "needs CNI_GIT_DIR, a clone of https://github.com/containernetworking/cni"]
    fn headings_match_a_cni_checkout() {
        let dir = std::env::var("CNI_GIT_DIR").expect("CNI_GIT_DIR names a clone of the CNI repository");
        for e in EDITIONS {
            let out = std::process::Command::new("git")
                .args(["--git-dir", &dir, "show", &format!("{}:{}", e.git_ref, e.doc.file())])
                .output()
                .expect("git runs");
            assert!(
                out.status.success(),
                "{} at {}: {}",
                e.doc.file(),
                e.git_ref,
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8_lossy(&out.stdout);
            let levels: Vec<(u8, &str)> = text
                .lines()
                .scan(false, |fenced, line| {
                    if line.trim_start().starts_with("```") {
                        *fenced = !*fenced;
                    }
                    Some((*fenced, line))
                })
                .filter(|(fenced, _)| !fenced)
                .filter_map(|(_, line)| {
                    let hashes = line.len() - line.trim_start_matches('#').len();
                    let heading = markdown_headings(line).into_iter().next()?;
                    Some((u8::try_from(hashes).ok()?, heading))
                })
                .collect();
            assert_eq!(levels, e.headings, "{} {}", e.doc.file(), e.label);
        }
    }
}
