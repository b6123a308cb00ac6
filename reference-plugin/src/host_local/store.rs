//! The on-disk reservation store, byte-compatible with the upstream Go plugin, so
//! either implementation can take over a node's existing state:
//!
//! ```text
//! <dataDir>/<network>/            directory, mode 0755
//! <dataDir>/<network>/lock        empty file, mode 0750, flock(LOCK_EX) while working
//! <dataDir>/<network>/<ip>        one per reservation, mode 0644: "<containerID>\r\n<ifname>"
//! <dataDir>/<network>/last_reserved_ip.<N>   the last address taken from range set N
//! ```
//!
//! (Files written by very old versions hold only `<containerID>`; they are still matched.)
//!
//! # Locking
//! [`Store::open`] takes `flock(LOCK_EX)` on `lock` and keeps it until the store is dropped, so
//! one ADD/DEL/CHECK/GC holds the lock for its whole duration (all range sets at once). The Go
//! plugin takes the same lock, so both can run side by side on one network.
//!
//! # Crash safety (kill -9 at any instruction)
//! A reservation file must never exist without its owner, or the address would leak forever
//! (nothing would ever match it on DEL or GC). Upstream creates the file with `O_EXCL` and then
//! writes the owner, so a kill between the two leaves an empty, ownerless file. Here the order is:
//!
//! 1. create the temporary `.reserve.tmp` with `O_CREAT|O_EXCL` and write the owner into it
//!    (one fixed name is enough: writers are serialised by the lock);
//! 2. `link(2)` it to `<ip>`: the link appears atomically *with its content*, and fails with
//!    `EEXIST` exactly like `O_EXCL` when the address is taken;
//! 3. unlink the temporary;
//! 4. write `last_reserved_ip.N` to `.last_reserved_ip.tmp` and `rename(2)` it into place, so that file is
//!    always either the old or the new complete address.
//!
//! A kill before step 2 leaves only a temporary (not a reservation); a kill after step 2 leaves
//! a complete reservation whose owner's DEL (which the runtime owes every ADD, even a failed one)
//! or a GC removes. A kill before step 4 only costs one round-robin step. Temporaries left by a
//! kill are removed by the next operation that takes the lock (no writer can be active then).
//! On file systems without hard links the store falls back to upstream's `O_EXCL`-then-write.
//! The store does not `fsync`: it is safe against process death, not against power loss, like
//! upstream.

use super::index::IndexDir;
use crate::ipnet;
use std::cell::Cell;
use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::net::IpAddr;
use std::os::fd::FromRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Separates the container ID from the interface name in a reservation file.
pub const LINE_BREAK: &str = "\r\n";
/// Prefix of the per-range-set round-robin files.
pub const LAST_RESERVED_PREFIX: &str = "last_reserved_ip.";
/// The temporary a reservation is written to before it is linked into place.
const RESERVE_TEMP: &str = ".reserve.tmp";
/// The temporary `last_reserved_ip.N` is written to before it is renamed into place.
const LAST_RESERVED_TEMP: &str = ".last_reserved_ip.tmp";
/// The file STATUS creates to prove the directory is writable.
const PROBE_TEMP: &str = ".status-probe.tmp";

/// Who holds a reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// The container ID (trimmed).
    pub container_id: String,
    /// The interface name; `None` for files written by old versions.
    pub ifname: Option<String>,
}

impl Owner {
    /// Parse the content of a reservation file.
    pub fn parse(content: &str) -> Owner {
        let content = content.trim();
        match content.split_once(LINE_BREAK) {
            Some((id, ifname)) => Owner {
                container_id: id.to_string(),
                ifname: Some(ifname.to_string()),
            },
            None => Owner {
                container_id: content.to_string(),
                ifname: None,
            },
        }
    }
}

/// One reservation file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// The reserved address (the file name).
    pub ip: IpAddr,
    /// Its owner (the file content).
    pub owner: Owner,
}

/// What an operation knows about the owner index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IndexState {
    /// Not looked at yet, or stale: a lookup scans and rebuilds it.
    Unknown,
    /// Exact for the store as this operation sees it.
    Current,
    /// Failed to read or write: scan for the rest of this operation.
    Broken,
}

