//! The lab's root file system, planned as a list of system calls.
//!
//! The lab's init process runs the plan right after `fork`, before anything else exists in the
//! lab, so the plan is built here, in the suite, with every path already a C string: the forked
//! child may only make system calls (it is a copy of a multi-threaded process, where allocating
//! could deadlock).
//!
//! What the plan builds, in the init's private mount namespace:
//! - a tmpfs "stage" on `/run` (never a lower layer: the lab gets its own `/run`) holding the
//!   new root (a tmpfs), a second mount of that root without its submounts (the *root view*,
//!   where files written at the top level show), and the overlays' upper and work directories;
//! - the machine's directories, each an overlay whose lower layer is the machine's directory and
//!   whose upper layer is on the stage: every write lands in the stage and never on the machine.
//!   A directory with mount points below it is not overlaid whole (overlayfs does not cross
//!   mounts, and in a user namespace refuses a lower layer with locked submounts): it is rebuilt
//!   in the new root and its entries are handled one by one;
//! - fresh `/proc` (the lab's PID namespace) and `/sys` (the lab's network namespace), read-only
//!   except for the lab's own network settings, the machine's cgroup hierarchies, a small `/dev`,
//!   and private tmpfs on `/run` and `/var/lib/cni`;
//! - then `pivot_root` into the new root and detach the old one, so no path leads back to the
//!   machine's `/proc` or files.

use std::collections::BTreeSet;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::mountinfo::Mount;

/// Where the init mounts its stage (in its own mount namespace only).
pub const STAGE: &str = "/run";
/// The new root, on the stage.
const ROOT: &str = "/run/root";
/// The root view: the new root's tmpfs mounted again, without submounts.
const VIEW: &str = "/run/rootview";

/// Descriptor numbers the init keeps: its control pipe, its report pipe, the stage and the view.
pub const FD_CONTROL: i32 = 3;
/// The report pipe (closed once the lab is ready).
pub const FD_REPORT: i32 = 4;
/// The stage directory (upper layers under `up/<n>`).
pub const FD_STAGE: i32 = 5;
/// The root view.
pub const FD_VIEW: i32 = 6;

/// Top-level directories the lab replaces instead of overlaying.
const REPLACED: &[&str] = &["/proc", "/sys", "/dev", "/run"];

/// Device nodes the lab's `/dev` carries (bind mounts of the machine's, when it has them).
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty", "net/tun", "fuse"];

/// What to do when a mount fails.
#[derive(Debug)]
pub enum OnError {
    /// The lab cannot be built.
    Fail,
    /// The lab works without it.
    Ignore,
    /// Try these mounts instead (then fail).
    Fallback(Vec<MountCall>),
}

/// One `mount(2)` call.
#[derive(Debug)]
pub struct MountCall {
    /// Source.
    pub src: Option<CString>,
    /// Target.
    pub target: CString,
    /// File-system type.
    pub fstype: Option<CString>,
    /// Flags.
    pub flags: libc::c_ulong,
    /// Options.
    pub data: Option<CString>,
}

/// One step of the plan.
#[derive(Debug)]
pub enum Op {
    /// `unshare(2)` with these flags.
    Unshare(libc::c_int),
    /// `mount(2)`, and what a failure means.
    Mount(MountCall, OnError),
    /// `mkdir(2)` with mode 0755 (an existing directory is fine).
    Mkdir(CString),
    /// `symlink(2)`: target, link path.
    Symlink(CString, CString),
    /// Creates an empty file to bind a file onto.
    Touch(CString),
    /// Opens a directory `O_PATH` and keeps it at a fixed descriptor number.
    Keep(CString, i32),
    /// `pivot_root` into the directory and detach the old root.
    PivotInto(CString),
}

/// One overlaid directory: where it is on the machine and where its upper layer is on the stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerDir {
    /// The machine's directory (also its path inside the lab).
    pub path: PathBuf,
    /// Its upper directory, relative to the stage (`up/<n>`).
    pub upper: String,
    /// Index of its mount in [`Plan::ops`] (a fallback there means no layer).
    pub op: usize,
}

/// The plan and what the suite needs to know about it afterwards.
#[derive(Debug, Default)]
pub struct Plan {
    /// The steps, in order.
    pub ops: Vec<Op>,
    /// One line per step, for error messages.
    pub describe: Vec<String>,
    /// The overlaid directories.
    pub layers: Vec<LayerDir>,
}

/// Errors while planning.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A path holds a NUL byte.
    #[error("path {0:?} cannot be passed to the kernel (it holds a NUL byte)")]
    Nul(PathBuf),
    /// The machine has no `/run` to stage the lab on.
    #[error("the machine has no {STAGE} directory to build the lab on")]
    NoStage,
}

