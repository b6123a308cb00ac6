//! A tiny test harness for tests that need private namespaces: `main()` moves the process into
//! new network and mount namespaces (directly as root, otherwise by re-executing itself under
//! `unshare --user --map-root-user --net --mount`), then runs each test and prints libtest-like
//! lines. Nothing here ever touches the namespaces the process started in.

#![allow(dead_code)]

use std::os::fd::AsFd;
use std::panic::AssertUnwindSafe;

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

/// Runs the tests (those whose name contains the first non-flag argument, if any), prints one
/// line each and a summary, and exits non-zero if any failed.
pub fn run(tests: &[Test]) -> ! {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let selected: Vec<&Test> = tests
        .iter()
        .filter(|(name, _)| filter.as_deref().is_none_or(|f| name.contains(f)))
        .collect();
    println!("\nrunning {} tests", selected.len());
    let mut failed = Vec::new();
    for (name, test) in &selected {
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(test));
        match outcome {
            Ok(()) => println!("test {name} ... ok"),
            Err(_) => {
                println!("test {name} ... FAILED");
                failed.push(*name);
            }
        }
    }
    let passed = selected.len() - failed.len();
    if failed.is_empty() {
        println!("\ntest result: ok. {passed} passed; 0 failed; 0 ignored\n");
        std::process::exit(0);
    }
    println!("\nfailures:");
    for name in &failed {
        println!("    {name}");
    }
    println!(
        "\ntest result: FAILED. {passed} passed; {} failed; 0 ignored\n",
        failed.len()
    );
    std::process::exit(101);
}
