//! Writing and reading `/proc/sys` entries, optionally in another network namespace.
//!
//! `/proc/sys/net` shows the network namespace of the process that opens a file, so writes for
//! another namespace open their files from a thread that has entered it (see
//! [`run_in_netns`](super::run_in_netns)); one thread serves a whole list of writes.

use std::io::{Read, Write};
use std::os::fd::BorrowedFd;

use super::error::{Error, Result};
use super::netns::run_in_netns;

fn full_path(key: &str) -> Result<String> {
    let bad = key.is_empty()
        || key.starts_with('/')
        || key
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..");
    if bad {
        return Err(Error::invalid(
            format!("sysctl {key:?}"),
            "expected a relative path below /proc/sys such as net/ipv4/ip_forward",
        ));
    }
    Ok(format!("/proc/sys/{key}"))
}

/// Writes `value` to `/proc/sys/<key>` (e.g. `net/ipv4/conf/eth0/arp_notify`) in the calling
/// thread's namespace.
pub fn write_sysctl(key: &str, value: &str) -> Result<()> {
    let path = full_path(key)?;
    let op = || format!("write sysctl {key}={value}");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(op(), e))?;
    file.write_all(value.as_bytes()).map_err(|e| Error::io(op(), e))
}

/// Reads `/proc/sys/<key>` in the calling thread's namespace, without the trailing newline.
pub fn read_sysctl(key: &str) -> Result<String> {
    let path = full_path(key)?;
    let mut text = String::new();
    std::fs::File::open(&path)
        .and_then(|mut f| f.read_to_string(&mut text))
        .map_err(|e| Error::io(format!("read sysctl {key}"), e))?;
    Ok(text.trim_end_matches('\n').to_string())
}

/// Writes each `(key, value)` in order inside the network namespace `netns`, stopping at the
/// first failure.
pub fn write_sysctls_in(netns: BorrowedFd<'_>, entries: &[(&str, &str)]) -> Result<()> {
    run_in_netns(netns, || {
        entries.iter().try_for_each(|(key, value)| write_sysctl(key, value))
    })?
}

/// Reads `/proc/sys/<key>` inside the network namespace `netns`.
pub fn read_sysctl_in(netns: BorrowedFd<'_>, key: &str) -> Result<String> {
    run_in_netns(netns, || read_sysctl(key))?
}
