//! `ipam/*`: address management judged from the outside (SPEC §2 ADD/DEL, §3 lifecycle, §4
//! delegation; CONVENTIONS.md for requested IPs).
//!
//! The cases apply to IPAM plugins tested directly and to interface plugins that delegate (the
//! chain is one plugin whose `ipam` names the delegate). They read the first IPv4 range of the
//! `ipam` object (`ranges`, or the legacy top-level `subnet`, in the host-local shape that the
//! `ipRanges` capability also uses) and, where they need a small pool, replace the ranges by a
//! carved-out /29 of that subnet. A configuration without such a range (static addresses, DHCP)
//! makes them skip with the reason.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use serde_json::{json, Map, Value};

use crate::case::{first_line, Applies, Attachment, Case, Ctx, Level, Variant, Verdict};
use crate::cni::{ErrorDoc, NormalResult};
use crate::lab::HostSnapshot;
use crate::profile::PluginKind;
use crate::version::SpecVersion;

const ALWAYS: SpecVersion = SpecVersion(0, 1, 0);
/// IPAM plugins tested directly, and interface plugins that delegate to one.
const ADDRESSED: &[PluginKind] = &[PluginKind::Ipam, PluginKind::Interface];
/// Parallel ADDs made by `ipam/unique-parallel` (fewer when the pool is smaller).
const PARALLEL: u32 = 32;

/// The cases of this area.
pub const CASES: &[Case] = &[
    Case {
        id: "ipam/unique-parallel",
        title: "32 ADDs for different containers run at once all succeed and never share an address",
        level: Level::Must,
        spec: r#"SPEC.md 1.1.0 §"Lifecycle & Ordering" (parallel operations for different containers; plugins lock shared state)"#,
        applies: Applies {
            kinds: ADDRESSED,
            since: ALWAYS,
        },
        body: unique_parallel,
    },
    Case {
        id: "ipam/no-leak-cycles",
        title: "ADD/DEL cycles of three times a 1-address pool keep getting the address (DEL releases it)",
        level: Level::Should,
        spec: r#"SPEC.md 1.1.0 §"`DEL`: Remove container from network, or un-apply modifications" (undo what ADD did; release IPAM)"#,
        applies: Applies {
            kinds: ADDRESSED,
            since: ALWAYS,
        },
        body: no_leak_cycles,
    },
    Case {
        id: "ipam/exhaustion-fails",
        title: "ADD on an exhausted pool exits non-zero instead of handing out an address again",
        level: Level::Must,
        spec: r#"SPEC.md 1.1.0 §"Errors" (exit 0 only on success)"#,
        applies: Applies {
            kinds: ADDRESSED,
            since: ALWAYS,
        },
        body: exhaustion_fails,
    },
    Case {
        id: "ipam/exhaustion-error",
        title: "ADD on an exhausted pool prints an Error object (not a well-known code that blames the request) and leaves nothing allocated",
        level: Level::Should,
        spec: r#"SPEC.md 1.1.0 §"Errors" (on failure, print an Error); docs/spec-notes.md#error-codes"#,
        applies: Applies {
            kinds: ADDRESSED,
            since: ALWAYS,
        },
        body: exhaustion_error,
    },
    Case {
        id: "ipam/requested-ip-args",
        title: "an IP requested in args.cni.ips is the one allocated",
        level: Level::Should,
        spec: r#"CONVENTIONS.md 1.1.0 §""args" in network config" (cni.ips)"#,
        applies: Applies {
            kinds: ADDRESSED,
            since: ALWAYS,
        },
        body: requested_ip_args,
    },
    Case {
        id: "ipam/requested-ip-runtimeconfig",
        title: "an IP requested in runtimeConfig.ips (capability ips) is the one allocated",
        level: Level::Should,
        spec: r#"CONVENTIONS.md 1.1.0 §"Well-known Capabilities" (ips)"#,
        applies: Applies {
            kinds: ADDRESSED,
            since: ALWAYS,
        },
        body: requested_ip_runtimeconfig,
    },
    Case {
        id: "ipam/requested-ip-cni-args",
        title: "an IP requested with CNI_ARGS IP= is the one allocated",
        level: Level::Should,
        spec: r#"CONVENTIONS.md 1.1.0 §"CNI_ARGS" (IP)"#,
        applies: Applies {
            kinds: ADDRESSED,
            since: ALWAYS,
        },
        body: requested_ip_cni_args,
    },
    Case {
        id: "ipam/requested-ip-taken",
        title: "requesting an IP another container holds fails and reserves nothing",
        level: Level::Should,
        spec: r#"CONVENTIONS.md 1.1.0 §""args" in network config" (cni.ips); SPEC.md 1.1.0 §"Error""#,
        applies: Applies {
            kinds: ADDRESSED,
            since: ALWAYS,
        },
        body: requested_ip_taken,
    },
    Case {
        id: "ipam/release-netns-gone",
        title: "DEL after the netns was deleted releases the address: a later ADD gets it",
        level: Level::Should,
        spec: r#"SPEC.md 1.1.0 §"`DEL`: Remove container from network, or un-apply modifications" (an IPAM plugin releases the address even if the netns is gone)"#,
        applies: Applies {
            kinds: ADDRESSED,
            since: ALWAYS,
        },
        body: release_netns_gone,
    },
    Case {
        id: "ipam/no-reserved-addresses",
        title: "the network address, the broadcast address and the gateway of a /29 are never handed out",
        level: Level::Should,
        spec: r#"SPEC.md 1.1.0 §"ADD Success" (ips[].gateway is the network's gateway); docs/spec-notes.md#plugin-configuration-beyond-the-spec (host-local)"#,
        applies: Applies {
            kinds: ADDRESSED,
            since: ALWAYS,
        },
        body: no_reserved_addresses,
    },
];

