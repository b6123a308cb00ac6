//! Reading iptables-legacy tables (x_tables: ip_tables and ip6_tables) with
//! `getsockopt(IPT_SO_GET_INFO / IPT_SO_GET_ENTRIES)` on a raw socket of the namespace.
//!
//! Asking the kernel for a table creates it in that namespace when its module is loaded, so the
//! list of existing tables is taken from `/proc/thread-self/net/ip{,6}_tables_names` when it is
//! readable (it is not for root of a user namespace; then the usual tables are asked for). A table
//! that holds nothing but its built-in chains with ACCEPT policies filters nothing and is treated as
//! absent either way, so both paths give the same snapshot.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::{FirewallError, LegacyTable};
use crate::hash::Fnv1a;

/// `IPT_SO_GET_INFO` / `IP6T_SO_GET_INFO` (IPT_BASE_CTL + 0).
const SO_GET_INFO: libc::c_int = 64;
/// `IPT_SO_GET_ENTRIES` / `IP6T_SO_GET_ENTRIES` (IPT_BASE_CTL + 1).
const SO_GET_ENTRIES: libc::c_int = 65;
/// `XT_TABLE_MAXNAMELEN`.
const TABLE_NAME_LEN: usize = 32;
/// `sizeof(struct ipt_getinfo)`: name, valid_hooks, hook_entry[5], underflow[5], num_entries, size.
const GETINFO_LEN: usize = TABLE_NAME_LEN + 4 + 20 + 20 + 4 + 4;
/// `sizeof(struct ipt_get_entries)` without the entries: name, size, padding to 8 for the entries.
const GET_ENTRIES_HEADER: usize = 40;
/// `sizeof(struct xt_counters)`.
const COUNTERS_LEN: usize = 16;
/// Offset of the name in `struct xt_entry_target` (after u16 target_size).
const TARGET_NAME_AT: usize = 2;
/// Length of `xt_entry_target.u.user.name`.
const TARGET_NAME_LEN: usize = 29;
/// Offset of the verdict of a standard target (after the 32-byte target header).
const STANDARD_VERDICT_AT: usize = 32;
/// Verdict of a standard target meaning ACCEPT (`-NF_ACCEPT - 1`).
const VERDICT_ACCEPT: i32 = -2;
/// Tables asked for when the namespace's table list cannot be read.
const USUAL_TABLES: [&str; 5] = ["filter", "nat", "mangle", "raw", "security"];
/// How often a table is re-read when it changed between the two getsockopt calls.
const ATTEMPTS: usize = 5;

/// Where the fields of the per-family entry struct live.
#[derive(Debug, Clone, Copy)]
struct EntryLayout {
    /// "ipv4" or "ipv6".
    family: &'static str,
    /// Socket option level (SOL_IP or SOL_IPV6).
    level: libc::c_int,
    /// Offset of `u16 target_offset` in `ipt_entry` / `ip6t_entry`.
    target_offset_at: usize,
    /// Offset of `u16 next_offset`.
    next_offset_at: usize,
    /// Offset of `struct xt_counters counters`.
    counters_at: usize,
}

/// `struct ipt_entry`: ipt_ip (84 bytes), nfcache, target_offset @88, next_offset @90,
/// comefrom, counters @96; 112 bytes.
const IPV4: EntryLayout = EntryLayout {
    family: "ipv4",
    level: libc::SOL_IP,
    target_offset_at: 88,
    next_offset_at: 90,
    counters_at: 96,
};

/// `struct ip6t_entry`: ip6t_ip6 (136 bytes), nfcache, target_offset @140, next_offset @142,
/// comefrom, counters @152; 168 bytes.
const IPV6: EntryLayout = EntryLayout {
    family: "ipv6",
    level: libc::SOL_IPV6,
    target_offset_at: 140,
    next_offset_at: 142,
    counters_at: 152,
};

/// A raw socket of the target namespace and the tables to ask it for.
#[derive(Debug)]
pub(crate) struct FamilyProbe {
    layout: EntryLayout,
    socket: OwnedFd,
    tables: Vec<String>,
}

