//! The scenarios of runtime mode: one network configuration each, written into a fresh conf dir
//! with recording plugins in a fresh bin dir.

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use super::recorder::SIDECAR;

/// What a scenario is for (which rules read it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// One plugin at one version.
    Single,
    /// `cniVersion` plus `cniVersions`: the runtime must pick the highest it supports.
    VersionChoice,
    /// A chain of three (the middle one noisy on stderr and slow).
    Chain,
    /// `disableCheck: true`.
    DisableCheck,
    /// Declared capabilities next to undeclared ones.
    Capabilities,
    /// The middle plugin of three fails ADD.
    FailMidChain,
    /// Version 1.1.0: GC and STATUS if the runtime sends them (the first plugin fails GC).
    GcStatus,
    /// Version 1.1.0 with `disableGC: true`.
    DisableGc,
}

/// One scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Short id, used in the network name and in messages.
    pub slug: &'static str,
    /// What it is for.
    pub purpose: Purpose,
    /// The network configuration written to the conf dir.
    pub conflist: Value,
}

/// The key every plugin object carries that the runtime must pass through unchanged.
pub const PROBE_KEY: &str = "conformanceProbe";

/// Capability arguments a runtime may offer (the control runtime offers all of these).
pub fn sample_capability_args() -> Value {
    json!({
        "portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}],
        "bandwidth": {"ingressRate": 1000000, "ingressBurst": 100000, "egressRate": 1000000, "egressBurst": 100000},
        "ips": ["10.222.0.2/24"],
        "mac": "c2:11:22:33:44:55",
        "aliases": ["conformance"]
    })
}

fn plugin(t: &str, extra: Value) -> Value {
    let mut o = Map::new();
    o.insert("type".into(), json!(t));
    o.insert(
        PROBE_KEY.into(),
        json!({"nested": {"list": [1, "two", null, true], "text": "unchanged ✓"}, "plugin": t}),
    );
    if let Value::Object(extra) = extra {
        o.extend(extra);
    }
    Value::Object(o)
}

fn list(slug: &str, version: Value, plugins: Vec<Value>, extra: Value) -> Value {
    let mut o = Map::new();
    o.insert("cniVersion".into(), version);
    o.insert("name".into(), json!(format!("cnicf-{slug}")));
    if let Value::Object(extra) = extra {
        o.extend(extra);
    }
    o.insert("plugins".into(), Value::Array(plugins));
    Value::Object(o)
}

/// Every scenario, in run order.
pub fn all() -> Vec<Scenario> {
    let none = json!({});
    let single = |slug: &'static str, v: &str| Scenario {
        slug,
        purpose: Purpose::Single,
        conflist: list(slug, json!(v), vec![plugin("recorder-a", json!({}))], json!({})),
    };
    vec![
        single("v031", "0.3.1"),
        single("v040", "0.4.0"),
        single("v100", "1.0.0"),
        single("v110", "1.1.0"),
        Scenario {
            slug: "versions",
            purpose: Purpose::VersionChoice,
            conflist: list(
                "versions",
                json!("0.4.0"),
                vec![plugin("recorder-a", json!({}))],
                json!({"cniVersions": ["0.4.0", "1.0.0", "1.1.0", "9.9.9"]}),
            ),
        },
        Scenario {
            slug: "chain",
            purpose: Purpose::Chain,
            conflist: list(
                "chain",
                json!("1.0.0"),
                vec![
                    plugin("recorder-a", json!({})),
                    plugin(
                        "recorder-b",
                        json!({"recorder": {"stderr": "recorder-b: some noise on stderr", "delayMs": 300}}),
                    ),
                    plugin("recorder-c", json!({})),
                ],
                none.clone(),
            ),
        },
        Scenario {
            slug: "nocheck",
            purpose: Purpose::DisableCheck,
            conflist: list(
                "nocheck",
                json!("1.0.0"),
                vec![plugin("recorder-a", json!({})), plugin("recorder-b", json!({}))],
                json!({"disableCheck": true}),
            ),
        },
        Scenario {
            slug: "caps",
            purpose: Purpose::Capabilities,
            conflist: list(
                "caps",
                json!("1.0.0"),
                vec![
                    plugin(
                        "recorder-a",
                        json!({"capabilities": {"portMappings": true, "bandwidth": true, "ips": true, "mac": true, "aliases": false}}),
                    ),
                    plugin("recorder-b", json!({})),
                ],
                none.clone(),
            ),
        },
        Scenario {
            slug: "failmid",
            purpose: Purpose::FailMidChain,
            conflist: list(
                "failmid",
                json!("1.0.0"),
                vec![
                    plugin("recorder-a", json!({})),
                    plugin("recorder-b", json!({"recorder": {"failOn": ["ADD"]}})),
                    plugin("recorder-c", json!({})),
                ],
                none.clone(),
            ),
        },
        Scenario {
            slug: "gcstatus",
            purpose: Purpose::GcStatus,
            conflist: list(
                "gcstatus",
                json!("1.1.0"),
                vec![
                    plugin("recorder-a", json!({"recorder": {"failOn": ["GC"]}})),
                    plugin("recorder-b", json!({})),
                ],
                none.clone(),
            ),
        },
        Scenario {
            slug: "nogc",
            purpose: Purpose::DisableGc,
            conflist: list(
                "nogc",
                json!("1.1.0"),
                vec![plugin("recorder-a", json!({})), plugin("recorder-b", json!({}))],
                json!({"disableGC": true}),
            ),
        },
    ]
}