/// An open, locked store for one network.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    index: Option<IndexDir>,
    index_state: Cell<IndexState>,
    /// This operation changed the store (so the index stamp must be renewed at the end).
    changed: Cell<bool>,
    _lock: File,
}

impl Drop for Store {
    fn drop(&mut self) {
        // Still under the lock (the lock file is closed after this body runs).
        let Some(index) = &self.index else { return };
        match self.index_state.get() {
            IndexState::Current if self.changed.get() => {
                index.seal();
            }
            IndexState::Broken => index.invalidate(),
            _ => {}
        }
    }
}

fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

impl Store {
    /// Open (creating it when `create`) and lock the store of `network` under `data_dir`.
    /// Returns `None` when the directory does not exist and `create` is false.
    pub fn open(data_dir: &Path, network: &str, create: bool) -> io::Result<Option<Store>> {
        let dir = data_dir.join(network);
        if create {
            fs::DirBuilder::new().recursive(true).mode(0o755).create(&dir)?;
        } else if !dir.is_dir() {
            return Ok(None);
        }
        let lock_path = cstring(&dir.join("lock"))?;
        // O_RDONLY|O_CREAT with mode 0750, as upstream's go-filemutex does (std's OpenOptions
        // refuses create without write access).
        // SAFETY: lock_path is a valid NUL-terminated string.
        let fd = unsafe {
            libc::open(
                lock_path.as_ptr(),
                libc::O_RDONLY | libc::O_CREAT | libc::O_CLOEXEC,
                0o750 as libc::c_uint,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd was just opened and is owned by nothing else.
        let lock = unsafe { File::from_raw_fd(fd) };
        loop {
            // SAFETY: fd is a valid open descriptor owned by `lock`.
            if unsafe { libc::flock(fd, libc::LOCK_EX) } == 0 {
                break;
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
        let index = IndexDir::for_network(&dir);
        let store = Store {
            dir,
            index,
            index_state: Cell::new(IndexState::Unknown),
            changed: Cell::new(false),
            _lock: lock,
        };
        store.sweep_temporaries();
        if store.index.as_ref().is_some_and(IndexDir::is_current) {
            store.index_state.set(IndexState::Current);
        }
        Ok(Some(store))
    }

    /// The network's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Remove what a killed process may have left. Every writer holds the lock and uses these
    /// fixed names, so while we hold the lock they can only be leftovers; fixed names make
    /// this three `unlink` calls instead of a directory scan.
    fn sweep_temporaries(&self) {
        for name in [RESERVE_TEMP, LAST_RESERVED_TEMP, PROBE_TEMP] {
            if fs::remove_file(self.dir.join(name)).is_ok() {
                self.before_change();
            }
        }
    }

    fn create_exclusive(path: &Path) -> io::Result<File> {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)
    }

    /// Reserve `ip` for `(container_id, ifname)`; `Ok(false)` when it is already taken. On
    /// success `last_reserved_ip.<range_set>` names `ip`.
    pub fn reserve(&self, ip: IpAddr, container_id: &str, ifname: &str, range_set: usize) -> io::Result<bool> {
        self.before_change();
        let content = format!("{}{LINE_BREAK}{ifname}", container_id.trim());
        let target = self.dir.join(ip.to_string());
        let temp = self.dir.join(RESERVE_TEMP);
        let _ = fs::remove_file(&temp);
        {
            let mut file = Self::create_exclusive(&temp)?;
            if let Err(e) = file.write_all(content.as_bytes()) {
                let _ = fs::remove_file(&temp);
                return Err(e);
            }
        }
        let linked = fs::hard_link(&temp, &target);
        let _ = fs::remove_file(&temp);
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EPERM | libc::EOPNOTSUPP | libc::ENOSYS | libc::EXDEV | libc::EMLINK)
                ) =>
            {
                // No hard links here: upstream's way (exclusive create, then write).
                let mut file = match Self::create_exclusive(&target) {
                    Ok(f) => f,
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
                    Err(e) => return Err(e),
                };
                if let Err(e) = file.write_all(content.as_bytes()) {
                    let _ = fs::remove_file(&target);
                    return Err(e);
                }
            }
            Err(e) => return Err(e),
        }
        self.index_update(|index| {
            index.insert(
                ipnet::canonical(ip),
                &Owner {
                    container_id: container_id.trim().to_string(),
                    ifname: Some(ifname.to_string()),
                },
            )
        });
        self.write_last_reserved(ip, range_set)?;
        Ok(true)
    }

