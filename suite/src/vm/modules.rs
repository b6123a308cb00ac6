//! Kernel modules for the guest: the modules the cases need, found by name in a kernel's module
//! directory, closed over their `depends=` lists, and described by a generated `modules.dep` and
//! `modules.alias` so that busybox `modprobe` in the guest can load them explicitly and the kernel
//! can autoload them on first use (link kinds, nftables expressions, xtables matches).
//!
//! Debian's kernel packages ship no `modules.dep` (depmod runs at install time), so dependencies
//! are read from each module's `.modinfo` section. Compressed modules (`.ko.xz`, `.ko.zst`,
//! `.ko.gz`) are unpacked on the host with `xz`/`zstd`/`gzip`, so the guest needs no decompressor.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::elf;

/// Errors reading a module directory.
#[derive(Debug, thiserror::Error)]
pub enum ModulesError {
    /// The directory cannot be read.
    #[error("cannot read kernel modules in {path}: {source}")]
    Read {
        /// The directory or file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A compressed module could not be unpacked.
    #[error("cannot unpack {path}: {problem}")]
    Unpack {
        /// The module file.
        path: String,
        /// What went wrong.
        problem: String,
    },
}

/// One module picked for the guest.
#[derive(Debug, Clone)]
pub struct Module {
    /// Name as the kernel knows it (`nf_tables`).
    pub name: String,
    /// Path relative to the module directory, without any compression suffix.
    pub rel: String,
    /// The uncompressed module.
    pub bytes: Vec<u8>,
    /// Names of the modules it depends on.
    pub depends: Vec<String>,
    /// Its `alias=` patterns.
    pub aliases: Vec<String>,
}

/// What [`ModuleTree::closure`] found.
#[derive(Debug, Default)]
pub struct Selection {
    /// The modules, dependencies included, in catalogue order.
    pub modules: Vec<Module>,
    /// Wanted names that are built into the kernel (nothing to load).
    pub builtin: Vec<String>,
    /// Wanted names this kernel has neither as a module nor built in.
    pub missing: Vec<String>,
}

/// A kernel's module directory (`.../lib/modules/<release>`).
#[derive(Debug)]
pub struct ModuleTree {
    root: PathBuf,
    by_name: HashMap<String, PathBuf>,
    builtin: BTreeSet<String>,
}

/// Module name of a file name: `nf_tables.ko.xz` → `nf_tables`, `8021q.ko` → `8021q`; dashes
/// count as underscores, as in the kernel.
pub fn module_name(file_name: &str) -> Option<String> {
    let stem = [".ko", ".ko.xz", ".ko.zst", ".ko.gz"]
        .iter()
        .find_map(|suffix| file_name.strip_suffix(suffix))?;
    Some(stem.replace('-', "_"))
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), ModulesError> {
    let entries = std::fs::read_dir(dir).map_err(|source| ModulesError::Read {
        path: dir.display().to_string(),
        source,
    })?;
    for e in entries.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => walk(&p, out)?,
            Ok(_) => out.push(p),
            Err(_) => {}
        }
    }
    Ok(())
}