/// The first IPv4 range of an `ipam` object, as numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pool {
    /// Network address.
    network: u32,
    /// Prefix length.
    prefix: u8,
    /// First address handed out.
    start: u32,
    /// Last address handed out.
    end: u32,
    /// The configured gateway, if any.
    gateway: Option<u32>,
}

impl Pool {
    fn broadcast(&self) -> u32 {
        self.network | (u32::MAX >> self.prefix)
    }

    /// How many addresses the pool holds (the gateway left out).
    fn size(&self) -> u32 {
        let all = self.end.saturating_sub(self.start) + 1;
        all - u32::from(self.gateway.is_some_and(|g| (self.start..=self.end).contains(&g)))
    }

    /// An address from the middle of the pool (not its first, not the gateway).
    fn middle(&self) -> u32 {
        let mut pick = self.start + (self.end - self.start) / 2;
        if Some(pick) == self.gateway {
            pick = if pick < self.end { pick + 1 } else { pick - 1 };
        }
        pick
    }

    fn cidr(&self, addr: u32) -> String {
        format!("{}/{}", Ipv4Addr::from(addr), self.prefix)
    }
}

fn v4(s: Option<&Value>) -> Option<Ipv4Addr> {
    s.and_then(Value::as_str).and_then(|t| t.parse().ok())
}

/// Reads the first IPv4 range of `ipam`; `Err` holds the reason to skip.
fn pool_of(ipam: Option<&Map<String, Value>>) -> Result<Pool, String> {
    let ipam = ipam.ok_or("the configuration has no ipam object; there are no addresses to judge")?;
    let ty = ipam.get("type").and_then(Value::as_str).unwrap_or("");
    if ty == "static" || ipam.contains_key("addresses") {
        return Err(format!(
            "ipam type {ty:?} hands out the fixed addresses of its config; there is no pool to exercise"
        ));
    }
    let mut ranges: Vec<&Map<String, Value>> = Vec::new();
    if ipam.contains_key("subnet") {
        ranges.push(ipam);
    }
    if let Some(sets) = ipam.get("ranges").and_then(Value::as_array) {
        for set in sets.iter().filter_map(Value::as_array) {
            ranges.extend(set.iter().filter_map(Value::as_object));
        }
    }
    for r in ranges {
        let Some(Ok(subnet)) = r
            .get("subnet")
            .and_then(Value::as_str)
            .map(str::parse::<crate::net::IpNet>)
        else {
            continue;
        };
        let IpAddr::V4(net) = subnet.network() else { continue };
        if subnet.prefix > 30 {
            continue;
        }
        let network = u32::from(net);
        let bcast = network | (u32::MAX >> subnet.prefix);
        return Ok(Pool {
            network,
            prefix: subnet.prefix,
            start: v4(r.get("rangeStart")).map_or(network + 1, u32::from),
            end: v4(r.get("rangeEnd")).map_or(bcast - 1, u32::from),
            gateway: v4(r.get("gateway")).map(u32::from),
        });
    }
    Err(format!(
        "ipam type {ty:?}: no IPv4 range in ipam.ranges or ipam.subnet; cannot choose addresses to exercise"
    ))
}