    /// Put `last_reserved_ip.<range_set>` back to `previous` (removing it when `None`); used to
    /// undo a failed ADD completely.
    pub fn restore_last_reserved(&self, range_set: usize, previous: Option<IpAddr>) -> io::Result<()> {
        self.before_change();
        match previous {
            Some(ip) => self.write_last_reserved(ip, range_set),
            None => match fs::remove_file(self.dir.join(format!("{LAST_RESERVED_PREFIX}{range_set}"))) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            },
        }
    }

    fn write_last_reserved(&self, ip: IpAddr, range_set: usize) -> io::Result<()> {
        let name = format!("{LAST_RESERVED_PREFIX}{range_set}");
        let temp = self.dir.join(LAST_RESERVED_TEMP);
        let _ = fs::remove_file(&temp);
        {
            let mut file = Self::create_exclusive(&temp)?;
            file.write_all(ip.to_string().as_bytes())?;
        }
        fs::rename(&temp, self.dir.join(name))
    }

    /// The address in `last_reserved_ip.<range_set>`, if readable.
    pub fn last_reserved(&self, range_set: usize) -> Option<IpAddr> {
        let text = fs::read_to_string(self.dir.join(format!("{LAST_RESERVED_PREFIX}{range_set}"))).ok()?;
        text.trim().parse::<IpAddr>().ok().map(ipnet::canonical)
    }

    /// Every reservation file (files named by an address), with its owner. Rebuilds a stale index.
    pub fn reservations(&self) -> io::Result<Vec<Reservation>> {
        let all = self.scan(|_| true)?;
        if self.index_state.get() == IndexState::Unknown {
            self.rebuild_index(&all);
        }
        Ok(all)
    }

    /// Called before the first change of the store in this operation: the index's stamp is
    /// removed so that a process killed before the end leaves no stamp behind.
    fn before_change(&self) {
        if !self.changed.replace(true) {
            if let Some(index) = &self.index {
                index.invalidate();
            }
        }
    }

    /// Apply a change to the index if it is current; a failure makes it unusable.
    fn index_update(&self, update: impl FnOnce(&IndexDir) -> bool) {
        if let (Some(index), IndexState::Current) = (&self.index, self.index_state.get()) {
            if !update(index) {
                self.index_state.set(IndexState::Broken);
            }
        }
    }

    fn rebuild_index(&self, all: &[Reservation]) {
        let Some(index) = &self.index else { return };
        if self.index_state.get() == IndexState::Broken {
            return;
        }
        let pairs: Vec<(IpAddr, Owner)> = all.iter().map(|r| (r.ip, r.owner.clone())).collect();
        if index.rebuild(&pairs) {
            self.index_state.set(IndexState::Current);
            // The stamp must be written at the end even if nothing else changes.
            self.changed.set(true);
        } else {
            self.index_state.set(IndexState::Broken);
        }
    }

    /// The addresses the index names for an owner, each verified against its file; `None`
    /// when the index cannot answer.
    fn indexed(&self, container_id: &str, ifname: Option<&str>) -> Option<Vec<IpAddr>> {
        if self.index_state.get() != IndexState::Current {
            return None;
        }
        let owner = Owner {
            container_id: container_id.to_string(),
            ifname: ifname.map(str::to_string),
        };
        let candidates = self.index.as_ref()?.get(&owner)?;
        let mut out = Vec::with_capacity(candidates.len());
        for ip in candidates {
            let content = fs::read(self.dir.join(ip.to_string())).ok()?;
            if Owner::parse(&String::from_utf8_lossy(&content)) != owner {
                return None;
            }
            out.push(ip);
        }
        Some(out)
    }

    /// Make the index current (scanning and rebuilding it if needed). False when unusable.
    fn ensure_index(&self) -> io::Result<bool> {
        match self.index_state.get() {
            IndexState::Current => Ok(true),
            IndexState::Broken => Ok(false),
            IndexState::Unknown if self.index.is_none() => Ok(false),
            IndexState::Unknown => {
                let all = self.scan(|_| true)?;
                self.rebuild_index(&all);
                Ok(self.index_state.get() == IndexState::Current)
            }
        }
    }

    /// Scan reservation files; `size_ok` filters on the file size before reading it.
    fn scan(&self, size_ok: impl Fn(u64) -> bool) -> io::Result<Vec<Reservation>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(ip) = name.to_str().and_then(|n| n.parse::<IpAddr>().ok()) else {
                continue;
            };
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_file() || !size_ok(meta.len()) {
                continue;
            }
            let Ok(content) = fs::read(entry.path()) else {
                continue;
            };
            out.push(Reservation {
                ip: ipnet::canonical(ip),
                owner: Owner::parse(&String::from_utf8_lossy(&content)),
            });
        }
        Ok(out)
    }

    /// Addresses held by `(container_id, ifname)`, counting old-format files that hold only
    /// the container ID (as upstream's duplicate check does).
    pub fn held_by(&self, container_id: &str, ifname: &str) -> io::Result<Vec<IpAddr>> {
        let id = container_id.trim();
        if self.ensure_index()? {
            if let (Some(mut exact), Some(legacy)) = (self.indexed(id, Some(ifname)), self.indexed(id, None)) {
                exact.extend(legacy);
                return Ok(exact);
            }
            // The index disagreed with a file: stop trusting it and scan.
            self.index_state.set(IndexState::Broken);
        }
        let legacy_len = id.len() as u64;
        let full_len = (id.len() + LINE_BREAK.len() + ifname.len()) as u64;
        // Upstream trims the content, so allow some trailing whitespace; skip the rest unread.
        let found = self.scan(|len| len >= legacy_len && len <= full_len + 8)?;
        Ok(found
            .into_iter()
            .filter(|r| r.owner.container_id == id && r.owner.ifname.as_deref().is_none_or(|i| i == ifname))
            .map(|r| r.ip)
            .collect())
    }

    /// Remove the reservations of `(container_id, ifname)`; when there are none, those of
    /// old-format files holding only `container_id`. Returns the released addresses.
    pub fn release(&self, container_id: &str, ifname: &str) -> io::Result<Vec<IpAddr>> {
        let id = container_id.trim();
        if self.ensure_index()? {
            if let (Some(exact), Some(legacy)) = (self.indexed(id, Some(ifname)), self.indexed(id, None)) {
                let (chosen, ifname) = if exact.is_empty() {
                    (legacy, None)
                } else {
                    (exact, Some(ifname))
                };
                let owner = Owner {
                    container_id: id.to_string(),
                    ifname: ifname.map(str::to_string),
                };
                for ip in &chosen {
                    self.remove(*ip, &owner)?;
                }
                return Ok(chosen);
            }
            self.index_state.set(IndexState::Broken);
        }
        let all = self.scan(|len| len >= id.len() as u64)?;
        let exact: Vec<IpAddr> = all
            .iter()
            .filter(|r| r.owner.container_id == id && r.owner.ifname.as_deref() == Some(ifname))
            .map(|r| r.ip)
            .collect();
        let (chosen, owner_ifname) = if exact.is_empty() {
            let legacy = all
                .iter()
                .filter(|r| r.owner.container_id == id && r.owner.ifname.is_none())
                .map(|r| r.ip)
                .collect();
            (legacy, None)
        } else {
            (exact, Some(ifname.to_string()))
        };
        let owner = Owner {
            container_id: id.to_string(),
            ifname: owner_ifname,
        };
        for ip in &chosen {
            self.remove(*ip, &owner)?;
        }
        Ok(chosen)
    }

    /// Remove one reservation held by `owner`; a missing file is not an error.
    pub fn remove(&self, ip: IpAddr, owner: &Owner) -> io::Result<()> {
        self.before_change();
        let result = match fs::remove_file(self.dir.join(ip.to_string())) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
        self.index_update(|index| index.remove(ip, owner));
        result
    }

    /// Prove the directory is writable by creating and removing a temporary file.
    pub fn probe_writable(&self) -> io::Result<()> {
        self.before_change();
        let probe = self.dir.join(PROBE_TEMP);
        let _ = fs::remove_file(&probe);
        drop(Self::create_exclusive(&probe)?);
        fs::remove_file(&probe)
    }
}
