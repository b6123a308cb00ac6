//! Profiles: the network configuration a plugin is judged with, and what the lab must provide.
//!
//! A built-in profile is chosen from the binary's file name; `--config FILE` (a plugin
//! object or a conflist whose last plugin is the one under test) replaces it for any other plugin.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::lab::DhcpServerSpec;
use crate::version::SpecVersion;

/// What kind of plugin is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginKind {
    /// Creates `CNI_IFNAME` in the container (bridge, ptp, macvlan, ...).
    Interface,
    /// Returns addresses, creates nothing (host-local, static, dhcp).
    Ipam,
    /// Needs a `prevResult` and modifies an existing attachment (tuning, portmap, ...).
    Chained,
}

/// Something the lab must build before the case runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabNeed {
    /// A veth in the lab host to act as a parent (macvlan/ipvlan/vlan master); its peer end
    /// (`<name>p`) carries `gateway` (a CIDR) when given, so the attachment's gateway answers.
    MasterLink {
        /// The parent link's name.
        name: String,
        /// Address for the peer end, e.g. "10.89.0.1/24".
        gateway: Option<String>,
        /// When set, the gateway sits on a VLAN sub-link of the peer end with this tag (the vlan
        /// plugin's frames arrive tagged).
        gateway_vlan: Option<u16>,
    },
    /// A DHCP server (dnsmasq) on a segment of its own in a lab namespace.
    DhcpServer(DhcpServerSpec),
    /// Every attachment's container already holds `CNI_IFNAME`, up, on the DHCP segment: the lab
    /// plays the interface plugin whose IPAM delegate is under test.
    InterfaceOnDhcpSegment,
    /// The plugin under test runs as a daemon for the lab's whole life (`<plugin> <args>` in the
    /// lab host), serving on `socket`.
    PluginDaemon {
        /// Arguments, e.g. `["daemon"]`.
        args: Vec<String>,
        /// The Unix socket it serves on, inside the lab's private `/run`.
        socket: PathBuf,
    },
}

/// The configuration a plugin is judged with.
#[derive(Debug, Clone)]
pub struct Profile {
    /// Where the profile came from ("built-in bridge", "--config path").
    pub origin: String,
    /// Kind of plugin under test.
    pub kind: PluginKind,
    /// Network name.
    pub network: String,
    /// Plugin objects in chain order, without `name`/`cniVersion`; the last one is under test.
    pub plugins: Vec<Value>,
    /// What the lab must build.
    pub needs: Vec<LabNeed>,
    /// Set when this plugin cannot be judged here, with the reason (e.g. a missing kernel module).
    pub unavailable: Option<String>,
    /// The interface name the plugin works on when it does not create `CNI_IFNAME` itself
    /// (loopback: `lo`); `None` means the suite chooses names (`eth0`, `net1`, ...).
    pub fixed_ifname: Option<String>,
    /// The configuration can hold one attachment at a time (vlan: the kernel allows one link per
    /// master and tag), so cases never keep a first attachment while they make a second.
    pub one_attachment_at_a_time: bool,
    /// Set when the attachment has no peer to reach by design (loopback, a dummy link, a tap
    /// device), with the reason: connectivity cases skip instead of expecting packets to flow.
    pub no_peer: Option<String>,
}

impl Profile {
    /// The data directories the configuration names (`dataDir` keys at any depth, e.g.
    /// host-local's), which are the plugin's data places like `/var/lib/cni`.
    pub fn data_dirs(&self) -> Vec<std::path::PathBuf> {
        fn collect(v: &Value, out: &mut Vec<std::path::PathBuf>) {
            match v {
                Value::Object(map) => {
                    for (k, v) in map {
                        match (k.as_str(), v) {
                            ("dataDir", Value::String(dir)) if dir.starts_with('/') => out.push(dir.into()),
                            _ => collect(v, out),
                        }
                    }
                }
                Value::Array(items) => items.iter().for_each(|i| collect(i, out)),
                _ => {}
            }
        }
        let mut out = Vec::new();
        self.plugins.iter().for_each(|p| collect(p, &mut out));
        out
    }