/// Replaces the ranges of `v`'s ipam object by one range in the /29 at the start of the
/// configured subnet: gateway .1, and `hosts` addresses from .2 on (the whole /29 when `None`).
fn carve_pool(v: &mut Variant, hosts: Option<u32>) -> Result<Pool, Verdict> {
    let pool = pool_of(v.ipam()).map_err(Verdict::Skip)?;
    if pool.prefix > 29 {
        return Err(Verdict::Skip(format!(
            "the configured subnet /{} is smaller than the /29 the case carves out",
            pool.prefix
        )));
    }
    let n = pool.network;
    let mut range = json!({
        "subnet": format!("{}/29", Ipv4Addr::from(n)),
        "gateway": Ipv4Addr::from(n + 1).to_string(),
    });
    let carved = match hosts {
        Some(k) => {
            range["rangeStart"] = json!(Ipv4Addr::from(n + 2).to_string());
            range["rangeEnd"] = json!(Ipv4Addr::from(n + 1 + k).to_string());
            Pool {
                network: n,
                prefix: 29,
                start: n + 2,
                end: n + 1 + k,
                gateway: Some(n + 1),
            }
        }
        None => Pool {
            network: n,
            prefix: 29,
            start: n + 1,
            end: n + 6,
            gateway: Some(n + 1),
        },
    };
    let ipam = v
        .ipam_mut()
        .ok_or_else(|| Verdict::Skip("the configuration has no ipam object".into()))?;
    for legacy in ["subnet", "rangeStart", "rangeEnd", "gateway"] {
        ipam.remove(legacy);
    }
    ipam.insert("ranges".into(), json!([[range]]));
    Ok(carved)
}

