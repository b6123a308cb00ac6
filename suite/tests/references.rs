//! Every reference a user or maintainer reads leads somewhere: to a section of the CNI spec (or
//! its conventions) that exists in the cited text, to a file and heading of this repository, or,
//! for the Kubernetes rules only, to a pinned public upstream source. Nothing points at documents
//! outside the repository.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use cni_conformance::spec_ref::{self, anchors, markdown_headings, Reference, Target};

/// Texts that used to stand for documents users do not have, spelled in pieces so that this file
/// does not match itself.
fn forbidden() -> Vec<String> {
    [
        ("digest", " §"),
        ("digest", " section"),
        ("DESIGN", " §"),
        ("../", "shared"),
        ("shared/", "spec"),
        ("cni-spec-", "digest"),
    ]
    .iter()
    .map(|(a, b)| format!("{a}{b}"))
    .collect()
}

/// (file, text) pairs allowed to match a forbidden text. The test fails once an exemption is no
/// longer needed, so the list only shrinks.
const EXEMPT: &[(&str, &str)] = &[];

/// Hosts a Kubernetes rule may cite, and the only rules that may cite addresses at all.
const WEB_HOSTS: &[&str] = &["https://github.com/kubernetes/", "https://kubernetes.io/docs/"];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the suite crate sits in the workspace root")
        .to_path_buf()
}

/// The anchors of a Markdown file of the repository, or why there are none.
fn file_anchors(path: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(anchors(markdown_headings(&text)))
}

/// Checks a repository path (relative to `base`) and its optional anchor.
fn check_repo_target(base: &Path, path: &str, anchor: Option<&str>) -> Result<(), String> {
    let file = base.join(path);
    if !file.is_file() {
        return Err(format!("{path}: no such file in the repository"));
    }
    if let Some(a) = anchor {
        let known = file_anchors(&file)?;
        if !known.iter().any(|k| k == a) {
            return Err(format!("{path}#{a}: no such heading (anchors: {})", known.join(", ")));
        }
    }
    Ok(())
}

fn check_reference(root: &Path, id: &str, r: &Reference) -> Result<(), String> {
    match &r.target {
        // The parser only yields headings of the embedded texts.
        Target::Cni { .. } => Ok(()),
        Target::Repo { path, anchor } => check_repo_target(root, path, anchor.as_deref()),
        Target::Web(url) => {
            if !id.starts_with("kubernetes/") {
                return Err(format!(
                    "{url}: only Kubernetes rules cite addresses; cite the spec or docs/"
                ));
            }
            if !WEB_HOSTS.iter().any(|h| url.starts_with(h)) {
                return Err(format!("{url}: not one of {WEB_HOSTS:?}"));
            }
            if url.contains("/blob/main/") || url.contains("/blob/master/") {
                return Err(format!("{url}: pin a tag or commit, a branch moves"));
            }
            Ok(())
        }
    }
}

/// Every case and rule of the catalogue, as (id, spec).
fn catalogue() -> Vec<(String, String)> {
    let cases = cni_conformance::cases::all().into_iter().map(|c| (c.id, c.spec));
    let rules = cni_conformance::runtime::rules::all()
        .into_iter()
        .map(|r| (r.id, r.spec));
    let kube = cni_conformance::runtime::kubernetes::all()
        .into_iter()
        .map(|r| (r.id, r.spec));
    cases
        .chain(rules)
        .chain(kube)
        .map(|(id, spec)| (id.to_string(), spec.to_string()))
        .collect()
}

