//! What a plugin leaves to one forked child so that it can exit at once: the slow final close
//! of an nftables socket, the deletion of retired veth pairs and ADD's gratuitous ARP.
//!
//! - Closing an `NETLINK_NETFILTER` socket after an nf_tables commit that deleted something
//!   waits for the kernel's deferred destroy work, i.e. an RCU grace period (~10 ms here): the
//!   socket release notifier flushes that work. The child holds copies of every open
//!   descriptor until this process has exited, so the last reference, and the wait, is the
//!   child's.
//! - Unregistering a veth pair keeps the RTNL lock through several RCU grace periods, 10 to
//!   40 ms on a loaded machine, and every other netlink change on the machine (the next ADD or
//!   DEL included) queues behind it. DEL therefore only retires pairs (see
//!   [`super::del`]): down, released, renamed and put in the [`RETIRED_GROUP`] device group.
//!   The child waits [`BATCH_DELAY`], then deletes the whole group with one request, so a burst
//!   of DELs pays those grace periods once per batch instead of once per DEL.
//! - The gratuitous ARP that announces a new container's addresses is flooded by the bridge to
//!   every port and processed by every container before the send returns (see
//!   [`crate::netlink::Announcement`]); the child sends it, so ADD's latency does not grow with
//!   the number of ports.
//!
//! The child has `/dev/null` as stdin/stdout/stderr (the runtime sees EOF on our pipes as soon
//! as we exit), takes no lock, allocates nothing and ends once its request is answered and it
//! reads EOF on a pipe whose write end only this process holds.

use crate::netlink::{Announcement, GroupDelete};
use std::os::fd::AsRawFd;
use std::time::Duration;

/// The device group of retired veth ends in the host namespace (`"cnid"` in ASCII), which
/// nothing else is expected to use.
pub const RETIRED_GROUP: u32 = 0x636e_6964;

/// How long the child waits before deleting [`RETIRED_GROUP`], so that the pairs retired by
/// other DELs meanwhile go in the same batch.
pub const BATCH_DELAY: Duration = Duration::from_millis(30);

/// What the forked child does besides holding the open descriptors until this process exits.
#[derive(Default)]
pub struct ChildJobs<'a> {
    /// Send this gratuitous ARP first.
    pub announce: Option<&'a Announcement>,
    /// Then, after [`BATCH_DELAY`], delete the retired group.
    pub reap: Option<&'a GroupDelete>,
}

/// Fork the child described in the module documentation, which does `jobs`. Best effort: when
/// no child can be made, the announcement is sent here and now, the slow closes happen in this
/// process, and retired pairs are left to the next DEL's child or to GC.
pub fn hand_over(jobs: ChildJobs<'_>) {
    let announce_here = || {
        if let Some(announcement) = jobs.announce {
            // SAFETY: raw sends on a socket this process owns.
            unsafe { announcement.send_in_forked_child() };
        }
    };
    let Ok(devnull) = std::fs::File::open("/dev/null") else {
        announce_here();
        return;
    };
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: fds is valid for two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        announce_here();
        return;
    }
    let (read_end, write_end) = (fds[0], fds[1]);
    let null = devnull.as_raw_fd();
    let delay = libc::timespec {
        tv_sec: BATCH_DELAY.as_secs() as libc::time_t,
        tv_nsec: BATCH_DELAY.subsec_nanos() as libc::c_long,
    };
    // SAFETY: the child only makes async-signal-safe system calls and leaves with _exit.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: raw system calls on descriptors and memory this process owns.
        unsafe {
            for target in 0..3 {
                libc::dup2(null, target);
            }
            libc::close(write_end);
            if let Some(announcement) = jobs.announce {
                announcement.send_in_forked_child();
            }
            if let Some(group) = jobs.reap {
                let mut rest = delay;
                loop {
                    let request = rest;
                    if libc::nanosleep(&request, &mut rest) == 0 {
                        break;
                    }
                }
                group.run_in_forked_child();
            }
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
        announce_here();
    }
}

/// [`hand_over`] with nothing else to do: only the slow socket closes.
pub fn hand_over_open_files() {
    hand_over(ChildJobs::default());
}
