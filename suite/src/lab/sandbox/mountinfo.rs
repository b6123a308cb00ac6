//! The machine's mount table, as `/proc/self/mountinfo` lists it: where each file system is
//! mounted and of which type. The sandbox plan needs both to decide what it can overlay.

use std::path::PathBuf;

/// One mounted file system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Where it is mounted (decoded: `\040` is a space).
    pub point: PathBuf,
    /// Its file-system type (`ext4`, `proc`, `overlay`, …).
    pub fstype: String,
}

/// File-system types that hold kernel state rather than files: never overlaid or copied.
const PSEUDO: &[&str] = &[
    "proc",
    "sysfs",
    "cgroup",
    "cgroup2",
    "devpts",
    "devtmpfs",
    "mqueue",
    "debugfs",
    "tracefs",
    "securityfs",
    "pstore",
    "bpf",
    "configfs",
    "fusectl",
    "hugetlbfs",
    "binfmt_misc",
    "autofs",
    "efivarfs",
    "nsfs",
    "rpc_pipefs",
    "selinuxfs",
];

impl Mount {
    /// True for file systems of kernel state (proc, sysfs, cgroup, …).
    pub fn is_pseudo(&self) -> bool {
        PSEUDO.contains(&self.fstype.as_str())
    }
}

/// Parses mountinfo text; lines that do not parse are left out.
pub fn parse(text: &str) -> Vec<Mount> {
    text.lines().filter_map(parse_line).collect()
}

/// Reads the calling process's mount table.
pub fn read() -> std::io::Result<Vec<Mount>> {
    Ok(parse(&std::fs::read_to_string("/proc/self/mountinfo")?))
}

fn parse_line(line: &str) -> Option<Mount> {
    // id parent major:minor root point options [optional fields...] - fstype source super-options
    let (head, tail) = line.split_once(" - ")?;
    let point = head.split(' ').nth(4)?;
    let fstype = tail.split(' ').next()?;
    Some(Mount {
        point: PathBuf::from(unescape(point)),
        fstype: fstype.to_string(),
    })
}

/// Undoes the kernel's octal escapes (`\040` space, `\011` tab, `\012` newline, `\134` backslash).
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_points_types_and_escapes() {
        let text = "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n\
                    22 27 0:21 / /proc rw,relatime - proc proc rw\n\
                    28 27 0:25 / /mnt/a\\040b ro shared:5 - tmpfs none ro\n\
                    garbage\n";
        let m = parse(text);
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].point, PathBuf::from("/"));
        assert_eq!(m[0].fstype, "ext4");
        assert!(m[1].is_pseudo());
        assert_eq!(m[2].point, PathBuf::from("/mnt/a b"));
        assert!(!m[2].is_pseudo());
    }
}
