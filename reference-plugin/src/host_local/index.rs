//! An owner index for one network's store, so ADD and DEL do not read every reservation file.
//!
//! The upstream store has no index: finding the addresses of `(containerID, ifname)` means
//! reading every file, which made ADD and DEL grow linearly with the number of attachments.
//! The store itself must stay byte-compatible, so the index lives *outside* it, in
//! `/run/cni-ref-host-local/` (override: `CNI_REF_HOST_LOCAL_INDEX_DIR`), one file per network
//! directory, and is only a cache:
//!
//! - it records the network directory's identity and its mtime/ctime (nanoseconds) at the time
//!   it was written. Every writer, ours or upstream's, changes the directory when it creates,
//!   removes or renames a file, and does so under the store lock; so while the lock is held, an
//!   unchanged stamp means the index is exact, and any other stamp means "scan and rebuild";
//! - an address the index names is still verified against its file before it is acted on;
//!   (writers create and remove reservation files, they never rewrite one in place; a file
//!   whose content is edited in place by hand is therefore only noticed when it is acted on,
//!   not when the index says an owner has no address);
//! - it is written (temporary file + rename) while the store lock is held;
//! - if it cannot be read or written, the store simply scans, as upstream does.
//!
//! Directory timestamps are often coarse (one clock tick, e.g. 4–16 ms): a foreign writer that
//! changes the directory in the same tick as our last change would leave the mtime as it was.
//! So before saving, the index sets the directory's mtime to its current value plus one
//! nanosecond, a value the kernel's clock does not produce within that tick; any later create,
//! remove or rename by anyone moves the mtime off it. When the mtime cannot be set (no
//! permission), no index is kept and the store scans, as upstream does.

use super::store::Owner;
use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

const DEFAULT_DIR: &str = "/run/cni-ref-host-local";
const MAGIC: &str = "cni-ref-host-local-index v1";

/// What identifies the state of a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    dev: u64,
    ino: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    /// The stamp of `dir` now.
    pub fn of(dir: &Path) -> Option<Stamp> {
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

    fn parse(text: &str) -> Option<Stamp> {
        let n: Vec<i64> = text
            .split(' ')
            .map(|p| p.parse::<i64>().ok())
            .collect::<Option<Vec<_>>>()?;
        if n.len() != 6 {
            return None;
        }
        Some(Stamp {
            dev: n[0] as u64,
            ino: n[1] as u64,
            mtime: (n[2], n[3]),
            ctime: (n[4], n[5]),
        })
    }
}

/// The owner → addresses map of one network directory.
#[derive(Debug, Default)]
pub struct OwnerIndex {
    by_owner: HashMap<(String, Option<String>), Vec<IpAddr>>,
}

impl OwnerIndex {
    /// Build from a full scan.
    pub fn from_scan(reservations: impl IntoIterator<Item = (IpAddr, Owner)>) -> OwnerIndex {
        let mut index = OwnerIndex::default();
        for (ip, owner) in reservations {
            index.insert(ip, &owner);
        }
        index
    }

    /// Record a reservation.
    pub fn insert(&mut self, ip: IpAddr, owner: &Owner) {
        let ips = self
            .by_owner
            .entry((owner.container_id.clone(), owner.ifname.clone()))
            .or_default();
        if !ips.contains(&ip) {
            ips.push(ip);
        }
    }

    /// Forget a reservation.
    pub fn remove(&mut self, ip: IpAddr) {
        self.by_owner.retain(|_, ips| {
            ips.retain(|i| *i != ip);
            !ips.is_empty()
        });
    }

    /// The addresses recorded for an owner.
    pub fn get(&self, container_id: &str, ifname: Option<&str>) -> Vec<IpAddr> {
        self.by_owner
            .get(&(container_id.to_string(), ifname.map(str::to_string)))
            .cloned()
            .unwrap_or_default()
    }
}

/// Where the index of `network_dir` is kept, or `None` when no index directory is usable.
pub fn location(network_dir: &Path) -> Option<PathBuf> {
    let base = std::env::var_os("CNI_REF_HOST_LOCAL_INDEX_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DIR));
    let absolute = std::path::absolute(network_dir).ok()?;
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in absolute.as_os_str().as_encoded_bytes() {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    Some(base.join(format!("{hash:016x}")))
}

/// Load the index of `network_dir` if it is present and still exact.
pub fn load(path: &Path, network_dir: &Path) -> Option<OwnerIndex> {
    let text = fs::read_to_string(path).ok()?;
    let mut lines = text.lines();
    if lines.next()? != MAGIC {
        return None;
    }
    let absolute = std::path::absolute(network_dir).ok()?;
    if lines.next()? != absolute.to_string_lossy() {
        return None;
    }
    let stamp = Stamp::parse(lines.next()?)?;
    if Some(stamp) != Stamp::of(network_dir) {
        return None;
    }
    let mut index = OwnerIndex::default();
    for line in lines {
        let mut parts = line.splitn(3, '\t');
        let ip: IpAddr = parts.next()?.parse().ok()?;
        let cid = parts.next()?.to_string();
        let ifname = match parts.next()? {
            "\u{1}" => None,
            name => Some(name.to_string()),
        };
        index.insert(
            ip,
            &Owner {
                container_id: cid,
                ifname,
            },
        );
    }
    Some(index)
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

/// Save the index of `network_dir` with the directory's current stamp. Best effort.
pub fn save(path: &Path, network_dir: &Path, index: &OwnerIndex) {
    if !nudge_mtime(network_dir) {
        let _ = fs::remove_file(path);
        return;
    }
    let (Some(parent), Some(stamp), Ok(absolute)) = (
        path.parent(),
        Stamp::of(network_dir),
        std::path::absolute(network_dir),
    ) else {
        return;
    };
    if fs::create_dir_all(parent).is_err() {
        return;
    }
    let mut text = format!(
        "{MAGIC}\n{}\n{}\n",
        absolute.to_string_lossy(),
        stamp.render()
    );
    for ((cid, ifname), ips) in &index.by_owner {
        // Owners with a tab or newline cannot be written; drop the index rather than lie.
        if cid.contains(['\t', '\n']) || ifname.as_deref().is_some_and(|i| i.contains(['\t', '\n']))
        {
            let _ = fs::remove_file(path);
            return;
        }
        for ip in ips {
            text.push_str(&format!(
                "{ip}\t{cid}\t{}\n",
                ifname.as_deref().unwrap_or("\u{1}")
            ));
        }
    }
    let temp = path.with_extension(format!("tmp{}", std::process::id()));
    let written = fs::File::create(&temp).and_then(|mut f| f.write_all(text.as_bytes()));
    if written.is_err() || fs::rename(&temp, path).is_err() {
        let _ = fs::remove_file(&temp);
        let _ = fs::remove_file(path);
    }
}
