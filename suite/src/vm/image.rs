//! The guest's root file system as a list of entries, filled from the host, keyed by content and
//! written once as a newc cpio into the cache.
//!
//! Host files keep their absolute paths in the guest, and every symbolic link met on the way to
//! them is recorded too (`/lib64` → `usr/lib64` on a merged-/usr system), so the guest's layout is
//! the host's and a loader path baked into a binary resolves the same way. Paths placed directly
//! (the kernel modules, the init) follow links already in the image or on the host, so a directory
//! never collides with a link of the same name.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use super::cpio;
use super::elf;
use crate::hash::ContentDigest;

/// Where a file's bytes come from.
#[derive(Debug, Clone)]
pub enum Content {
    /// A host file, copied as is.
    Host(PathBuf),
    /// A host executable whose debug sections are dropped when the image is written (the suite's
    /// debug build is ten times larger with them). The cache key is taken from the unstripped file.
    HostStripped(PathBuf),
    /// Bytes made here.
    Bytes(Vec<u8>),
}

#[derive(Debug, Clone)]
enum Node {
    Dir,
    Symlink(String),
    File { perm: u32, content: Content },
    CharDevice { major: u32, minor: u32 },
}

/// Errors building an image.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// A host file could not be read.
    #[error("cannot read {path} for the VM image: {source}")]
    Read {
        /// The host path.
        path: String,
        /// The OS error.
        source: io::Error,
    },
    /// A shared library named by an executable was not found on the host.
    #[error("{binary} needs {soname}, which is not in any library directory on this machine")]
    MissingLibrary {
        /// The binary.
        binary: String,
        /// The library's soname.
        soname: String,
    },
    /// Too many symbolic links.
    #[error("too many levels of symbolic links resolving {0}")]
    Loop(String),
    /// Writing the archive failed.
    #[error("cannot write the VM image {path}: {source}")]
    Write {
        /// The archive path.
        path: String,
        /// The OS error.
        source: io::Error,
    },
}

fn read_err(path: &Path) -> impl FnOnce(io::Error) -> ImageError + '_ {
    move |source| ImageError::Read {
        path: path.display().to_string(),
        source,
    }
}

/// Guest path components of an absolute or relative path, normalised ("." dropped, ".." applied).
fn components(path: &Path) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(s) => out.push(s.to_string_lossy().into_owned()),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// The guest root file system being assembled.
#[derive(Debug, Default)]
pub struct Image {
    nodes: BTreeMap<String, Node>,
    elf_done: BTreeSet<PathBuf>,
}

/// Library directories searched after `DT_RUNPATH`, like the loader's defaults plus ld.so.conf.
fn library_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/etc/ld.so.conf.d") {
        let mut confs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        confs.sort();
        for conf in confs {
            if let Ok(text) = std::fs::read_to_string(&conf) {
                for line in text.lines().map(str::trim) {
                    if line.starts_with('/') {
                        dirs.push(PathBuf::from(line));
                    }
                }
            }
        }
    }
    for d in [
        "/lib/x86_64-linux-gnu",
        "/usr/lib/x86_64-linux-gnu",
        "/lib64",
        "/usr/lib64",
        "/lib",
        "/usr/lib",
    ] {
        dirs.push(PathBuf::from(d));
    }
    dirs
}

impl Image {
    /// An empty image.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True when nothing was added.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// True when the image holds something (file, link or directory) at this guest path.
    pub fn contains(&self, path: &Path) -> bool {
        self.nodes.contains_key(&components(path).join("/"))
    }

    /// Resolves the parent directories of `path` through links already in the image or, where the
    /// image has nothing yet, on the host (recording those links); creates the directories; and
    /// returns the final guest path (relative, '/'-joined) where the last component goes.
    fn place(&mut self, path: &Path) -> Result<String, ImageError> {
        let mut pending: VecDeque<String> = components(path).into();
        let mut done: Vec<String> = Vec::new();
        let mut hops = 0;
        while pending.len() > 1 {
            let Some(part) = pending.pop_front() else { break };
            let key = if done.is_empty() {
                part.clone()
            } else {
                format!("{}/{part}", done.join("/"))
            };
            let link = match self.nodes.get(&key) {
                Some(Node::Symlink(t)) => Some(t.clone()),
                Some(_) => None,
                None => {
                    let host = Path::new("/").join(&key);
                    match std::fs::symlink_metadata(&host) {
                        Ok(m) if m.file_type().is_symlink() => {
                            let t = std::fs::read_link(&host).map_err(read_err(&host))?;
                            let t = t.to_string_lossy().into_owned();
                            self.nodes.insert(key.clone(), Node::Symlink(t.clone()));
                            Some(t)
                        }
                        _ => {
                            self.nodes.insert(key.clone(), Node::Dir);
                            None
                        }
                    }
                }
            };
            match link {
                Some(target) => {
                    hops += 1;
                    if hops > 40 {
                        return Err(ImageError::Loop(path.display().to_string()));
                    }
                    // Restart from the root with the link's target followed by what is left.
                    let base = Path::new("/").join(done.join("/"));
                    let mut spliced: VecDeque<String> = components(&base.join(&target)).into();
                    spliced.extend(pending.drain(..));
                    pending = spliced;
                    done.clear();
                }
                None => done.push(part),
            }
        }
        done.extend(pending);
        Ok(done.join("/"))
    }

