//! Computes `CNI_REF_BUILD_TOKEN`: a fingerprint of this package's sources, `Cargo.toml`, the
//! workspace `Cargo.lock` and the build settings. Every binary of one build carries the same
//! token in an ELF note (see `src/builtin.rs`), so `bridge` can tell that the `host-local` it
//! found in `CNI_PATH` is built from exactly the code it links itself, and run it in-process.

use std::path::Path;

/// The crate's hash (`src/hash.rs`), included rather than copied.
#[allow(dead_code)]
#[path = "src/hash.rs"]
mod hash;

use hash::{fnv1a_continue as fnv, FNV1A_START};

fn collect(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, files);
        } else {
            files.push(path);
        }
    }
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    collect(&root.join("src"), &mut files);
    files.sort();
    files.push(root.join("Cargo.toml"));
    files.push(root.join("build.rs"));
    files.push(root.join("../Cargo.lock"));
    let (mut a, mut b) = (FNV1A_START, 0x8422_2325_cbf2_9ce4u64);
    for file in &files {
        let name = file.strip_prefix(root).unwrap_or(file).to_string_lossy().into_owned();
        let content = std::fs::read(file).unwrap_or_default();
        for part in [name.as_bytes(), &content, b"\0"] {
            a = fnv(a, part);
            b = fnv(b ^ 0x5bd1_e995, part);
        }
    }
    for var in [
        "TARGET",
        "PROFILE",
        "OPT_LEVEL",
        "DEBUG",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC",
    ] {
        let value = std::env::var(var).unwrap_or_default();
        a = fnv(a, value.as_bytes());
        b = fnv(b ^ 0x5bd1_e995, value.as_bytes());
    }
    println!("cargo:rustc-env=CNI_REF_BUILD_TOKEN={a:016x}{b:016x}");
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=Cargo.toml");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=../Cargo.lock");
}