/// The IPv4 addresses of an ADD result.
fn v4_addresses(result: &Value) -> Vec<Ipv4Addr> {
    NormalResult::parse(result)
        .map(|r| {
            r.ips
                .iter()
                .filter_map(|ip| match ip.address.addr {
                    IpAddr::V4(a) => Some(a),
                    IpAddr::V6(_) => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The one IPv4 address an ADD result holds inside `pool`'s subnet.
fn address_in(ctx: &mut Ctx, result: &Value, record: usize, pool: &Pool) -> Result<u32, Verdict> {
    let inside: Vec<u32> = v4_addresses(result)
        .into_iter()
        .map(u32::from)
        .filter(|a| a & !(u32::MAX >> pool.prefix) == pool.network)
        .collect();
    match inside.as_slice() {
        [one] => Ok(*one),
        _ => {
            ctx.blame = Some(record);
            Err(Verdict::violation(
                "the ADD result does not hold exactly one address of the configured subnet",
                format!("one address in {}", pool.cidr(pool.network)),
                format!("{:?}", v4_addresses(result)),
            ))
        }
    }
}

/// A copy of `att` with another container id (same namespace and interface name).
fn renamed(att: &Attachment, suffix: &str) -> Attachment {
    let mut a = att.clone();
    a.container_id = format!("{}-{suffix}", att.container_id);
    a
}

fn unique_parallel(ctx: &mut Ctx) -> Result<(), Verdict> {
    let v = ctx.variant();
    // Without a range in the configuration (DHCP), the pool of the lab's server counts.
    let size = match pool_of(v.ipam()) {
        Ok(pool) => pool.size(),
        Err(reason) => ctx.target.profile.served_pool_size().ok_or(Verdict::Skip(reason))?,
    };
    let n = size.min(PARALLEL);
    if n < 2 {
        return Err(Verdict::Skip(format!("the configured pool holds {size} address(es)")));
    }
    let mut atts = Vec::new();
    for _ in 0..n {
        atts.push(ctx.attachment()?);
    }
    let results = ctx.add_variant_parallel(&atts, &v)?;
    let failed: Vec<usize> = results.iter().filter_map(|r| r.as_ref().err().copied()).collect();
    if let Some(&first) = failed.first() {
        ctx.blame = Some(first);
        let rec = ctx.record(first);
        return Err(Verdict::violation(
            format!("{} of {n} parallel ADDs failed", failed.len()),
            "every ADD exits 0 with a result",
            format!("{}: {}", rec.exit, first_line(&rec.stdout, &rec.stderr)),
        ));
    }
    let mut owners: BTreeMap<Ipv4Addr, Vec<String>> = BTreeMap::new();
    for (att, r) in atts.iter().zip(&results) {
        if let Ok(doc) = r {
            for a in v4_addresses(doc) {
                owners.entry(a).or_default().push(att.container_id.clone());
            }
        }
    }
    let shared: Vec<String> = owners
        .iter()
        .filter(|(_, ids)| ids.len() > 1)
        .map(|(a, ids)| format!("{a} given to {}", ids.join(", ")))
        .collect();
    if !shared.is_empty() {
        return Err(Verdict::violation(
            format!("parallel ADDs handed out the same address to different containers ({n} ADDs)"),
            "a different address for every container",
            shared.join("; "),
        ));
    }
    if owners.len() < n as usize {
        return Err(Verdict::violation(
            "some parallel ADD results hold no IPv4 address",
            format!("{n} addresses"),
            format!("{} addresses", owners.len()),
        ));
    }
    Ok(())
}

fn no_leak_cycles(ctx: &mut Ctx) -> Result<(), Verdict> {
    let mut v = ctx.variant();
    // One address: a DEL that does not release it fails the very next ADD, and every cycle wraps
    // the allocator around the range end (a larger pool only delays both).
    let pool = carve_pool(&mut v, Some(1))?;
    let cycles = 3 * pool.size();
    let att = ctx.attachment()?;
    for i in 1..=cycles {
        let a = renamed(&att, &i.to_string());
        let out = ctx.add_variant(&a, &v).map_err(|verdict| match verdict {
            Verdict::Violation(mut f) => {
                f.message = format!(
                    "ADD number {i} of {cycles} ADD/DEL cycles on a pool of {} failed: a DEL did not release its address",
                    pool.size()
                );
                Verdict::Violation(f)
            }
            other => other,
        })?;
        address_in(ctx, &out.result, out.record, &pool)?;
        let idx = ctx.del_variant(&a, &v, Some(&out.result))?;
        ctx.expect_success(idx, "DEL")?;
    }
    Ok(())
}

/// Fills a 3-address pool with three attachments; returns the variant, the pool, and the
/// addresses handed out.
fn fill_pool(ctx: &mut Ctx) -> Result<(Variant, Pool, Vec<u32>), Verdict> {
    let mut v = ctx.variant();
    let pool = carve_pool(&mut v, Some(3))?;
    let mut taken = Vec::new();
    for _ in 0..pool.size() {
        let att = ctx.attachment()?;
        let out = ctx.add_variant(&att, &v)?;
        taken.push(address_in(ctx, &out.result, out.record, &pool)?);
    }
    Ok((v, pool, taken))
}

fn exhaustion_fails(ctx: &mut Ctx) -> Result<(), Verdict> {
    let (v, pool, taken) = fill_pool(ctx)?;
    let extra = ctx.attachment()?;
    match ctx.add_variant_raw(&extra, &v)? {
        Err(_) => Ok(()),
        Ok(out) => {
            ctx.blame = Some(out.record);
            Err(Verdict::violation(
                format!("ADD on a full pool of {} addresses succeeded", pool.size()),
                "a non-zero exit (no address left)",
                format!(
                    "exit 0 with {:?}; the pool was already given out as {:?}",
                    v4_addresses(&out.result),
                    taken.iter().map(|a| Ipv4Addr::from(*a)).collect::<Vec<_>>()
                ),
            ))
        }
    }
}

/// Changes between snapshots other than data-file content rewrites (e.g. a "last reserved" file).
fn changes(before: &HostSnapshot, after: &HostSnapshot, only_new_files: bool) -> Vec<String> {
    after
        .diff(before)
        .into_iter()
        .filter(|c| !(c.sign == '~' && c.what.starts_with("file ")))
        .filter(|c| !only_new_files || (c.sign == '+' && c.what.starts_with("file ")))
        .map(|c| c.to_string())
        .collect()
}

/// The meaning of a well-known error code that blames the request or the runtime (SPEC §5 Error):
/// wrong for a valid request that fails because the pool is used up.
fn misused_code(code: u64) -> Option<&'static str> {
    Some(match code {
        1 => "incompatible CNI version",
        2 => "unsupported field in the network configuration",
        3 => "container unknown or does not exist",
        4 => "invalid necessary environment variables",
        6 => "failed to decode content",
        7 => "invalid network configuration",
        _ => return None,
    })
}

fn exhaustion_error(ctx: &mut Ctx) -> Result<(), Verdict> {
    let (v, _, _) = fill_pool(ctx)?;
    let before = ctx.lab.snapshot()?;
    let extra = ctx.attachment()?;
    let idx = match ctx.add_variant_raw(&extra, &v)? {
        Err(idx) => idx,
        Ok(_) => {
            return Err(Verdict::Skip(
                "ADD on a full pool succeeded (ipam/exhaustion-fails judges that)".into(),
            ))
        }
    };
    ctx.blame = Some(idx);
    let rec = ctx.record(idx);
    let doc = ErrorDoc::parse(&rec.stdout);
    if !doc.as_ref().is_some_and(|d| d.code.is_some() && d.msg.is_some()) {
        return Err(Verdict::violation(
            "ADD on a full pool failed without an Error object on stdout",
            "{\"code\": N, \"msg\": \"...\"} on stdout",
            first_line(&rec.stdout, &rec.stderr),
        ));
    }
    if let Some((code, meaning)) = doc
        .as_ref()
        .and_then(|d| d.code)
        .and_then(|c| misused_code(c).map(|m| (c, m)))
    {
        return Err(Verdict::violation(
            format!("an exhausted pool is reported with code {code}, which means \"{meaning}\""),
            "a code that does not blame the request: 11 (try again later), 50 (plugin unavailable) or a plugin code of 100 and above",
            first_line(&rec.stdout, &rec.stderr),
        ));
    }
    let reserved = changes(&before, &ctx.lab.snapshot()?, true);
    if !reserved.is_empty() {
        return Err(Verdict::violation(
            "the failed ADD left new state in the plugin's data directories",
            "nothing reserved by a failed ADD",
            reserved.join("; "),
        ));
    }
    // The runtime DELs a failed ADD; after that the host must be as before it.
    let del = ctx.del_variant(&extra, &v, None)?;
    ctx.expect_success(del, "DEL after the failed ADD")?;
    let left = changes(&before, &ctx.lab.snapshot()?, false);
    if !left.is_empty() {
        ctx.blame = Some(del);
        return Err(Verdict::violation(
            "the failed ADD and its DEL left traces on the host",
            "the host as before the failed ADD",
            left.join("; "),
        ));
    }
    Ok(())
}

/// How an IP is requested.
#[derive(Debug, Clone, Copy)]
enum Request {
    Args,
    RuntimeConfig,
    CniArgs,
}

impl Request {
    fn shown(self) -> &'static str {
        match self {
            Request::Args => "args.cni.ips",
            Request::RuntimeConfig => "runtimeConfig.ips",
            Request::CniArgs => "CNI_ARGS IP=",
        }
    }
}

/// An IPv4 address to request, with its prefix: the middle of the pool, or for a plugin with fixed
/// addresses (static) the neighbour of its first configured IPv4 address.
fn address_to_request(ipam: Option<&Map<String, Value>>) -> Result<(Ipv4Addr, u8), Verdict> {
    if let Ok(pool) = pool_of(ipam) {
        return Ok((Ipv4Addr::from(pool.middle()), pool.prefix));
    }
    let fixed = ipam
        .and_then(|m| m.get("addresses"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|a| a.get("address").and_then(Value::as_str))
        .filter_map(|a| a.parse::<crate::net::IpNet>().ok())
        .find(|n| n.addr.is_ipv4() && n.prefix <= 30);
    match fixed {
        Some(crate::net::IpNet {
            addr: IpAddr::V4(a),
            prefix,
        }) => {
            let bcast = u32::from(a) | (u32::MAX >> prefix);
            let next = if u32::from(a) + 1 < bcast {
                u32::from(a) + 1
            } else {
                u32::from(a) - 1
            };
            Ok((Ipv4Addr::from(next), prefix))
        }
        _ => Err(Verdict::Skip(pool_of(ipam).err().unwrap_or_default())),
    }
}

fn requested_ip(ctx: &mut Ctx, how: Request) -> Result<(), Verdict> {
    let mut v = ctx.variant();
    let holder = v
        .ipam_holder()
        .ok_or_else(|| Verdict::Skip("the configuration has no ipam object".into()))?;
    let (want, prefix) = address_to_request(v.ipam())?;
    let cidr = format!("{want}/{prefix}");
    match how {
        Request::Args => {
            if let Some(obj) = v.plugins[holder].as_object_mut() {
                obj.insert("args".into(), json!({"cni": {"ips": [cidr]}}));
            }
        }
        Request::RuntimeConfig => {
            v.declare(holder, "ips");
            v.capability_args.insert("ips".into(), json!([cidr]));
        }
        Request::CniArgs => v.cni_args = format!("IgnoreUnknown=1;IP={cidr}"),
    }
    let att = ctx.attachment()?;
    let out = ctx.add_variant(&att, &v)?;
    let got = v4_addresses(&out.result);
    if !got.contains(&want) {
        ctx.blame = Some(out.record);
        return Err(Verdict::violation(
            format!("the IP requested through {} was not allocated", how.shown()),
            want.to_string(),
            format!("{got:?}"),
        ));
    }
    Ok(())
}

fn requested_ip_taken(ctx: &mut Ctx) -> Result<(), Verdict> {
    let mut v = ctx.variant();
    let holder = v
        .ipam_holder()
        .ok_or_else(|| Verdict::Skip("the configuration has no ipam object".into()))?;
    // Only a plugin with a pool keeps reservations; fixed addresses (static) are not tracked.
    let pool = pool_of(v.ipam()).map_err(Verdict::Skip)?;
    let want = Ipv4Addr::from(pool.middle());
    if let Some(obj) = v.plugins[holder].as_object_mut() {
        obj.insert("args".into(), json!({"cni": {"ips": [pool.cidr(pool.middle())]}}));
    }
    let first = ctx.attachment()?;
    let out = ctx.add_variant(&first, &v)?;
    if !v4_addresses(&out.result).contains(&want) {
        return Err(Verdict::Skip(
            "the plugin does not honour args.cni.ips (ipam/requested-ip-args judges that)".into(),
        ));
    }
    let before = ctx.lab.snapshot()?;
    let second = ctx.attachment()?;
    let idx = match ctx.add_variant_raw(&second, &v)? {
        Err(idx) => idx,
        Ok(dup) => {
            ctx.blame = Some(dup.record);
            return Err(Verdict::violation(
                format!("a second container requesting {want}, which the first holds, got an ADD result"),
                "a non-zero exit: the address is taken",
                format!("exit 0 with {:?}", v4_addresses(&dup.result)),
            ));
        }
    };
    let reserved = changes(&before, &ctx.lab.snapshot()?, true);
    if !reserved.is_empty() {
        ctx.blame = Some(idx);
        return Err(Verdict::violation(
            "the refused request left new state in the plugin's data directories",
            "nothing reserved by a failed ADD",
            reserved.join("; "),
        ));
    }
    Ok(())
}

fn requested_ip_args(ctx: &mut Ctx) -> Result<(), Verdict> {
    requested_ip(ctx, Request::Args)
}

fn requested_ip_runtimeconfig(ctx: &mut Ctx) -> Result<(), Verdict> {
    requested_ip(ctx, Request::RuntimeConfig)
}

fn requested_ip_cni_args(ctx: &mut Ctx) -> Result<(), Verdict> {
    requested_ip(ctx, Request::CniArgs)
}

fn release_netns_gone(ctx: &mut Ctx) -> Result<(), Verdict> {
    let mut v = ctx.variant();
    let pool = carve_pool(&mut v, Some(1))?;
    let first = ctx.attachment()?;
    let out = ctx.add_variant(&first, &v)?;
    let addr = address_in(ctx, &out.result, out.record, &pool)?;
    ctx.lab.remove_container(&first.container.name)?;
    let del = ctx.del_variant(&first, &v, Some(&out.result))?;
    ctx.expect_success(del, "DEL after the netns was deleted")?;
    let second = ctx.attachment()?;
    let again = ctx.add_variant(&second, &v).map_err(|verdict| match verdict {
        Verdict::Violation(mut f) => {
            f.message = format!(
                "ADD on a one-address pool failed after the only holder was DELeted with its netns gone: {} was not released",
                Ipv4Addr::from(addr)
            );
            Verdict::Violation(f)
        }
        other => other,
    })?;
    let got = address_in(ctx, &again.result, again.record, &pool)?;
    if got != addr {
        return Err(Verdict::violation(
            "the one-address pool handed out another address",
            Ipv4Addr::from(addr).to_string(),
            Ipv4Addr::from(got).to_string(),
        ));
    }
    Ok(())
}

fn no_reserved_addresses(ctx: &mut Ctx) -> Result<(), Verdict> {
    let mut v = ctx.variant();
    let pool = carve_pool(&mut v, None)?;
    let reserved: Vec<(u32, &str)> = vec![
        (pool.network, "the network address"),
        (pool.broadcast(), "the broadcast address"),
        (pool.network + 1, "the gateway"),
    ];
    let mut seen: Vec<(u32, usize)> = Vec::new();
    // A /29 has 8 addresses: more ADDs than that must have failed somewhere.
    for _ in 0..8 {
        let att = ctx.attachment()?;
        let Ok(out) = ctx.add_variant_raw(&att, &v)? else {
            break;
        };
        let addr = address_in(ctx, &out.result, out.record, &pool)?;
        if let Some((_, what)) = reserved.iter().find(|(r, _)| *r == addr) {
            ctx.blame = Some(out.record);
            return Err(Verdict::violation(
                format!("{what} of {} was handed out", pool.cidr(pool.network)),
                format!(
                    "addresses between {} and {}",
                    Ipv4Addr::from(pool.network + 2),
                    Ipv4Addr::from(pool.broadcast() - 1)
                ),
                Ipv4Addr::from(addr).to_string(),
            ));
        }
        if let Some((_, other)) = seen.iter().find(|(a, _)| *a == addr) {
            ctx.blame = Some(out.record);
            return Err(Verdict::violation(
                format!("{} was handed out twice", Ipv4Addr::from(addr)),
                "a different address for every container",
                format!("also in the result of invocation {}", other + 1),
            ));
        }
        seen.push((addr, out.record));
    }
    if seen.is_empty() {
        return Err(Verdict::fail("no ADD on the /29 succeeded"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_from_configs() {
        let ipam = json!({"type": "host-local", "ranges": [[{"subnet": "fd00::/64"}], [{"subnet": "10.1.2.0/24", "rangeEnd": "10.1.2.9"}]]});
        let p = pool_of(ipam.as_object()).unwrap();
        assert_eq!(Ipv4Addr::from(p.start), Ipv4Addr::new(10, 1, 2, 1));
        assert_eq!(Ipv4Addr::from(p.end), Ipv4Addr::new(10, 1, 2, 9));
        assert_eq!(Ipv4Addr::from(p.broadcast()), Ipv4Addr::new(10, 1, 2, 255));
        assert_eq!(p.size(), 9);
        let legacy = json!({"type": "x", "subnet": "10.0.0.0/29", "gateway": "10.0.0.1"});
        let p = pool_of(legacy.as_object()).unwrap();
        assert_eq!(p.size(), 5);
        assert_ne!(Some(p.middle()), p.gateway);
        assert!(pool_of(json!({"type": "static", "addresses": []}).as_object()).is_err());
        assert!(pool_of(json!({"type": "dhcp"}).as_object()).is_err());
        assert!(pool_of(None).is_err());
    }
}
