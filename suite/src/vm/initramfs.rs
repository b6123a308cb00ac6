//! Building the guest's initramfs: the cached image (busybox as init, the suite and its
//! libraries, the plugins, the firewall tools, the kernel modules the cases need) and the tiny
//! per-run archive of arguments appended to it. QEMU and the run itself are `vm/mod.rs`'s job.

use std::path::{Path, PathBuf};

use super::image::{self, Content, Image};
use super::{cpio, elf, guest, io_err, kernel, modules, GuestFile, Request, VmError};

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

pub(super) fn find_busybox() -> Option<PathBuf> {
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

/// An image of only busybox and `init` (the KVM probe boot's).
pub(super) fn minimal_image(busybox: &Path, init: &str) -> Result<Image, VmError> {
    let mut img = Image::new();
    base(&mut img, busybox, init)?;
    Ok(img)
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
pub(super) fn build_image(
    req: &Request,
    kernel: &kernel::Kernel,
    busybox: &Path,
) -> Result<(Image, Option<String>), VmError> {
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
pub(super) fn cached(img: &Image, cache: &Path) -> Result<(PathBuf, bool), VmError> {
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
pub(super) fn run_archive(req: &Request) -> Result<Vec<u8>, VmError> {
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