/// Runs inside the target namespace: opens one raw socket per address family and lists the
/// tables that exist there (or the usual ones when the list is unreadable).
pub(crate) fn open_probes() -> Result<Vec<FamilyProbe>, FirewallError> {
    let mut probes = Vec::new();
    for (layout, domain, names_file) in [
        (IPV4, libc::AF_INET, "/proc/thread-self/net/ip_tables_names"),
        (IPV6, libc::AF_INET6, "/proc/thread-self/net/ip6_tables_names"),
    ] {
        let Some(socket) = raw_socket(domain, layout.family)? else {
            continue;
        };
        let tables = match std::fs::read_to_string(names_file) {
            Ok(text) => text.lines().map(str::to_string).collect(),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(_) => USUAL_TABLES.iter().map(|t| t.to_string()).collect(),
        };
        probes.push(FamilyProbe { layout, socket, tables });
    }
    Ok(probes)
}

/// Reads every table the probes name; absent and pristine tables are left out.
pub(crate) fn read_tables(probes: &[FamilyProbe]) -> Result<Vec<LegacyTable>, FirewallError> {
    let mut out = Vec::new();
    for probe in probes {
        for name in &probe.tables {
            if let Some(table) = read_table(probe, name)? {
                out.push(table);
            }
        }
    }
    out.sort_by(|a, b| (&a.family, &a.name).cmp(&(&b.family, &b.name)));
    Ok(out)
}

/// A raw socket, or `None` when the address family is not available in this kernel.
fn raw_socket(domain: libc::c_int, family: &str) -> Result<Option<OwnedFd>, FirewallError> {
    // SAFETY: plain socket(2) call; the result is checked before use.
    let raw = unsafe { libc::socket(domain, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::IPPROTO_RAW) };
    if raw < 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EAFNOSUPPORT) {
            return Ok(None);
        }
        return Err(FirewallError::Io {
            op: format!("opening a raw {family} socket for iptables-legacy"),
            source: err,
        });
    }
    // SAFETY: `raw` is a fresh descriptor owned by nobody else.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(raw) }))
}

/// Outcome of one getsockopt.
enum Got {
    /// The option was filled in.
    Data(Vec<u8>),
    /// The table does not exist (or its module is not available): ENOENT, ENOPROTOOPT, EPERM.
    Absent,
    /// The table changed size between GET_INFO and GET_ENTRIES.
    Changed,
}

fn read_table(probe: &FamilyProbe, name: &str) -> Result<Option<LegacyTable>, FirewallError> {
    let layout = probe.layout;
    for _ in 0..ATTEMPTS {
        let mut info = vec![0u8; GETINFO_LEN];
        put_name(&mut info, name);
        let info = match getsockopt(probe, SO_GET_INFO, info, name)? {
            Got::Data(info) => info,
            Got::Absent => return Ok(None),
            Got::Changed => continue,
        };
        if info.len() < GETINFO_LEN {
            return Err(short_reply(layout, name, "SO_GET_INFO", info.len()));
        }
        let valid_hooks = u32_at(&info, TABLE_NAME_LEN);
        let num_entries = u32_at(&info, GETINFO_LEN - 8);
        let size = u32_at(&info, GETINFO_LEN - 4) as usize;

        let mut request = vec![0u8; GET_ENTRIES_HEADER + size];
        put_name(&mut request, name);
        request[TABLE_NAME_LEN..TABLE_NAME_LEN + 4].copy_from_slice(&(size as u32).to_ne_bytes());
        let mut entries = match getsockopt(probe, SO_GET_ENTRIES, request, name)? {
            Got::Data(reply) => reply,
            Got::Absent => return Ok(None),
            Got::Changed => continue,
        };
        if entries.len() != GET_ENTRIES_HEADER + size {
            return Err(short_reply(layout, name, "SO_GET_ENTRIES", entries.len()));
        }
        let blob = &mut entries[GET_ENTRIES_HEADER..];
        let walked = walk_entries(blob, layout, name)?;
        if walked.count != num_entries {
            // The table was replaced between the two calls with one of the same size.
            continue;
        }
        if walked.pristine && num_entries == valid_hooks.count_ones() + 1 {
            return Ok(None);
        }
        let mut digest = Fnv1a::new();
        digest.write(&info[TABLE_NAME_LEN..GETINFO_LEN - 8]);
        digest.write(blob);
        return Ok(Some(LegacyTable {
            family: layout.family.to_string(),
            name: name.to_string(),
            entries: num_entries,
            digest: digest.hex(),
        }));
    }
    Err(FirewallError::Decode {
        what: format!("iptables-legacy {} table {name}", layout.family),
        detail: format!("the table kept changing while it was read ({ATTEMPTS} attempts)"),
    })
}

