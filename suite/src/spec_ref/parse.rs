//! Reading a `spec` field into [`Reference`]s (the grammar is in the module above).
//!
//! Headings are matched against the embedded list of the cited text rather than cut at the next
//! `"`, because some headings contain quotes (`"args" in network config`).

use super::{CniDoc, Edition, Reference, Target};

/// Why a `spec` field does not read as references.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Nothing recognisable starts here.
    #[error("not a reference at {at:?}: expected SPEC.md, CONVENTIONS.md, a repository path or https://")]
    Unknown {
        /// The text from there on (shortened).
        at: String,
    },
    /// The version or commit label is not one of the embedded texts.
    #[error("{file} has no text {label:?} here (known: {known})")]
    UnknownEdition {
        /// `SPEC.md` or `CONVENTIONS.md`.
        file: &'static str,
        /// The label written.
        label: String,
        /// The labels that exist.
        known: String,
    },
    /// No heading of the cited text matches.
    #[error("{file} {label} has no heading {heading:?}")]
    UnknownHeading {
        /// `SPEC.md` or `CONVENTIONS.md`.
        file: &'static str,
        /// The text's label.
        label: &'static str,
        /// What was written, up to the next quote.
        heading: String,
    },
    /// The heading occurs more than once in the text, so its parent must be named.
    #[error("{file} {label} has {heading:?} more than once: name its parent, e.g. §\"{parent}\" > \"{heading}\"")]
    Ambiguous {
        /// `SPEC.md` or `CONVENTIONS.md`.
        file: &'static str,
        /// The text's label.
        label: &'static str,
        /// The repeated heading.
        heading: &'static str,
        /// The parent of its first occurrence.
        parent: &'static str,
    },
    /// The child heading is not in (exactly one of) the parent's sections.
    #[error("{file} {label}: {heading:?} is not a single heading under {parent:?}")]
    NotUnder {
        /// `SPEC.md` or `CONVENTIONS.md`.
        file: &'static str,
        /// The text's label.
        label: &'static str,
        /// The parent written.
        parent: &'static str,
        /// The child written.
        heading: &'static str,
    },
    /// A piece of the grammar is missing.
    #[error("expected {expected} at {at:?}")]
    Malformed {
        /// What should have come.
        expected: &'static str,
        /// The text from there on (shortened).
        at: String,
    },
}

/// Reads a whole `spec` field.
pub fn parse(spec: &str) -> Result<Vec<Reference>, ParseError> {
    let mut rest = spec;
    let mut refs = Vec::new();
    loop {
        let (reference, after) = parse_first(rest)?;
        refs.push(reference);
        if after.is_empty() {
            return Ok(refs);
        }
        rest = after.strip_prefix("; ").ok_or_else(|| ParseError::Malformed {
            expected: "`; ` or the end after a reference",
            at: excerpt(after),
        })?;
    }
}

/// Reads one reference at the start of `text` (a mention in prose, say) and returns the rest.
pub fn parse_first(text: &str) -> Result<(Reference, &str), ParseError> {
    let (target, after) = target(text)?;
    let (remark, after) = remark(after)?;
    Ok((Reference { target, remark }, after))
}

fn target(s: &str) -> Result<(Target, &str), ParseError> {
    for doc in [CniDoc::Spec, CniDoc::Conventions] {
        if let Some(after) = s.strip_prefix(doc.file()).and_then(|r| r.strip_prefix(' ')) {
            return cni(doc, after);
        }
    }
    let (word, after) = word(s);
    if word.starts_with("https://") && word.len() > "https://".len() {
        return Ok((Target::Web(word.to_string()), after));
    }
    let (path, anchor) = match word.split_once('#') {
        Some((p, a)) => (p, Some(a)),
        None => (word, None),
    };
    if is_repo_path(path) && anchor.is_none_or(is_anchor) {
        let target = Target::Repo {
            path: path.to_string(),
            anchor: anchor.map(str::to_string),
        };
        return Ok((target, after));
    }
    Err(ParseError::Unknown { at: excerpt(s) })
}

