//! `chain/*`: plugins that run after another in a conflist (SPEC §2 ADD with prevResult).

use serde_json::Value;

use crate::case::{Applies, Case, Ctx, Level, Verdict};
use crate::cni::NormalResult;
use crate::profile::PluginKind;
use crate::version::SpecVersion;

/// The cases of this area.
pub const CASES: &[Case] = &[Case {
    id: "chain/keeps-prevresult",
    title: "a chained plugin's ADD result keeps every interface, address and route of its prevResult",
    level: Level::Must,
    spec: "SPEC §2 ADD (a plugin given prevResult must pass it through or modify it), 0.3.0+",
    applies: Applies {
        kinds: &[PluginKind::Chained],
        since: SpecVersion(0, 3, 0),
    },
    body: keeps_prevresult,
}];

fn keeps_prevresult(ctx: &mut Ctx) -> Result<(), Verdict> {
    let n = ctx.target.profile.plugins.len();
    if n < 2 {
        return Err(Verdict::Skip(
            "the configuration has no plugin before the one under test".into(),
        ));
    }
    let att = ctx.attachment()?;
    let out = ctx.add(&att)?;
    ctx.blame = Some(out.record);
    // The prevResult the plugin got is the stdin of its own invocation.
    let stdin: Value = serde_json::from_str(&ctx.record(out.record).stdin).unwrap_or(Value::Null);
    let prev = stdin.get("prevResult").cloned().unwrap_or(Value::Null);
    let (Ok(before), Ok(after)) = (NormalResult::parse(&prev), NormalResult::parse(&out.result)) else {
        return Err(Verdict::fail("prevResult or the result cannot be read"));
    };
    let mut lost = Vec::new();
    for itf in &before.interfaces {
        if !after
            .interfaces
            .iter()
            .any(|i| i.name == itf.name && i.sandbox == itf.sandbox)
        {
            lost.push(format!("interface {}", itf.name));
        }
    }
    for ip in &before.ips {
        if !after.ips.iter().any(|i| i.address == ip.address) {
            lost.push(format!("address {}", ip.address));
        }
    }
    for r in &before.routes {
        if !after.routes.iter().any(|x| x.dst == r.dst) {
            lost.push(format!("route {}", r.dst));
        }
    }
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
