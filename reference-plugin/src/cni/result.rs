//! The ADD Success result (spec §5) of every version.
//!
//! [`CniResult`] holds a result in the 1.1.0 model. [`CniResult::to_json`] prints it in the
//! shape of the requested version:
//! - 1.1.0: everything;
//! - 1.0.0: without the 1.1 extras (`interfaces[].mtu/socketPath/pciID`,
//!   `routes[].mtu/advmss/priority/table/scope`), so the document is valid 1.0.0;
//! - 0.3.0/0.3.1/0.4.0: `ips[].version` added, extras dropped, `dns` always present;
//! - 0.1.0/0.2.0: `ip4`/`ip6` blocks holding the first address of each family and the routes of
//!   that family; conversion fails without any address (as in the Go library).
//!
//! [`CniResult::from_json`] reads a result of any version (an IPAM answer, a `prevResult`),
//! ignoring unknown keys.

use super::error::CniError;
use super::json::{self, Object};
use super::version::ResultFormat;
use crate::ipnet::{Family, IpNet};
use serde::Serialize;
use serde_json::Value;
use std::net::IpAddr;

/// An interface in a result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Interface {
    /// Name.
    pub name: String,
    /// MAC address (may be empty).
    pub mac: String,
    /// MTU (1.1.0).
    pub mtu: Option<u32>,
    /// The netns path for interfaces inside the container; empty for host interfaces.
    pub sandbox: String,
    /// Socket path (1.1.0; may be empty).
    pub socket_path: String,
    /// PCI id (1.1.0; may be empty).
    pub pci_id: String,
}

/// An address in a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpConfig {
    /// Index into `interfaces`, when known.
    pub interface: Option<usize>,
    /// The address with its prefix length.
    pub address: IpNet,
    /// The subnet's gateway.
    pub gateway: Option<IpAddr>,
}

/// A route in a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Destination prefix.
    pub dst: IpNet,
    /// Next hop.
    pub gw: Option<IpAddr>,
    /// Route MTU (1.1.0).
    pub mtu: Option<u32>,
    /// Advertised MSS (1.1.0).
    pub advmss: Option<u32>,
    /// Priority / metric (1.1.0).
    pub priority: Option<u32>,
    /// Routing table (1.1.0).
    pub table: Option<u32>,
    /// Scope (1.1.0).
    pub scope: Option<u8>,
}

impl Route {
    /// A route with only a destination and an optional gateway.
    pub fn simple(dst: IpNet, gw: Option<IpAddr>) -> Route {
        Route {
            dst,
            gw,
            mtu: None,
            advmss: None,
            priority: None,
            table: None,
            scope: None,
        }
    }
}

/// DNS settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Dns {
    /// Name servers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    /// Local domain.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub domain: String,
    /// Search domains.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    /// Resolver options.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl Dns {
    /// Whether no field is set.
    pub fn is_empty(&self) -> bool {
        self.nameservers.is_empty() && self.domain.is_empty() && self.search.is_empty() && self.options.is_empty()
    }

    /// Read a `dns` object (configuration or result).
    pub fn from_config(obj: &Object, path: &str) -> Result<Dns, CniError> {
        Ok(Dns {
            nameservers: json::opt_str_list(obj, path, "nameservers")?,
            domain: json::opt_str(obj, path, "domain")?.unwrap_or_default().to_string(),
            search: json::opt_str_list(obj, path, "search")?,
            options: json::opt_str_list(obj, path, "options")?,
        })
    }
}

/// A result in the 1.1.0 model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CniResult {
    /// Interfaces.
    pub interfaces: Vec<Interface>,
    /// Addresses.
    pub ips: Vec<IpConfig>,
    /// Routes.
    pub routes: Vec<Route>,
    /// DNS.
    pub dns: Dns,
}

fn is_zero_or_none<T: Default + PartialEq>(v: &Option<T>) -> bool {
    v.as_ref().is_none_or(|x| *x == T::default())
}

#[derive(Serialize)]
struct WireInterface<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    mac: &'a str,
    #[serde(skip_serializing_if = "is_zero_or_none")]
    mtu: Option<u32>,
    #[serde(skip_serializing_if = "str::is_empty")]
    sandbox: &'a str,
    #[serde(rename = "socketPath", skip_serializing_if = "str::is_empty")]
    socket_path: &'a str,
    #[serde(rename = "pciID", skip_serializing_if = "str::is_empty")]
    pci_id: &'a str,
}

