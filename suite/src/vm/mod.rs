//! `--vm` (DESIGN §7): the same run inside a QEMU guest.
//!
//! The guest is a kernel ([`kernel`]: a Debian package fetched with apt and cached, or
//! `--kernel`) and an initramfs ([`image`], written as newc by [`cpio`]) that holds busybox as
//! init and shell, the suite binary and its libraries, the plugin under test and the plugins its
//! configuration names, the `--config` file, iptables/nft with their libraries and extensions, and
//! the kernel modules the cases need ([`modules`]). Host files keep their paths in the guest, so
//! the report names the same plugin path and profile as a host run. The image is cached under the
//! user's cache directory, keyed by a digest of everything in it; the arguments travel in a second,
//! tiny archive appended per run, so a warm run rebuilds nothing.
//!
//! QEMU ([`qemu`]) boots with KVM when a probe boot under KVM reaches init (the verdict is cached),
//! and with TCG otherwise. The guest speaks a line protocol ([`guest`]) on a second serial port;
//! the kernel console stays on the first. The caller gets the suite's exit status, stderr lines
//! (streamed as they come) and stdout, and renders the report itself.

pub mod cpio;
pub mod elf;
pub mod guest;
pub mod image;
pub mod kernel;
pub mod modules;
pub mod qemu;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use image::{Content, Image};
use qemu::{Accel, Flow};

/// Which kernel to boot.
#[derive(Debug, Clone)]
pub enum KernelChoice {
    /// A Debian kernel package (a meta-package such as `linux-image-cloud-amd64` is resolved).
    Debian(String),
    /// A kernel image and optionally its module directory.
    File {
        /// bzImage.
        image: PathBuf,
        /// `.../lib/modules/<release>`.
        modules: Option<PathBuf>,
    },
}

/// How to pick the accelerator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccelChoice {
    /// KVM when a probe boot works, TCG otherwise.
    Auto,
    /// KVM only.
    Kvm,
    /// TCG only.
    Tcg,
}

/// A host file the guest needs.
#[derive(Debug, Clone)]
pub struct GuestFile {
    /// Where it goes in the guest (absolute).
    pub guest: PathBuf,
    /// Where its bytes are on the host.
    pub host: PathBuf,
}

/// Everything a guest run needs.
#[derive(Debug, Clone)]
pub struct Request {
    /// The suite binary to run inside (normally this executable).
    pub suite: PathBuf,
    /// Its arguments inside the guest.
    pub args: Vec<String>,
    /// Plugins, configuration and other files, with their libraries when they are ELF files.
    pub files: Vec<GuestFile>,
    /// Kernel.
    pub kernel: KernelChoice,
    /// Accelerator.
    pub accel: AccelChoice,
    /// Limit for the whole guest.
    pub timeout: Duration,
    /// Cache directory.
    pub cache: PathBuf,
    /// Share the host's root file system with the guest, read-only over virtio-9p, under a
    /// writable overlay held in guest memory; the suite (`suite`, a host path) then runs from
    /// there, chrooted, and `files` are not packed. Runtime mode needs this: the runtime command
    /// may run anything the host has.
    pub share_host_root: bool,
    /// Environment variables the suite gets inside the guest.
    pub env: Vec<(String, String)>,
}

/// Wall times of one run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    /// Finding the kernel and building (or finding cached) the initramfs.
    pub build: Duration,
    /// QEMU start until the suite started in the guest (kernel, init, modules).
    pub boot: Duration,
    /// The suite inside the guest.
    pub suite: Duration,
    /// Report transfer and shutdown.
    pub shutdown: Duration,
    /// Everything.
    pub total: Duration,
    /// The fraction of the guest's vCPU time that was busy during the suite: near 1, the guest
    /// waited for the emulated CPUs; lower, for timers and sleeps.
    pub guest_busy: Option<f64>,
    /// The guest's vCPUs.
    pub cpus: usize,
    /// CPU time QEMU used on the host.
    pub qemu_cpu: Duration,
}