impl Scenario {
    /// The network name.
    pub fn network(&self) -> String {
        self.conflist["name"].as_str().unwrap_or_default().to_string()
    }

    /// The plugin objects as stored.
    pub fn plugins(&self) -> Vec<Map<String, Value>> {
        self.conflist["plugins"]
            .as_array()
            .map(|a| a.iter().filter_map(|p| p.as_object().cloned()).collect())
            .unwrap_or_default()
    }

    /// The plugin types in list order.
    pub fn types(&self) -> Vec<String> {
        self.plugins()
            .iter()
            .filter_map(|p| p.get("type").and_then(Value::as_str).map(str::to_string))
            .collect()
    }

    /// Position of a plugin type in the list.
    pub fn index_of(&self, plugin_type: &str) -> Option<usize> {
        self.types().iter().position(|t| t == plugin_type)
    }

    /// Every version the configuration names (including ones no spec defines, such as the
    /// `9.9.9` a runtime must ignore).
    pub fn versions(&self) -> Vec<String> {
        let mut v: Vec<String> = self.conflist["cniVersions"]
            .as_array()
            .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        if let Some(s) = self.conflist["cniVersion"].as_str() {
            if !v.iter().any(|x| x == s) {
                v.push(s.to_string());
            }
        }
        v
    }

    /// The `cniVersion` key.
    pub fn declared_version(&self) -> String {
        self.conflist["cniVersion"].as_str().unwrap_or_default().to_string()
    }
}

/// The directories of one staged scenario.
#[derive(Debug, Clone)]
pub struct Staged {
    /// The scenario's directory.
    pub dir: PathBuf,
    /// The conf dir (holds one `.conflist`).
    pub conf_dir: PathBuf,
    /// The bin dir (recorder links and the sidecar).
    pub bin_dir: PathBuf,
    /// The recorder's log.
    pub log: PathBuf,
}

/// Writes the scenario's conf dir and bin dir under `root/<slug>`; the bin dir holds a symlink to
/// `recorder` for each plugin type, plus the sidecar naming the log.
pub fn stage(s: &Scenario, root: &Path, recorder: &Path) -> std::io::Result<Staged> {
    let dir = root.join(s.slug);
    let conf_dir = dir.join("conf");
    let bin_dir = dir.join("bin");
    std::fs::create_dir_all(&conf_dir)?;
    std::fs::create_dir_all(&bin_dir)?;
    let log = dir.join("log.jsonl");
    let text = serde_json::to_string_pretty(&s.conflist).map_err(std::io::Error::other)?;
    std::fs::write(conf_dir.join(format!("10-{}.conflist", s.network())), text)?;
    for t in s.types() {
        std::os::unix::fs::symlink(recorder, bin_dir.join(t))?;
    }
    std::fs::write(bin_dir.join(SIDECAR), json!({"log": log}).to_string())?;
    // The log is created now, writable by anyone, so a runtime running plugins as another user
    // can still append to it.
    std::fs::write(&log, "")?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o666))?;
    for d in [&dir, &conf_dir, &bin_dir] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(Staged {
        dir,
        conf_dir,
        bin_dir,
        log,
    })
}
