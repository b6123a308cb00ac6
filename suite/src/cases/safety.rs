//! `safety/*`: what a plugin must not do to the host or to the runtime that calls it.

use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;

use crate::case::{first_line, Applies, Case, Ctx, Level, Verdict, ANY_KIND, WITH_INTERFACES};
use crate::version::SpecVersion;

/// The cases of this area.
pub const CASES: &[Case] = &[
    Case {
        id: "safety/host-netns-refused",
        title: "ADD with CNI_NETNS naming the plugin's own (host) namespace fails and leaves the host as it was",
        level: Level::Should,
        spec: "libcni skel ErrInvalidNetNS (code 8); digest §9.1 item 22 and §10.12 (skel checks only after ADD)",
        applies: Applies { kinds: WITH_INTERFACES, since: SpecVersion(0, 1, 0) },
        body: host_netns_refused,
    },
    Case {
        id: "safety/exits-cleanly",
        title: "ADD and DEL close stdout and stderr when they exit and leave no process behind (not even a daemon in its own session)",
        level: Level::Should,
        spec: "SPEC §2 (the runtime reads the result from stdout until the plugin is done); libcni waits for the pipes to close",
        applies: Applies { kinds: ANY_KIND, since: SpecVersion(0, 1, 0) },
        body: exits_cleanly,
    },
];

fn host_netns_refused(ctx: &mut Ctx) -> Result<(), Verdict> {
    let version = ctx.version()?;
    let att = ctx.attachment()?;
    let before = ctx.lab.snapshot()?;
    let stdin = ctx.own_request(&version, None).to_string().into_bytes();
    let mut env = ctx.env("ADD", Some(&att));
    // The plugin runs in the lab host namespace: its own namespace file is the host's.
    for (k, v) in env.iter_mut() {
        if k == "CNI_NETNS" {
            *v = "/proc/self/ns/net".into();
        }
    }
    let program = ctx.target.plugin.clone();
    let idx = ctx.invoke(&program, env, stdin);
    ctx.blame = Some(idx);
    let rec = ctx.record(idx).clone();
    let changes = ctx.lab.snapshot()?.traces_since(&before);
    if rec.exit.success() {
        return Err(Verdict::violation(
            "ADD into the plugin's own network namespace succeeded",
            "a non-zero exit (code 8 in libcni-based plugins) and no change to the host",
            format!(
                "exit 0; host changes: {}",
                if changes.is_empty() {
                    "none".into()
                } else {
                    changes.join("; ")
                }
            ),
        ));
    }
    if !changes.is_empty() {
        return Err(Verdict::violation(
            "ADD into the plugin's own namespace was refused only after it changed the host",
            "the refusal before any change",
            format!(
                "{}; host changes: {}",
                first_line(&rec.stdout, &rec.stderr),
                changes.join("; ")
            ),
        ));
    }
    Ok(())
}

/// The inode that names the namespace behind `fd`.
fn ns_inode(fd: BorrowedFd<'_>) -> Option<u64> {
    std::fs::metadata(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .ok()
        .map(|m| m.ino())
}

/// Processes (other than the suite) living in the lab host's network or mount namespace, as
/// `(pid, command line)`: a plugin's daemon that left its process group and closed its pipes.
fn lab_processes(ctx: &Ctx) -> Vec<(i32, String)> {
    let wanted: Vec<String> = [("net", ns_inode(ctx.lab.host_net())), ("mnt", ns_inode(ctx.lab.mnt()))]
        .into_iter()
        .filter_map(|(kind, ino)| ino.map(|i| format!("{kind}:[{i}]")))
        .collect();
    let me = std::process::id();
    let services = ctx.lab.service_pids();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        if u32::try_from(pid).is_ok_and(|p| p == me || services.contains(&p)) {
            continue;
        }
        let inside = ["net", "mnt"].iter().any(|kind| {
            std::fs::read_link(e.path().join("ns").join(kind))
                .is_ok_and(|l| wanted.contains(&l.to_string_lossy().into_owned()))
        });
        if inside {
            let cmdline = std::fs::read(e.path().join("cmdline"))
                .map(|b| String::from_utf8_lossy(&b).replace('\0', " ").trim().to_string())
                .unwrap_or_default();
            found.push((pid, cmdline));
        }
    }
    found
}

/// Waits up to two seconds for processes in the lab to end on their own; kills the rest (they
/// were started by the plugin under test, inside this case's lab) and returns what was left.
fn leftover_processes(ctx: &Ctx) -> Vec<(i32, String)> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let left = lab_processes(ctx);
        if left.is_empty() || std::time::Instant::now() >= deadline {
            for (pid, _) in &left {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid), nix::sys::signal::Signal::SIGKILL);
            }
            return left;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn exits_cleanly(ctx: &mut Ctx) -> Result<(), Verdict> {
    let att = ctx.attachment()?;
    let out = ctx.add(&att)?;
    ctx.del(&att, Some(&out.result))?;
    let first = ctx.invocations.iter().position(|r| !r.notes.is_empty());
    let left = leftover_processes(ctx);
    if first.is_none() && !left.is_empty() {
        ctx.blame = ctx.invocations.iter().position(|r| r.command == "ADD");
        return Err(Verdict::violation(
            "a process started by the plugin kept running in the lab after ADD and DEL returned",
            "no process left in the host's network or mount namespace",
            left.iter()
                .map(|(pid, cmd)| format!("pid {pid}: {cmd} (killed by the suite)"))
                .collect::<Vec<_>>()
                .join("; "),
        ));
    }
    match first {
        None => Ok(()),
        Some(i) => {
            ctx.blame = Some(i);
            let rec = &ctx.invocations[i];
            Err(Verdict::violation(
                format!("{} did not finish cleanly", rec.command),
                "stdout and stderr closed at exit, no process left in the plugin's process group",
                rec.notes.join("; "),
            ))
        }
    }
}
