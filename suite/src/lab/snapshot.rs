//! What the lab host looks like at one moment, and what changed between two moments.
//!
//! Everything is reduced to sorted text lines so a difference reads like a diff: `+` appeared,
//! `-` disappeared, `~` changed in place (only used for files whose content changed and for
//! sysctl values). Interface indexes and operational state are left out on purpose: they change
//! without anything being leaked.
//!
//! Files come in two kinds. *Data files* sit in the plugin's data places (`/var/lib/cni`, `/run`
//! and the data directories its configuration names): state there is the plugin's business, and
//! a file whose content changed is not a trace. *Written files* are everything else the plugin
//! wrote, read from the lab's writable layer (the machine's `/etc`, `/tmp`, … as the lab sees
//! them): any difference there is a trace, except under [`LOG_DIR`], where a plugin's log may
//! stay.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use super::firewall::FirewallSnapshot;
use super::{Lab, LabError};
use crate::hash::fnv1a;
use crate::ns::{self, NsError};

/// Sysctls of the lab host that plugins commonly change.
pub const SYSCTLS: &[&str] = &[
    "net/ipv4/ip_forward",
    "net/ipv6/conf/all/forwarding",
    "net/ipv4/conf/all/rp_filter",
    "net/ipv4/conf/all/route_localnet",
    "net/ipv4/conf/all/proxy_arp",
    "net/bridge/bridge-nf-call-iptables",
    "net/bridge/bridge-nf-call-ip6tables",
];

/// Directories whose files are part of the snapshot (plugin data and runtime state).
pub const DATA_DIRS: &[&str] = &["/var/lib/cni", "/run"];

/// Where logs go: written files there are reported as writes, not as traces.
pub const LOG_DIR: &str = "/var/log";

/// Paths under [`DATA_DIRS`] that belong to the suite itself, not to the plugin.
const SUITE_PATHS: &[&str] = &["/run/netns", super::service::SERVICE_DIR];

/// The lab host at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostSnapshot {
    /// One line per link: name, kind, MTU, admin state, master, MAC.
    pub links: BTreeSet<String>,
    /// One line per address: link name and CIDR.
    pub addresses: BTreeSet<String>,
    /// One line per route: table, destination, gateway, device, type, protocol, scope, metric.
    pub routes: BTreeSet<String>,
    /// Sysctl values by name (absent sysctls are left out).
    pub sysctls: BTreeMap<String, String>,
    /// Packet-filter state.
    pub firewall: FirewallSnapshot,
    /// Files in the plugin's data places: path to "size bytes, digest".
    pub files: BTreeMap<String, String>,
    /// Files the plugin wrote anywhere else (the lab's writable layer): path to description.
    pub written: BTreeMap<String, String>,
    /// Active leases of the lab's DHCP server (empty when it has none): an address DHCP handed
    /// out is held on the server, so a lease left after DEL is a trace like a reserved file.
    pub dhcp_leases: BTreeSet<String>,
}

/// One difference between two snapshots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// `+`, `-` or `~`.
    pub sign: char,
    /// What changed, e.g. "link veth1234 kind=veth ...".
    pub what: String,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.sign, self.what)
    }
}