fn c(path: impl AsRef<Path>) -> Result<CString, PlanError> {
    let p = path.as_ref();
    CString::new(p.as_os_str().as_bytes()).map_err(|_| PlanError::Nul(p.to_path_buf()))
}

fn cs(s: &str) -> CString {
    // Only called with literals and formatted numbers.
    CString::new(s).unwrap_or_default()
}

/// `target` inside the new root.
fn in_root(path: &Path) -> PathBuf {
    Path::new(ROOT).join(path.strip_prefix("/").unwrap_or(path))
}

/// Escapes a path for an overlayfs option (`,`, `:` and `\` are separators there).
fn overlay_escape(path: &Path) -> String {
    let mut out = String::new();
    for ch in path.to_string_lossy().chars() {
        if matches!(ch, ',' | ':' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

impl Plan {
    fn push(&mut self, op: Op, what: String) -> usize {
        self.ops.push(op);
        self.describe.push(what);
        self.ops.len() - 1
    }

    fn mkdir(&mut self, path: &Path) -> Result<(), PlanError> {
        self.push(Op::Mkdir(c(path)?), format!("mkdir {}", path.display()));
        Ok(())
    }

    fn mount(&mut self, call: MountCall, on_error: OnError, what: String) -> usize {
        self.push(Op::Mount(call, on_error), what)
    }

    fn tmpfs(&mut self, target: &Path, options: &str, on_error: OnError) -> Result<(), PlanError> {
        let call = MountCall {
            src: Some(cs("tmpfs")),
            target: c(target)?,
            fstype: Some(cs("tmpfs")),
            flags: libc::MS_NOSUID | libc::MS_NODEV,
            data: Some(cs(options)),
        };
        self.mount(call, on_error, format!("mount tmpfs on {}", target.display()));
        Ok(())
    }

    fn bind(&mut self, src: &Path, target: &Path, recursive: bool, on_error: OnError) -> Result<(), PlanError> {
        let flags = libc::MS_BIND | if recursive { libc::MS_REC } else { 0 };
        let call = MountCall {
            src: Some(c(src)?),
            target: c(target)?,
            fstype: None,
            flags,
            data: None,
        };
        self.mount(
            call,
            on_error,
            format!("bind {} on {}", src.display(), target.display()),
        );
        Ok(())
    }

    fn remount_readonly(&mut self, target: &Path) -> Result<(), PlanError> {
        let call = readonly_remount(target)?;
        self.mount(call, OnError::Ignore, format!("remount {} read-only", target.display()));
        Ok(())
    }
}

fn readonly_remount(target: &Path) -> Result<MountCall, PlanError> {
    Ok(MountCall {
        src: None,
        target: c(target)?,
        fstype: None,
        flags: libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
        data: None,
    })
}

/// Builds the plan for the machine whose mount table is `mounts`. `user_namespace` selects
/// overlayfs's `userxattr` (required when the lab is made inside a user namespace).
pub fn build(mounts: &[Mount], user_namespace: bool) -> Result<Plan, PlanError> {
    if !Path::new(STAGE).is_dir() {
        return Err(PlanError::NoStage);
    }
    let mut plan = Plan::default();
    let ns = libc::CLONE_NEWNS | libc::CLONE_NEWNET | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC;
    plan.push(Op::Unshare(ns), "unshare mount, network, UTS and IPC namespaces".into());
    plan.mount(
        MountCall {
            src: None,
            target: cs("/"),
            fstype: None,
            flags: libc::MS_REC | libc::MS_PRIVATE,
            data: None,
        },
        OnError::Fail,
        "make / private".into(),
    );
    plan.tmpfs(Path::new(STAGE), "mode=0700", OnError::Fail)?;
    for d in [ROOT, VIEW, "/run/up", "/run/work"] {
        plan.mkdir(Path::new(d))?;
    }
    plan.tmpfs(Path::new(ROOT), "mode=0755", OnError::Fail)?;
    plan.bind(Path::new(ROOT), Path::new(VIEW), false, OnError::Fail)?;

    let points: BTreeSet<PathBuf> = mounts.iter().map(|m| m.point.clone()).collect();
    let pseudo: BTreeSet<PathBuf> = mounts
        .iter()
        .filter(|m| m.is_pseudo())
        .map(|m| m.point.clone())
        .collect();
    let mut builder = Builder {
        plan,
        points,
        pseudo,
        user_namespace,
    };
    builder.populate(Path::new("/"))?;
    let mut plan = builder.plan;

    special_mounts(&mut plan, mounts)?;
    plan.push(Op::Keep(c(STAGE)?, FD_STAGE), "keep the stage".into());
    plan.push(Op::Keep(c(VIEW)?, FD_VIEW), "keep the root view".into());
    plan.push(Op::PivotInto(c(ROOT)?), "pivot_root into the lab's root".into());
    Ok(plan)
}

struct Builder {
    plan: Plan,
    points: BTreeSet<PathBuf>,
    pseudo: BTreeSet<PathBuf>,
    user_namespace: bool,
}

impl Builder {
    /// True when a mount point lies strictly below `dir`.
    fn has_mounts_below(&self, dir: &Path) -> bool {
        self.points.iter().any(|p| p != dir && p.starts_with(dir))
    }

    /// Recreates the entries of `dir` (a directory with mount points below it) in the new root.
    fn populate(&mut self, dir: &Path) -> Result<(), PlanError> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            // Unreadable (not ours to read): the lab shows it empty.
            return Ok(());
        };
        let mut names: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        names.sort();
        for path in names {
            if REPLACED.iter().any(|r| path == Path::new(r)) {
                self.plan.mkdir(&in_root(&path))?;
                continue;
            }
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            let target = in_root(&path);
            let kind = meta.file_type();
            if kind.is_symlink() {
                if let Ok(to) = std::fs::read_link(&path) {
                    self.plan
                        .push(Op::Symlink(c(&to)?, c(&target)?), format!("symlink {}", path.display()));
                }
            } else if kind.is_dir() {
                self.plan.mkdir(&target)?;
                if self.pseudo.contains(&path) {
                    continue;
                }
                if self.has_mounts_below(&path) {
                    self.populate(&path)?;
                } else {
                    self.overlay(&path, &target)?;
                }
            } else if kind.is_file() {
                // A file beside mount points: visible, read-only (writes fail, nothing leaks).
                self.plan
                    .push(Op::Touch(c(&target)?), format!("create {}", target.display()));
                self.plan.bind(&path, &target, false, OnError::Ignore)?;
                self.plan.remount_readonly(&target)?;
            }
        }
        Ok(())
    }

    /// Mounts an overlay of the machine's `path` on `target`; a read-only bind when overlayfs
    /// refuses the directory.
    fn overlay(&mut self, path: &Path, target: &Path) -> Result<(), PlanError> {
        let n = self.plan.layers.len();
        let upper = format!("up/{n}");
        let upper_abs = Path::new(STAGE).join(&upper);
        let work_abs = Path::new(STAGE).join(format!("work/{n}"));
        self.plan.mkdir(&upper_abs)?;
        self.plan.mkdir(&work_abs)?;
        let mut options = format!(
            "lowerdir={},upperdir={},workdir={}",
            overlay_escape(path),
            upper_abs.display(),
            work_abs.display()
        );
        if self.user_namespace {
            options.push_str(",userxattr");
        }
        let fallback = vec![
            MountCall {
                src: Some(c(path)?),
                target: c(target)?,
                fstype: None,
                flags: libc::MS_BIND | libc::MS_REC,
                data: None,
            },
            readonly_remount(target)?,
        ];
        let op = self.plan.mount(
            MountCall {
                src: Some(cs("overlay")),
                target: c(target)?,
                fstype: Some(cs("overlay")),
                flags: 0,
                data: Some(c(Path::new(&options))?),
            },
            OnError::Fallback(fallback),
            format!("overlay {} (upper {upper})", path.display()),
        );
        self.plan.layers.push(LayerDir {
            path: path.to_path_buf(),
            upper,
            op,
        });
        Ok(())
    }
}

/// `/proc`, `/sys`, `/dev`, `/run` and `/var/lib/cni` of the lab.
fn special_mounts(plan: &mut Plan, mounts: &[Mount]) -> Result<(), PlanError> {
    let root = |p: &str| in_root(Path::new(p));
    // /proc of the lab's PID namespace; the kernel's knobs read-only except the network ones,
    // which belong to the lab's own network namespaces.
    plan.mount(
        MountCall {
            src: Some(cs("proc")),
            target: c(root("/proc"))?,
            fstype: Some(cs("proc")),
            flags: libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            data: None,
        },
        OnError::Fail,
        "mount the lab's /proc".into(),
    );
    plan.bind(&root("/proc/sys/net"), &root("/proc/sys/net"), false, OnError::Ignore)?;
    plan.bind(&root("/proc/sys"), &root("/proc/sys"), true, OnError::Ignore)?;
    plan.remount_readonly(&root("/proc/sys"))?;
    plan.bind(
        &root("/proc/sysrq-trigger"),
        &root("/proc/sysrq-trigger"),
        false,
        OnError::Ignore,
    )?;
    plan.remount_readonly(&root("/proc/sysrq-trigger"))?;

    // /sys of the lab's network namespace, with the machine's cgroup hierarchies (runtimes
    // need them; cgroups are kernel state the lab does not contain).
    let sysfs_fallback = vec![
        MountCall {
            src: Some(cs("/sys")),
            target: c(root("/sys"))?,
            fstype: None,
            flags: libc::MS_BIND | libc::MS_REC,
            data: None,
        },
        readonly_remount(&root("/sys"))?,
    ];
    plan.mount(
        MountCall {
            src: Some(cs("sysfs")),
            target: c(root("/sys"))?,
            fstype: Some(cs("sysfs")),
            flags: libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            data: None,
        },
        OnError::Fallback(sysfs_fallback),
        "mount the lab's /sys".into(),
    );
    // Writable only where the lab's own links are (every link of a lab is virtual); the rest of
    // sysfs is the kernel's.
    plan.bind(
        &root("/sys/devices/virtual/net"),
        &root("/sys/devices/virtual/net"),
        false,
        OnError::Ignore,
    )?;
    plan.bind(&root("/sys"), &root("/sys"), true, OnError::Ignore)?;
    plan.remount_readonly(&root("/sys"))?;
    if mounts.iter().any(|m| m.point.starts_with("/sys/fs/cgroup")) {
        plan.bind(
            Path::new("/sys/fs/cgroup"),
            &root("/sys/fs/cgroup"),
            true,
            OnError::Ignore,
        )?;
    }

    // A small /dev: the usual nodes, a private pts instance, shm and mqueue.
    plan.tmpfs(&root("/dev"), "mode=0755", OnError::Fail)?;
    for dev in DEVICES {
        let host = Path::new("/dev").join(dev);
        if !host.exists() {
            continue;
        }
        let target = root("/dev").join(dev);
        if let Some(parent) = target.parent().filter(|p| *p != root("/dev")) {
            plan.mkdir(parent)?;
        }
        plan.push(Op::Touch(c(&target)?), format!("create {}", target.display()));
        plan.bind(&host, &target, false, OnError::Ignore)?;
    }
    plan.mkdir(&root("/dev/pts"))?;
    plan.mount(
        MountCall {
            src: Some(cs("devpts")),
            target: c(root("/dev/pts"))?,
            fstype: Some(cs("devpts")),
            flags: libc::MS_NOSUID | libc::MS_NOEXEC,
            data: Some(cs("newinstance,ptmxmode=0666,mode=0620")),
        },
        OnError::Ignore,
        "mount a private devpts".into(),
    );
    plan.push(
        Op::Symlink(cs("pts/ptmx"), c(root("/dev/ptmx"))?),
        "symlink /dev/ptmx".into(),
    );
    plan.mkdir(&root("/dev/shm"))?;
    plan.tmpfs(&root("/dev/shm"), "mode=1777", OnError::Fail)?;
    plan.mkdir(&root("/dev/mqueue"))?;
    plan.mount(
        MountCall {
            src: Some(cs("mqueue")),
            target: c(root("/dev/mqueue"))?,
            fstype: Some(cs("mqueue")),
            flags: libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            data: None,
        },
        OnError::Ignore,
        "mount a private mqueue".into(),
    );
    for (link, to) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        plan.push(
            Op::Symlink(cs(to), c(root("/dev").join(link))?),
            format!("symlink /dev/{link}"),
        );
    }

    // The lab's own data directories.
    plan.tmpfs(&root("/run"), "mode=0755", OnError::Fail)?;
    for d in ["/var", "/var/lib", "/var/lib/cni"] {
        plan.mkdir(&root(d))?;
    }
    plan.tmpfs(&root("/var/lib/cni"), "mode=0755", OnError::Fail)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_options_escape_separators() {
        assert_eq!(overlay_escape(Path::new("/a,b:c\\d")), "/a\\,b\\:c\\\\d");
    }

    #[test]
    fn a_directory_with_mounts_below_is_not_overlaid_whole() {
        let b = Builder {
            plan: Plan::default(),
            points: ["/", "/proc", "/mnt/x"].iter().map(PathBuf::from).collect(),
            pseudo: BTreeSet::new(),
            user_namespace: false,
        };
        assert!(b.has_mounts_below(Path::new("/")));
        assert!(b.has_mounts_below(Path::new("/mnt")));
        assert!(!b.has_mounts_below(Path::new("/mnt/x")));
        assert!(!b.has_mounts_below(Path::new("/etc")));
    }

    #[test]
    fn the_machine_plan_overlays_etc_and_tmp_and_ends_with_pivot() {
        let mounts = super::super::mountinfo::read().unwrap_or_default();
        let plan = build(&mounts, false).expect("plan");
        let layered: Vec<&Path> = plan.layers.iter().map(|l| l.path.as_path()).collect();
        assert!(layered.contains(&Path::new("/etc")), "{layered:?}");
        assert!(layered.iter().any(|p| Path::new("/tmp").starts_with(p)), "{layered:?}");
        assert!(matches!(plan.ops.last(), Some(Op::PivotInto(_))));
        assert_eq!(plan.ops.len(), plan.describe.len());
    }
}