/// What walking an entry blob found.
struct Walked {
    /// Number of entries.
    count: u32,
    /// True when every entry but the last is an ACCEPT policy and the last is the ERROR entry.
    pristine: bool,
}

/// Walks the entries, zeroing each entry's packet and byte counters in place.
fn walk_entries(blob: &mut [u8], layout: EntryLayout, table: &str) -> Result<Walked, FirewallError> {
    let bad = |detail: String| FirewallError::Decode {
        what: format!("iptables-legacy {} table {table}", layout.family),
        detail,
    };
    let mut at = 0usize;
    let mut count = 0u32;
    let mut pristine = true;
    let total = blob.len();
    while at < total {
        let entry = &mut blob[at..];
        if entry.len() < layout.counters_at + COUNTERS_LEN {
            return Err(bad(format!("truncated entry at offset {at}")));
        }
        let target_offset = usize::from(u16_at(entry, layout.target_offset_at));
        let next_offset = usize::from(u16_at(entry, layout.next_offset_at));
        if next_offset < layout.counters_at + COUNTERS_LEN || next_offset > entry.len() {
            return Err(bad(format!("entry at offset {at} has next_offset {next_offset}")));
        }
        entry[layout.counters_at..layout.counters_at + COUNTERS_LEN].fill(0);
        let is_last = at + next_offset >= total;
        pristine &= target_is(&entry[..next_offset], target_offset, is_last);
        count += 1;
        at += next_offset;
    }
    Ok(Walked { count, pristine })
}

/// Whether the target of an entry is the one a freshly created table has there: an ACCEPT
/// standard target for chain policies, the ERROR target for the final entry.
fn target_is(entry: &[u8], target_offset: usize, is_last: bool) -> bool {
    let Some(target) = entry.get(target_offset..) else {
        return false;
    };
    let Some(name) = target.get(TARGET_NAME_AT..TARGET_NAME_AT + TARGET_NAME_LEN) else {
        return false;
    };
    let name = name.split(|b| *b == 0).next().unwrap_or_default();
    if is_last {
        return name == b"ERROR";
    }
    let verdict = target
        .get(STANDARD_VERDICT_AT..STANDARD_VERDICT_AT + 4)
        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
    name.is_empty() && verdict == Some(VERDICT_ACCEPT)
}

fn getsockopt(probe: &FamilyProbe, option: libc::c_int, mut buf: Vec<u8>, table: &str) -> Result<Got, FirewallError> {
    let mut len = buf.len() as libc::socklen_t;
    // SAFETY: `buf` is valid for reads and writes of `len` bytes.
    let rc = unsafe {
        libc::getsockopt(
            probe.socket.as_raw_fd(),
            probe.layout.level,
            option,
            buf.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc == 0 {
        buf.truncate(len as usize);
        return Ok(Got::Data(buf));
    }
    let err = std::io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENOPROTOOPT) | Some(libc::EPERM) => Ok(Got::Absent),
        Some(libc::EAGAIN) | Some(libc::EINVAL) if option == SO_GET_ENTRIES => Ok(Got::Changed),
        _ => Err(FirewallError::Io {
            op: format!(
                "getsockopt({}) for iptables-legacy {} table {table}",
                if option == SO_GET_INFO {
                    "SO_GET_INFO"
                } else {
                    "SO_GET_ENTRIES"
                },
                probe.layout.family
            ),
            source: err,
        }),
    }
}

fn short_reply(layout: EntryLayout, table: &str, option: &str, len: usize) -> FirewallError {
    FirewallError::Decode {
        what: format!("iptables-legacy {} table {table}", layout.family),
        detail: format!("{option} returned {len} bytes"),
    }
}

fn put_name(buf: &mut [u8], name: &str) {
    let bytes = name.as_bytes();
    let len = bytes.len().min(TABLE_NAME_LEN - 1);
    buf[..len].copy_from_slice(&bytes[..len]);
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([bytes[at], bytes[at + 1]])
}
