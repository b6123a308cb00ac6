//! An owner index for one network's store, so ADD and DEL do not read every reservation file.
//!
//! The upstream store has no index: finding the addresses of `(containerID, ifname)` means
//! reading every file, which made ADD and DEL grow linearly with the number of attachments.
//! The store itself must stay byte-compatible, so the index lives *outside* it, in
//! `/run/cni-ref-host-local/<hash of the network directory>/` (override of the base:
//! `CNI_REF_HOST_LOCAL_INDEX_DIR`): one small file per owner (`o<hash of owner>`, holding the
//! owner and its addresses) and a `stamp` file. Looking up or updating one owner touches one
//! file, so the cost does not depend on how many attachments exist. It is only a cache:
//!
//! - `stamp` records the network directory's identity and its mtime/ctime (nanoseconds) at the
//!   time the index was last known exact; it is removed before the first change an operation
//!   makes and written again at its end, so a process killed in between leaves no stamp. Every writer, ours or upstream's, changes the directory when it creates,
//!   removes or renames a file, and does so under the store lock; so while the lock is held, an
//!   unchanged stamp means the index is exact, and any other stamp means "scan and rebuild";
//! - an address the index names is still verified against its file before it is acted on;
//!   (writers create and remove reservation files, they never rewrite one in place; a file
//!   whose content is edited in place by hand is therefore only noticed when it is acted on,
//!   not when the index says an owner has no address);
//! - it is only read and written while the store lock is held; files are replaced with a
//!   temporary file and a rename;
//! - if it cannot be read or written, the store simply scans, as upstream does.
//!
//! Directory timestamps are often coarse (one clock tick, e.g. 4–16 ms): a foreign writer that
//! changes the directory in the same tick as our last change would leave the mtime as it was.
//! So before saving, the index sets the directory's mtime to its current value plus one
//! nanosecond, a value the kernel's clock does not produce within that tick; any later create,
//! remove or rename by anyone moves the mtime off it. When the mtime cannot be set (no
//! permission), no index is kept and the store scans, as upstream does.

use super::store::Owner;
use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

const DEFAULT_BASE: &str = "/run/cni-ref-host-local";
const MAGIC: &str = "cni-ref-host-local-index v2";
const STAMP: &str = "stamp";
const LEGACY_IFNAME: &str = "\u{1}";