#[derive(Serialize)]
struct WireIp {
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    interface: Option<usize>,
    address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    gateway: Option<String>,
}

#[derive(Serialize)]
struct WireRoute {
    dst: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    gw: Option<String>,
    #[serde(skip_serializing_if = "is_zero_or_none")]
    mtu: Option<u32>,
    #[serde(skip_serializing_if = "is_zero_or_none")]
    advmss: Option<u32>,
    #[serde(skip_serializing_if = "is_zero_or_none")]
    priority: Option<u32>,
    #[serde(skip_serializing_if = "is_zero_or_none")]
    table: Option<u32>,
    #[serde(skip_serializing_if = "is_zero_or_none")]
    scope: Option<u8>,
}

#[derive(Serialize)]
struct WireCurrent<'a> {
    #[serde(rename = "cniVersion")]
    cni_version: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    interfaces: Vec<WireInterface<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ips: Vec<WireIp>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    routes: Vec<WireRoute>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dns: Option<&'a Dns>,
}

#[derive(Serialize)]
struct WireLegacyRoute {
    dst: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    gw: Option<String>,
}

#[derive(Serialize)]
struct WireLegacyIp {
    ip: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    gateway: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    routes: Vec<WireLegacyRoute>,
}

#[derive(Serialize)]
struct WireLegacy<'a> {
    #[serde(rename = "cniVersion")]
    cni_version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip4: Option<WireLegacyIp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip6: Option<WireLegacyIp>,
    dns: &'a Dns,
}

impl CniResult {
    /// The result printed in the shape of `cni_version` (4-space indentation, no trailing
    /// newline, like Go's `types.PrintResult`).
    pub fn to_json(&self, cni_version: &str) -> Result<String, CniError> {
        let value = self.to_value(cni_version)?;
        Ok(json::to_pretty(&value))
    }

    /// The result as a JSON value in the shape of `cni_version`.
    pub fn to_value(&self, cni_version: &str) -> Result<Value, CniError> {
        let format = ResultFormat::for_version(cni_version)
            .map_err(|e| CniError::new(super::error::INCOMPATIBLE_CNI_VERSION, e))?;
        let value = match format {
            ResultFormat::Legacy => serde_json::to_value(self.legacy(cni_version)?),
            _ => serde_json::to_value(self.current(cni_version, format)),
        };
        value.map_err(|e| CniError::new(super::error::INTERNAL, format!("encoding result: {e}")))
    }

    fn current<'a>(&'a self, cni_version: &'a str, format: ResultFormat) -> WireCurrent<'a> {
        let extras = format == ResultFormat::V110;
        WireCurrent {
            cni_version,
            interfaces: self
                .interfaces
                .iter()
                .map(|i| WireInterface {
                    name: &i.name,
                    mac: &i.mac,
                    mtu: if extras { i.mtu } else { None },
                    sandbox: &i.sandbox,
                    socket_path: if extras { &i.socket_path } else { "" },
                    pci_id: if extras { &i.pci_id } else { "" },
                })
                .collect(),
            ips: self
                .ips
                .iter()
                .map(|ip| WireIp {
                    version: (format == ResultFormat::V03).then(|| ip.address.family().version_str()),
                    interface: ip.interface,
                    address: ip.address.to_string(),
                    gateway: ip.gateway.map(|g| g.to_string()),
                })
                .collect(),
            routes: self
                .routes
                .iter()
                .map(|r| WireRoute {
                    dst: r.dst.to_string(),
                    gw: r.gw.map(|g| g.to_string()),
                    mtu: r.mtu.filter(|_| extras),
                    advmss: r.advmss.filter(|_| extras),
                    priority: r.priority.filter(|_| extras),
                    table: r.table.filter(|_| extras),
                    scope: r.scope.filter(|_| extras),
                })
                .collect(),
            // 0.3.x/0.4.0 always print "dns" (Go has no omitempty there); 1.x omits it when empty.
            dns: if format == ResultFormat::V03 || !self.dns.is_empty() {
                Some(&self.dns)
            } else {
                None
            },
        }
    }

