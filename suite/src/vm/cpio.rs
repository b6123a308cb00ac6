//! A writer for the "newc" cpio format the kernel unpacks as an initramfs.
//!
//! Format facts: each entry is the magic `070701`, thirteen 8-digit hex fields (ino, mode, uid,
//! gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor, namesize including the
//! NUL, check), the name and its NUL padded to 4 bytes, then the data padded to 4 bytes. The
//! archive ends with an entry named `TRAILER!!!`.

use std::io::{self, Write};

/// File type bits of `st_mode`.
pub const S_IFDIR: u32 = 0o040_000;
/// Regular file.
pub const S_IFREG: u32 = 0o100_000;
/// Symbolic link.
pub const S_IFLNK: u32 = 0o120_000;
/// Character device.
pub const S_IFCHR: u32 = 0o020_000;

/// Streams entries into a newc archive.
pub struct Writer<W: Write> {
    out: W,
    next_ino: u32,
    written: u64,
}

impl<W: Write> Writer<W> {
    /// Starts an archive on `out`.
    pub fn new(out: W) -> Self {
        Writer {
            out,
            next_ino: 1,
            written: 0,
        }
    }

    fn pad(&mut self) -> io::Result<()> {
        let rem = (4 - (self.written % 4) as usize) % 4;
        self.out.write_all(&[0u8; 3][..rem])?;
        self.written += rem as u64;
        Ok(())
    }

    fn header(&mut self, name: &str, mode: u32, size: usize, rdev: (u32, u32)) -> io::Result<()> {
        let size = u32::try_from(size).map_err(|_| io::Error::other(format!("{name}: too large for cpio")))?;
        let nlink = if mode & S_IFDIR == S_IFDIR { 2 } else { 1 };
        let ino = self.next_ino;
        self.next_ino += 1;
        let fields = [
            ino,
            mode,
            0,
            0,
            nlink,
            0,
            size,
            0,
            0,
            rdev.0,
            rdev.1,
            name.len() as u32 + 1,
            0,
        ];
        let mut head = String::with_capacity(110);
        head.push_str("070701");
        for f in fields {
            head.push_str(&format!("{f:08x}"));
        }
        self.out.write_all(head.as_bytes())?;
        self.out.write_all(name.as_bytes())?;
        self.out.write_all(&[0])?;
        self.written += 110 + name.len() as u64 + 1;
        self.pad()
    }

    /// A directory (`name` without a leading '/').
    pub fn dir(&mut self, name: &str, perm: u32) -> io::Result<()> {
        self.header(name, S_IFDIR | perm, 0, (0, 0))
    }

    /// A regular file with its content.
    pub fn file(&mut self, name: &str, perm: u32, data: &[u8]) -> io::Result<()> {
        self.header(name, S_IFREG | perm, data.len(), (0, 0))?;
        self.out.write_all(data)?;
        self.written += data.len() as u64;
        self.pad()
    }

    /// A symbolic link to `target`.
    pub fn symlink(&mut self, name: &str, target: &str) -> io::Result<()> {
        self.header(name, S_IFLNK | 0o777, target.len(), (0, 0))?;
        self.out.write_all(target.as_bytes())?;
        self.written += target.len() as u64;
        self.pad()
    }

    /// A character device node.
    pub fn char_device(&mut self, name: &str, perm: u32, major: u32, minor: u32) -> io::Result<()> {
        self.header(name, S_IFCHR | perm, 0, (major, minor))
    }

    /// Writes the trailer and returns the sink.
    pub fn finish(mut self) -> io::Result<W> {
        self.header("TRAILER!!!", 0, 0, (0, 0))?;
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_aligned_and_readable_by_cpio() {
        let mut w = Writer::new(Vec::new());
        w.dir("etc", 0o755).unwrap();
        w.file("etc/hello", 0o644, b"hi\n").unwrap();
        w.symlink("etc/link", "hello").unwrap();
        w.char_device("console", 0o600, 5, 1).unwrap();
        let bytes = w.finish().unwrap();
        assert_eq!(bytes.len() % 4, 0);
        assert!(bytes.starts_with(b"070701"));
        // Header of "etc": 110 bytes + "etc\0" = 114, padded to 116.
        assert_eq!(&bytes[116..122], b"070701");
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("TRAILER!!!"));
        // Cross-check with the system's cpio when it is there.
        if std::path::Path::new("/usr/bin/cpio").exists() {
            use std::io::Write as _;
            let mut child = std::process::Command::new("cpio")
                .args(["-t", "--quiet"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            child.stdin.take().unwrap().write_all(&bytes).unwrap();
            let out = child.wait_with_output().unwrap();
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                "etc\netc/hello\netc/link\nconsole\n"
            );
        }
    }
}