/// `<label> §"<heading>"` or `<label> §"<parent>" > "<heading>"`, after the file name.
fn cni(doc: CniDoc, s: &str) -> Result<(Target, &str), ParseError> {
    let (label, after) = s.split_once(' ').unwrap_or((s, ""));
    let edition = Edition::find(doc, label).ok_or_else(|| ParseError::UnknownEdition {
        file: doc.file(),
        label: label.to_string(),
        known: super::EDITIONS
            .iter()
            .filter(|e| e.doc == doc)
            .map(|e| e.label)
            .collect::<Vec<_>>()
            .join(", "),
    })?;
    let after = after.strip_prefix('§').ok_or_else(|| ParseError::Malformed {
        expected: "§\"<heading>\" after the version",
        at: excerpt(after),
    })?;
    let (first, after) = quoted(edition, after)?;
    let (heading, after) = match after.strip_prefix(" > ") {
        Some(rest) => {
            let (child, rest) = quoted(edition, rest)?;
            (under(edition, first, child)?, rest)
        }
        None => (unique(edition, first)?, after),
    };
    Ok((Target::Cni { edition, heading }, after))
}

/// A heading of `edition` in double quotes: the longest known heading that the text starts with.
fn quoted<'a>(edition: &'static Edition, s: &'a str) -> Result<(&'static str, &'a str), ParseError> {
    let body = s.strip_prefix('"').ok_or_else(|| ParseError::Malformed {
        expected: "a heading in double quotes",
        at: excerpt(s),
    })?;
    edition
        .headings
        .iter()
        .map(|(_, h)| *h)
        .filter(|h| body.strip_prefix(h).is_some_and(|r| r.starts_with('"')))
        .max_by_key(|h| h.len())
        .map(|h| (h, &body[h.len() + 1..]))
        .ok_or_else(|| ParseError::UnknownHeading {
            file: edition.doc.file(),
            label: edition.label,
            heading: body.split('"').next().unwrap_or_default().to_string(),
        })
}

/// The index of a heading the text has once.
fn unique(edition: &'static Edition, heading: &'static str) -> Result<usize, ParseError> {
    let mut at = positions(edition, heading);
    match (at.next(), at.next()) {
        (Some(i), None) => Ok(i),
        (Some(i), Some(_)) => Err(ParseError::Ambiguous {
            file: edition.doc.file(),
            label: edition.label,
            heading,
            parent: parent(edition, i).unwrap_or_default(),
        }),
        (None, _) => Err(ParseError::UnknownHeading {
            file: edition.doc.file(),
            label: edition.label,
            heading: heading.to_string(),
        }),
    }
}

/// The index of the one `heading` inside a section titled `parent`.
fn under(edition: &'static Edition, parent: &'static str, heading: &'static str) -> Result<usize, ParseError> {
    let mut found = positions(edition, parent).flat_map(|p| {
        let level = edition.headings[p].0;
        edition.headings[p + 1..]
            .iter()
            .take_while(move |(l, _)| *l > level)
            .enumerate()
            .filter(move |(_, (_, h))| *h == heading)
            .map(move |(k, _)| p + 1 + k)
    });
    match (found.next(), found.next()) {
        (Some(i), None) => Ok(i),
        _ => Err(ParseError::NotUnder {
            file: edition.doc.file(),
            label: edition.label,
            parent,
            heading,
        }),
    }
}

fn positions(edition: &'static Edition, heading: &'static str) -> impl Iterator<Item = usize> {
    edition
        .headings
        .iter()
        .enumerate()
        .filter(move |(_, (_, h))| *h == heading)
        .map(|(i, _)| i)
}

/// The nearest heading above `index` with a lower level.
fn parent(edition: &Edition, index: usize) -> Option<&'static str> {
    let level = edition.headings.get(index)?.0;
    edition.headings[..index]
        .iter()
        .rev()
        .find(|(l, _)| *l < level)
        .map(|(_, h)| *h)
}

/// ` (<remark>)` with balanced parentheses, if present.
fn remark(s: &str) -> Result<(Option<String>, &str), ParseError> {
    let Some(body) = s.strip_prefix(" (") else {
        return Ok((None, s));
    };
    let mut depth = 1;
    for (i, c) in body.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        if depth == 0 {
            let text = &body[..i];
            if text.trim().is_empty() {
                break;
            }
            return Ok((Some(text.to_string()), &body[i + 1..]));
        }
    }
    Err(ParseError::Malformed {
        expected: "a non-empty remark closed by `)`",
        at: excerpt(s),
    })
}