    /// Adds a directory.
    pub fn add_dir(&mut self, path: &Path) -> Result<(), ImageError> {
        let key = self.place(&path.join("x"))?;
        let dir = key.rsplit_once('/').map(|(d, _)| d.to_string()).unwrap_or_default();
        if !dir.is_empty() {
            self.nodes.entry(dir).or_insert(Node::Dir);
        }
        Ok(())
    }

    /// Adds a file with the given content and permission bits at `path`.
    pub fn add_file(&mut self, path: &Path, perm: u32, content: Content) -> Result<(), ImageError> {
        let key = self.place(path)?;
        self.nodes.insert(key, Node::File { perm, content });
        Ok(())
    }

    /// Adds a symbolic link.
    pub fn add_symlink(&mut self, path: &Path, target: &str) -> Result<(), ImageError> {
        let key = self.place(path)?;
        self.nodes.insert(key, Node::Symlink(target.to_string()));
        Ok(())
    }

    /// Adds a character device node.
    pub fn add_char_device(&mut self, path: &Path, major: u32, minor: u32) -> Result<(), ImageError> {
        let key = self.place(path)?;
        self.nodes.insert(key, Node::CharDevice { major, minor });
        Ok(())
    }

    /// Adds a host file at its own path, recording every link on the way; returns the host path of
    /// the regular file finally reached.
    pub fn add_host_file(&mut self, path: &Path) -> Result<PathBuf, ImageError> {
        let mut current = std::path::absolute(path).map_err(read_err(path))?;
        for _ in 0..40 {
            let key = self.place(&current)?;
            let host = Path::new("/").join(&key);
            let meta = std::fs::symlink_metadata(&host).map_err(read_err(&host))?;
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&host).map_err(read_err(&host))?;
                self.nodes
                    .insert(key, Node::Symlink(target.to_string_lossy().into_owned()));
                current = host.parent().unwrap_or(Path::new("/")).join(target);
                continue;
            }
            if meta.is_dir() {
                self.nodes.entry(key).or_insert(Node::Dir);
            } else {
                let perm = meta.permissions().mode() & 0o7777;
                self.nodes.insert(
                    key,
                    Node::File {
                        perm,
                        content: Content::Host(host.clone()),
                    },
                );
            }
            return Ok(host);
        }
        Err(ImageError::Loop(path.display().to_string()))
    }

    /// Adds a host file at `path` and, if it is a dynamically linked ELF file, its interpreter and
    /// every shared library it needs, transitively.
    pub fn add_host_binary(&mut self, path: &Path) -> Result<(), ImageError> {
        let real = self.add_host_file(path)?;
        self.add_libraries_of(&real)
    }

    /// Adds the interpreter and shared libraries of the host file `real` (already in the image).
    pub fn add_libraries_of(&mut self, real: &Path) -> Result<(), ImageError> {
        if !self.elf_done.insert(real.to_path_buf()) {
            return Ok(());
        }
        let bytes = read_head_or_all(real)?;
        let Some(dynamic) = elf::dynamic(&bytes) else {
            return Ok(());
        };
        if let Some(interp) = &dynamic.interpreter {
            self.add_host_file(Path::new(interp))?;
        }
        let origin = real.parent().unwrap_or(Path::new("/")).to_string_lossy().into_owned();
        let mut dirs: Vec<PathBuf> = dynamic
            .search
            .iter()
            .map(|d| PathBuf::from(d.replace("$ORIGIN", &origin).replace("${ORIGIN}", &origin)))
            .collect();
        dirs.extend(library_dirs());
        for soname in &dynamic.needed {
            let found = if soname.contains('/') {
                Some(PathBuf::from(soname))
            } else {
                dirs.iter().map(|d| d.join(soname)).find(|p| p.is_file())
            };
            let Some(lib) = found else {
                return Err(ImageError::MissingLibrary {
                    binary: real.display().to_string(),
                    soname: soname.clone(),
                });
            };
            let lib_real = self.add_host_file(&lib)?;
            self.add_libraries_of(&lib_real)?;
        }
        Ok(())
    }

    /// Adds every file under a host directory (following links inside it as files), with the
    /// libraries of the ELF files among them.
    pub fn add_host_tree(&mut self, dir: &Path) -> Result<(), ImageError> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(read_err(dir))?
            .flatten()
            .map(|e| e.path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                self.add_host_tree(&p)?;
            } else if p.is_file() {
                self.add_host_binary(&p)?;
            }
        }
        Ok(())
    }

    /// A content key: a digest of every path, kind, permission and byte that goes in. Digests of
    /// host files are remembered in `memo` against their identity (device, inode, size, times),
    /// so a warm run reads no large file again; a file changed in any way gets a new digest.
    pub fn key(&self, memo: &mut DigestMemo) -> Result<String, ImageError> {
        let mut key = ContentDigest::salted(b"cni-conformance initramfs, second half");
        let mut feed = |bytes: &[u8]| key.write(bytes);
        feed(b"cni-conformance initramfs v1");
        for (path, node) in &self.nodes {
            feed(path.as_bytes());
            feed(&[0]);
            match node {
                Node::Dir => feed(b"d"),
                Node::Symlink(t) => {
                    feed(b"l");
                    feed(t.as_bytes());
                }
                Node::CharDevice { major, minor } => {
                    feed(b"c");
                    feed(&major.to_le_bytes());
                    feed(&minor.to_le_bytes());
                }
                Node::File { perm, content } => {
                    feed(b"f");
                    feed(&perm.to_le_bytes());
                    match content {
                        Content::Bytes(bytes) => feed(digest_bytes(bytes).as_bytes()),
                        Content::Host(p) => feed(memo.digest(p)?.as_bytes()),
                        Content::HostStripped(p) => {
                            feed(b"stripped");
                            feed(memo.digest(p)?.as_bytes());
                        }
                    }
                }
            }
        }
        Ok(key.hex())
    }

    /// Writes the archive to `dest` (through a temporary file renamed into place, so a reader never
    /// sees half an image).
    pub fn write(&self, dest: &Path) -> Result<u64, ImageError> {
        let werr = |source: io::Error| ImageError::Write {
            path: dest.display().to_string(),
            source,
        };
        let tmp = dest.with_extension(format!("tmp{}", std::process::id()));
        let file = std::fs::File::create(&tmp).map_err(werr)?;
        let mut w = cpio::Writer::new(io::BufWriter::with_capacity(1 << 20, file));
        for (path, node) in &self.nodes {
            match node {
                Node::Dir => w.dir(path, 0o755).map_err(werr)?,
                Node::Symlink(t) => w.symlink(path, t).map_err(werr)?,
                Node::CharDevice { major, minor } => w.char_device(path, 0o600, *major, *minor).map_err(werr)?,
                Node::File { perm, content } => {
                    let data = match content {
                        Content::Bytes(b) => std::borrow::Cow::Borrowed(b.as_slice()),
                        Content::Host(p) => std::borrow::Cow::Owned(std::fs::read(p).map_err(read_err(p))?),
                        Content::HostStripped(p) => std::borrow::Cow::Owned(stripped(p)?),
                    };
                    w.file(path, *perm, &data).map_err(werr)?;
                }
            }
        }
        w.finish().map_err(werr)?;
        let size = std::fs::metadata(&tmp).map_err(werr)?.len();
        std::fs::rename(&tmp, dest).map_err(werr)?;
        Ok(size)
    }
}

