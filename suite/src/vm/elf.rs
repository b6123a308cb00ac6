//! Just enough of ELF64 (little-endian) to pack a guest: the program interpreter and `DT_NEEDED`
//! libraries of an executable, and the `.modinfo` strings of a kernel module.
//!
//! Reading the headers ourselves instead of running `ldd` keeps a warm `--vm` run fast (`ldd` over
//! the xtables extensions alone takes seconds here) and never executes the files it inspects.

/// What a dynamically linked ELF file asks of the loader.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Dynamic {
    /// `PT_INTERP`: the program interpreter, for executables.
    pub interpreter: Option<String>,
    /// `DT_NEEDED` sonames, in order.
    pub needed: Vec<String>,
    /// `DT_RUNPATH`, or else `DT_RPATH`, split on ':'.
    pub search: Vec<String>,
}

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;
const DT_STRTAB: u64 = 5;
const DT_RPATH: u64 = 15;
const DT_RUNPATH: u64 = 29;

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    b.get(off..off + 2).map(|s| u16::from_le_bytes([s[0], s[1]]))
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    b.get(off..off + 4)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_le_bytes)
}

fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    b.get(off..off + 8)
        .and_then(|s| s.try_into().ok())
        .map(u64::from_le_bytes)
}

fn cstr_at(b: &[u8], off: usize) -> Option<String> {
    let tail = b.get(off..)?;
    let end = tail.iter().position(|&c| c == 0)?;
    Some(String::from_utf8_lossy(&tail[..end]).into_owned())
}

/// True when `bytes` start like a 64-bit little-endian ELF file.
pub fn is_elf64(bytes: &[u8]) -> bool {
    bytes.len() >= 64 && &bytes[..4] == b"\x7fELF" && bytes[4] == 2 && bytes[5] == 1
}

struct Segment {
    kind: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
}

fn segments(b: &[u8]) -> Option<Vec<Segment>> {
    let phoff = usize::try_from(u64_at(b, 0x20)?).ok()?;
    let phentsize = usize::from(u16_at(b, 0x36)?);
    let phnum = usize::from(u16_at(b, 0x38)?);
    (0..phnum)
        .map(|i| {
            let at = phoff.checked_add(i.checked_mul(phentsize)?)?;
            Some(Segment {
                kind: u32_at(b, at)?,
                offset: u64_at(b, at + 8)?,
                vaddr: u64_at(b, at + 16)?,
                filesz: u64_at(b, at + 32)?,
            })
        })
        .collect()
}

/// The loader's view of an ELF file; `None` when it is not a 64-bit little-endian ELF file or its
/// headers are cut short. A static executable has an empty [`Dynamic`].
pub fn dynamic(b: &[u8]) -> Option<Dynamic> {
    if !is_elf64(b) {
        return None;
    }
    let segs = segments(b)?;
    let mut out = Dynamic::default();
    if let Some(interp) = segs.iter().find(|s| s.kind == PT_INTERP) {
        out.interpreter = cstr_at(b, usize::try_from(interp.offset).ok()?);
    }
    let Some(dynseg) = segs.iter().find(|s| s.kind == PT_DYNAMIC) else {
        return Some(out);
    };
    let mut entries = Vec::new();
    let start = usize::try_from(dynseg.offset).ok()?;
    let count = usize::try_from(dynseg.filesz).ok()? / 16;
    for i in 0..count {
        let tag = u64_at(b, start + i * 16)?;
        let val = u64_at(b, start + i * 16 + 8)?;
        if tag == DT_NULL {
            break;
        }
        entries.push((tag, val));
    }
    let strtab_addr = entries.iter().find(|(t, _)| *t == DT_STRTAB)?.1;
    // DT_STRTAB is a virtual address: map it back to a file offset through the load segments.
    let strtab = segs
        .iter()
        .filter(|s| s.kind == PT_LOAD)
        .find(|s| strtab_addr >= s.vaddr && strtab_addr < s.vaddr + s.filesz)
        .map(|s| strtab_addr - s.vaddr + s.offset)?;
    let string = |v: u64| cstr_at(b, usize::try_from(strtab.checked_add(v)?).ok()?);
    let mut rpath = Vec::new();
    for (tag, val) in entries {
        match tag {
            DT_NEEDED => out.needed.extend(string(val)),
            DT_RUNPATH => out.search = string(val).map(split_path).unwrap_or_default(),
            DT_RPATH => rpath = string(val).map(split_path).unwrap_or_default(),
            _ => {}
        }
    }
    if out.search.is_empty() {
        out.search = rpath;
    }
    Some(out)
}

fn split_path(s: String) -> Vec<String> {
    s.split(':').filter(|p| !p.is_empty()).map(str::to_string).collect()
}

/// The bytes of the section called `name`, if the file has one.
pub fn section<'a>(b: &'a [u8], name: &str) -> Option<&'a [u8]> {
    if !is_elf64(b) {
        return None;
    }
    let shoff = usize::try_from(u64_at(b, 0x28)?).ok()?;
    let shentsize = usize::from(u16_at(b, 0x3A)?);
    let shnum = usize::from(u16_at(b, 0x3C)?);
    let shstrndx = usize::from(u16_at(b, 0x3E)?);
    let header = |i: usize| shoff.checked_add(i.checked_mul(shentsize)?);
    let names_at = usize::try_from(u64_at(b, header(shstrndx)? + 24)?).ok()?;
    for i in 0..shnum {
        let h = header(i)?;
        let sh_name = usize::try_from(u32_at(b, h)?).ok()?;
        if cstr_at(b, names_at.checked_add(sh_name)?).as_deref() == Some(name) {
            let off = usize::try_from(u64_at(b, h + 24)?).ok()?;
            let size = usize::try_from(u64_at(b, h + 32)?).ok()?;
            return b.get(off..off.checked_add(size)?);
        }
    }
    None
}

/// The `key=value` strings of a kernel module's `.modinfo` section.
pub fn modinfo(b: &[u8]) -> Vec<(String, String)> {
    let Some(sec) = section(b, ".modinfo") else {
        return Vec::new();
    };
    sec.split(|&c| c == 0)
        .filter_map(|s| {
            let s = String::from_utf8_lossy(s);
            let (k, v) = s.split_once('=')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_loader_view_of_a_host_binary() {
        // /bin/sh exists everywhere this suite runs; on glibc systems it is dynamic.
        let bytes = std::fs::read("/bin/sh").unwrap();
        let d = dynamic(&bytes).expect("/bin/sh is ELF64");
        assert!(
            d.interpreter.as_deref().is_some_and(|i| i.contains("ld-linux")),
            "{d:?}"
        );
        assert!(d.needed.iter().any(|n| n.starts_with("libc.so")), "{d:?}");
    }

    #[test]
    fn rejects_what_is_not_elf() {
        assert!(dynamic(b"#!/bin/sh\necho hi\n").is_none());
        assert!(dynamic(&[0x7f, b'E', b'L', b'F', 2, 1]).is_none());
        assert!(modinfo(b"nothing").is_empty());
    }
}
