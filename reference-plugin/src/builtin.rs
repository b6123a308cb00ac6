//! Running a delegate in-process when it is this very build.
//!
//! Every plugin binary of this crate carries an ELF note (owner `CNI-REF`, type 1) whose
//! content is `<plugin name>:<build token>`; the token ([`BUILD_TOKEN`]) is a fingerprint of
//! the crate's sources, `Cargo.lock` and build settings computed by `build.rs`. When `bridge`
//! is about to execute its IPAM delegate, it reads that note from the file `CNI_PATH` led to
//! (a few `pread`s of its headers). If the file is this crate's `host-local` from the same
//! build, the code that process would run is the code already linked here, so
//! [`crate::cni::delegate`] runs it in-process through the same dispatcher, with the same
//! environment (only `CNI_COMMAND` set), the same stdin bytes, and stdout collected and
//! judged exactly as a child's would be. Anything else (upstream `host-local`, another build
//! of ours, a wrapper script, a test double) is executed as the spec describes.
//!
//! This saves a process start (about 1 ms of CPU on the test machine, plus two scheduler
//! hand-offs that cost far more on a loaded machine) on every ADD, DEL, CHECK, GC and STATUS.

use crate::cni::dispatch::Plugin;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The fingerprint of this build (see the module documentation).
pub const BUILD_TOKEN: &str = env!("CNI_REF_BUILD_TOKEN");

/// The note owner name.
const NOTE_OWNER: &[u8] = b"CNI-REF\0";
/// The note type.
const NOTE_TYPE: u32 = 1;
/// ELF program header type of a note segment.
const PT_NOTE: u32 = 4;

/// Defines the C `main` of a plugin binary that is `#![cfg_attr(not(test), no_main)]`: it runs
/// `$plugin` through [`crate::cni::dispatch::start`], without Rust's runtime start-up (see
/// there why).
#[macro_export]
macro_rules! plugin_main {
    ($plugin:expr) => {
        #[cfg(not(test))]
        #[no_mangle]
        extern "C" fn main(_argc: ::core::ffi::c_int, _argv: *const *const ::core::ffi::c_char) -> ::core::ffi::c_int {
            $crate::cni::dispatch::start(&$plugin)
        }
    };
}

/// Emits the ELF note `<name>:<build token>` into the binary that invokes it (once, at the top
/// level of the binary's main file).
#[macro_export]
macro_rules! plugin_note {
    ($name:literal) => {
        ::core::arch::global_asm!(
            concat!(
                ".pushsection .note.cni_ref,\"a\",%note\n",
                ".balign 4\n",
                ".long 8\n",
                ".long .Lcni_ref_desc_end - .Lcni_ref_desc\n",
                ".long 1\n",
                ".asciz \"CNI-REF\"\n",
                ".Lcni_ref_desc:\n",
                ".ascii \"",
                $name,
                ":",
                env!("CNI_REF_BUILD_TOKEN"),
                "\"\n",
                ".Lcni_ref_desc_end:\n",
                ".balign 4\n",
                ".popsection\n"
            ),
            options(att_syntax)
        );
    };
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// The content of the `CNI-REF` note of the 64-bit little-endian ELF file at `path`, if any.
/// Reads at most a few KiB; anything unexpected is `None`.
pub fn note_of(path: &Path) -> Option<Vec<u8>> {
    let file = std::fs::File::open(path).ok()?;
    let mut header = [0u8; 64];
    file.read_exact_at(&mut header, 0).ok()?;
    // Magic, ELFCLASS64, ELFDATA2LSB.
    if header[..4] != *b"\x7fELF" || header[4] != 2 || header[5] != 1 {
        return None;
    }
    let phoff = u64_at(&header, 32)?;
    let phentsize = usize::from(u16_at(&header, 54)?);
    let phnum = usize::from(u16_at(&header, 56)?);
    if phentsize < 56 || phnum == 0 || phnum > 64 {
        return None;
    }
    let mut phdrs = vec![0u8; phentsize * phnum];
    file.read_exact_at(&mut phdrs, phoff).ok()?;
    for ph in phdrs.chunks_exact(phentsize) {
        if u32_at(ph, 0)? != PT_NOTE {
            continue;
        }
        let (offset, size) = (u64_at(ph, 8)?, u64_at(ph, 32)?);
        if size > 4096 {
            continue;
        }
        let mut notes = vec![0u8; size as usize];
        file.read_exact_at(&mut notes, offset).ok()?;
        if let Some(desc) = find_note(&notes) {
            return Some(desc.to_vec());
        }
    }
    None
}

/// The `CNI-REF` note's content among the notes of one segment.
fn find_note(mut notes: &[u8]) -> Option<&[u8]> {
    let pad = |n: usize| n.div_ceil(4) * 4;
    while notes.len() >= 12 {
        let namesz = u32_at(notes, 0)? as usize;
        let descsz = u32_at(notes, 4)? as usize;
        let kind = u32_at(notes, 8)?;
        let name = notes.get(12..12 + namesz)?;
        let desc_at = 12 + pad(namesz);
        let desc = notes.get(desc_at..desc_at + descsz)?;
        if name == NOTE_OWNER && kind == NOTE_TYPE {
            return Some(desc);
        }
        notes = notes.get(desc_at + pad(descsz)..)?;
    }
    None
}

/// The plugin to run in-process for the delegate binary at `path`: `Some` only when the file
/// is one of this crate's plugins from this very build.
pub fn same_build_plugin(path: &Path) -> Option<&'static dyn Plugin> {
    if std::env::var_os("CNI_REF_NO_INPROCESS_DELEGATE").is_some() {
        return None;
    }
    let note = note_of(path)?;
    let text = std::str::from_utf8(&note).ok()?;
    let (name, token) = text.split_once(':')?;
    if token != BUILD_TOKEN {
        return None;
    }
    match name {
        "host-local" => Some(&crate::host_local::HostLocal),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(name: &[u8], kind: u32, desc: &[u8]) -> Vec<u8> {
        let pad = |v: &mut Vec<u8>| {
            while v.len() % 4 != 0 {
                v.push(0);
            }
        };
        let mut v = Vec::new();
        v.extend_from_slice(&(name.len() as u32).to_le_bytes());
        v.extend_from_slice(&(desc.len() as u32).to_le_bytes());
        v.extend_from_slice(&kind.to_le_bytes());
        v.extend_from_slice(name);
        pad(&mut v);
        v.extend_from_slice(desc);
        pad(&mut v);
        v
    }

    #[test]
    fn finds_our_note_after_others() {
        let mut seg = note(b"GNU\0", 3, &[1; 20]);
        seg.extend(note(b"CNI-REF\0", 1, b"host-local:abc"));
        assert_eq!(find_note(&seg), Some(&b"host-local:abc"[..]));
    }

    #[test]
    fn ignores_other_owners_types_and_truncation() {
        assert_eq!(find_note(&note(b"CNI-REF\0", 2, b"x")), None);
        assert_eq!(find_note(&note(b"GNU\0", 1, b"x")), None);
        let seg = note(b"CNI-REF\0", 1, b"host-local:abc");
        assert_eq!(find_note(&seg[..seg.len() - 8]), None);
    }

    #[test]
    fn non_elf_files_have_no_note() {
        assert_eq!(note_of(Path::new("/proc/self/status")), None);
        assert_eq!(note_of(Path::new("/nonexistent/host-local")), None);
    }
}
