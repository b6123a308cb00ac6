//! The keys every plugin configuration shares (spec §3.2): `cniVersion`, `name`, `type`,
//! `ipam.type`, `dns`, `runtimeConfig`, `args`, `prevResult` and the GC key
//! `cni.dev/valid-attachments` (or the 1.1.0 tag's `cni.dev/attachments`).
//!
//! Plugin-specific keys are read by each plugin from [`NetConf::raw`]. Unknown keys are ignored;
//! known keys of the wrong type are rejected with code 7 and the key's path.

use super::error::CniError;
use super::json::{self, Object};
use super::result::Dns;
use super::version;
use serde_json::Value;

/// An attachment named in a GC request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Attachment {
    /// `CNI_CONTAINERID` of its ADD.
    pub container_id: String,
    /// `CNI_IFNAME` of its ADD.
    pub ifname: String,
}

/// The common part of a plugin configuration read from stdin.
#[derive(Debug, Clone)]
pub struct NetConf {
    /// The whole configuration object.
    pub raw: Object,
    /// `name`.
    pub name: String,
    /// `cniVersion`, or `"0.1.0"` when absent.
    pub cni_version: String,
    /// `type` (may be empty: plugins are found by file name, not by this key).
    pub plugin_type: String,
    /// `ipam.type`, when an `ipam` section with a non-empty type is present.
    pub ipam_type: Option<String>,
    /// `dns`.
    pub dns: Dns,
    /// `runtimeConfig` (empty when absent).
    pub runtime_config: Object,
    /// `args.cni` (empty when absent).
    pub args_cni: Object,
    /// `prevResult`, unparsed.
    pub prev_result: Option<Value>,
    /// `cni.dev/valid-attachments`, else `cni.dev/attachments`; `None` when neither is present.
    pub valid_attachments: Option<Vec<Attachment>>,
}

impl NetConf {
    /// Parse the common keys of a configuration that already passed the dispatcher's checks.
    pub fn parse(raw: Object) -> Result<NetConf, CniError> {
        let name = json::opt_str(&raw, "", "name")?.unwrap_or_default().to_string();
        let cni_version = json::opt_str(&raw, "", "cniVersion")?
            .unwrap_or(version::DEFAULT_WHEN_MISSING)
            .to_string();
        let plugin_type = json::opt_str(&raw, "", "type")?.unwrap_or_default().to_string();
        let ipam_type = match json::opt_object(&raw, "", "ipam")? {
            Some(ipam) => json::opt_str(ipam, "ipam", "type")?
                .filter(|t| !t.is_empty())
                .map(str::to_string),
            None => None,
        };
        let dns = match json::opt_object(&raw, "", "dns")? {
            Some(d) => Dns::from_config(d, "dns")?,
            None => Dns::default(),
        };
        let runtime_config = json::opt_object(&raw, "", "runtimeConfig")?
            .cloned()
            .unwrap_or_default();
        let args_cni = match json::opt_object(&raw, "", "args")? {
            Some(args) => json::opt_object(args, "args", "cni")?.cloned().unwrap_or_default(),
            None => Object::new(),
        };
        let prev_result = raw.get("prevResult").filter(|v| !v.is_null()).cloned();
        let valid_attachments = parse_attachments(&raw)?;
        Ok(NetConf {
            name,
            cni_version,
            plugin_type,
            ipam_type,
            dns,
            runtime_config,
            args_cni,
            prev_result,
            valid_attachments,
            raw,
        })
    }
}

fn parse_attachments(raw: &Object) -> Result<Option<Vec<Attachment>>, CniError> {
    let key = if raw.contains_key("cni.dev/valid-attachments") {
        "cni.dev/valid-attachments"
    } else if raw.contains_key("cni.dev/attachments") {
        "cni.dev/attachments"
    } else {
        return Ok(None);
    };
    let Some(items) = json::opt_array(raw, "", key)? else {
        return Ok(Some(Vec::new()));
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = format!("{key}[{i}]");
        let obj = json::item_object(item, &path)?;
        let container_id = json::opt_str(obj, &path, "containerID")?
            .ok_or_else(|| CniError::config(format!("{path}: missing \"containerID\"")))?;
        let ifname = json::opt_str(obj, &path, "ifname")?
            .ok_or_else(|| CniError::config(format!("{path}: missing \"ifname\"")))?;
        out.push(Attachment {
            container_id: container_id.to_string(),
            ifname: ifname.to_string(),
        });
    }
    Ok(Some(out))
}