    /// How many addresses a server of the lab hands out (the dhcp profile's DHCP pool), for cases
    /// that need a pool size and find no range in the configuration.
    pub fn served_pool_size(&self) -> Option<u32> {
        self.needs.iter().find_map(|n| match n {
            LabNeed::DhcpServer(spec) => {
                let start: std::net::Ipv4Addr = spec.range_start.parse().ok()?;
                let end: std::net::Ipv4Addr = spec.range_end.parse().ok()?;
                u32::from(end).checked_sub(u32::from(start)).map(|d| d + 1)
            }
            _ => None,
        })
    }
}

/// Errors loading a profile.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// No built-in profile and no `--config`.
    #[error("no built-in profile for a plugin named {0:?}; pass --config FILE with a network configuration for it")]
    Unknown(String),
    /// The config file could not be read.
    #[error("cannot read --config {path}")]
    Read {
        /// The path.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The config file is not JSON or not a usable configuration.
    #[error("invalid --config {path}: {problem}")]
    Invalid {
        /// The path.
        path: String,
        /// What is wrong.
        problem: String,
    },
}

/// The network name every built-in profile uses.
pub const NETWORK: &str = "conformance";

fn bridge_object() -> Value {
    json!({
        "type": "bridge",
        "bridge": "cni-conf0",
        "isGateway": true,
        "isDefaultGateway": true,
        "ipMasq": true,
        "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.88.0.0/24"}]]}
    })
}

