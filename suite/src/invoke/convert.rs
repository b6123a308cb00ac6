//! Converting an ADD result between spec versions, as a runtime must before it sends a cached
//! result as `prevResult` in another version (the shapes: docs/spec-notes.md#result-shapes-by-version).
//!
//! 0.3.0, 0.3.1, 0.4.0, 1.0.0 and 1.1.0 convert without loss of what the target can hold;
//! 0.1.0/0.2.0 results (`ip4`/`ip6` blocks) convert to and from that family with the known losses.

use serde_json::{json, Map, Value};

use crate::version::SpecVersion;

/// Why a result cannot be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    /// A version string that is not a spec version.
    #[error("unsupported CNI result version {0:?}")]
    Version(String),
    /// The result is not a JSON object.
    #[error("the result is not a JSON object")]
    NotObject,
    /// Down-conversion to 0.1/0.2 needs at least one address.
    #[error("cannot convert: no valid IP addresses")]
    NoAddress,
}

fn parse(v: &str) -> Result<SpecVersion, ConvertError> {
    if v.is_empty() {
        return Ok(SpecVersion(0, 1, 0));
    }
    v.parse::<SpecVersion>()
        .ok()
        .filter(SpecVersion::is_released)
        .ok_or_else(|| ConvertError::Version(v.to_string()))
}

/// Converts `result` to version `to`. A result without `cniVersion` is read as `assumed`.
pub fn convert(result: &Value, assumed: &str, to: &str) -> Result<Value, ConvertError> {
    let obj = result.as_object().ok_or(ConvertError::NotObject)?;
    let from = parse(obj.get("cniVersion").and_then(Value::as_str).unwrap_or(assumed))?;
    let target = parse(to)?;
    let modern = if from.legacy_result() {
        from_legacy(obj)
    } else {
        obj.clone()
    };
    let mut out = if target.legacy_result() {
        to_legacy(&modern)?
    } else {
        to_modern(&modern, target)
    };
    out.insert("cniVersion".into(), json!(to));
    Ok(Value::Object(out))
}

/// 0.3+ shape from `ip4`/`ip6` blocks.
fn from_legacy(obj: &Map<String, Value>) -> Map<String, Value> {
    let mut ips = Vec::new();
    let mut routes = Vec::new();
    for (block, family) in [("ip4", "4"), ("ip6", "6")] {
        let Some(b) = obj.get(block) else { continue };
        let mut ip = Map::new();
        ip.insert("version".into(), json!(family));
        if let Some(a) = b.get("ip") {
            ip.insert("address".into(), a.clone());
        }
        if let Some(g) = b.get("gateway") {
            ip.insert("gateway".into(), g.clone());
        }
        ips.push(Value::Object(ip));
        if let Some(Value::Array(rs)) = b.get("routes") {
            routes.extend(rs.iter().cloned());
        }
    }
    let mut out = Map::new();
    out.insert("ips".into(), Value::Array(ips));
    if !routes.is_empty() {
        out.insert("routes".into(), Value::Array(routes));
    }
    if let Some(d) = obj.get("dns") {
        out.insert("dns".into(), d.clone());
    }
    out
}

/// `ip4`/`ip6` blocks from the 0.3+ shape: the first address of each family survives.
fn to_legacy(obj: &Map<String, Value>) -> Result<Map<String, Value>, ConvertError> {
    let mut out = Map::new();
    let ips = obj.get("ips").and_then(Value::as_array).cloned().unwrap_or_default();
    for ip in ips {
        let Some(addr) = ip.get("address").and_then(Value::as_str) else {
            continue;
        };
        let block = if addr.contains(':') { "ip6" } else { "ip4" };
        if out.contains_key(block) {
            continue;
        }
        let mut b = Map::new();
        b.insert("ip".into(), json!(addr));
        if let Some(g) = ip.get("gateway") {
            b.insert("gateway".into(), g.clone());
        }
        out.insert(block.into(), Value::Object(b));
    }
    if out.is_empty() {
        return Err(ConvertError::NoAddress);
    }
    for r in obj.get("routes").and_then(Value::as_array).cloned().unwrap_or_default() {
        let dst = r.get("dst").and_then(Value::as_str).unwrap_or("");
        let block = if dst.contains(':') { "ip6" } else { "ip4" };
        if let Some(Value::Object(b)) = out.get_mut(block) {
            let mut route = Map::new();
            route.insert("dst".into(), json!(dst));
            if let Some(gw) = r.get("gw") {
                route.insert("gw".into(), gw.clone());
            }
            let list = b.entry("routes").or_insert_with(|| json!([]));
            if let Value::Array(a) = list {
                a.push(Value::Object(route));
            }
        }
    }
    if let Some(d) = obj.get("dns") {
        out.insert("dns".into(), d.clone());
    }
    Ok(out)
}

/// Between 0.3.0 and 1.1.0: `ips[].version` exists only before 1.0.0; interface extras only in 1.1.0.
fn to_modern(obj: &Map<String, Value>, target: SpecVersion) -> Map<String, Value> {
    let mut out = obj.clone();
    if let Some(Value::Array(ips)) = out.get_mut("ips") {
        for ip in ips.iter_mut().filter_map(Value::as_object_mut) {
            if target.ips_have_version() {
                let v6 = ip
                    .get("address")
                    .and_then(Value::as_str)
                    .is_some_and(|a| a.contains(':'));
                ip.insert("version".into(), json!(if v6 { "6" } else { "4" }));
            } else {
                ip.remove("version");
            }
        }
    }
    if target < SpecVersion(1, 1, 0) {
        if let Some(Value::Array(ifs)) = out.get_mut("interfaces") {
            for itf in ifs.iter_mut().filter_map(Value::as_object_mut) {
                for k in ["mtu", "socketPath", "pciID"] {
                    itf.remove(k);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_across_families() {
        let r = json!({"cniVersion":"1.1.0","interfaces":[{"name":"eth0","mtu":1500}],
            "ips":[{"address":"10.0.0.2/24","gateway":"10.0.0.1","interface":0}],
            "routes":[{"dst":"0.0.0.0/0","gw":"10.0.0.1"}]});
        let v04 = convert(&r, "1.1.0", "0.4.0").unwrap();
        assert_eq!(v04["ips"][0]["version"], "4");
        assert!(v04["interfaces"][0].get("mtu").is_none());
        let v02 = convert(&r, "1.1.0", "0.2.0").unwrap();
        assert_eq!(v02["ip4"]["ip"], "10.0.0.2/24");
        assert_eq!(v02["ip4"]["routes"][0]["dst"], "0.0.0.0/0");
        let back = convert(&v02, "0.2.0", "1.0.0").unwrap();
        assert_eq!(back["ips"][0]["address"], "10.0.0.2/24");
        assert!(back["ips"][0].get("version").is_none());
        assert_eq!(
            convert(&json!({"cniVersion":"1.0.0"}), "", "0.2.0"),
            Err(ConvertError::NoAddress)
        );
        assert!(convert(&r, "", "7.0.0").is_err());
    }
}