impl HostSnapshot {
    /// What an attachment left since `before`, as report lines: every difference except content
    /// changes of data files that already existed (state such as host-local's
    /// `last_reserved_ip`) and logs.
    pub fn traces_since(&self, before: &HostSnapshot) -> Vec<String> {
        self.trace_changes_since(before)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// [`HostSnapshot::traces_since`] as changes (for charging each to the call that made it).
    pub fn trace_changes_since(&self, before: &HostSnapshot) -> Vec<Change> {
        self.diff(before)
            .into_iter()
            .filter(|c| !(c.sign == '~' && c.what.starts_with("file ")))
            .filter(|c| !c.what.starts_with(&format!("written {LOG_DIR}/")))
            .collect()
    }

    /// Files written outside the plugin's data places since `before` (logs included).
    pub fn writes_since(&self, before: &HostSnapshot) -> Vec<Change> {
        let mut out = Vec::new();
        map_diff("written", &before.written, &self.written, &mut out);
        out
    }

    /// Differences from `before` to `self`, in a stable order.
    pub fn diff(&self, before: &HostSnapshot) -> Vec<Change> {
        let mut out = Vec::new();
        set_diff(&before.links, &self.links, &mut out);
        set_diff(&before.addresses, &self.addresses, &mut out);
        set_diff(&before.routes, &self.routes, &mut out);
        map_diff("sysctl", &before.sysctls, &self.sysctls, &mut out);
        for line in self.firewall.diff(&before.firewall) {
            let (sign, what) = split_sign(&line);
            out.push(Change {
                sign,
                what: what.to_string(),
            });
        }
        map_diff("file", &before.files, &self.files, &mut out);
        map_diff("written", &before.written, &self.written, &mut out);
        set_diff(&before.dhcp_leases, &self.dhcp_leases, &mut out);
        out
    }
}

fn split_sign(line: &str) -> (char, &str) {
    let mut chars = line.chars();
    match chars.next() {
        Some(c @ ('+' | '-' | '~')) => (c, chars.as_str().trim_start()),
        _ => ('~', line),
    }
}

fn set_diff(before: &BTreeSet<String>, after: &BTreeSet<String>, out: &mut Vec<Change>) {
    out.extend(before.difference(after).map(|w| Change {
        sign: '-',
        what: w.clone(),
    }));
    out.extend(after.difference(before).map(|w| Change {
        sign: '+',
        what: w.clone(),
    }));
}

fn map_diff(label: &str, before: &BTreeMap<String, String>, after: &BTreeMap<String, String>, out: &mut Vec<Change>) {
    for (k, v) in before {
        match after.get(k) {
            None => out.push(Change {
                sign: '-',
                what: format!("{label} {k}"),
            }),
            Some(w) if w != v => out.push(Change {
                sign: '~',
                what: format!("{label} {k}: {v} -> {w}"),
            }),
            _ => {}
        }
    }
    for k in after.keys().filter(|k| !before.contains_key(*k)) {
        out.push(Change {
            sign: '+',
            what: format!("{label} {k} = {}", after[k]),
        });
    }
}

/// Takes a snapshot of the lab host.
pub(super) fn take(lab: &Lab) -> Result<HostSnapshot, LabError> {
    let rtnl = lab.host_rtnl()?;
    let links = rtnl.links()?;
    let names: HashMap<u32, String> = links.iter().map(|l| (l.index, l.name.clone())).collect();
    let name_of = |i: Option<u32>| i.map_or("-".to_string(), |i| names.get(&i).cloned().unwrap_or(format!("#{i}")));
    let mut snap = HostSnapshot::default();
    for l in &links {
        snap.links.insert(format!(
            "link {} kind={} mtu={} {} master={} mac={}",
            l.name,
            l.kind.as_deref().unwrap_or("-"),
            l.mtu,
            if l.admin_up { "up" } else { "down" },
            name_of(l.master),
            l.mac.as_deref().unwrap_or("-"),
        ));
    }
    // IPv6 link-local addresses and their routes are made by the kernel for every link, some of
    // them asynchronously after the link came up; a leaked link shows up as a link line anyway.
    let derived = |net: Option<crate::net::IpNet>| match net.map(|n| n.addr) {
        Some(std::net::IpAddr::V6(a)) => (a.segments()[0] & 0xffc0) == 0xfe80 || a.segments()[0] >> 8 == 0xff,
        _ => false,
    };
    for a in rtnl.addresses()?.into_iter().filter(|a| !derived(Some(a.addr))) {
        snap.addresses
            .insert(format!("address {} on {}", a.addr, name_of(Some(a.index))));
    }
    for r in rtnl.routes()?.into_iter().filter(|r| !derived(r.dst)) {
        let dst = r.dst.map_or_else(
            || {
                if r.ipv6 {
                    "default6".into()
                } else {
                    "default".into()
                }
            },
            |d| d.to_string(),
        );
        snap.routes.insert(format!(
            "route table={} {} via={} dev={} type={} proto={} scope={} metric={}",
            r.table,
            dst,
            r.gateway.map_or("-".into(), |g| g.to_string()),
            name_of(r.oif),
            r.kind,
            r.protocol,
            r.scope,
            r.priority.unwrap_or(0),
        ));
    }
    snap.sysctls = read_sysctls(lab)?;
    snap.firewall = FirewallSnapshot::read(lab.host_net())?;
    let data_dirs = lab.data_dirs();
    snap.files = read_files(lab, &data_dirs)?;
    let in_data_dir = |path: &str| data_dirs.iter().any(|d| Path::new(path).starts_with(d));
    snap.written = super::sandbox::layer::read(lab.sandbox())
        .into_iter()
        .filter(|(path, _)| !in_data_dir(path.trim_end_matches('/')))
        .collect();
    snap.dhcp_leases = lab.dhcp_leases()?.into_iter().collect();
    Ok(snap)
}

fn read_sysctls(lab: &Lab) -> Result<BTreeMap<String, String>, LabError> {
    Ok(ns::run_in(Some(lab.host_net()), None, || {
        let mut out = BTreeMap::new();
        for name in SYSCTLS {
            if let Ok(v) = std::fs::read_to_string(Path::new("/proc/sys").join(name)) {
                out.insert(name.replace('/', "."), v.trim().to_string());
            }
        }
        Ok(out)
    })?)
}

fn read_files(lab: &Lab, dirs: &[std::path::PathBuf]) -> Result<BTreeMap<String, String>, LabError> {
    let dirs = dirs.to_vec();
    Ok(ns::run_in(None, Some(lab.mnt()), move || {
        let mut out = BTreeMap::new();
        for dir in &dirs {
            walk(dir, &mut out)?;
        }
        Ok(out)
    })?)
}

fn walk(dir: &Path, out: &mut BTreeMap<String, String>) -> Result<(), NsError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(NsError::Sys {
                op: format!("read dir {}", dir.display()),
                source: e,
            })
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let shown = path.display().to_string();
        if SUITE_PATHS
            .iter()
            .any(|p| shown == *p || shown.starts_with(&format!("{p}/")))
        {
            continue;
        }
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            out.insert(format!("{shown}/"), "dir".into());
            walk(&path, out)?;
        } else if kind.is_file() {
            let desc = match std::fs::read(&path) {
                Ok(bytes) => format!("{} bytes, {:016x}", bytes.len(), fnv1a(&bytes)),
                Err(e) => format!("unreadable: {e}"),
            };
            out.insert(shown, desc);
        } else {
            out.insert(shown, "special".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_reports_added_removed_and_changed() {
        let mut a = HostSnapshot::default();
        a.links.insert("link br0".into());
        a.sysctls.insert("net.ipv4.ip_forward".into(), "0".into());
        a.files.insert("/var/lib/cni/x".into(), "1 bytes".into());
        let mut b = a.clone();
        b.links.insert("link veth1".into());
        b.sysctls.insert("net.ipv4.ip_forward".into(), "1".into());
        b.files.clear();
        let d: Vec<String> = b.diff(&a).iter().map(|c| c.to_string()).collect();
        assert_eq!(
            d,
            vec![
                "+ link veth1",
                "~ sysctl net.ipv4.ip_forward: 0 -> 1",
                "- file /var/lib/cni/x"
            ]
        );
        assert!(a.diff(&a).is_empty());
    }
}