/// How a guest run ended.
#[derive(Debug)]
pub struct Outcome {
    /// The suite's exit status inside the guest.
    pub status: i32,
    /// Its stdout.
    pub stdout: String,
    /// Its stderr lines.
    pub stderr: Vec<String>,
    /// Where the time went.
    pub timings: Timings,
    /// The accelerator used.
    pub accel: Accel,
    /// The kernel booted, for messages.
    pub kernel: String,
    /// The initramfs came from the cache.
    pub image_cached: bool,
    /// What the guest kernel lacks of `vm/modules.list`, when it lacks something.
    pub module_note: Option<String>,
}

/// Errors of a guest run (all are environment errors: exit 2).
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    /// Kernel problems.
    #[error(transparent)]
    Kernel(#[from] kernel::KernelError),
    /// Image problems.
    #[error(transparent)]
    Image(#[from] image::ImageError),
    /// Module problems.
    #[error(transparent)]
    Modules(#[from] modules::ModulesError),
    /// QEMU problems.
    #[error(transparent)]
    Qemu(#[from] qemu::QemuError),
    /// busybox is needed as the guest's init.
    #[error("busybox is not installed; --vm uses it as the guest's init and shell (apt-get install busybox-static)")]
    NoBusybox,
    /// The guest did not finish.
    #[error("{0}")]
    Guest(String),
    /// Files under the cache or temporary directory.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> VmError + 'a {
    move |source| VmError::Io {
        what,
        path: path.display().to_string(),
        source,
    }
}

/// The cache directory: `$XDG_CACHE_HOME/cni-conformance`, else `~/.cache/cni-conformance`.
pub fn default_cache_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|x| !x.is_empty()) {
        return PathBuf::from(x).join("cni-conformance");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(home).join(".cache/cni-conformance");
    }
    std::env::temp_dir().join("cni-conformance-cache")
}

/// Host tools the upstream plugins run, packed with their libraries when the host has them.
const TOOLS: &[&str] = &[
    "iptables",
    "iptables-save",
    "iptables-restore",
    "ip6tables",
    "ip6tables-save",
    "ip6tables-restore",
    "iptables-legacy",
    "iptables-nft",
    "nft",
];

/// Small host files those tools read.
const ETC_FILES: &[&str] = &["/etc/protocols", "/etc/services", "/etc/ethertypes"];

const GUEST_SUITE: &str = "/opt/cni-conformance/bin/cni-conformance";

/// The 9p mount tag of the shared host root.
pub const HOST_ROOT_TAG: &str = "hostroot";

fn find_busybox() -> Option<PathBuf> {
    ["/bin/busybox", "/usr/bin/busybox", "/sbin/busybox", "/usr/sbin/busybox"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

fn find_tool(name: &str) -> Option<PathBuf> {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists())
}

/// The parts every guest image shares: busybox, init skeleton, console node.
fn base(img: &mut Image, busybox: &Path, init: &str) -> Result<(), VmError> {
    img.add_file(Path::new("/bin/busybox"), 0o755, Content::Host(busybox.to_path_buf()))?;
    if let Ok(bytes) = std::fs::read(busybox) {
        if let Ok(real) = std::fs::canonicalize(busybox) {
            if image_is_dynamic(&bytes) {
                img.add_libraries_of(&real)?;
            }
        }
    }
    img.add_symlink(Path::new("/bin/sh"), "busybox")?;
    // The kernel runs /sbin/modprobe to autoload modules (link kinds, nftables expressions,
    // xtables matches); busybox's modprobe reads our modules.dep and modules.alias.
    img.add_symlink(Path::new("/sbin/modprobe"), "/bin/busybox")?;
    img.add_file(Path::new("/init"), 0o755, Content::Bytes(init.as_bytes().to_vec()))?;
    img.add_char_device(Path::new("/dev/console"), 5, 1)?;
    for d in ["/proc", "/sys", "/dev", "/run", "/tmp", "/var/lib/cni", "/root"] {
        img.add_dir(Path::new(d))?;
    }
    Ok(())
}

fn image_is_dynamic(bytes: &[u8]) -> bool {
    elf::dynamic(bytes).is_some_and(|d| d.interpreter.is_some())
}

/// Adds a file the user's run needs at its guest path, with its libraries or script interpreter.
fn add_guest_file(img: &mut Image, f: &GuestFile) -> Result<(), VmError> {
    let real = std::fs::canonicalize(&f.host).map_err(io_err("cannot read", &f.host))?;
    let meta = std::fs::metadata(&real).map_err(io_err("cannot read", &real))?;
    use std::os::unix::fs::PermissionsExt;
    img.add_file(
        &f.guest,
        meta.permissions().mode() & 0o7777,
        Content::Host(real.clone()),
    )?;
    let head = std::fs::read(&real).map_err(io_err("cannot read", &real))?;
    if elf::is_elf64(&head) {
        img.add_libraries_of(&real)?;
    } else if let Some(line) = head.strip_prefix(b"#!").and_then(|r| r.split(|&c| c == b'\n').next()) {
        // A script: bring its interpreter unless busybox provides it.
        let line = String::from_utf8_lossy(line);
        if let Some(interp) = line.split_whitespace().next() {
            let busybox_has = ["/bin/sh", "/bin/ash", "/usr/bin/env", "/bin/env"].contains(&interp);
            if !busybox_has && Path::new(interp).is_file() {
                img.add_host_binary(Path::new(interp))?;
            }
        }
    }
    Ok(())
}

/// Builds the image for a run; returns it and a note on the module wishes the kernel could not
/// meet.
fn build_image(req: &Request, kernel: &kernel::Kernel, busybox: &Path) -> Result<(Image, Option<String>), VmError> {
    let mut img = Image::new();
    base(&mut img, busybox, guest::INIT)?;
    img.add_symlink(Path::new("/usr/bin/env"), "/bin/busybox")?;
    if !req.share_host_root {
        add_suite_and_tools(&mut img, req)?;
    }
    let note = add_modules(&mut img, kernel, req.share_host_root)?;
    Ok((img, note))
}

/// The suite, the user's files and the host tools the plugins run, for a guest without the
/// host's root.
fn add_suite_and_tools(img: &mut Image, req: &Request) -> Result<(), VmError> {
    img.add_file(Path::new(GUEST_SUITE), 0o755, Content::HostStripped(req.suite.clone()))?;
    let suite_real = std::fs::canonicalize(&req.suite).map_err(io_err("cannot read", &req.suite))?;
    img.add_libraries_of(&suite_real)?;
    for f in &req.files {
        add_guest_file(img, f)?;
    }
    let mut with_iptables = false;
    for t in TOOLS {
        if let Some(p) = find_tool(t) {
            img.add_host_binary(&p)?;
            with_iptables |= t.contains("tables");
        }
    }
    if with_iptables {
        for d in [
            "/usr/lib/x86_64-linux-gnu/xtables",
            "/usr/lib/xtables",
            "/usr/lib64/xtables",
        ] {
            if Path::new(d).is_dir() {
                img.add_host_tree(Path::new(d))?;
            }
        }
    }
    for f in ETC_FILES {
        if Path::new(f).is_file() {
            img.add_host_file(Path::new(f))?;
        }
    }
    Ok(())
}

/// The kernel modules of `vm/modules.list` (and, when the host root is shared, those of
/// [`guest::SHARE_MODULES`] first) with their dependencies and index files; returns a note on the
/// wishes the kernel could not meet. A kernel that can mount neither 9p nor overlayfs cannot share
/// the host root: that is an error.
fn add_modules(img: &mut Image, kernel: &kernel::Kernel, share: bool) -> Result<Option<String>, VmError> {
    let (mut load, auto) = guest::module_lists(guest::MODULES_LIST);
    if share {
        let mut first: Vec<String> = guest::SHARE_MODULES.iter().map(|m| m.to_string()).collect();
        first.append(&mut load);
        load = first;
    }
    let note;
    if let (Some(dir), Some(release)) = (&kernel.modules, &kernel.release) {
        let tree = modules::ModuleTree::open(dir)?;
        let wanted: Vec<String> = load.iter().chain(auto.iter()).cloned().collect();
        let sel = tree.closure(&wanted)?;
        let unshareable: Vec<&str> = guest::SHARE_MODULES
            .iter()
            .copied()
            .filter(|m| share && sel.missing.iter().any(|x| x == m))
            .collect();
        if !unshareable.is_empty() {
            return Err(VmError::Guest(format!(
                "the guest kernel {} lacks {} (CONFIG_9P_FS, CONFIG_NET_9P_VIRTIO, CONFIG_OVERLAY_FS), which runtime --vm needs to share the host's files; use --kernel-package linux-image-amd64 or a --kernel that has them",
                kernel.origin,
                unshareable.join(" ")
            )));
        }
        note = (!sel.missing.is_empty()).then(|| {
            format!(
                "kernel modules this kernel has neither as modules nor built in: {}",
                sel.missing.join(" ")
            )
        });
        let root = Path::new("/lib/modules").join(release);
        for m in &sel.modules {
            img.add_file(&root.join(&m.rel), 0o644, Content::Bytes(m.bytes.clone()))?;
        }
        img.add_file(
            &root.join("modules.dep"),
            0o644,
            Content::Bytes(modules::modules_dep(&sel.modules).into_bytes()),
        )?;
        img.add_file(
            &root.join("modules.alias"),
            0o644,
            Content::Bytes(modules::modules_alias(&sel.modules).into_bytes()),
        )?;
        if let Some(b) = tree.builtin_list() {
            img.add_file(&root.join("modules.builtin"), 0o644, Content::Bytes(b))?;
        }
        let present: Vec<String> = load.into_iter().filter(|m| !sel.missing.contains(m)).collect();
        let mut text = present.join("\n");
        text.push('\n');
        img.add_file(
            Path::new("/etc/cni-conformance/modules.load"),
            0o644,
            Content::Bytes(text.into_bytes()),
        )?;
    } else {
        note = Some(format!(
            "no module directory for this kernel (--modules DIR); {} must be built in",
            load.join(" ")
        ));
    }
    Ok(note)
}

/// The cached archive for `img`, written when missing; returns (path, was cached).
fn cached(img: &Image, cache: &Path) -> Result<(PathBuf, bool), VmError> {
    let dir = cache.join("initramfs");
    std::fs::create_dir_all(&dir).map_err(io_err("cannot create", &dir))?;
    let memo_path = cache.join("file-digests");
    let mut memo = image::DigestMemo::load(&memo_path);
    let key = img.key(&mut memo)?;
    memo.save(&memo_path);
    let path = dir.join(format!("{key}.cpio"));
    if path.is_file() {
        // Touch it so pruning keeps the images in use.
        let _ = std::fs::File::options()
            .append(true)
            .open(&path)
            .and_then(|f| f.set_modified(std::time::SystemTime::now()));
        return Ok((path, true));
    }
    img.write(&path)?;
    prune(&dir, 8);
    Ok((path, false))
}

/// Keeps the `keep` most recently used images.
fn prune(dir: &Path, keep: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut images: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "cpio"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    images.sort();
    let excess = images.len().saturating_sub(keep);
    for (_, p) in images.into_iter().take(excess) {
        let _ = std::fs::remove_file(p);
    }
}

/// The per-run archive: the arguments (`args`, one a line), the environment (`env`, `K=V` a
/// line) and, when the host root is shared, the suite's host path (`hostroot`).
fn run_archive(req: &Request) -> Result<Vec<u8>, VmError> {
    let mut w = cpio::Writer::new(Vec::new());
    let lines = |items: &mut dyn Iterator<Item = String>| -> Result<String, VmError> {
        let mut text = String::new();
        for a in items {
            if a.contains('\n') {
                return Err(VmError::Guest(format!(
                    "an argument or variable with a line break cannot be passed into the VM: {a:?}"
                )));
            }
            text.push_str(&a);
            text.push('\n');
        }
        Ok(text)
    };
    let args = lines(&mut req.args.iter().cloned())?;
    let env = lines(&mut req.env.iter().map(|(k, v)| format!("{k}={v}")))?;
    let io = |e: std::io::Error| VmError::Guest(format!("cannot build the argument archive: {e}"));
    w.dir("etc", 0o755).map_err(io)?;
    w.dir("etc/cni-conformance", 0o755).map_err(io)?;
    w.file("etc/cni-conformance/args", 0o644, args.as_bytes()).map_err(io)?;
    w.file("etc/cni-conformance/env", 0o644, env.as_bytes()).map_err(io)?;
    if req.share_host_root {
        let suite = lines(&mut std::iter::once(req.suite.display().to_string()))?;
        w.file("etc/cni-conformance/hostroot", 0o644, suite.as_bytes())
            .map_err(io)?;
    }
    w.finish().map_err(io)
}

/// A private scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Self, VmError> {
        let base = std::env::temp_dir();
        for n in 0..1000u32 {
            let p = base.join(format!("cni-conformance-vm-{}-{n}", std::process::id()));
            match std::fs::create_dir(&p) {
                Ok(()) => return Ok(Scratch(p)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io_err("cannot create", &p)(e)),
            }
        }
        Err(VmError::Guest("cannot create a scratch directory".into()))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Kernel command line: console on ttyS0, our init, reboot at once on panic, little console
/// output (the emulated UART is slow), and no side-channel mitigations (they cost a lot under
/// TCG and the guest runs nothing untrusted beyond the plugin).
const CMDLINE: &str = "console=ttyS0 rdinit=/init panic=-1 quiet loglevel=3 mitigations=off tsc=reliable";

fn accel_cache_key(qemu: &Path, kernel: &kernel::Kernel) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
        .hash(&mut h);
    for p in [qemu, kernel.image.as_path()] {
        p.hash(&mut h);
        if let Ok(m) = std::fs::metadata(p) {
            m.len().hash(&mut h);
            m.modified().ok().hash(&mut h);
        }
    }
    format!("{:016x}", h.finish())
}

/// KVM when /dev/kvm opens and a probe boot under KVM reaches init in time; the verdict is cached.
fn pick_accel(
    choice: AccelChoice,
    qemu_bin: &Path,
    kernel: &kernel::Kernel,
    busybox: &Path,
    cache: &Path,
    scratch: &Path,
    say: &mut dyn FnMut(&str),
) -> Result<Accel, VmError> {
    match choice {
        AccelChoice::Kvm => return Ok(Accel::Kvm),
        AccelChoice::Tcg => return Ok(Accel::Tcg),
        AccelChoice::Auto => {}
    }
    let kvm_opens = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    if !kvm_opens {
        return Ok(Accel::Tcg);
    }
    let verdict_file = cache.join(format!("accel-{}", accel_cache_key(qemu_bin, kernel)));
    match std::fs::read_to_string(&verdict_file).as_deref().map(str::trim) {
        Ok("kvm") => return Ok(Accel::Kvm),
        Ok("tcg") => return Ok(Accel::Tcg),
        _ => {}
    }
    say("probing KVM with a test boot (once; the verdict is cached)");
    let mut img = Image::new();
    base(
        &mut img,
        busybox,
        "#!/bin/sh\necho B 0 > /dev/ttyS1\n/bin/busybox reboot -f\n",
    )?;
    let initrd = scratch.join("probe.cpio");
    img.write(&initrd)?;
    let boot = qemu::Boot {
        qemu: qemu_bin,
        accel: Accel::Kvm,
        cpus: 1,
        memory_mib: 256,
        kernel: &kernel.image,
        initrd: &initrd,
        cmdline: CMDLINE,
        workdir: scratch,
        timeout: Duration::from_secs(20),
        share_root: None,
    };
    let mut reached = false;
    qemu::run(&boot, &mut |line| {
        if line.starts_with('B') {
            reached = true;
            Flow::Done
        } else {
            Flow::Continue
        }
    })?;
    let accel = if reached { Accel::Kvm } else { Accel::Tcg };
    let _ = std::fs::create_dir_all(cache);
    let _ = std::fs::write(&verdict_file, if reached { "kvm\n" } else { "tcg\n" });
    if !reached {
        say("KVM did not boot the probe guest; using TCG (slower)");
    }
    Ok(accel)
}

/// Boots the guest and runs the suite in it. `say` gets status lines about the VM itself,
/// `progress` every stderr line of the suite as it comes.
pub fn run(req: &Request, say: &mut dyn FnMut(&str), progress: &mut dyn FnMut(&str)) -> Result<Outcome, VmError> {
    let start = Instant::now();
    let qemu_bin = qemu::find()?;
    let busybox = find_busybox().ok_or(VmError::NoBusybox)?;
    let kernel = match &req.kernel {
        KernelChoice::File { image, modules } => kernel::from_file(image, modules.as_deref())?,
        KernelChoice::Debian(package) => kernel::debian(package, &req.cache, say)?,
    };
    let scratch = Scratch::new()?;
    let accel = pick_accel(req.accel, &qemu_bin, &kernel, &busybox, &req.cache, &scratch.0, say)?;
    let (img, module_note) = build_image(req, &kernel, &busybox)?;
    let (base_path, image_cached) = cached(&img, &req.cache)?;
    let initrd = scratch.0.join("initrd.cpio");
    std::fs::copy(&base_path, &initrd).map_err(io_err("cannot copy", &base_path))?;
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&initrd)
            .map_err(io_err("cannot write", &initrd))?;
        f.write_all(&run_archive(req)?)
            .map_err(io_err("cannot write", &initrd))?;
    }
    let build_done = Instant::now();
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 8);
    let image_mib = std::fs::metadata(&initrd).map(|m| m.len() >> 20).unwrap_or(0) as u32;
    let boot = qemu::Boot {
        qemu: &qemu_bin,
        accel,
        cpus,
        memory_mib: 1024 + 3 * image_mib,
        kernel: &kernel.image,
        initrd: &initrd,
        cmdline: CMDLINE,
        workdir: &scratch.0,
        timeout: req.timeout,
        share_root: req.share_host_root.then_some(HOST_ROOT_TAG),
    };
    let mut transcript = guest::Transcript::default();
    let ended = qemu::run(&boot, &mut |line| {
        let (shown, flow) = transcript.feed(line);
        if let Some(l) = shown {
            progress(&l);
        }
        flow
    })?;
    let qemu_start = build_done;
    let (Some(status), Some(stdout)) = (transcript.status, transcript.stdout.clone()) else {
        let why = if ended.timed_out {
            format!(
                "the VM did not finish within {} s (--vm-timeout)",
                req.timeout.as_secs()
            )
        } else if transcript.booted.is_none() {
            "the VM never reached its init".to_string()
        } else {
            "the VM stopped before the suite finished".to_string()
        };
        let console = ended
            .console_tail
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("(no console output)");
        let qemu_said = ended.qemu_output.lines().last().unwrap_or("");
        return Err(VmError::Guest(format!(
            "{why}; kernel {}, {}; last console line: {console}{}",
            kernel.origin,
            accel.name(),
            if qemu_said.is_empty() {
                String::new()
            } else {
                format!("; qemu: {qemu_said}")
            }
        )));
    };
    let end = qemu_start + ended.elapsed;
    let ready = transcript.ready.unwrap_or(qemu_start);
    let finished = transcript.finished.unwrap_or(end);
    let timings = Timings {
        build: build_done - start,
        boot: ready.saturating_duration_since(qemu_start),
        suite: finished.saturating_duration_since(ready),
        shutdown: end.saturating_duration_since(finished),
        total: start.elapsed(),
        guest_busy: transcript.busy(),
        cpus,
        qemu_cpu: ended.cpu,
    };
    Ok(Outcome {
        status,
        stdout,
        stderr: transcript.stderr,
        timings,
        accel,
        kernel: format!(
            "{} ({})",
            kernel.release.as_deref().unwrap_or("unknown release"),
            kernel.origin
        ),
        image_cached,
        module_note,
    })
}
