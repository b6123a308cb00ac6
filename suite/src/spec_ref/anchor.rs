//! GitHub's heading anchors: how `#fragment` links into a Markdown file are formed.
//!
//! A heading's anchor is its text in lower case with spaces turned into `-` and every character
//! but letters, digits, `-` and `_` dropped; a repeated anchor gets `-1`, `-2`, … in document order.

use std::collections::HashMap;

/// The anchor of one heading, before repeats are numbered.
pub fn slug(heading: &str) -> String {
    heading
        .trim()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            '-' | '_' => Some(c),
            c if c.is_alphanumeric() => Some(c),
            _ => None,
        })
        .flat_map(char::to_lowercase)
        .collect()
}

/// The anchors of a document's headings, in order, repeats numbered as GitHub does.
pub fn anchors<'a>(headings: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    headings
        .into_iter()
        .map(|h| {
            let base = slug(h);
            let n = seen.entry(base.clone()).or_insert(0);
            let anchor = if *n == 0 { base } else { format!("{base}-{n}") };
            *n += 1;
            anchor
        })
        .collect()
}

/// The headings of a Markdown text (ATX `#` lines outside fenced code blocks), without the `#`s.
pub fn markdown_headings(text: &str) -> Vec<&str> {
    let mut fenced = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let hashes = line.len() - line.trim_start_matches('#').len();
        if (1..=6).contains(&hashes) && line[hashes..].starts_with(' ') {
            out.push(line[hashes..].trim());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pairs from the table of contents at the top of the CNI spec 1.1.0, which links its own
    /// headings.
    #[test]
    fn anchors_match_the_spec_table_of_contents() {
        let pairs = [
            (
                "Container Network Interface (CNI) Specification",
                "container-network-interface-cni-specification",
            ),
            (
                "Section 1: Network configuration format",
                "section-1-network-configuration-format",
            ),
            ("Plugin configuration objects:", "plugin-configuration-objects"),
            (
                "`ADD`: Add container to network, or apply modifications",
                "add-add-container-to-network-or-apply-modifications",
            ),
            (
                "`CHECK`: Check container's networking is as expected",
                "check-check-containers-networking-is-as-expected",
            ),
            ("Lifecycle & Ordering", "lifecycle--ordering"),
            ("Deriving `runtimeConfig`", "deriving-runtimeconfig"),
            ("Delegated plugins (IPAM)", "delegated-plugins-ipam"),
            ("\"args\" in network config", "args-in-network-config"),
            ("CNI_ARGS", "cni_args"),
        ];
        for (heading, anchor) in pairs {
            assert_eq!(slug(heading), anchor, "{heading}");
        }
    }

    #[test]
    fn repeated_headings_are_numbered() {
        let a = anchors(["Version", "Overview", "Overview", "Version"]);
        assert_eq!(a, ["version", "overview", "overview-1", "version-1"]);
    }

    #[test]
    fn headings_in_code_blocks_are_not_headings() {
        let text = "# Title\n\ntext\n```sh\n# a comment\n```\n## Next one  \n#not a heading\n";
        assert_eq!(markdown_headings(text), ["Title", "Next one"]);
    }
}
