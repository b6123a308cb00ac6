//! Running QEMU: find the binary, boot a kernel with an initramfs, and stream the guest's channel.
//!
//! The guest gets two 16550 serial ports and nothing else (`-nodefaults`, no network device):
//! `ttyS0` carries the kernel console into a log file kept for error messages, and `ttyS1` is the
//! channel the guest init writes the protocol of [`super::guest`] to. Both are built into every
//! x86 distribution kernel, so no module is needed before the channel works. The channel is a
//! file QEMU appends to and we follow, which needs no socket handshake and cannot deadlock.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The x86-64 system emulator.
pub const QEMU: &str = "qemu-system-x86_64";

/// How the guest's CPU is provided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    /// Hardware virtualisation through /dev/kvm.
    Kvm,
    /// QEMU's translator (slow, works everywhere).
    Tcg,
}

impl Accel {
    /// Name as shown to users.
    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "KVM",
            Accel::Tcg => "TCG",
        }
    }
}

/// Errors running QEMU.
#[derive(Debug, thiserror::Error)]
pub enum QemuError {
    /// No QEMU binary.
    #[error("{QEMU} is not installed; --vm needs it (apt-get install qemu-system-x86)")]
    Missing,
    /// QEMU could not be started or watched.
    #[error("cannot run {QEMU}: {0}")]
    Spawn(std::io::Error),
}

/// Finds QEMU on PATH.
pub fn find() -> Result<PathBuf, QemuError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(QEMU))
        .find(|p| p.is_file())
        .ok_or(QemuError::Missing)
}

/// One boot.
#[derive(Debug, Clone)]
pub struct Boot<'a> {
    /// QEMU binary.
    pub qemu: &'a Path,
    /// Accelerator.
    pub accel: Accel,
    /// Virtual CPUs.
    pub cpus: usize,
    /// Memory in MiB.
    pub memory_mib: u32,
    /// Kernel image.
    pub kernel: &'a Path,
    /// Initramfs.
    pub initrd: &'a Path,
    /// Kernel command line.
    pub cmdline: &'a str,
    /// Directory for the console log and the channel file.
    pub workdir: &'a Path,
    /// Limit for the whole boot; QEMU is killed past it.
    pub timeout: Duration,
    /// Share the host's `/` read-only over virtio-9p under this mount tag.
    pub share_root: Option<&'a str>,
}

/// How a boot ended.
#[derive(Debug)]
pub struct Ended {
    /// QEMU's exit status, or None when we killed it.
    pub status: Option<std::process::ExitStatus>,
    /// The timeout struck.
    pub timed_out: bool,
    /// Last lines of the kernel console.
    pub console_tail: String,
    /// Last lines QEMU printed itself.
    pub qemu_output: String,
    /// Wall time.
    pub elapsed: Duration,
    /// CPU time QEMU used (user and system, all its threads): with the guest busy, about
    /// what the run would take in wall time on `cpu / cpus` idle host cores.
    pub cpu: Duration,
}

/// CPU time of this process's reaped children so far.
fn children_cpu() -> Duration {
    // SAFETY: getrusage writes one struct rusage into the zeroed value we own.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// What the line handler wants next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep reading.
    Continue,
    /// The guest said everything; give QEMU a moment to exit, then stop it.
    Done,
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let all: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn spawn(boot: &Boot<'_>, console: &Path, channel: &Path, log: &Path) -> Result<Child, QemuError> {
    let (accel, cpu) = match boot.accel {
        Accel::Kvm => ("kvm", "host"),
        // qemu64 rather than max: the guest's libc and Go runtime then keep to SSE2 paths, which
        // TCG runs at least as fast as the AVX ones (measured on plugin and iptables start-up,
        // and on 22 cases of upstream bridge: max used 7-10% more QEMU CPU time).
        Accel::Tcg => ("tcg,thread=multi", "qemu64"),
    };

    let log_file = std::fs::File::create(log).map_err(QemuError::Spawn)?;
    let log_err = log_file.try_clone().map_err(QemuError::Spawn)?;
    let mut cmd = Command::new(boot.qemu);
    cmd.args(["-nodefaults", "-no-user-config", "-display", "none", "-no-reboot"])
        .args(["-accel", accel, "-cpu", cpu])
        .args(["-smp", &boot.cpus.to_string(), "-m", &boot.memory_mib.to_string()])
        .arg("-kernel")
        .arg(boot.kernel)
        .arg("-initrd")
        .arg(boot.initrd)
        .args(["-append", boot.cmdline])
        .arg("-serial")
        .arg(format!("file:{}", console.display()))
        .arg("-serial")
        .arg(format!("file:{}", channel.display()))
        .args(
            boot.share_root
                .map(|tag| {
                    // readonly: the guest can never write to the host. multidevs=remap: the host's `/`
                    // spans several file systems, whose inode numbers would otherwise collide.
                    [
                        "-virtfs".to_string(),
                        format!("local,path=/,mount_tag={tag},security_model=none,readonly=on,multidevs=remap"),
                    ]
                })
                .into_iter()
                .flatten(),
        )
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(log_err);
    // SAFETY: prctl is async-signal-safe; it makes QEMU die with us instead of running on.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn().map_err(QemuError::Spawn)
}

/// Boots and feeds every complete line the guest writes on its channel to `on_line`.
pub fn run(boot: &Boot<'_>, on_line: &mut dyn FnMut(&str) -> Flow) -> Result<Ended, QemuError> {
    let console = boot.workdir.join("console.log");
    let channel = boot.workdir.join("channel.log");
    let log = boot.workdir.join("qemu.log");
    std::fs::write(&channel, b"").map_err(QemuError::Spawn)?;
    let start = Instant::now();
    let cpu_before = children_cpu();
    let mut child = spawn(boot, &console, &channel, &log)?;
    let mut reader = std::fs::File::open(&channel).map_err(QemuError::Spawn)?;
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut done_at: Option<Instant> = None;
    let mut timed_out = false;
    let status = loop {
        let exited = child.try_wait().map_err(QemuError::Spawn)?;
        // Read everything QEMU wrote so far (after it exited too, to drain the file).
        loop {
            let n = reader.read(&mut buf).map_err(QemuError::Spawn)?;
            if n == 0 {
                break;
            }
            pending.extend_from_slice(&buf[..n]);
        }
        while let Some(pos) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=pos).collect();
            let text = String::from_utf8_lossy(&line[..line.len() - 1]);
            if done_at.is_none() && on_line(text.trim_end_matches('\r')) == Flow::Done {
                done_at = Some(Instant::now());
            }
        }
        if let Some(s) = exited {
            break Some(s);
        }
        if done_at.is_some_and(|t| t.elapsed() > Duration::from_secs(10)) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        if start.elapsed() > boot.timeout {
            timed_out = true;
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ok(Ended {
        status,
        timed_out,
        console_tail: tail(&console, 15),
        qemu_output: tail(&log, 5),
        elapsed: start.elapsed(),
        cpu: children_cpu().saturating_sub(cpu_before),
    })
}
