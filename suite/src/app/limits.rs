//! Range checks on numeric options, shared by every mode: a value out of range is a usage error
//! (exit 2) before anything runs, never a panic deep inside (`Duration::from_secs_f64(1e20)`
//! overflows, `--jobs 0` would quietly mean 1).

use std::time::Duration;

use anyhow::anyhow;

use super::Usage;

/// The longest limit any option takes: one day.
pub const MAX_SECONDS: u64 = 86_400;

/// Most cases run at once (each holds a lab: namespaces, processes, file descriptors).
pub const MAX_JOBS: usize = 1024;

/// A positive number of seconds of at most [`MAX_SECONDS`].
pub fn seconds(flag: &str, value: f64) -> Result<Duration, Usage> {
    if value.is_finite() && value > 0.0 && value <= MAX_SECONDS as f64 {
        if let Ok(d) = Duration::try_from_secs_f64(value) {
            return Ok(d);
        }
    }
    Err(Usage(anyhow!(
        "{flag} must be a number of seconds above 0 and at most {MAX_SECONDS} (one day), not {value}"
    )))
}

/// A whole number of seconds from 1 to [`MAX_SECONDS`].
pub fn whole_seconds(flag: &str, value: u64) -> Result<Duration, Usage> {
    if (1..=MAX_SECONDS).contains(&value) {
        Ok(Duration::from_secs(value))
    } else {
        Err(Usage(anyhow!(
            "{flag} must be a whole number of seconds from 1 to {MAX_SECONDS} (one day), not {value}"
        )))
    }
}

/// `--jobs`: from 1 to [`MAX_JOBS`]; the number of CPUs when not given.
pub fn jobs(value: Option<usize>) -> Result<usize, Usage> {
    match value {
        None => Ok(std::thread::available_parallelism().map_or(2, |n| n.get())),
        Some(n) if (1..=MAX_JOBS).contains(&n) => Ok(n),
        Some(n) => Err(Usage(anyhow!("--jobs must be from 1 to {MAX_JOBS}, not {n}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_values_are_refused_not_clamped() {
        assert_eq!(seconds("--timeout", 2.5).ok(), Some(Duration::from_millis(2500)));
        for bad in [0.0, -1.0, 1e20, f64::NAN, f64::INFINITY, 86_401.0] {
            assert!(seconds("--timeout", bad).is_err(), "{bad}");
        }
        assert!(whole_seconds("--vm-timeout", 0).is_err());
        assert!(whole_seconds("--vm-timeout", u64::MAX).is_err());
        assert!(jobs(Some(0)).is_err());
        assert_eq!(jobs(Some(3)).ok(), Some(3));
        assert!(jobs(None).is_ok_and(|n| n >= 1));
    }
}
