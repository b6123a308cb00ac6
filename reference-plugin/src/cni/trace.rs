//! Phase timings on stderr when `CNI_REF_TRACE=1`, to see where an invocation spends its time
//! (stderr is free-form logging in CNI; nothing is printed otherwise).

use std::sync::OnceLock;
use std::time::Instant;

fn start() -> Option<Instant> {
    static START: OnceLock<Option<Instant>> = OnceLock::new();
    *START.get_or_init(|| (std::env::var("CNI_REF_TRACE").as_deref() == Ok("1")).then(Instant::now))
}

/// Print `phase` with the time since the first call, when tracing is on.
pub fn mark(phase: &str) {
    if let Some(t0) = start() {
        eprintln!("[cni-ref {:>8.3} ms] {phase}", t0.elapsed().as_secs_f64() * 1000.0);
    }
}