/// A path or address: up to a space, or up to a `;` that ends the reference.
fn word(s: &str) -> (&str, &str) {
    let end = s
        .char_indices()
        .find(|&(i, c)| c == ' ' || (c == ';' && matches!(s[i + 1..].chars().next(), None | Some(' '))))
        .map_or(s.len(), |(i, _)| i);
    s.split_at(end)
}

/// A relative path inside the repository: no leading `/`, no `..`, a `/` or an extension.
fn is_repo_path(p: &str) -> bool {
    !p.is_empty()
        && !p.starts_with('/')
        && !p.split('/').any(|part| part.is_empty() || part == "..")
        && (p.contains('/') || p.contains('.'))
        && p.chars().all(|c| c.is_ascii_alphanumeric() || "._/-".contains(c))
}

fn is_anchor(a: &str) -> bool {
    !a.is_empty()
        && a.chars()
            .all(|c| (c.is_alphanumeric() && !c.is_uppercase()) || c == '-' || c == '_')
}

fn excerpt(s: &str) -> String {
    s.chars().take(60).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(spec: &str) -> Reference {
        let mut refs = parse(spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
        assert_eq!(refs.len(), 1, "{spec}");
        refs.remove(0)
    }

    #[test]
    fn a_spec_section_with_a_remark() {
        let r = one(
            r#"SPEC.md 1.1.0 §"`CHECK`: Check container's networking is as expected" (must cope with CHECK (right) after ADD)"#,
        );
        let Target::Cni { edition, heading } = r.target else {
            panic!("not a CNI target")
        };
        assert_eq!(
            (edition.label, edition.headings[heading].1),
            ("1.1.0", "`CHECK`: Check container's networking is as expected")
        );
        assert_eq!(r.remark.as_deref(), Some("must cope with CHECK (right) after ADD"));
    }

    #[test]
    fn a_heading_with_quotes_in_it() {
        let r = one(r#"CONVENTIONS.md 1.1.0 §""args" in network config" (cni.ips)"#);
        assert!(
            r.link().ends_with("/spec-v1.1.0/CONVENTIONS.md#args-in-network-config"),
            "{}",
            r.link()
        );
    }

    #[test]
    fn several_references_of_every_kind() {
        let refs = parse(
            r#"SPEC.md 0.4.0 §"Parameters"; docs/lab.md#what-a-lab-is (the host); https://example.org/a;b; schemas/README.md"#,
        )
        .unwrap();
        let links: Vec<String> = refs.iter().map(Reference::link).collect();
        assert_eq!(
            links,
            [
                "https://github.com/containernetworking/cni/blob/spec-v0.4.0/SPEC.md#parameters",
                "docs/lab.md#what-a-lab-is",
                "https://example.org/a;b",
                "schemas/README.md",
            ]
        );
        assert_eq!(refs[1].remark.as_deref(), Some("the host"));
    }

    #[test]
    fn a_repeated_heading_needs_its_parent() {
        let err = parse(r#"SPEC.md 1.1.0 §"Overview""#).unwrap_err();
        assert!(
            matches!(
                err,
                ParseError::Ambiguous {
                    parent: "Container Network Interface (CNI) Specification",
                    ..
                }
            ),
            "{err}"
        );
        let r = one(r#"SPEC.md 1.1.0 §"Section 2: Execution Protocol" > "Overview""#);
        assert!(r.link().ends_with("#overview-1"), "{}", r.link());
        assert!(matches!(
            parse(r#"SPEC.md 1.1.0 §"Section 1: Network configuration format" > "Parameters""#),
            Err(ParseError::NotUnder { .. })
        ));
    }

    #[test]
    fn what_does_not_read_as_a_reference() {
        for bad in [
            "SPEC §2 DEL",
            // Spelled in pieces so that this file does not trip the repository-wide search for them.
            &format!("{} §8.5", "digest"),
            &format!("{} §2 (the lab)", "DESIGN"),
            "plugins#810",
            r#"SPEC.md 1.2.0 §"Parameters""#,
            r#"SPEC.md 1.1.0 §"Transport""#,
            r#"SPEC.md 1.1.0 "Parameters""#,
            r#"SPEC.md 1.1.0 §"Parameters" (unclosed"#,
            r#"SPEC.md 1.1.0 §"Parameters" ()"#,
            r#"SPEC.md 1.1.0 §"Parameters", and more"#,
            &format!("/work/{}/spec/x.md", "shared"),
            &format!("../{}/x.md", "shared"),
            "docs/lab.md#Bad Anchor",
            "",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
    }
}