#[test]
fn every_catalogue_reference_resolves() {
    let root = repo_root();
    let all = catalogue();
    assert!(all.len() > 100, "the catalogue looks empty: {} entries", all.len());
    let mut problems = Vec::new();
    for (id, spec) in &all {
        match spec_ref::parse(spec) {
            Err(e) => problems.push(format!("{id}: {e}\n    spec: {spec}")),
            Ok(refs) => {
                for r in &refs {
                    if let Err(e) = check_reference(&root, id, r) {
                        problems.push(format!("{id}: {e}"));
                    }
                }
                if refs.iter().all(|r| matches!(r.target, Target::Web(_))) {
                    problems.push(format!("{id}: cites no spec section and no document of the repository"));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} bad references:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// The tracked text files, relative to the root.
fn tracked_files(root: &Path) -> Vec<PathBuf> {
    let out = Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(root)
        .output()
        .expect("git runs (this test reads the tracked files of a git checkout)");
    assert!(
        out.status.success(),
        "git ls-files failed (this test needs a git checkout): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
        .split(|&b| b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| PathBuf::from(String::from_utf8_lossy(p).into_owned()))
        .filter(|p| root.join(p).is_file())
        .collect()
}

fn read_text(path: &Path) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    (!bytes.contains(&0)).then(|| String::from_utf8_lossy(&bytes).into_owned())
}

#[test]
fn no_file_points_outside_the_repository() {
    let root = repo_root();
    let patterns = forbidden();
    let mut hits = Vec::new();
    let mut exemptions_used = BTreeSet::new();
    for rel in tracked_files(&root) {
        let Some(text) = read_text(&root.join(&rel)) else {
            continue;
        };
        for (n, line) in text.lines().enumerate() {
            for p in &patterns {
                if !line.to_lowercase().contains(&p.to_lowercase()) {
                    continue;
                }
                let file = rel.to_string_lossy();
                if let Some(e) = EXEMPT.iter().find(|(f, t)| *f == file && t == p) {
                    exemptions_used.insert(*e);
                    continue;
                }
                hits.push(format!("{}:{}: {:?}: {}", rel.display(), n + 1, p, line.trim()));
            }
        }
    }
    assert!(
        hits.is_empty(),
        "references to documents outside the repository:\n{}",
        hits.join("\n")
    );
    let stale: Vec<_> = EXEMPT.iter().filter(|e| !exemptions_used.contains(e)).collect();
    assert!(
        stale.is_empty(),
        "exemptions no longer needed, remove them from EXEMPT: {stale:?}"
    );
}

/// `docs/…` mentions anywhere, and `SPEC.md <version> §"…"` mentions in comments and documents,
/// resolve like catalogue references (keep each mention on one line).
#[test]
fn mentions_in_files_resolve() {
    let root = repo_root();
    let docs = regex::Regex::new(r"\bdocs/[A-Za-z0-9_.-]+\.md(#[a-z0-9_-]+)?").expect("valid regex");
    let section =
        regex::Regex::new(r#"\b(SPEC|CONVENTIONS)\.md (\d+\.\d+\.\d+|main@[0-9a-f]+) §""#).expect("valid regex");
    let mut problems = Vec::new();
    for rel in tracked_files(&root) {
        let Some(text) = read_text(&root.join(&rel)) else {
            continue;
        };
        let is_rust = rel.extension().is_some_and(|e| e == "rs");
        for (n, line) in text.lines().enumerate() {
            let at = format!("{}:{}", rel.display(), n + 1);
            for m in docs.find_iter(line) {
                let (path, anchor) = m
                    .as_str()
                    .split_once('#')
                    .map_or((m.as_str(), None), |(p, a)| (p, Some(a)));
                if let Err(e) = check_repo_target(&root, path, anchor) {
                    problems.push(format!("{at}: {e}"));
                }
            }
            // In Rust only comments are prose; string literals are the catalogue (checked above)
            // or test data.
            let prose = if is_rust {
                line.split_once("//").map_or("", |(_, c)| c)
            } else {
                line
            };
            for m in section.find_iter(prose) {
                if let Err(e) = spec_ref::parse_first(&prose[m.start()..]) {
                    problems.push(format!("{at}: {e}"));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} mentions lead nowhere:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// Relative links of the repository's Markdown files lead to existing files and headings.
#[test]
fn markdown_links_resolve() {
    let root = repo_root();
    let link = regex::Regex::new(r"\]\(([^)\s]+)\)").expect("valid regex");
    let mut problems = Vec::new();
    for rel in tracked_files(&root)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
    {
        let Some(text) = read_text(&root.join(&rel)) else {
            continue;
        };
        let dir = root
            .join(&rel)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| root.clone());
        for (n, line) in text.lines().enumerate() {
            for c in link.captures_iter(line) {
                let target = &c[1];
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                let (path, anchor) = target.split_once('#').map_or((target, None), |(p, a)| (p, Some(a)));
                let result = if path.is_empty() {
                    check_repo_target(&root, &rel.to_string_lossy(), anchor)
                } else {
                    check_repo_target(&dir, path, anchor)
                };
                if let Err(e) = result {
                    problems.push(format!("{}:{}: {e}", rel.display(), n + 1));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} broken links:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
