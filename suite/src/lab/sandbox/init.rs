//! The lab's init: PID 1 of the lab's PID namespace.
//!
//! It is forked (not executed) from a thread that first moved into a new PID namespace, runs the
//! [`Plan`](super::plan::Plan) (the lab's namespaces and root file system), reports on a pipe,
//! and then only reaps orphans until its control pipe closes. The suite holds the pipe's write
//! end, so the init ends when the lab is dropped *and* when the suite dies, even by SIGKILL; the
//! kernel then kills every process left in the lab's PID namespace. Signals from inside the lab
//! cannot end it (the kernel protects a namespace's init from its own members); SIGTERM, SIGINT
//! or SIGHUP from outside do (that is how a kept lab is removed).
//!
//! Everything after `fork` runs in a copy of a multi-threaded process, so it only makes system
//! calls on data prepared before the fork: no allocation, no locks, no panics.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::plan::{MountCall, OnError, Op, Plan, FD_CONTROL, FD_REPORT};

/// Report message: a mount fell back (followed by the op index, u32 little-endian).
pub const MSG_FALLBACK: u8 = b'F';
/// Report message: an op failed (op index u32, errno i32).
pub const MSG_ERROR: u8 = b'E';
/// Report message: the lab is ready.
pub const MSG_READY: u8 = b'R';
/// Control message: keep the lab when the control pipe closes (`--keep`).
pub const CTL_KEEP: u8 = b'K';

/// The init process as the suite sees it right after the fork.
#[derive(Debug)]
pub struct Forked {
    /// Its pid (in the suite's PID namespace).
    pub pid: libc::pid_t,
    /// The control pipe's write end.
    pub control: OwnedFd,
    /// The report pipe's read end.
    pub report: OwnedFd,
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid array of two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Forks the init into a new PID namespace. The fork happens on a short-lived thread (moving
/// into a PID namespace changes the calling thread's children for good).
pub fn fork(plan: &Plan) -> std::io::Result<Forked> {
    let (control_r, control_w) = pipe()?;
    let (report_r, report_w) = pipe()?;
    let (cr, rw) = (control_r.as_raw_fd(), report_w.as_raw_fd());
    let pid = std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: unshare affects only this thread, which ends right after the fork.
            if unsafe { libc::unshare(libc::CLONE_NEWPID) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // SAFETY: the child only runs `child_main`, which makes system calls on data
            // prepared before the fork and never returns.
            match unsafe { libc::fork() } {
                -1 => Err(std::io::Error::last_os_error()),
                0 => unsafe { child_main(plan, cr, rw) },
                pid => Ok(pid),
            }
        })
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("the thread forking the lab's init panicked")))
    })?;
    drop(control_r);
    drop(report_w);
    Ok(Forked {
        pid,
        control: control_w,
        report: report_r,
    })
}

fn errno() -> i32 {
    // SAFETY: reading the thread's errno.
    unsafe { *libc::__errno_location() }
}

unsafe fn report(msg: u8, index: usize, err: i32) {
    let mut buf = [0u8; 9];
    buf[0] = msg;
    buf[1..5].copy_from_slice(&(index as u32).to_le_bytes());
    buf[5..9].copy_from_slice(&err.to_le_bytes());
    let len = if msg == MSG_ERROR {
        9
    } else if msg == MSG_FALLBACK {
        5
    } else {
        1
    };
    libc::write(FD_REPORT, buf.as_ptr().cast(), len);
}

unsafe fn fail(index: usize, err: i32) -> ! {
    report(MSG_ERROR, index, err);
    libc::_exit(1)
}

unsafe fn mount(m: &MountCall) -> i32 {
    let ptr = |s: &Option<std::ffi::CString>| s.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
    libc::mount(
        ptr(&m.src),
        m.target.as_ptr(),
        ptr(&m.fstype),
        m.flags,
        ptr(&m.data).cast(),
    )
}

