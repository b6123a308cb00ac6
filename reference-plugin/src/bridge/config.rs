//! The bridge configuration, validated before anything is touched.

use crate::cni::args::CniArgs;
use crate::cni::env::validate_interface_name;
use crate::cni::error::{self, CniError};
use crate::cni::json;
use crate::cni::version::SpecVersion;
use crate::cni::NetConf;

/// Default bridge name.
pub const DEFAULT_BRIDGE: &str = "cni0";

/// A range of VLAN ids (`id` alone is a range of one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VlanRange {
    /// First id.
    pub min: u16,
    /// Last id.
    pub max: u16,
}

/// A validated bridge configuration.
#[derive(Debug, Clone)]
pub struct BridgeConfig {
    /// `bridge`.
    pub bridge: String,
    /// `isGateway` (also true when `isDefaultGateway` is).
    pub is_gateway: bool,
    /// `isDefaultGateway`.
    pub is_default_gateway: bool,
    /// `forceAddress`.
    pub force_address: bool,
    /// `ipMasq`.
    pub ip_masq: bool,
    /// `mtu` (`None`: the kernel's choice).
    pub mtu: Option<u32>,
    /// `hairpinMode`.
    pub hairpin_mode: bool,
    /// `promiscMode`.
    pub promisc_mode: bool,
    /// `vlan` (0: none).
    pub vlan: u16,
    /// `vlanTrunk`.
    pub vlan_trunk: Vec<VlanRange>,
    /// `preserveDefaultVlan`.
    pub preserve_default_vlan: bool,
    /// `macspoofchk`.
    pub macspoofchk: bool,
    /// `enabledad`.
    pub enable_dad: bool,
    /// `disableContainerInterface`.
    pub disable_container_interface: bool,
    /// `portIsolation`.
    pub port_isolation: bool,
    /// The container MAC: `runtimeConfig.mac`, else `args.cni.mac`, else `CNI_ARGS` `MAC`.
    pub mac: Option<String>,
    /// `ipam.type`, when IPAM is used.
    pub ipam_type: Option<String>,
}

impl BridgeConfig {
    /// Whether VLAN filtering is needed on the bridge.
    pub fn vlan_filtering(&self) -> bool {
        self.vlan != 0 || !self.vlan_trunk.is_empty()
    }