/// A 128-bit digest of some bytes, as hex.
fn digest_bytes(bytes: &[u8]) -> String {
    let mut digest = ContentDigest::salted(b"second half");
    digest.write(bytes);
    digest.write_u64(bytes.len() as u64);
    digest.hex()
}

/// Digests of host files, remembered against each file's identity and kept in a small text file
/// in the cache (one line per file: device, inode, size, mtime and ctime in ns, digest, path).
#[derive(Debug, Default)]
pub struct DigestMemo {
    known: std::collections::HashMap<PathBuf, (String, String)>,
    changed: bool,
}

fn identity(meta: &std::fs::Metadata) -> String {
    use std::os::unix::fs::MetadataExt;
    format!(
        "{} {} {} {}.{} {}.{}",
        meta.dev(),
        meta.ino(),
        meta.size(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec()
    )
}

impl DigestMemo {
    /// Loads the memo file; a missing or damaged file is an empty memo.
    pub fn load(path: &Path) -> Self {
        let mut memo = DigestMemo::default();
        let Ok(text) = std::fs::read_to_string(path) else {
            return memo;
        };
        for line in text.lines() {
            let mut parts = line.splitn(6, ' ');
            let fields: Vec<&str> = parts.by_ref().take(5).collect();
            let rest = parts.next();
            if let (5, Some(rest)) = (fields.len(), rest) {
                if let Some((digest, file)) = rest.split_once(' ') {
                    memo.known
                        .insert(PathBuf::from(file), (fields.join(" "), digest.to_string()));
                }
            }
        }
        memo
    }

    /// Writes the memo back when it learnt something.
    pub fn save(&self, path: &Path) {
        if !self.changed {
            return;
        }
        let mut text = String::new();
        for (file, (id, digest)) in &self.known {
            if !file.to_string_lossy().contains('\n') {
                text.push_str(&format!("{id} {digest} {}\n", file.display()));
            }
        }
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        if std::fs::write(&tmp, text).is_ok() {
            let _ = std::fs::rename(&tmp, path);
        }
    }

    /// The digest of a host file's content.
    pub fn digest(&mut self, path: &Path) -> Result<String, ImageError> {
        let meta = std::fs::metadata(path).map_err(read_err(path))?;
        let id = identity(&meta);
        if let Some((known_id, digest)) = self.known.get(path) {
            if *known_id == id {
                return Ok(digest.clone());
            }
        }
        let mut content = ContentDigest::salted(b"second half");
        let mut f = std::fs::File::open(path).map_err(read_err(path))?;
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            let n = f.read(&mut buf).map_err(read_err(path))?;
            if n == 0 {
                break;
            }
            total += n as u64;
            content.write(&buf[..n]);
        }
        content.write_u64(total);
        let digest = content.hex();
        self.known.insert(path.to_path_buf(), (id, digest.clone()));
        self.changed = true;
        Ok(digest)
    }
}