impl ModuleTree {
    /// Indexes the module files under `root`.
    pub fn open(root: &Path) -> Result<Self, ModulesError> {
        let mut files = Vec::new();
        walk(&root.join("kernel"), &mut files)?;
        for extra in ["updates", "extra"] {
            if root.join(extra).is_dir() {
                walk(&root.join(extra), &mut files)?;
            }
        }
        let mut by_name = HashMap::new();
        for f in files {
            if let Some(name) = f.file_name().and_then(|n| n.to_str()).and_then(module_name) {
                by_name.entry(name).or_insert(f);
            }
        }
        let builtin = std::fs::read_to_string(root.join("modules.builtin"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.rsplit('/').next().and_then(module_name))
            .collect();
        Ok(ModuleTree {
            root: root.to_path_buf(),
            by_name,
            builtin,
        })
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The uncompressed bytes of a module file.
    fn load(&self, path: &Path) -> Result<Vec<u8>, ModulesError> {
        let shown = path.display().to_string();
        let tool = match path.extension().and_then(|e| e.to_str()) {
            Some("xz") => "xz",
            Some("zst") => "zstd",
            Some("gz") => "gzip",
            _ => {
                return std::fs::read(path).map_err(|source| ModulesError::Read { path: shown, source });
            }
        };
        let out = Command::new(tool)
            .arg("-dc")
            .arg(path)
            .output()
            .map_err(|e| ModulesError::Unpack {
                path: shown.clone(),
                problem: format!("{tool}: {e}"),
            })?;
        if !out.status.success() {
            return Err(ModulesError::Unpack {
                path: shown,
                problem: format!("{tool} exited with {}", out.status),
            });
        }
        Ok(out.stdout)
    }

    /// The wanted modules and everything they depend on.
    pub fn closure(&self, wanted: &[String]) -> Result<Selection, ModulesError> {
        let mut sel = Selection::default();
        let mut picked: BTreeMap<String, Module> = BTreeMap::new();
        let mut queue: Vec<String> = Vec::new();
        for w in wanted {
            let name = w.replace('-', "_");
            if self.by_name.contains_key(&name) {
                queue.push(name);
            } else if self.builtin.contains(&name) {
                sel.builtin.push(name);
            } else {
                sel.missing.push(name);
            }
        }
        while let Some(name) = queue.pop() {
            if picked.contains_key(&name) {
                continue;
            }
            let Some(path) = self.by_name.get(&name) else {
                continue;
            };
            let bytes = self.load(path)?;
            let info = elf::modinfo(&bytes);
            let depends: Vec<String> = info
                .iter()
                .filter(|(k, _)| k == "depends")
                .flat_map(|(_, v)| v.split(',').filter(|d| !d.is_empty()).map(|d| d.replace('-', "_")))
                .collect();
            let aliases = info
                .iter()
                .filter(|(k, _)| k == "alias")
                .map(|(_, v)| v.clone())
                .collect();
            queue.extend(depends.iter().cloned());
            let rel = path
                .strip_prefix(&self.root)
                .unwrap_or(path)
                .to_string_lossy()
                .trim_end_matches(".xz")
                .trim_end_matches(".zst")
                .trim_end_matches(".gz")
                .to_string();
            picked.insert(
                name.clone(),
                Module {
                    name,
                    rel,
                    bytes,
                    depends,
                    aliases,
                },
            );
        }
        sel.modules = picked.into_values().collect();
        Ok(sel)
    }

    /// `modules.builtin` as shipped, if any.
    pub fn builtin_list(&self) -> Option<Vec<u8>> {
        std::fs::read(self.root.join("modules.builtin")).ok()
    }
}

/// `modules.dep` for the selection: every module followed by all its dependencies, transitively,
/// ordered so that loading the list from the end works (what depmod writes and modprobe expects).
pub fn modules_dep(modules: &[Module]) -> String {
    let by_name: HashMap<&str, &Module> = modules.iter().map(|m| (m.name.as_str(), m)).collect();
    let mut out = String::new();
    for m in modules {
        // Depth-first post-order gives dependencies before dependents; reversed, dependents first.
        let mut order: Vec<&str> = Vec::new();
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        fn visit<'a>(
            name: &'a str,
            by_name: &HashMap<&'a str, &'a Module>,
            seen: &mut BTreeSet<&'a str>,
            order: &mut Vec<&'a str>,
        ) {
            if !seen.insert(name) {
                return;
            }
            if let Some(m) = by_name.get(name) {
                for d in &m.depends {
                    visit(d.as_str(), by_name, seen, order);
                }
            }
            order.push(name);
        }
        for d in &m.depends {
            visit(d.as_str(), &by_name, &mut seen, &mut order);
        }
        let deps: Vec<&str> = order
            .iter()
            .rev()
            .filter(|n| **n != m.name)
            .filter_map(|n| by_name.get(n).map(|d| d.rel.as_str()))
            .collect();
        out.push_str(&m.rel);
        out.push(':');
        for d in deps {
            out.push(' ');
            out.push_str(d);
        }
        out.push('\n');
    }
    out
}

/// `modules.alias` for the selection.
pub fn modules_alias(modules: &[Module]) -> String {
    let mut out = String::new();
    for m in modules {
        for a in &m.aliases {
            out.push_str(&format!("alias {a} {}\n", m.name));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, deps: &[&str]) -> Module {
        Module {
            name: name.into(),
            rel: format!("kernel/{name}.ko"),
            bytes: Vec::new(),
            depends: deps.iter().map(|d| d.to_string()).collect(),
            aliases: vec![format!("rtnl-link-{name}")],
        }
    }

    #[test]
    fn dep_lines_list_transitive_dependencies_loadable_from_the_end() {
        let mods = vec![
            m("8021q", &["mrp", "garp"]),
            m("garp", &["stp", "llc"]),
            m("llc", &[]),
            m("mrp", &[]),
            m("stp", &["llc"]),
        ];
        let dep = modules_dep(&mods);
        let line = dep.lines().next().unwrap();
        let (_, deps) = line.split_once(": ").unwrap();
        let deps: Vec<&str> = deps.split(' ').collect();
        assert_eq!(deps.len(), 4, "{line}");
        // Loading from the end: llc must come before stp, stp before garp.
        let pos = |n: &str| deps.iter().position(|d| *d == format!("kernel/{n}.ko")).unwrap();
        assert!(pos("llc") > pos("stp") && pos("stp") > pos("garp"), "{line}");
        assert_eq!(dep.lines().nth(2).unwrap(), "kernel/llc.ko:");
        assert!(modules_alias(&mods).contains("alias rtnl-link-8021q 8021q\n"));
    }

    #[test]
    fn names_from_files() {
        assert_eq!(module_name("nf_tables.ko").as_deref(), Some("nf_tables"));
        assert_eq!(module_name("nf-nat.ko.xz").as_deref(), Some("nf_nat"));
        assert_eq!(module_name("README"), None);
    }
}
