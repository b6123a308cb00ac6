//! `--vm`: the same run inside a QEMU guest.
//!
//! The guest is a kernel ([`kernel`]: a Debian package fetched with apt and cached, or
//! `--kernel`) and an initramfs (built by `initramfs` as an [`image`], written as newc by
//! [`cpio`]) that holds busybox as
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
mod initramfs;
pub use initramfs::GUEST_SUITE;
pub mod kernel;
pub mod modules;
pub mod qemu;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use initramfs::{build_image, cached, find_busybox, minimal_image, run_archive};
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

/// The 9p mount tag of the shared host root.
pub const HOST_ROOT_TAG: &str = "hostroot";

/// A private scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Self, VmError> {
        let base = std::env::temp_dir();
        sweep_dead_scratch(&base);
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

/// Removes the scratch directories of runs that were killed before they could (SIGKILL): those
/// whose process is gone, when they are ours.
fn sweep_dead_scratch(base: &Path) {
    use std::os::unix::fs::MetadataExt;
    // Only when /proc shows our own PID namespace: elsewhere a live run's pid would look dead.
    let own_proc =
        std::fs::read_link("/proc/self").is_ok_and(|p| p.to_str() == Some(std::process::id().to_string().as_str()));
    if !own_proc {
        return;
    }
    let Ok(entries) = std::fs::read_dir(base) else { return };
    let me = nix::unistd::geteuid().as_raw();
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("cni-conformance-vm-"))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let ours = std::fs::symlink_metadata(e.path()).is_ok_and(|m| m.is_dir() && m.uid() == me);
        if ours && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
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
    let img = minimal_image(busybox, "#!/bin/sh\necho B 0 > /dev/ttyS1\n/bin/busybox reboot -f\n")?;
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
