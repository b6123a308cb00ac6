//! Reads the lab's writable layer: every file the plugin (or runtime) wrote outside the lab's
//! tmpfs data directories, as lab paths with a short description.
//!
//! Two places hold such writes: the overlays' upper directories on the stage (one per machine
//! directory) and the root view (files made at the top level of `/`). Directories that exist on
//! the machine and were only copied up to hold a write below them are left out; a whiteout is a
//! deleted machine file; an opaque directory replaced the machine's.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::Sandbox;
use crate::hash::fnv1a as digest;

/// Bytes of a file read for its digest (the size is always reported).
const DIGEST_LIMIT: usize = 4 << 20;

/// Lab path → description ("new: 12 bytes, 0123…", "changed …", "deleted", "dir", …).
pub type Layer = BTreeMap<String, String>;

/// Reads the whole writable layer.
pub fn read(sandbox: &Sandbox) -> Layer {
    let mut out = Layer::new();
    let stage = fd_path(sandbox.stage().as_raw_fd());
    for layer in sandbox.layers() {
        walk(&stage.join(&layer.upper), &layer.path, &mut out);
    }
    walk(&fd_path(sandbox.view().as_raw_fd()), Path::new("/"), &mut out);
    out
}

fn fd_path(fd: i32) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{fd}"))
}

/// True when the overlay marked the directory opaque (the machine's copy is hidden).
fn is_opaque(path: &Path) -> bool {
    let Ok(p) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    ["trusted.overlay.opaque", "user.overlay.opaque"].iter().any(|name| {
        let mut buf = [0u8; 4];
        let Ok(n) = CString::new(*name) else { return false };
        // SAFETY: valid C strings and a buffer of the given length.
        let len = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        len > 0 && buf[0] == b'y'
    })
}

fn walk(dir: &Path, lab_dir: &Path, out: &mut Layer) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let real = entry.path();
        let lab = lab_dir.join(entry.file_name());
        let machine = std::fs::symlink_metadata(&lab).ok();
        let Ok(meta) = std::fs::symlink_metadata(&real) else {
            continue;
        };
        let ft = meta.file_type();
        let shown = lab.display().to_string();
        if ft.is_char_device() && meta.rdev() == 0 {
            out.insert(shown, "deleted (the machine's file is hidden in the lab)".into());
        } else if ft.is_dir() {
            if machine.as_ref().is_some_and(|m| m.is_dir()) && !is_opaque(&real) {
                // The machine's directory, copied up to hold something below it.
            } else if machine.is_some() {
                out.insert(format!("{shown}/"), "dir (replaces the machine's)".into());
            } else {
                out.insert(format!("{shown}/"), "new dir".into());
            }
            walk(&real, &lab, out);
        } else {
            let what = if machine.is_some() { "changed" } else { "new" };
            let desc = if ft.is_file() {
                describe_file(&real, meta.len())
            } else if ft.is_symlink() {
                std::fs::read_link(&real)
                    .map(|t| format!("symlink to {}", t.display()))
                    .unwrap_or_else(|_| "symlink".into())
            } else {
                "special file".into()
            };
            out.insert(shown, format!("{what}: {desc}"));
        }
    }
}

fn describe_file(path: &Path, len: u64) -> String {
    use std::io::Read;
    let mut bytes = Vec::new();
    match std::fs::File::open(path).and_then(|f| f.take(DIGEST_LIMIT as u64).read_to_end(&mut bytes)) {
        Ok(_) => format!("{len} bytes, {:016x}", digest(&bytes)),
        Err(e) => format!("{len} bytes, unreadable: {e}"),
    }
}