/// What identifies the state of a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(dir: &Path) -> Option<Stamp> {
        let m = fs::metadata(dir).ok()?;
        Some(Stamp {
            dev: m.dev(),
            ino: m.ino(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }

    fn render(&self) -> String {
        format!(
            "{} {} {} {} {} {}",
            self.dev, self.ino, self.mtime.0, self.mtime.1, self.ctime.0, self.ctime.1
        )
    }
}

fn owner_key(owner: &Owner) -> String {
    format!(
        "{}\t{}",
        owner.container_id,
        owner.ifname.as_deref().unwrap_or(LEGACY_IFNAME)
    )
}

/// Write `text` to `path` through a temporary file and a rename.
fn replace_file(path: &Path, text: &str) -> bool {
    let temp = path.with_extension("tmp");
    let ok = fs::File::create(&temp)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .and_then(|_| fs::rename(&temp, path))
        .is_ok();
    if !ok {
        let _ = fs::remove_file(&temp);
    }
    ok
}

/// Move the directory's mtime one nanosecond past its current value (see the module docs).
fn nudge_mtime(dir: &Path) -> bool {
    let Ok(meta) = fs::metadata(dir) else {
        return false;
    };
    let (mut secs, mut nanos) = (meta.mtime(), meta.mtime_nsec() + 1);
    if nanos >= 1_000_000_000 {
        secs += 1;
        nanos = 0;
    }
    let Ok(c_path) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    let times = [
        libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        libc::timespec {
            tv_sec: secs as libc::time_t,
            tv_nsec: nanos as libc::c_long,
        },
    ];
    // SAFETY: valid NUL-terminated path and a two-element timespec array.
    unsafe { libc::utimensat(libc::AT_FDCWD, c_path.as_ptr(), times.as_ptr(), 0) == 0 }
}

/// The owner index of one network directory.
#[derive(Debug)]
pub struct IndexDir {
    dir: PathBuf,
    network_dir: PathBuf,
}

impl IndexDir {
    /// The index of `network_dir`, or `None` when no location can be derived.
    pub fn for_network(network_dir: &Path) -> Option<IndexDir> {
        let base = std::env::var_os("CNI_REF_HOST_LOCAL_INDEX_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_BASE));
        let network_dir = std::path::absolute(network_dir).ok()?;
        let hash = crate::hash::fnv1a(network_dir.as_os_str().as_encoded_bytes());
        Some(IndexDir {
            dir: base.join(format!("{hash:016x}")),
            network_dir,
        })
    }

    fn stamp_text(&self) -> Option<String> {
        let stamp = Stamp::of(&self.network_dir)?;
        Some(format!(
            "{MAGIC}\n{}\n{}\n",
            self.network_dir.to_string_lossy(),
            stamp.render()
        ))
    }

    /// Whether the stored stamp says the index is exact for the directory as it is now.
    pub fn is_current(&self) -> bool {
        match (fs::read_to_string(self.dir.join(STAMP)), self.stamp_text()) {
            (Ok(stored), Some(now)) => stored == now,
            _ => false,
        }
    }

    /// Forget the stamp (before a change, or when the index cannot be trusted).
    pub fn invalidate(&self) {
        let _ = fs::remove_file(self.dir.join(STAMP));
    }

    /// Make the index exact for the directory as it is now: nudge its mtime, record the stamp.
    pub fn seal(&self) -> bool {
        if !nudge_mtime(&self.network_dir) {
            self.invalidate();
            return false;
        }
        match self.stamp_text() {
            Some(text) => replace_file(&self.dir.join(STAMP), &text),
            None => false,
        }
    }

    fn owner_path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("o{:016x}", crate::hash::fnv1a(key.as_bytes())))
    }

    /// Replace the whole index with `reservations` (after a full scan). Not sealed.
    pub fn rebuild(&self, reservations: &[(IpAddr, Owner)]) -> bool {
        let _ = fs::remove_dir_all(&self.dir);
        if fs::create_dir_all(&self.dir).is_err() {
            return false;
        }
        let mut by_owner: std::collections::BTreeMap<String, Vec<IpAddr>> = Default::default();
        for (ip, owner) in reservations {
            by_owner.entry(owner_key(owner)).or_default().push(*ip);
        }
        by_owner.iter().all(|(key, ips)| self.write_owner(key, ips))
    }

    fn write_owner(&self, key: &str, ips: &[IpAddr]) -> bool {
        if key.contains('\n') {
            return false;
        }
        let path = self.owner_path(key);
        if ips.is_empty() {
            return match fs::remove_file(&path) {
                Ok(()) => true,
                Err(e) => e.kind() == std::io::ErrorKind::NotFound,
            };
        }
        let mut text = format!("{key}\n");
        for ip in ips {
            text.push_str(&format!("{ip}\n"));
        }
        replace_file(&path, &text)
    }

    /// The addresses recorded for `owner`; `None` when the index cannot answer (unreadable
    /// file, or another owner with the same hash).
    pub fn get(&self, owner: &Owner) -> Option<Vec<IpAddr>> {
        let key = owner_key(owner);
        let text = match fs::read_to_string(self.owner_path(&key)) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Some(Vec::new()),
            Err(_) => return None,
        };
        let mut lines = text.lines();
        if lines.next()? != key {
            return None;
        }
        lines.map(|l| l.parse::<IpAddr>().ok()).collect()
    }

    /// Record that `owner` now also holds `ip`.
    pub fn insert(&self, ip: IpAddr, owner: &Owner) -> bool {
        let Some(mut ips) = self.get(owner) else {
            return false;
        };
        if !ips.contains(&ip) {
            ips.push(ip);
        }
        self.write_owner(&owner_key(owner), &ips)
    }

    /// Record that `owner` no longer holds `ip`.
    pub fn remove(&self, ip: IpAddr, owner: &Owner) -> bool {
        let Some(mut ips) = self.get(owner) else {
            return false;
        };
        ips.retain(|i| *i != ip);
        self.write_owner(&owner_key(owner), &ips)
    }
}
