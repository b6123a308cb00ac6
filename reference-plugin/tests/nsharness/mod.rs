//! The harness of the kernel tests that need private namespaces, a thin layer over
//! `libtest-mimic` (preferred to a hand-written loop: it takes libtest's flags, `--list`,
//! `--ignored`, `--exact`, `--skip` and filters, which is what `cargo nextest` relies on).
//!
//! [`run`] moves the process into new network and mount namespaces while it is still
//! single-threaded (directly as root, otherwise by re-executing itself under
//! `unshare --user --map-root-user --net --mount`), then runs the tests one after the other on
//! the main thread. Listing (`--list`) neither isolates nor runs anything. Nothing here ever
//! touches the namespaces the process started in.

#![allow(dead_code)]

use std::os::fd::AsFd;

use cni_reference_plugins::netlink::{NetNs, Rtnl};

const MARKER: &str = "CNI_RS_TEST_PRIVATE_NS";

/// `mount(2)` with string arguments; panics with the OS error (test code).
pub fn mount(src: &str, target: &str, fstype: Option<&str>, flags: libc::c_ulong) {
    let src_c = std::ffi::CString::new(src).unwrap();
    let target_c = std::ffi::CString::new(target).unwrap();
    let fstype_c = fstype.map(|f| std::ffi::CString::new(f).unwrap());
    // SAFETY: valid NUL-terminated strings for the duration of the call.
    let rc = unsafe {
        libc::mount(
            src_c.as_ptr(),
            target_c.as_ptr(),
            fstype_c.as_ref().map_or(std::ptr::null(), |f| f.as_ptr()),
            flags,
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "mount {src} on {target}: {}", std::io::Error::last_os_error());
}

/// Moves this (still single-threaded) process into private network and mount namespaces and
/// brings its loopback up.
pub fn enter_private_namespaces() {
    if std::env::var_os(MARKER).is_none() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            // SAFETY: called from main before any thread is spawned.
            let rc = unsafe { libc::unshare(libc::CLONE_NEWNET | libc::CLONE_NEWNS) };
            assert_eq!(rc, 0, "unshare: {}", std::io::Error::last_os_error());
            make_mounts_private();
        } else {
            let exe = std::env::current_exe().expect("current_exe");
            let err = std::os::unix::process::CommandExt::exec(
                std::process::Command::new("unshare")
                    .args(["--user", "--map-root-user", "--net", "--mount", "--"])
                    .arg(exe)
                    .args(std::env::args_os().skip(1))
                    .env(MARKER, "1"),
            );
            panic!("exec unshare: {err}");
        }
    } else {
        make_mounts_private();
    }
    let rtnl = Rtnl::new().expect("rtnl");
    let lo = rtnl.link_by_name("lo").expect("lo").expect("lo exists");
    rtnl.set_up(lo.index, true).expect("lo up");
}

fn make_mounts_private() {
    // SAFETY: plain mount(2) call with static C strings.
    let rc = unsafe {
        libc::mount(
            c"none".as_ptr(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "make / private: {}", std::io::Error::last_os_error());
}

/// A new, empty network namespace (with `lo` up), created by a thread that ends at once.
pub fn new_netns() -> NetNs {
    let ns = std::thread::spawn(|| {
        // SAFETY: unshare only affects this short-lived thread.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "unshare netns: {}", std::io::Error::last_os_error());
        NetNs::current().expect("open new netns")
    })
    .join()
    .expect("netns thread");
    let rtnl = Rtnl::in_netns(ns.as_fd()).expect("rtnl in new netns");
    let lo = rtnl.link_by_name("lo").expect("lo").expect("lo exists");
    rtnl.set_up(lo.index, true).expect("lo up");
    ns
}

/// A test: a name and a function that panics on failure.
pub type Test = (&'static str, fn());

/// Runs `tests` in private namespaces, after `setup` (mounts the tests share) when given, and
/// exits with libtest's status.
pub fn run(tests: &[Test], setup: Option<fn()>) -> ! {
    let mut args = libtest_mimic::Arguments::from_args();
    if !args.list {
        enter_private_namespaces();
        if let Some(setup) = setup {
            setup();
        }
    }
    // The tests share the namespaces, and some move the main thread between them.
    args.test_threads = Some(1);
    let trials = tests
        .iter()
        .map(|&(name, test)| {
            libtest_mimic::Trial::test(name, move || {
                test();
                Ok(())
            })
        })
        .collect();
    libtest_mimic::run(&args, trials).exit()
}
