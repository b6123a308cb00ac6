//! `chain/*`: plugins that run after another in a conflist (SPEC §2 ADD with prevResult).

use serde_json::{json, Value};

use crate::case::{Applies, Case, Ctx, Level, Verdict};
use crate::cni::NormalResult;
use crate::profile::PluginKind;
use crate::version::SpecVersion;

/// The cases of this area.
pub const CASES: &[Case] = &[Case {
    id: "chain/keeps-prevresult",
    title:
        "a chained plugin's ADD result keeps every interface, address, gateway, route and DNS setting of its prevResult",
    level: Level::Must,
    spec: r#"SPEC.md 1.1.0 §"`ADD`: Add container to network, or apply modifications" (prevResult is passed through or modified); SPEC.md 1.1.0 §"ADD Success" (a plugin given prevResult outputs it with its own changes)"#,
    applies: Applies {
        kinds: &[PluginKind::Chained],
        since: SpecVersion(0, 3, 0),
    },
    body: keeps_prevresult,
}];

/// The DNS block the case adds to a `prevResult` that has none, so that dropping `dns` shows.
fn probe_dns() -> Value {
    json!({
        "nameservers": ["192.0.2.53"],
        "domain": "conformance.example",
        "search": ["conformance.example"],
        "options": ["ndots:2"]
    })
}

/// Where `after` lost part of `before`'s DNS block: every nameserver, search domain and option
/// must stay, and a non-empty domain must stay as it was.
fn dns_lost(before: &Value, after: &Value) -> Vec<String> {
    let mut lost = Vec::new();
    let Some(b) = before.get("dns").and_then(Value::as_object) else {
        return lost;
    };
    let a = after.get("dns");
    for key in ["nameservers", "search", "options"] {
        let kept: Vec<&Value> = a
            .and_then(|d| d.get(key))
            .and_then(Value::as_array)
            .map(|l| l.iter().collect())
            .unwrap_or_default();
        for item in b.get(key).and_then(Value::as_array).into_iter().flatten() {
            if !kept.contains(&item) {
                lost.push(format!("dns.{key} {item}"));
            }
        }
    }
    if let Some(domain) = b.get("domain").and_then(Value::as_str).filter(|d| !d.is_empty()) {
        if a.and_then(|d| d.get("domain")).and_then(Value::as_str) != Some(domain) {
            lost.push(format!("dns.domain {domain:?}"));
        }
    }
    lost
}

fn keeps_prevresult(ctx: &mut Ctx) -> Result<(), Verdict> {
    let n = ctx.target.profile.plugins.len();
    if n < 2 {
        return Err(Verdict::Skip(
            "the configuration has no plugin before the one under test".into(),
        ));
    }
    let version = ctx.version()?;
    let att = ctx.attachment()?;
    // A prevResult without DNS cannot show a dropped DNS block: the case gives it one, as an
    // earlier plugin with a `dns` setting would have.
    let out = ctx.add_at_edited(&att, &version, |prev| {
        let has_dns = prev.get("dns").and_then(Value::as_object).is_some_and(|d| {
            d.values()
                .any(|v| v.as_array().map_or(v.as_str() != Some(""), |l| !l.is_empty()))
        });
        if let (false, Some(o)) = (has_dns, prev.as_object_mut()) {
            o.insert("dns".into(), probe_dns());
        }
    })?;
    ctx.blame = Some(out.record);
    // The prevResult the plugin got is the stdin of its own invocation.
    let stdin: Value = serde_json::from_str(&ctx.record(out.record).stdin).unwrap_or(Value::Null);
    let prev = stdin.get("prevResult").cloned().unwrap_or(Value::Null);
    let (Ok(before), Ok(after)) = (NormalResult::parse(&prev), NormalResult::parse(&out.result)) else {
        return Err(Verdict::fail("prevResult or the result cannot be read"));
    };
    let mut lost = Vec::new();
    for itf in &before.interfaces {
        // A plugin may change what it configures (tuning sets MACs): name and place must stay.
        if !after
            .interfaces
            .iter()
            .any(|i| i.name == itf.name && i.sandbox == itf.sandbox)
        {
            lost.push(format!("interface {}", itf.name));
        }
    }
    for ip in &before.ips {
        match after.ips.iter().find(|i| i.address == ip.address) {
            None => lost.push(format!("address {}", ip.address)),
            Some(i) if ip.gateway.is_some() && i.gateway != ip.gateway => lost.push(format!(
                "gateway {} of {}",
                ip.gateway.map(|g| g.to_string()).unwrap_or_default(),
                ip.address
            )),
            Some(_) => {}
        }
    }
    for r in &before.routes {
        if !after.routes.iter().any(|x| x.dst == r.dst && x.gw == r.gw) {
            let via = r.gw.map(|g| format!(" via {g}")).unwrap_or_default();
            lost.push(format!("route {}{via}", r.dst));
        }
    }
    lost.extend(dns_lost(&prev, &out.result));
    if lost.is_empty() {
        Ok(())
    } else {
        Err(Verdict::violation(
            "the result dropped parts of prevResult",
            "everything in prevResult plus the plugin's own changes",
            format!("missing: {}", lost.join(", ")),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_losses_are_named() {
        let before = json!({"dns": probe_dns()});
        assert!(dns_lost(&before, &before).is_empty());
        assert_eq!(dns_lost(&before, &json!({})).len(), 4);
        let mut partial = before.clone();
        partial["dns"]["search"] = json!([]);
        assert_eq!(dns_lost(&before, &partial), vec!["dns.search \"conformance.example\""]);
        assert!(dns_lost(&json!({}), &json!({})).is_empty());
    }
}