/// Runs one op; Err(errno) when it failed and the plan cannot go on.
unsafe fn run_op(index: usize, op: &Op) -> Result<(), i32> {
    match op {
        Op::Unshare(flags) => {
            if libc::unshare(*flags) != 0 {
                return Err(errno());
            }
        }
        Op::Mount(call, on_error) => {
            if mount(call) != 0 {
                let err = errno();
                match on_error {
                    OnError::Fail => return Err(err),
                    OnError::Ignore => {}
                    OnError::Fallback(calls) => {
                        for c in calls {
                            if mount(c) != 0 {
                                return Err(errno());
                            }
                        }
                        report(MSG_FALLBACK, index, 0);
                    }
                }
            }
        }
        Op::Mkdir(path) => {
            if libc::mkdir(path.as_ptr(), 0o755) != 0 && errno() != libc::EEXIST {
                return Err(errno());
            }
        }
        Op::Symlink(to, link) => {
            if libc::symlink(to.as_ptr(), link.as_ptr()) != 0 && errno() != libc::EEXIST {
                return Err(errno());
            }
        }
        Op::Touch(path) => {
            let fd = libc::open(path.as_ptr(), libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC, 0o644);
            if fd < 0 {
                return Err(errno());
            }
            libc::close(fd);
        }
        Op::Keep(path, slot) => {
            let fd = libc::open(path.as_ptr(), libc::O_PATH | libc::O_DIRECTORY);
            if fd < 0 {
                return Err(errno());
            }
            if fd != *slot {
                if libc::dup2(fd, *slot) < 0 {
                    return Err(errno());
                }
                libc::close(fd);
            }
        }
        Op::PivotInto(dir) => {
            let dot = c".".as_ptr();
            if libc::chdir(dir.as_ptr()) != 0 {
                return Err(errno());
            }
            if libc::syscall(libc::SYS_pivot_root, dot, dot) == 0 {
                if libc::umount2(dot, libc::MNT_DETACH) != 0 {
                    return Err(errno());
                }
            } else if errno() == libc::EINVAL {
                // The machine's root is the initramfs (as in `--vm`), which pivot_root refuses:
                // move the new root over it and chroot, as switch_root does.
                if libc::mount(dot, c"/".as_ptr(), std::ptr::null(), libc::MS_MOVE, std::ptr::null()) != 0
                    || libc::chroot(dot) != 0
                {
                    return Err(errno());
                }
                report(MSG_FALLBACK, index, 0);
            } else {
                return Err(errno());
            }
            if libc::chdir(c"/".as_ptr()) != 0 {
                return Err(errno());
            }
        }
    }
    Ok(())
}

/// The forked child: fixed descriptors, the plan, then the init loop. Never returns.
unsafe fn child_main(plan: &Plan, control: i32, report_fd: i32) -> ! {
    // A session of its own: no terminal's signals reach the lab (the control pipe ends it).
    libc::setsid();
    // Park the two pipe ends at high numbers, then at their fixed slots; close everything else
    // (the suite's other pipes must not stay open through the lab's life).
    let c = libc::fcntl(control, libc::F_DUPFD, 100);
    let r = libc::fcntl(report_fd, libc::F_DUPFD, 101);
    if c < 0 || r < 0 || libc::dup2(r, FD_REPORT) < 0 || libc::dup2(c, FD_CONTROL) < 0 {
        libc::_exit(1);
    }
    libc::syscall(
        libc::SYS_close_range,
        (FD_REPORT + 1) as libc::c_uint,
        libc::c_uint::MAX,
        0 as libc::c_uint,
    );
    let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
    if null >= 0 {
        for fd in 0..3 {
            libc::dup2(null, fd);
        }
        if null > 2 {
            libc::close(null);
        }
    }
    for (i, op) in plan.ops.iter().enumerate() {
        if let Err(err) = run_op(i, op) {
            fail(i, err);
        }
    }
    report(MSG_READY, 0, 0);
    libc::close(FD_REPORT);
    serve()
}

/// Reaps orphans until the control pipe closes (unless told to keep the lab) or a signal from
/// outside the lab asks it to end.
unsafe fn serve() -> ! {
    let mut mask: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut mask);
    for sig in [libc::SIGCHLD, libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        libc::sigaddset(&mut mask, sig);
    }
    libc::sigprocmask(libc::SIG_BLOCK, &mask, std::ptr::null_mut());
    let sfd = libc::signalfd(-1, &mask, libc::SFD_CLOEXEC);
    if sfd < 0 {
        libc::_exit(1);
    }
    let mut keep = false;
    let mut control_open = true;
    loop {
        let mut fds = [
            libc::pollfd {
                fd: sfd,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: if control_open { FD_CONTROL } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        if libc::poll(fds.as_mut_ptr(), 2, -1) < 0 && errno() != libc::EINTR {
            libc::_exit(1);
        }
        if fds[1].revents != 0 {
            let mut byte = 0u8;
            let n = libc::read(FD_CONTROL, (&mut byte as *mut u8).cast(), 1);
            if n == 1 && byte == CTL_KEEP {
                keep = true;
            } else if n <= 0 {
                if !keep {
                    libc::_exit(0);
                }
                libc::close(FD_CONTROL);
                control_open = false;
            }
        }
        if fds[0].revents != 0 {
            let mut info: libc::signalfd_siginfo = std::mem::zeroed();
            let size = std::mem::size_of::<libc::signalfd_siginfo>();
            if libc::read(sfd, (&mut info as *mut libc::signalfd_siginfo).cast(), size) == size as isize {
                let from_outside = info.ssi_pid == 0;
                if info.ssi_signo as i32 != libc::SIGCHLD && from_outside {
                    libc::_exit(0);
                }
            }
            while libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) > 0 {}
        }
    }
}
