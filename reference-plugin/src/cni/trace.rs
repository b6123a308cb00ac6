//! Phase timings on stderr when `CNI_REF_TRACE=1`, to see where an invocation spends its time
//! (stderr is free-form logging in CNI; nothing is printed otherwise). `CNI_REF_TRACE=2` also
//! times every netlink request.

use std::sync::OnceLock;
use std::time::Instant;

fn start() -> Option<(Instant, u8)> {
    static START: OnceLock<Option<(Instant, u8)>> = OnceLock::new();
    *START.get_or_init(|| {
        let level = match std::env::var("CNI_REF_TRACE").as_deref() {
            Ok("1") => 1,
            Ok("2") => 2,
            _ => return None,
        };
        Some((Instant::now(), level))
    })
}

/// `CLOCK_MONOTONIC` in milliseconds, comparable across processes.
fn monotonic_ms() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec for the call to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as f64 * 1000.0 + ts.tv_nsec as f64 / 1e6
}

/// Print `phase` with the time since the first call (and the absolute monotonic clock, to line
/// traces of several processes up), when tracing is on.
pub fn mark(phase: &str) {
    if let Some((t0, _)) = start() {
        eprintln!(
            "[cni-ref {:>8.3} ms @{:.3}] {phase}",
            t0.elapsed().as_secs_f64() * 1000.0,
            monotonic_ms()
        );
    }
}

/// When `CNI_REF_TRACE=2`: the start of a request to time with [`request_done`].
pub fn request_start() -> Option<Instant> {
    match start() {
        Some((_, 2)) => Some(Instant::now()),
        _ => None,
    }
}

/// Print how long the request started at `began` took (nothing unless `CNI_REF_TRACE=2`).
pub fn request_done(began: Option<Instant>, what: impl FnOnce() -> String) {
    if let Some(began) = began {
        mark(&format!(
            "  request {} took {:.3} ms",
            what(),
            began.elapsed().as_secs_f64() * 1000.0
        ));
    }
}
