//! The guest kernel: a file the user names (`--kernel`, with `--modules`), or a Debian kernel
//! package fetched with `apt-get download`, unpacked with `dpkg-deb -x` and kept in the cache.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The Debian package fetched when no `--kernel` is given: small, with the modules we need.
pub const DEFAULT_PACKAGE: &str = "linux-image-cloud-amd64";

/// A kernel to boot.
#[derive(Debug, Clone)]
pub struct Kernel {
    /// The bootable image (bzImage).
    pub image: PathBuf,
    /// Its release (`uname -r` in the guest), read from the image's header.
    pub release: Option<String>,
    /// Its module directory (`.../lib/modules/<release>`), when known.
    pub modules: Option<PathBuf>,
    /// For messages: "Debian package X" or "--kernel FILE".
    pub origin: String,
}

/// Errors finding a kernel.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// `--kernel` names nothing usable.
    #[error("--kernel {path}: {problem}")]
    BadFile {
        /// The path given.
        path: String,
        /// What is wrong.
        problem: String,
    },
    /// `--modules` names nothing usable.
    #[error("--modules {path}: not a directory of kernel modules (want .../lib/modules/<release>)")]
    BadModules {
        /// The path given.
        path: String,
    },
    /// apt could not give us the package.
    #[error("cannot fetch the guest kernel {package} with apt ({problem}); pass --kernel FILE, or run apt-get update")]
    Apt {
        /// The package.
        package: String,
        /// What went wrong.
        problem: String,
    },
    /// A tool we run is missing.
    #[error("{tool} is not installed; it is needed to fetch the guest kernel (apt-get install {package})")]
    MissingTool {
        /// The tool.
        tool: String,
        /// The Debian package that has it.
        package: String,
    },
    /// The cache could not be written.
    #[error("cannot use the cache directory {path}: {source}")]
    Cache {
        /// The path.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The release string of a bzImage, from the setup header: the header magic "HdrS" sits at 0x202
/// and the 16-bit field at 0x20E points (plus 0x200) to a NUL-terminated version string whose
/// first word is the release.
pub fn release_of(image: &[u8]) -> Option<String> {
    if image.get(0x202..0x206)? != b"HdrS" {
        return None;
    }
    let ptr = usize::from(u16::from_le_bytes([*image.get(0x20E)?, *image.get(0x20F)?]));
    let start = ptr.checked_add(0x200)?;
    let tail = image.get(start..start.checked_add(256)?.min(image.len()))?;
    let end = tail.iter().position(|&c| c == 0 || c == b' ')?;
    let release = std::str::from_utf8(&tail[..end]).ok()?;
    (!release.is_empty()).then(|| release.to_string())
}

/// A kernel from `--kernel FILE` and optionally `--modules DIR`. Without `--modules`, the module
/// directory is looked for next to the image (`../lib/modules/<release>`, as in an unpacked
/// package) and then in `/lib/modules/<release>`.
pub fn from_file(image: &Path, modules: Option<&Path>) -> Result<Kernel, KernelError> {
    let bad = |problem: String| KernelError::BadFile {
        path: image.display().to_string(),
        problem,
    };
    let meta = std::fs::metadata(image).map_err(|e| bad(e.to_string()))?;
    if !meta.is_file() {
        return Err(bad("not a regular file".into()));
    }
    let head = read_head(image, 0x10000).map_err(|e| bad(e.to_string()))?;
    let release = release_of(&head);
    if head.get(0x202..0x206) != Some(b"HdrS".as_slice()) {
        return Err(bad("not a Linux kernel image (no bzImage header)".into()));
    }
    let modules = match modules {
        Some(dir) => {
            if !dir.join("kernel").is_dir() {
                return Err(KernelError::BadModules {
                    path: dir.display().to_string(),
                });
            }
            Some(dir.to_path_buf())
        }
        None => release.as_ref().and_then(|rel| {
            let beside = image
                .parent()
                .and_then(Path::parent)
                .map(|root| root.join("lib/modules").join(rel));
            beside
                .into_iter()
                .chain(std::iter::once(Path::new("/lib/modules").join(rel)))
                .find(|d| d.join("kernel").is_dir())
        }),
    };
    Ok(Kernel {
        image: image.to_path_buf(),
        release,
        modules,
        origin: format!("--kernel {}", image.display()),
    })
}

fn read_head(path: &Path, len: usize) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = Vec::with_capacity(len);
    std::fs::File::open(path)?.take(len as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

fn tool_missing(tool: &str, package: &str) -> KernelError {
    KernelError::MissingTool {
        tool: tool.into(),
        package: package.into(),
    }
}

/// The concrete package a meta-package (`linux-image-cloud-amd64`) stands for, by
/// `apt-cache depends`; a concrete name is returned as is.
fn concrete_package(package: &str) -> Result<String, KernelError> {
    let apt = |problem: String| KernelError::Apt {
        package: package.into(),
        problem,
    };
    let out = Command::new("apt-cache")
        .args(["depends", "--no-recommends", "--no-suggests", package])
        .output()
        .map_err(|_| tool_missing("apt-cache", "apt"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(apt(err.lines().last().unwrap_or("apt-cache failed").trim().to_string()));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let dep = text.lines().find_map(|l| {
        let dep = l.trim().strip_prefix("Depends:")?.trim();
        let dep = dep.trim_start_matches('<').trim_end_matches('>');
        dep.starts_with("linux-image-").then(|| dep.to_string())
    });
    Ok(dep.unwrap_or_else(|| package.to_string()))
}

/// Holds an exclusive `flock` on a file for as long as it lives.
struct Lock(#[allow(dead_code)] std::fs::File);

impl Lock {
    fn take(path: &Path) -> std::io::Result<Self> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        // SAFETY: flock on a descriptor we own; the lock ends when the file is closed.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Lock(f))
    }
}

/// How long the package a meta-package stands for is trusted before apt is asked again.
const RESOLVE_TTL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// The concrete package for `package`, remembered in `kernels/<package>.resolved` for a day (asking
/// apt-cache costs seconds); a stale answer is used when apt cannot answer.
fn resolve_cached(package: &str, kernels: &Path) -> Result<String, KernelError> {
    let memo = kernels.join(format!("{package}.resolved"));
    let remembered = std::fs::read_to_string(&memo)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|c| !c.is_empty() && !c.contains('/') && kernels.join(c).join("boot").is_dir());
    let fresh = std::fs::metadata(&memo)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age < RESOLVE_TTL);
    if let (Some(c), true) = (&remembered, fresh) {
        return Ok(c.clone());
    }
    match concrete_package(package) {
        Ok(c) => {
            let _ = std::fs::write(&memo, format!("{c}\n"));
            Ok(c)
        }
        Err(e) => remembered.ok_or(e),
    }
}

/// Unpacked kernel package in `cache/kernels/<package>`, fetched with apt when missing.
pub fn debian(package: &str, cache: &Path, say: &mut dyn FnMut(&str)) -> Result<Kernel, KernelError> {
    let kernels = cache.join("kernels");
    let cache_err = |source| KernelError::Cache {
        path: kernels.display().to_string(),
        source,
    };
    std::fs::create_dir_all(&kernels).map_err(cache_err)?;
    let concrete = resolve_cached(package, &kernels)?;
    let dest = kernels.join(&concrete);
    let _lock = Lock::take(&kernels.join(".lock")).map_err(cache_err)?;
    if !dest.join("boot").is_dir() {
        say(&format!(
            "fetching {concrete} with apt-get download (once; cached in {})",
            kernels.display()
        ));
        let work = kernels.join(format!(".fetch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work).map_err(cache_err)?;
        let result = fetch_into(&concrete, &work, &dest);
        let _ = std::fs::remove_dir_all(&work);
        result?;
    }
    let boot = dest.join("boot");
    let image = std::fs::read_dir(&boot)
        .map_err(cache_err)?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("vmlinuz-"))
        })
        .ok_or_else(|| KernelError::Apt {
            package: concrete.clone(),
            problem: "the package holds no boot/vmlinuz-*".into(),
        })?;
    let mut kernel = from_file(&image, None).map_err(|e| KernelError::Apt {
        package: concrete.clone(),
        problem: e.to_string(),
    })?;
    kernel.origin = format!("Debian package {concrete}");
    Ok(kernel)
}

/// Packages that complete a kernel image package: Ubuntu ships the modules of
/// `linux-image-<release>` in `linux-modules-<release>` and `linux-modules-extra-<release>`
/// (Debian keeps them in the image package, and these names do not exist there).
fn companion_packages(image_package: &str) -> Vec<String> {
    match image_package.strip_prefix("linux-image-") {
        Some(release) if release.starts_with(|c: char| c.is_ascii_digit()) => {
            vec![
                format!("linux-modules-{release}"),
                format!("linux-modules-extra-{release}"),
            ]
        }
        _ => Vec::new(),
    }
}

fn apt_download(package: &str, work: &Path) -> Result<(), KernelError> {
    let out = Command::new("apt-get")
        .args(["download", "-q", package])
        .current_dir(work)
        .output()
        .map_err(|_| tool_missing("apt-get", "apt"))?;
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .rfind(|l| l.starts_with("E:"))
        .or_else(|| err.lines().last())
        .unwrap_or("apt-get download failed");
    Err(KernelError::Apt {
        package: package.into(),
        problem: line.trim().to_string(),
    })
}

fn fetch_into(package: &str, work: &Path, dest: &Path) -> Result<(), KernelError> {
    let apt = |problem: String| KernelError::Apt {
        package: package.into(),
        problem,
    };
    apt_download(package, work)?;
    for companion in companion_packages(package) {
        // Absent on Debian; on Ubuntu they hold the modules.
        let _ = apt_download(&companion, work);
    }
    let debs: Vec<PathBuf> = std::fs::read_dir(work)
        .map_err(|e| apt(e.to_string()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    if debs.is_empty() {
        return Err(apt("apt-get download left no .deb".into()));
    }
    let unpacked = work.join("root");
    for deb in &debs {
        let status = Command::new("dpkg-deb")
            .arg("-x")
            .arg(deb)
            .arg(&unpacked)
            .status()
            .map_err(|_| tool_missing("dpkg-deb", "dpkg"))?;
        if !status.success() {
            return Err(apt(format!("dpkg-deb -x {} failed", deb.display())));
        }
    }
    // Keep only what the guest uses: the image, the config, and the modules.
    let _ = std::fs::remove_dir_all(unpacked.join("usr/share"));
    // Merged-/usr packages put modules under usr/lib/modules; the lookup wants lib/modules.
    let usr_modules = unpacked.join("usr/lib/modules");
    if usr_modules.is_dir() && !unpacked.join("lib/modules").exists() {
        let _ = std::fs::create_dir_all(unpacked.join("lib"));
        let _ = std::fs::rename(&usr_modules, unpacked.join("lib/modules"));
    }
    std::fs::rename(&unpacked, dest).map_err(|e| apt(format!("cannot move the kernel into the cache: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_from_a_synthetic_setup_header() {
        let mut img = vec![0u8; 0x1000];
        img[0x202..0x206].copy_from_slice(b"HdrS");
        img[0x20E..0x210].copy_from_slice(&0x0300u16.to_le_bytes());
        let s = b"6.1.0-56-cloud-amd64 (debian-kernel@lists.debian.org) #1 SMP\0";
        img[0x500..0x500 + s.len()].copy_from_slice(s);
        assert_eq!(release_of(&img).as_deref(), Some("6.1.0-56-cloud-amd64"));
        assert_eq!(release_of(&img[..0x100]), None);
        img[0x202] = b'X';
        assert_eq!(release_of(&img), None);
    }

    #[test]
    fn ubuntu_module_packages_complete_a_concrete_image_package() {
        assert_eq!(
            companion_packages("linux-image-6.8.0-45-generic"),
            ["linux-modules-6.8.0-45-generic", "linux-modules-extra-6.8.0-45-generic"]
        );
        assert!(companion_packages("linux-image-cloud-amd64").is_empty());
    }

    #[test]
    fn a_missing_kernel_file_is_a_clear_error() {
        let e = from_file(Path::new("/nonexistent/vmlinuz"), None)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("--kernel /nonexistent/vmlinuz:"), "{e}");
        let e = from_file(Path::new("/bin/sh"), None).unwrap_err().to_string();
        assert!(e.contains("not a Linux kernel image"), "{e}");
    }
}