    fn legacy<'a>(&'a self, cni_version: &'a str) -> Result<WireLegacy<'a>, CniError> {
        let block = |family: Family| -> Option<WireLegacyIp> {
            let ip = self.ips.iter().find(|ip| ip.address.family() == family)?;
            Some(WireLegacyIp {
                ip: ip.address.to_string(),
                gateway: ip.gateway.map(|g| g.to_string()),
                routes: self
                    .routes
                    .iter()
                    .filter(|r| r.dst.family() == family)
                    .map(|r| WireLegacyRoute {
                        dst: r.dst.to_string(),
                        gw: r.gw.map(|g| g.to_string()),
                    })
                    .collect(),
            })
        };
        let ip4 = block(Family::V4);
        let ip6 = block(Family::V6);
        if ip4.is_none() && ip6.is_none() {
            return Err(CniError::with_details(
                super::error::INCOMPATIBLE_CNI_VERSION,
                "cannot convert: no valid IP addresses",
                format!("a {cni_version} result needs at least one IP address"),
            ));
        }
        Ok(WireLegacy {
            cni_version,
            ip4,
            ip6,
            dns: &self.dns,
        })
    }

    /// Read a result of any version. The version is taken from the document's `cniVersion`,
    /// or `default_version` when it has none.
    pub fn from_json(value: &Value, default_version: &str) -> Result<CniResult, CniError> {
        let obj = json::item_object(value, "result")?;
        let version = json::opt_str(obj, "result", "cniVersion")?
            .filter(|v| !v.is_empty())
            .unwrap_or(default_version);
        let format = ResultFormat::for_version(version)
            .map_err(|e| CniError::new(super::error::DECODING_FAILURE, format!("result: {e}")))?;
        let dns = match json::opt_object(obj, "result", "dns")? {
            Some(d) => Dns::from_config(d, "result.dns")?,
            None => Dns::default(),
        };
        if format == ResultFormat::Legacy {
            let mut result = CniResult {
                dns,
                ..CniResult::default()
            };
            for key in ["ip4", "ip6"] {
                let Some(block) = json::opt_object(obj, "result", key)? else {
                    continue;
                };
                let path = format!("result.{key}");
                let address = parse_net(block, &path, "ip")?
                    .ok_or_else(|| CniError::config(format!("{path}: missing \"ip\"")))?;
                let gateway = parse_ip(block, &path, "gateway")?;
                result.ips.push(IpConfig {
                    interface: None,
                    address,
                    gateway,
                });
                result.routes.extend(parse_routes(block, &path)?);
            }
            return Ok(result);
        }
        let mut result = CniResult {
            dns,
            ..CniResult::default()
        };
        if let Some(items) = json::opt_array(obj, "result", "interfaces")? {
            for (i, item) in items.iter().enumerate() {
                let path = format!("result.interfaces[{i}]");
                let o = json::item_object(item, &path)?;
                result.interfaces.push(Interface {
                    name: json::opt_str(o, &path, "name")?.unwrap_or_default().to_string(),
                    mac: json::opt_str(o, &path, "mac")?.unwrap_or_default().to_string(),
                    mtu: json::opt_uint(o, &path, "mtu", u64::from(u32::MAX))?.map(|v| v as u32),
                    sandbox: json::opt_str(o, &path, "sandbox")?.unwrap_or_default().to_string(),
                    socket_path: json::opt_str(o, &path, "socketPath")?.unwrap_or_default().to_string(),
                    pci_id: json::opt_str(o, &path, "pciID")?.unwrap_or_default().to_string(),
                });
            }
        }
        // 0.3.0's text called the list "ip"; accept it when "ips" is absent.
        let ips_key = if obj.contains_key("ips") { "ips" } else { "ip" };
        if let Some(items) = json::opt_array(obj, "result", ips_key)? {
            for (i, item) in items.iter().enumerate() {
                let path = format!("result.{ips_key}[{i}]");
                let o = json::item_object(item, &path)?;
                let address = parse_net(o, &path, "address")?
                    .ok_or_else(|| CniError::config(format!("{path}: missing \"address\"")))?;
                // Old plugins wrote -1 for "no interface".
                let interface = match json::opt_int(o, &path, "interface")? {
                    Some(n) if n >= 0 => Some(n as usize),
                    _ => None,
                };
                result.ips.push(IpConfig {
                    interface,
                    address,
                    gateway: parse_ip(o, &path, "gateway")?,
                });
            }
        }
        result.routes = parse_routes(obj, "result")?;
        Ok(result)
    }
}

fn parse_net(obj: &Object, path: &str, key: &str) -> Result<Option<IpNet>, CniError> {
    match json::opt_str(obj, path, key)? {
        None => Ok(None),
        Some(text) => text
            .parse::<IpNet>()
            .map(Some)
            .map_err(|e| CniError::config(format!("{}: {e}", json::child(path, key)))),
    }
}

