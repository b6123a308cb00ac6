//! Keep the plugin's exit fast when the kernel makes the final close of a socket slow.
//!
//! Closing an `NETLINK_NETFILTER` socket after an nf_tables commit that deleted something waits
//! for the kernel's deferred destroy work, i.e. an RCU grace period (~10 ms here): the socket
//! release notifier flushes that work. A DEL that removed a masquerade element would spend
//! that time in `exit`. [`hand_over_open_files`] forks a child that holds copies of every open
//! descriptor until this process has exited, so the last reference, and the wait, is the
//! child's. The child has `/dev/null` as stdin/stdout/stderr (the runtime sees EOF on our
//! pipes as soon as we exit), takes no lock, allocates nothing and ends when it reads EOF on a
//! pipe whose write end only this process holds.

use std::os::fd::AsRawFd;

/// Fork the child described in the module documentation. Best effort: on any failure nothing
/// happens and the exit is merely slower.
pub fn hand_over_open_files() {
    let Ok(devnull) = std::fs::File::open("/dev/null") else {
        return;
    };
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: fds is valid for two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return;
    }
    let (read_end, write_end) = (fds[0], fds[1]);
    let null = devnull.as_raw_fd();
    // SAFETY: the child only makes async-signal-safe system calls and leaves with _exit.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: raw system calls on descriptors this process owns.
        unsafe {
            for target in 0..3 {
                libc::dup2(null, target);
            }
            libc::close(write_end);
            let mut byte = 0u8;
            while libc::read(read_end, (&mut byte as *mut u8).cast(), 1) < 0 {}
            libc::_exit(0);
        }
    }
    // SAFETY: closing our copy of the read end; the write end stays open until we exit.
    unsafe { libc::close(read_end) };
    if pid < 0 {
        // SAFETY: no child: close the write end too.
        unsafe { libc::close(write_end) };
    }
}
