//! References from the catalogue to the texts its rules come from: the `spec` field of every case
//! and rule, read as typed references so that reports can link them and a test can check that
//! each one leads somewhere.
//!
//! A `spec` field is one or more references separated by `; `, each optionally followed by a
//! remark in parentheses:
//!
//! - `SPEC.md <version> §"<heading>"`: a section of the CNI spec, by its exact heading, in the
//!   text of a release (`1.1.0`), or of the main branch after 1.1.0 (`main@f1cb561`). A heading
//!   the text repeats is named with its parent: `§"Section 2: Execution Protocol" > "Overview"`.
//! - `CONVENTIONS.md <version> §"<heading>"`: the CNI repository's conventions, as of that tag.
//! - `docs/<file>.md#<anchor>` (or any path): a file of this repository, optionally at a heading.
//! - `https://…`: a public upstream source (the Kubernetes rules cite kubelet and the CRI API).
//!
//! `docs/spec-notes.md` explains the format to users and holds what the catalogue relies on beyond
//! the spec text.

mod anchor;
mod headings;
mod parse;

pub use anchor::{anchors, markdown_headings, slug};
pub use headings::EDITIONS;
pub use parse::{parse, parse_first, ParseError};

/// Where the CNI repository is published; links point into it.
const CNI_REPO_URL: &str = "https://github.com/containernetworking/cni";

/// A document of the CNI repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CniDoc {
    /// `SPEC.md`, the specification.
    Spec,
    /// `CONVENTIONS.md`: capabilities, `args`, `CNI_ARGS`.
    Conventions,
}

impl CniDoc {
    /// The file name, as a reference writes it.
    pub fn file(self) -> &'static str {
        match self {
            CniDoc::Spec => "SPEC.md",
            CniDoc::Conventions => "CONVENTIONS.md",
        }
    }
}

/// One text of a CNI document: a release, or a commit on the main branch.
#[derive(Debug)]
pub struct Edition {
    /// Which document.
    pub doc: CniDoc,
    /// How a reference names it: `1.1.0`, `main@f1cb561`.
    pub label: &'static str,
    /// The git tag or commit the link points at.
    pub git_ref: &'static str,
    /// Every heading, in document order, with its level (GitHub numbers repeated anchors).
    pub headings: &'static [(u8, &'static str)],
}

impl Edition {
    /// The edition of `doc` that a reference calls `label`.
    pub fn find(doc: CniDoc, label: &str) -> Option<&'static Edition> {
        EDITIONS.iter().find(|e| e.doc == doc && e.label == label)
    }

    /// The link to heading number `index` of this text.
    pub fn link(&self, index: usize) -> String {
        let anchor = anchors(self.headings.iter().map(|(_, h)| *h))
            .get(index)
            .cloned()
            .unwrap_or_default();
        format!("{CNI_REPO_URL}/blob/{}/{}#{anchor}", self.git_ref, self.doc.file())
    }
}

/// What a reference points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A section of a CNI document, checked against the embedded headings.
    Cni {
        /// The text cited.
        edition: &'static Edition,
        /// Index into its headings.
        heading: usize,
    },
    /// A file of this repository, optionally at a heading's anchor (checked by the reference test).
    Repo {
        /// Relative to the repository root.
        path: String,
        /// The `#fragment`, if any.
        anchor: Option<String>,
    },
    /// A public address outside the CNI repository.
    Web(String),
}

impl PartialEq for Edition {
    fn eq(&self, other: &Self) -> bool {
        self.doc == other.doc && self.label == other.label
    }
}

impl Eq for Edition {}

/// One reference of a `spec` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// What it points at.
    pub target: Target,
    /// The remark in parentheses after it, if any.
    pub remark: Option<String>,
}

impl Reference {
    /// Where a user follows it: an address, or a path in this repository.
    pub fn link(&self) -> String {
        match &self.target {
            Target::Cni { edition, heading } => edition.link(*heading),
            Target::Repo { path, anchor: Some(a) } => format!("{path}#{a}"),
            Target::Repo { path, anchor: None } => path.clone(),
            Target::Web(url) => url.clone(),
        }
    }
}

/// The links of a `spec` field, one per reference; none when it does not parse (the reference test
/// keeps the catalogue parseable, and a report is no place to fail over it).
pub fn links(spec: &str) -> Vec<String> {
    parse(spec)
        .map(|refs| refs.iter().map(Reference::link).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_point_at_the_tag_and_heading() {
        let spec = r#"SPEC.md 1.1.0 §"`DEL`: Remove container from network, or un-apply modifications" (repeated DELs); docs/spec-notes.md#error-codes"#;
        assert_eq!(
            links(spec),
            [
                "https://github.com/containernetworking/cni/blob/spec-v1.1.0/SPEC.md#del-remove-container-from-network-or-un-apply-modifications",
                "docs/spec-notes.md#error-codes",
            ]
        );
    }

    #[test]
    fn a_repeated_heading_links_to_its_own_anchor() {
        let spec = r#"SPEC.md 1.1.0 §"Section 5: Result Types" > "Version""#;
        assert_eq!(
            links(spec),
            ["https://github.com/containernetworking/cni/blob/spec-v1.1.0/SPEC.md#version-1"]
        );
    }

    #[test]
    fn main_links_at_the_commit() {
        let spec = r#"SPEC.md main@f1cb561 §"`GC`: Clean up any stale resources""#;
        assert_eq!(
            links(spec),
            ["https://github.com/containernetworking/cni/blob/f1cb561cf6428390c852979a4b29f571cc229d36/SPEC.md#gc-clean-up-any-stale-resources"]
        );
    }

    #[test]
    fn an_unparseable_field_has_no_links() {
        assert!(links("SPEC §2 DEL").is_empty());
    }
}
