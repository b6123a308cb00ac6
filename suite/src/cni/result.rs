//! An ADD result of any version, normalised for kernel checks.

use std::net::IpAddr;

use serde_json::Value;

use crate::net::IpNet;

/// One interface of a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultInterface {
    /// `name`.
    pub name: String,
    /// `mac`, lower-cased.
    pub mac: Option<String>,
    /// `mtu` (1.1.0).
    pub mtu: Option<u64>,
    /// `sandbox`; empty strings read as `None`.
    pub sandbox: Option<String>,
}

/// One IP of a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultIp {
    /// `address` (0.1/0.2: `ip`).
    pub address: IpNet,
    /// `gateway`.
    pub gateway: Option<IpAddr>,
    /// `interface` index; `None` when absent (always absent for 0.1/0.2).
    pub interface: Option<i64>,
}

/// One route of a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultRoute {
    /// `dst`.
    pub dst: IpNet,
    /// `gw`.
    pub gw: Option<IpAddr>,
}

/// An ADD result reduced to what the kernel can confirm.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NormalResult {
    /// `cniVersion` as printed.
    pub cni_version: Option<String>,
    /// `interfaces` (empty for 0.1/0.2 and IPAM results).
    pub interfaces: Vec<ResultInterface>,
    /// `ips`, or the `ip4`/`ip6` blocks.
    pub ips: Vec<ResultIp>,
    /// `routes`, or the routes inside `ip4`/`ip6`.
    pub routes: Vec<ResultRoute>,
}

/// Why a result could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResultError {
    /// stdout is not a JSON object.
    #[error("stdout is not a JSON object")]
    NotObject,
    /// A field has an unusable value.
    #[error("{field}: {problem}")]
    Field {
        /// JSON path of the field.
        field: String,
        /// What is wrong.
        problem: String,
    },
}

fn field(path: impl Into<String>, problem: impl Into<String>) -> ResultError {
    ResultError::Field {
        field: path.into(),
        problem: problem.into(),
    }
}

fn cidr(v: &Value, path: &str) -> Result<IpNet, ResultError> {
    let s = v.as_str().ok_or_else(|| field(path, "not a string"))?;
    s.parse().map_err(|_| field(path, format!("{s:?} is not a CIDR")))
}

fn ip(v: Option<&Value>, path: &str) -> Result<Option<IpAddr>, ResultError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => s
            .parse()
            .map(Some)
            .map_err(|_| field(path, format!("{s:?} is not an IP"))),
        Some(_) => Err(field(path, "not a string")),
    }
}

fn routes(v: Option<&Value>, path: &str, out: &mut Vec<ResultRoute>) -> Result<(), ResultError> {
    let Some(list) = v else { return Ok(()) };
    let list = list.as_array().ok_or_else(|| field(path, "not an array"))?;
    for (i, r) in list.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let dst = cidr(r.get("dst").unwrap_or(&Value::Null), &format!("{p}.dst"))?;
        let gw = ip(r.get("gw"), &format!("{p}.gw"))?;
        out.push(ResultRoute { dst, gw });
    }
    Ok(())
}

impl NormalResult {
    /// Reads a result printed by a plugin (any version layout).
    pub fn parse(doc: &Value) -> Result<Self, ResultError> {
        let o = doc.as_object().ok_or(ResultError::NotObject)?;
        let mut r = NormalResult {
            cni_version: o.get("cniVersion").and_then(Value::as_str).map(str::to_string),
            ..Default::default()
        };
        if let Some(ifs) = o.get("interfaces") {
            let ifs = ifs.as_array().ok_or_else(|| field("interfaces", "not an array"))?;
            for (i, itf) in ifs.iter().enumerate() {
                let name = itf
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| field(format!("interfaces[{i}].name"), "missing or not a string"))?;
                let text = |k: &str| {
                    itf.get(k)
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                };
                r.interfaces.push(ResultInterface {
                    name: name.to_string(),
                    mac: text("mac").map(|m| m.to_ascii_lowercase()),
                    mtu: itf.get("mtu").and_then(Value::as_u64),
                    sandbox: text("sandbox"),
                });
            }
        }
        let ips = o.get("ips").or_else(|| o.get("ip"));
        if let Some(ips) = ips {
            let ips = ips.as_array().ok_or_else(|| field("ips", "not an array"))?;
            for (i, e) in ips.iter().enumerate() {
                let p = format!("ips[{i}]");
                r.ips.push(ResultIp {
                    address: cidr(e.get("address").unwrap_or(&Value::Null), &format!("{p}.address"))?,
                    gateway: ip(e.get("gateway"), &format!("{p}.gateway"))?,
                    interface: e.get("interface").and_then(Value::as_i64),
                });
            }
        }
        routes(o.get("routes"), "routes", &mut r.routes)?;
        for block in ["ip4", "ip6"] {
            if let Some(b) = o.get(block) {
                r.ips.push(ResultIp {
                    address: cidr(b.get("ip").unwrap_or(&Value::Null), &format!("{block}.ip"))?,
                    gateway: ip(b.get("gateway"), &format!("{block}.gateway"))?,
                    interface: None,
                });
                routes(b.get("routes"), &format!("{block}.routes"), &mut r.routes)?;
            }
        }
        Ok(r)
    }

    /// The interface an IP belongs to: its `interface` index when valid, else `None`.
    pub fn interface_of(&self, ip: &ResultIp) -> Option<&ResultInterface> {
        ip.interface
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| self.interfaces.get(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_all_layouts() {
        let v1 = json!({"cniVersion":"1.0.0","interfaces":[{"name":"eth0","mac":"AA:bb:cc:dd:ee:ff","sandbox":"/run/netns/a"}],
            "ips":[{"address":"10.1.0.2/24","gateway":"10.1.0.1","interface":0}],"routes":[{"dst":"0.0.0.0/0"}]});
        let r = NormalResult::parse(&v1).unwrap();
        assert_eq!(r.interfaces[0].mac.as_deref(), Some("aa:bb:cc:dd:ee:ff"));
        assert_eq!(r.interface_of(&r.ips[0]).unwrap().name, "eth0");
        assert_eq!(r.routes[0].gw, None);
        let v02 = json!({"cniVersion":"0.2.0","ip4":{"ip":"10.1.0.2/24","gateway":"10.1.0.1","routes":[{"dst":"0.0.0.0/0","gw":"10.1.0.1"}]}});
        let r = NormalResult::parse(&v02).unwrap();
        assert_eq!(r.ips.len(), 1);
        assert_eq!(r.routes.len(), 1);
        assert!(NormalResult::parse(&json!({"ips":[{"address":"nope"}]})).is_err());
        assert_eq!(NormalResult::parse(&json!([1])), Err(ResultError::NotObject));
    }
}