fn host_local_ipam() -> Value {
    json!({"type": "host-local", "ranges": [[{"subnet": "10.89.0.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]})
}

/// Kernel link kinds the running kernel lacks, probed once: a missing kind makes its plugin's
/// profile unavailable with a reason instead of failing.
fn missing_kernel_feature(kind: &str) -> Option<String> {
    let module = match kind {
        "vlan" => "8021q",
        "ipvlan" => "ipvlan",
        "vrf" => "vrf",
        _ => return None,
    };
    let loaded = std::fs::read_to_string("/proc/modules")
        .map(|m| m.lines().any(|l| l.starts_with(&format!("{module} "))))
        .unwrap_or(false);
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let builtin = std::fs::read_to_string(format!("/lib/modules/{release}/modules.builtin"))
        .map(|b| b.contains(&format!("/{module}.ko")))
        .unwrap_or(false);
    let module_file = Path::new(&format!("/lib/modules/{release}/modules.dep")).exists()
        && std::fs::read_to_string(format!("/lib/modules/{release}/modules.dep"))
            .map(|d| d.contains(&format!("/{module}.ko")))
            .unwrap_or(false);
    let sys_present = Path::new(&format!("/sys/module/{module}")).exists();
    (!(loaded || builtin || module_file || sys_present))
        .then(|| format!("the running kernel ({release}) has no {module} support; run with --vm to judge {kind}"))
}

/// The first `name` on `PATH` (the usual directories when it is unset, as in a `--vm` guest) that
/// is an executable file.
fn find_on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// The dhcp plugin judged as the IPAM delegate of an interface on a segment where a real DHCP
/// server answers; the plugin's daemon runs in the lab for the lab's life.
fn dhcp_profile(mut p: Profile) -> Profile {
    match find_on_path("dnsmasq") {
        Some(dnsmasq) => p.needs.push(LabNeed::DhcpServer(DhcpServerSpec {
            dnsmasq,
            server: "10.91.0.1/24".into(),
            range_start: "10.91.0.10".into(),
            range_end: "10.91.0.250".into(),
        })),
        None => {
            p.unavailable = Some(
                "the dhcp profile needs a DHCP server: dnsmasq is not on PATH (Debian package dnsmasq-base; \
                 not the dnsmasq package, which starts a host service)"
                    .into(),
            )
        }
    }
    p.needs.push(LabNeed::InterfaceOnDhcpSegment);
    p.needs.push(LabNeed::PluginDaemon {
        args: vec!["daemon".into()],
        socket: PathBuf::from("/run/cni/dhcp.sock"),
    });
    p
}

/// The built-in profile for a plugin binary, by file name.
pub fn builtin(plugin_name: &str) -> Result<Profile, ProfileError> {
    let mk = |kind, plugins: Vec<Value>| Profile {
        origin: format!("built-in profile for {plugin_name}"),
        kind,
        network: NETWORK.into(),
        plugins,
        needs: Vec::new(),
        unavailable: None,
        fixed_ifname: None,
        one_attachment_at_a_time: false,
        no_peer: None,
    };
    let chained = |obj: Value| mk(PluginKind::Chained, vec![bridge_object(), obj]);
    let profile = match plugin_name {
        "bridge" => mk(PluginKind::Interface, vec![bridge_object()]),
        "ptp" => mk(
            PluginKind::Interface,
            vec![json!({"type": "ptp", "ipMasq": true, "ipam": host_local_ipam()})],
        ),
        "macvlan" | "ipvlan" => {
            let mut p = mk(
                PluginKind::Interface,
                vec![json!({"type": plugin_name, "master": "lab-master0", "ipam": host_local_ipam()})],
            );
            p.needs.push(LabNeed::MasterLink {
                name: "lab-master0".into(),
                gateway: Some("10.89.0.1/24".into()),
                gateway_vlan: None,
            });
            p.unavailable = missing_kernel_feature(plugin_name);
            p
        }
        "vlan" => {
            let mut p = mk(
                PluginKind::Interface,
                vec![json!({"type": "vlan", "master": "lab-master0", "vlanId": 42, "ipam": host_local_ipam()})],
            );
            p.needs.push(LabNeed::MasterLink {
                name: "lab-master0".into(),
                gateway: Some("10.89.0.1/24".into()),
                gateway_vlan: Some(42),
            });
            p.unavailable = missing_kernel_feature("vlan");
            p.one_attachment_at_a_time = true;
            p
        }
        "host-local" => mk(
            PluginKind::Ipam,
            vec![json!({"type": "host-local", "ipam": host_local_ipam()})],
        ),
        "static" => mk(
            PluginKind::Ipam,
            vec![json!({"type": "static", "ipam": {"type": "static",
                "addresses": [{"address": "10.90.0.5/24", "gateway": "10.90.0.1"}],
                "routes": [{"dst": "0.0.0.0/0"}]}})],
        ),
        "dhcp" => dhcp_profile(mk(
            PluginKind::Ipam,
            vec![
                json!({"type": "bridge", "bridge": crate::lab::dhcp_server::SEGMENT_BRIDGE, "ipam": {"type": "dhcp"}}),
            ],
        )),
        "host-device" => {
            let mut p = mk(
                PluginKind::Interface,
                vec![
                    json!({"type": "host-device", "device": "lab-dev0", "ipam": {"type": "host-local",
                    "ranges": [[{"subnet": "10.92.0.0/24", "gateway": "10.92.0.1"}]],
                    "routes": [{"dst": "0.0.0.0/0"}]}}),
                ],
            );
            // The device is a veth: its peer stays in the lab host and answers as the gateway.
            p.needs.push(LabNeed::MasterLink {
                name: "lab-dev0".into(),
                gateway: Some("10.92.0.1/24".into()),
                gateway_vlan: None,
            });
            p.one_attachment_at_a_time = true;
            p
        }
        "loopback" => {
            let mut p = mk(PluginKind::Interface, vec![json!({"type": "loopback"})]);
            p.fixed_ifname = Some("lo".into());
            p.no_peer = Some("loopback sets up lo, which reaches only its own namespace".into());
            p
        }
        "tuning" => chained(json!({"type": "tuning", "sysctl": {"net.ipv4.conf.eth0.arp_notify": "1"}})),
        "portmap" => chained(json!({"type": "portmap", "capabilities": {"portMappings": true}})),
        "bandwidth" => chained(
            json!({"type": "bandwidth", "ingressRate": 8000000, "ingressBurst": 1000000, "egressRate": 8000000, "egressBurst": 1000000}),
        ),
        "firewall" => chained(json!({"type": "firewall", "backend": "iptables"})),
        "sbr" => chained(json!({"type": "sbr"})),
        "vrf" => {
            // Chained after bridge: creates a VRF device in the container and enslaves eth0 to it.
            let mut p = chained(json!({"type": "vrf", "vrfname": "conf-vrf0"}));
            p.unavailable = missing_kernel_feature("vrf");
            p
        }
        other => return Err(ProfileError::Unknown(other.to_string())),
    };
    Ok(profile)
}

/// A profile from `--config`: a plugin object, or a conflist whose last plugin is judged.
pub fn from_file(path: &Path, plugin_name: &str) -> Result<Profile, ProfileError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
        path: shown.clone(),
        source,
    })?;
    let doc: Value = serde_json::from_str(&text).map_err(|e| ProfileError::Invalid {
        path: shown.clone(),
        problem: e.to_string(),
    })?;
    from_value(doc, plugin_name, &shown)
}

/// Builds a profile from a parsed configuration (see [`from_file`]).
pub fn from_value(doc: Value, plugin_name: &str, shown: &str) -> Result<Profile, ProfileError> {
    let invalid = |problem: &str| ProfileError::Invalid {
        path: shown.into(),
        problem: problem.into(),
    };
    let mut doc = doc;
    let annotation = doc.as_object_mut().and_then(|o| o.remove(annotation::KEY));
    let no_peer = annotation::no_peer(annotation).map_err(|p| invalid(&p))?;
    let obj = doc.as_object().ok_or_else(|| invalid("not a JSON object"))?;
    let network = match obj.get("name") {
        // A lone plugin object has no name of its own; a list must have one.
        None if obj.contains_key("plugins") => {
            return Err(invalid(
                "a network configuration list needs a \"name\"",
            ))
        }
        None => NETWORK.to_string(),
        Some(Value::String(name)) if valid_network_name(name) => name.clone(),
        Some(other) => {
            return Err(invalid(&format!(
                "network name {other} is not one the spec allows (an ASCII letter or digit, then letters, digits, '_', '.' or '-')"
            )))
        }
    };
    if let Some(v) = obj.get("cniVersion") {
        let known = v
            .as_str()
            .and_then(|s| s.parse::<SpecVersion>().ok())
            .is_some_and(|s| s.is_released());
        if !known {
            let released: Vec<String> = crate::version::RELEASED.iter().map(ToString::to_string).collect();
            return Err(invalid(&format!(
                "cniVersion {v} is not a released spec version ({})",
                released.join(", ")
            )));
        }
    }
    let plugins: Vec<Value> = match obj.get("plugins") {
        Some(Value::Array(list)) if !list.is_empty() => list.clone(),
        Some(_) => return Err(invalid("\"plugins\" must be a non-empty array")),
        None => vec![doc.clone()],
    };
    for p in &plugins {
        if !p.get("type").is_some_and(Value::is_string) {
            return Err(invalid("every plugin object needs a string \"type\""));
        }
        if p.get("ipam")
            .is_some_and(|ipam| !ipam.get("type").is_some_and(Value::is_string))
        {
            return Err(invalid(
                "an \"ipam\" object needs a string \"type\", the IPAM plugin to run",
            ));
        }
        for ty in [p.get("type"), p.pointer("/ipam/type")].into_iter().flatten() {
            if ty.as_str().is_some_and(|t| t.is_empty() || t.contains(['/', '\\'])) {
                return Err(invalid(&format!(
                    "type {ty} is not a file name (the spec forbids characters disallowed in file paths)"
                )));
            }
        }
    }
    let last = plugins.last().ok_or_else(|| invalid("no plugin"))?;
    let ipam_type = last.pointer("/ipam/type").and_then(Value::as_str);
    let own_type = last.get("type").and_then(Value::as_str);
    let kind = if plugins.len() > 1 {
        PluginKind::Chained
    } else if (ipam_type == Some(plugin_name) && own_type != Some(plugin_name))
        || (ipam_type.is_some() && ipam_type == own_type)
    {
        // The second form ({"type": "host-local", "ipam": {"type": "host-local"}}, the built-in
        // host-local profile's shape) names an IPAM plugin tested directly, whatever its file name.
        PluginKind::Ipam
    } else {
        PluginKind::Interface
    };
    let plugins = plugins
        .into_iter()
        .map(|mut p| {
            if let Some(o) = p.as_object_mut() {
                o.remove("name");
                o.remove("cniVersion");
            }
            p
        })
        .collect();
    Ok(Profile {
        origin: format!("--config {shown}"),
        kind,
        network,
        plugins,
        needs: Vec::new(),
        unavailable: None,
        fixed_ifname: None,
        one_attachment_at_a_time: false,
        no_peer,
    })
}

/// A network name the spec allows: "Must start with an alphanumeric character, optionally
/// followed by any combination of one or more alphanumeric characters, underscore, dot (.) or
/// hyphen (-)" (libcni checks the same, with ASCII letters and digits).
pub fn valid_network_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// The suite's own key in a `--config` file, removed before any plugin sees the configuration.
mod annotation {
    use serde_json::Value;

    /// `"cniConformance": {"noPeer": "why"}` (or `true`) says the attachment has no peer to
    /// reach by design, so connectivity cases skip.
    pub const KEY: &str = "cniConformance";

    /// The `noPeer` reason, if the annotation gives one.
    pub fn no_peer(annotation: Option<Value>) -> Result<Option<String>, String> {
        let Some(annotation) = annotation else { return Ok(None) };
        let obj = annotation
            .as_object()
            .ok_or_else(|| format!("{KEY} must be an object, e.g. {{\"noPeer\": \"a dummy link has no peer\"}}"))?;
        if let Some(unknown) = obj.keys().find(|k| k.as_str() != "noPeer") {
            return Err(format!("{KEY}.{unknown} is not a setting the suite knows (noPeer)"));
        }
        match obj.get("noPeer") {
            None | Some(Value::Bool(false)) => Ok(None),
            Some(Value::Bool(true)) => Ok(Some(format!("the configuration says so ({KEY}.noPeer)"))),
            Some(Value::String(why)) if !why.trim().is_empty() => Ok(Some(why.clone())),
            Some(other) => Err(format!("{KEY}.noPeer must be true or a reason, not {other}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_from_config_shape() {
        let list = json!({"name":"n","cniVersion":"1.0.0","plugins":[{"type":"bridge"},{"type":"tuning"}]});
        assert_eq!(from_value(list, "tuning", "x").unwrap().kind, PluginKind::Chained);
        let ipam = json!({"name":"n","type":"bridge","ipam":{"type":"my-ipam"}});
        assert_eq!(from_value(ipam, "my-ipam", "x").unwrap().kind, PluginKind::Ipam);
        let direct = json!({"name":"n","type":"host-local","ipam":{"type":"host-local"}});
        assert_eq!(from_value(direct, "wrapped-ipam", "x").unwrap().kind, PluginKind::Ipam);
        let one = json!({"name":"n","type":"mine"});
        let p = from_value(one, "mine", "x").unwrap();
        assert_eq!(p.kind, PluginKind::Interface);
        assert_eq!(p.network, "n");
        assert!(from_value(json!({"plugins":[]}), "x", "x").is_err());
        assert!(from_value(json!({"plugins":[{"no":"type"}]}), "x", "x").is_err());
        assert!(matches!(builtin("nonesuch"), Err(ProfileError::Unknown(_))));
    }

    #[test]
    fn dhcp_and_host_device_profiles() {
        let hd = builtin("host-device").unwrap();
        assert_eq!(hd.kind, PluginKind::Interface);
        assert!(hd.one_attachment_at_a_time);
        assert_eq!(hd.plugins[0]["device"], "lab-dev0");
        assert!(matches!(&hd.needs[..], [LabNeed::MasterLink { name, .. }] if name == "lab-dev0"));
        assert_eq!(hd.served_pool_size(), None);

        let dhcp = builtin("dhcp").unwrap();
        assert_eq!(dhcp.kind, PluginKind::Ipam);
        assert_eq!(dhcp.plugins[0]["ipam"]["type"], "dhcp");
        assert!(dhcp.needs.contains(&LabNeed::InterfaceOnDhcpSegment));
        assert!(dhcp
            .needs
            .iter()
            .any(|n| matches!(n, LabNeed::PluginDaemon { args, .. } if args == &["daemon"])));
        match &dhcp.unavailable {
            // Without dnsmasq on PATH the reason names the package.
            Some(reason) => assert!(reason.contains("dnsmasq-base")),
            // With it, the pool is big enough for 32 parallel ADDs.
            None => assert_eq!(dhcp.served_pool_size(), Some(241)),
        }
    }
}