    /// Parse and validate. `for_add` also reads the MAC sources (and so `CNI_ARGS`).
    pub fn load(conf: &NetConf, cni_args: &str, for_add: bool) -> Result<BridgeConfig, CniError> {
        let raw = &conf.raw;
        let bridge = json::opt_str(raw, "", "bridge")?
            .filter(|b| !b.is_empty())
            .unwrap_or(DEFAULT_BRIDGE)
            .to_string();
        validate_interface_name(&bridge)
            .map_err(|e| CniError::config(format!("bridge: invalid name {bridge:?}: {}", e.msg)))?;
        let is_default_gateway = json::opt_bool(raw, "", "isDefaultGateway")?;
        let mtu = json::opt_uint(raw, "", "mtu", 65535)?
            .filter(|m| *m != 0)
            .map(|m| m as u32);
        if let Some(m) = mtu {
            if m < 68 {
                return Err(CniError::config(format!("mtu: {m} is below the minimum of 68")));
            }
        }
        let vlan = match json::opt_int(raw, "", "vlan")? {
            None => 0,
            Some(v) if (0..=4094).contains(&v) => v as u16,
            Some(v) => {
                return Err(CniError::config(format!(
                    "invalid VLAN ID {v} (must be between 0 and 4094)"
                )))
            }
        };
        let vlan_trunk = parse_trunk(raw)?;
        if let Some(b) = raw.get("ipMasqBackend") {
            match b.as_str() {
                None if b.is_null() => {}
                Some("nftables") => {}
                Some("iptables") => {
                    return Err(CniError::with_details(
                        error::UNSUPPORTED_FIELD,
                        "ipMasqBackend: \"iptables\" is not supported by this plugin",
                        "this bridge masquerades with nftables; remove ipMasqBackend or set it to \"nftables\"",
                    ))
                }
                _ => {
                    return Err(CniError::config(format!("unknown ipmasq backend {b}")));
                }
            }
        }
        let cfg = BridgeConfig {
            bridge,
            is_gateway: json::opt_bool(raw, "", "isGateway")? || is_default_gateway,
            is_default_gateway,
            force_address: json::opt_bool(raw, "", "forceAddress")?,
            ip_masq: json::opt_bool(raw, "", "ipMasq")?,
            mtu,
            hairpin_mode: json::opt_bool(raw, "", "hairpinMode")?,
            promisc_mode: json::opt_bool(raw, "", "promiscMode")?,
            vlan,
            vlan_trunk,
            preserve_default_vlan: json::opt_bool(raw, "", "preserveDefaultVlan")?,
            macspoofchk: json::opt_bool(raw, "", "macspoofchk")?,
            enable_dad: json::opt_bool(raw, "", "enabledad")?,
            disable_container_interface: json::opt_bool(raw, "", "disableContainerInterface")?,
            port_isolation: json::opt_bool(raw, "", "portIsolation")?,
            mac: if for_add { mac_source(conf, cni_args)? } else { None },
            ipam_type: conf.ipam_type.clone(),
        };
        if cfg.hairpin_mode && cfg.promisc_mode {
            return Err(CniError::config(
                "cannot set hairpin mode and promiscuous mode at the same time",
            ));
        }
        if cfg.ipam_type.is_some() && cfg.disable_container_interface {
            return Err(CniError::config(
                "cannot use IPAM when DisableContainerInterface flag is set",
            ));
        }
        if cfg.ipam_type.is_none() {
            let legacy = SpecVersion::parse(&conf.cni_version).is_ok_and(|v| v < SpecVersion::new(0, 3, 0));
            if legacy {
                return Err(CniError::with_details(
                    error::INCOMPATIBLE_CNI_VERSION,
                    "cannot convert: no valid IP addresses",
                    format!(
                        "an L2-only bridge (no ipam) has no address to report in a {} result; use cniVersion 0.3.0 or later",
                        conf.cni_version
                    ),
                ));
            }
        }
        Ok(cfg)
    }
}

fn parse_trunk(raw: &json::Object) -> Result<Vec<VlanRange>, CniError> {
    let Some(items) = json::opt_array(raw, "", "vlanTrunk")? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("vlanTrunk[{i}]");
        let o = json::item_object(item, &path)?;
        let check = |key: &str| -> Result<Option<u16>, CniError> {
            match json::opt_int(o, &path, key)? {
                None => Ok(None),
                Some(v) if (1..=4094).contains(&v) => Ok(Some(v as u16)),
                Some(v) => Err(CniError::config(format!(
                    "{path}.{key}: invalid VLAN ID {v} (must be between 1 and 4094)"
                ))),
            }
        };
        let id = check("id")?;
        let min = check("minID")?;
        let max = check("maxID")?;
        match (id, min, max) {
            (Some(id), None, None) => out.push(VlanRange { min: id, max: id }),
            (None, Some(min), Some(max)) if min <= max => out.push(VlanRange { min, max }),
            (None, Some(min), Some(max)) => {
                return Err(CniError::config(format!(
                    "{path}: minID {min} is greater than maxID {max}"
                )))
            }
            (None, Some(_), None) | (None, None, Some(_)) => {
                return Err(CniError::config(format!(
                    "{path}: minID and maxID should be configured simultaneously"
                )))
            }
            _ => {
                return Err(CniError::config(format!(
                    "{path}: give either \"id\" or both \"minID\" and \"maxID\""
                )))
            }
        }
    }
    Ok(out)
}

fn mac_source(conf: &NetConf, cni_args: &str) -> Result<Option<String>, CniError> {
    if let Some(mac) = json::opt_str(&conf.runtime_config, "runtimeConfig", "mac")? {
        return Ok(Some(mac.to_string()));
    }
    if let Some(mac) = json::opt_str(&conf.args_cni, "args.cni", "mac")? {
        return Ok(Some(mac.to_string()));
    }
    // `IP` is for the IPAM delegate, which gets the same environment.
    let args = CniArgs::parse(cni_args, &["MAC", "IP"])?;
    Ok(args.get("MAC").map(str::to_string))
}