fn parse_ip(obj: &Object, path: &str, key: &str) -> Result<Option<IpAddr>, CniError> {
    match json::opt_str(obj, path, key)? {
        None | Some("") => Ok(None),
        Some(text) => text
            .parse::<IpAddr>()
            .map(|ip| Some(crate::ipnet::canonical(ip)))
            .map_err(|_| CniError::config(format!("{}: {text:?} is not an IP address", json::child(path, key)))),
    }
}

/// Read the `routes` array of `obj` (a result or an `ipam` section).
pub fn parse_routes(obj: &Object, path: &str) -> Result<Vec<Route>, CniError> {
    let Some(items) = json::opt_array(obj, path, "routes")? else {
        return Ok(Vec::new());
    };
    let mut routes = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let p = format!("{}[{i}]", json::child(path, "routes"));
        let o = json::item_object(item, &p)?;
        let dst = parse_net(o, &p, "dst")?.ok_or_else(|| CniError::config(format!("{p}: missing \"dst\"")))?;
        let gw = parse_ip(o, &p, "gw")?;
        if let Some(gw) = gw {
            if Family::of(&gw) != dst.family() {
                return Err(CniError::config(format!(
                    "{p}: gateway {gw} and destination {dst} are of different address families"
                )));
            }
        }
        let u32_field = |key: &str| -> Result<Option<u32>, CniError> {
            Ok(json::opt_uint(o, &p, key, u64::from(u32::MAX))?.map(|v| v as u32))
        };
        routes.push(Route {
            dst,
            gw,
            mtu: u32_field("mtu")?,
            advmss: u32_field("advmss")?,
            priority: u32_field("priority")?,
            table: u32_field("table")?,
            scope: json::opt_uint(o, &p, "scope", 255)?.map(|v| v as u8),
        });
    }
    Ok(routes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CniResult {
        CniResult {
            interfaces: vec![Interface {
                name: "eth0".into(),
                mac: "aa:bb:cc:dd:ee:ff".into(),
                mtu: Some(1400),
                sandbox: "/run/netns/x".into(),
                ..Interface::default()
            }],
            ips: vec![
                IpConfig {
                    interface: Some(0),
                    address: "10.1.2.2/24".parse().unwrap(),
                    gateway: Some("10.1.2.1".parse().unwrap()),
                },
                IpConfig {
                    interface: Some(0),
                    address: "2001:db8::2/64".parse().unwrap(),
                    gateway: None,
                },
            ],
            routes: vec![Route {
                table: Some(100),
                ..Route::simple("0.0.0.0/0".parse().unwrap(), Some("10.1.2.1".parse().unwrap()))
            }],
            dns: Dns::default(),
        }
    }

    #[test]
    fn shapes_per_version() {
        let r = sample();
        let v110 = r.to_value("1.1.0").unwrap();
        assert_eq!(v110["interfaces"][0]["mtu"], 1400);
        assert_eq!(v110["routes"][0]["table"], 100);
        assert!(v110.get("dns").is_none());
        let v100 = r.to_value("1.0.0").unwrap();
        assert!(v100["interfaces"][0].get("mtu").is_none());
        assert!(v100["routes"][0].get("table").is_none());
        assert!(v100["ips"][0].get("version").is_none());
        let v040 = r.to_value("0.4.0").unwrap();
        assert_eq!(v040["ips"][1]["version"], "6");
        assert_eq!(v040["dns"], serde_json::json!({}));
        let v020 = r.to_value("0.2.0").unwrap();
        assert_eq!(v020["ip4"]["ip"], "10.1.2.2/24");
        assert_eq!(v020["ip4"]["routes"][0]["dst"], "0.0.0.0/0");
        assert_eq!(v020["ip6"]["ip"], "2001:db8::2/64");
        assert!(v020.get("interfaces").is_none());
    }

    #[test]
    fn round_trips_through_every_version() {
        let r = sample();
        for v in ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] {
            let back = CniResult::from_json(&r.to_value(v).unwrap(), v).unwrap();
            assert_eq!(back.ips, r.ips, "{v}");
        }
        let legacy = CniResult::from_json(&r.to_value("0.2.0").unwrap(), "0.2.0").unwrap();
        assert_eq!(legacy.ips.len(), 2);
        assert_eq!(legacy.routes.len(), 1);
    }

    #[test]
    fn legacy_needs_an_address() {
        assert!(CniResult::default().to_value("0.2.0").is_err());
    }
}
