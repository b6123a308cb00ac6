//! The host-local configuration: the `ipam` section, `runtimeConfig.ipRanges`,
//! and the requested addresses from `CNI_ARGS` `IP=`, `args.cni.ips` and `runtimeConfig.ips`.

use super::range::{Range, RangeSet};
use crate::cni::args::CniArgs;
use crate::cni::error::CniError;
use crate::cni::json::{self, Object};
use crate::cni::result::{parse_routes, Route};
use crate::cni::version::SpecVersion;
use crate::cni::NetConf;
use crate::ipnet::{self, Family, IpNet};
use serde_json::Value;
use std::net::IpAddr;
use std::path::PathBuf;

/// Where the store lives when `ipam.dataDir` is not given.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/cni/networks";

/// A validated host-local configuration.
#[derive(Debug, Clone)]
pub struct IpamConfig {
    /// The network name (the store's subdirectory).
    pub network: String,
    /// The range sets, in allocation order: `runtimeConfig.ipRanges`, then the legacy
    /// top-level range, then `ipam.ranges`. The position is the index in `last_reserved_ip.N`.
    pub range_sets: Vec<RangeSet>,
    /// `ipam.routes`, copied into the result.
    pub routes: Vec<Route>,
    /// Root of the store.
    pub data_dir: PathBuf,
    /// `ipam.resolvConf`.
    pub resolv_conf: Option<PathBuf>,
    /// Requested addresses, in the order `CNI_ARGS`, `args.cni.ips`, `runtimeConfig.ips`.
    pub requested: Vec<IpAddr>,
}

/// What the configuration must provide for a verb.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// ADD: at least one range set, and the requested addresses.
    Allocation,
    /// DEL, CHECK, GC: only the store location (ranges are validated when present).
    StoreOnly,
}

impl IpamConfig {
    /// Read and validate the configuration.
    pub fn load(conf: &NetConf, cni_args: &str, needs: Needs) -> Result<IpamConfig, CniError> {
        let ipam = json::opt_object(&conf.raw, "", "ipam")?
            .ok_or_else(|| CniError::config("IPAM config missing 'ipam' key"))?;

        let mut requested = Vec::new();
        if needs == Needs::Allocation {
            let args = CniArgs::parse(cni_args, &["IP"])?;
            let from_args = json::opt_str_list(&conf.args_cni, "args.cni", "ips")?;
            // CONVENTIONS: when the same information arrives through `args` too, a plugin
            // that understands `args` ignores the CNI_ARGS value. (Upstream uses both.)
            if from_args.is_empty() {
                if let Some(text) = args.get("IP") {
                    requested.push(parse_requested(text, "CNI_ARGS IP")?);
                }
            }
            for (i, text) in from_args.iter().enumerate() {
                requested.push(parse_requested(text, &format!("args.cni.ips[{i}]"))?);
            }
            for (i, text) in json::opt_str_list(&conf.runtime_config, "runtimeConfig", "ips")?
                .iter()
                .enumerate()
            {
                requested.push(parse_requested(text, &format!("runtimeConfig.ips[{i}]"))?);
            }
        }

        let mut range_sets = Vec::new();
        if let Some(sets) = json::opt_array(&conf.runtime_config, "runtimeConfig", "ipRanges")? {
            for (i, set) in sets.iter().enumerate() {
                range_sets.push(parse_set(set, &format!("runtimeConfig.ipRanges[{i}]"))?);
            }
        }
        if ipam.contains_key("subnet") {
            let range = parse_range(ipam, "ipam")?;
            range_sets.push(RangeSet(vec![range]));
        }
        if let Some(sets) = json::opt_array(ipam, "ipam", "ranges")? {
            for (i, set) in sets.iter().enumerate() {
                range_sets.push(parse_set(set, &format!("ipam.ranges[{i}]"))?);
            }
        }
        let mut validated = Vec::with_capacity(range_sets.len());
        for (i, set) in range_sets.into_iter().enumerate() {
            validated.push(RangeSet::new(set.0).map_err(|e| CniError::config(format!("invalid range set {i}: {e}")))?);
        }
        let range_sets = validated;
        if range_sets.is_empty() && needs == Needs::Allocation {
            return Err(CniError::config("no IP ranges specified")
                .context("host-local needs ipam.ranges, ipam.subnet or runtimeConfig.ipRanges"));
        }
        let count = |f: Family| range_sets.iter().filter(|s| s.family() == f).count();
        if count(Family::V4) > 1 || count(Family::V6) > 1 {
            let new_enough = SpecVersion::parse(&conf.cni_version).is_ok_and(|v| v >= SpecVersion::new(0, 3, 0));
            if !new_enough {
                return Err(CniError::config(format!(
                    "CNI version {} does not support more than 1 address per family",
                    conf.cni_version
                )));
            }
        }
        for (i, a) in range_sets.iter().enumerate() {
            for (j, b) in range_sets.iter().enumerate().skip(i + 1) {
                if a.overlaps(b) {
                    return Err(CniError::config(format!("range set {i} overlaps with {j}")));
                }
            }
        }

        let routes = parse_routes(ipam, "ipam")?;
        let data_dir = json::opt_str(ipam, "ipam", "dataDir")?
            .filter(|d| !d.is_empty())
            .unwrap_or(DEFAULT_DATA_DIR);
        let resolv_conf = json::opt_str(ipam, "ipam", "resolvConf")?
            .filter(|p| !p.is_empty())
            .map(PathBuf::from);
        Ok(IpamConfig {
            network: conf.name.clone(),
            range_sets,
            routes,
            data_dir: PathBuf::from(data_dir),
            resolv_conf,
            requested,
        })
    }
}

fn parse_requested(text: &str, what: &str) -> Result<IpAddr, CniError> {
    ipnet::parse_ip_maybe_prefixed(text).ok_or_else(|| {
        CniError::config(format!(
            "cannot understand ip: {what} {text:?} is not an IP address (with an optional /prefix)"
        ))
    })
}

fn parse_set(value: &Value, path: &str) -> Result<RangeSet, CniError> {
    let Value::Array(items) = value else {
        return Err(CniError::config(format!(
            "{path}: expected an array of ranges, found {}",
            json::kind(value)
        )));
    };
    let mut ranges = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let p = format!("{path}[{i}]");
        ranges.push(parse_range(json::item_object(item, &p)?, &p)?);
    }
    Ok(RangeSet(ranges))
}

fn parse_range(obj: &Object, path: &str) -> Result<Range, CniError> {
    let subnet_text =
        json::opt_str(obj, path, "subnet")?.ok_or_else(|| CniError::config(format!("{path}: missing \"subnet\"")))?;
    let subnet: IpNet = subnet_text
        .parse()
        .map_err(|e| CniError::config(format!("{}: {e}", json::child(path, "subnet"))))?;
    let ip = |key: &str| -> Result<Option<IpAddr>, CniError> {
        match json::opt_str(obj, path, key)? {
            None | Some("") => Ok(None),
            Some(text) => text
                .parse::<IpAddr>()
                .map(Some)
                .map_err(|_| CniError::config(format!("{}: {text:?} is not an IP address", json::child(path, key)))),
        }
    };
    Range::new(subnet, ip("rangeStart")?, ip("rangeEnd")?, ip("gateway")?)
        .map_err(|e| CniError::config(format!("{path}: {e}")))
}