/// The whole file (ELF headers can point anywhere in it).
fn read_head_or_all(path: &Path) -> Result<Vec<u8>, ImageError> {
    std::fs::read(path).map_err(read_err(path))
}

/// The file without debug sections, by `objcopy --strip-debug`; the file itself when objcopy is
/// missing or fails.
fn stripped(path: &Path) -> Result<Vec<u8>, ImageError> {
    let tmp = std::env::temp_dir().join(format!("cni-conformance-strip-{}", std::process::id()));
    let ok = std::process::Command::new("objcopy")
        .arg("--strip-debug")
        .arg(path)
        .arg(&tmp)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let data = if ok { std::fs::read(&tmp).ok() } else { None };
    let _ = std::fs::remove_file(&tmp);
    match data {
        Some(d) => Ok(d),
        None => std::fs::read(path).map_err(read_err(path)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_links_are_mirrored_and_placed_paths_follow_them() {
        let mut img = Image::new();
        // /bin/sh is a link on Debian (to dash); its libraries come through /lib64 and /lib.
        img.add_host_binary(Path::new("/bin/sh")).unwrap();
        assert!(img.len() > 3);
        // A path placed under a host link lands where the link points.
        img.add_file(
            Path::new("/lib/modules/x/modules.dep"),
            0o644,
            Content::Bytes(b"a\n".to_vec()),
        )
        .unwrap();
        if std::fs::symlink_metadata("/lib").unwrap().file_type().is_symlink() {
            assert!(img.contains(Path::new("/usr/lib/modules/x/modules.dep")));
            assert!(matches!(img.nodes.get("lib"), Some(Node::Symlink(_))));
        } else {
            assert!(img.contains(Path::new("/lib/modules/x/modules.dep")));
        }
        let mut memo = DigestMemo::default();
        let k1 = img.key(&mut memo).unwrap();
        img.add_file(Path::new("/etc/x"), 0o644, Content::Bytes(b"1".to_vec()))
            .unwrap();
        let k2 = img.key(&mut memo).unwrap();
        img.add_file(Path::new("/etc/x"), 0o644, Content::Bytes(b"2".to_vec()))
            .unwrap();
        let k3 = img.key(&mut memo).unwrap();
        assert!(k1 != k2 && k2 != k3 && k1 != k3);
    }

    #[test]
    fn remembered_digests_follow_file_changes() {
        let dir = std::env::temp_dir().join(format!("cni-conformance-memo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("f");
        std::fs::write(&file, b"one").unwrap();
        let mut memo = DigestMemo::default();
        let d1 = memo.digest(&file).unwrap();
        memo.save(&dir.join("memo"));
        let mut memo = DigestMemo::load(&dir.join("memo"));
        assert_eq!(memo.digest(&file).unwrap(), d1);
        assert!(!memo.changed, "a known file must not be read again");
        std::fs::write(&file, b"two").unwrap();
        assert_ne!(memo.digest(&file).unwrap(), d1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
