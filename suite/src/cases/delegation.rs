//! `delegation/*`: how a plugin calls its IPAM delegate (SPEC 1.1.0 §4 "Plugin Delegation"). A
//! recording stand-in placed first in the plugin's `CNI_PATH` logs every call it makes to the
//! delegate and forwards it to the real one (see [`crate::case::Delegate`]).

use serde_json::{json, Value};

use crate::case::{Applies, Case, Ctx, Delegate, Level, Verdict, WITH_INTERFACES};
use crate::runtime::log::Entry;
use crate::version::SpecVersion;

use super::gc::{gc, v110};

/// The cases of this area.
pub const CASES: &[Case] = &[
    Case {
        id: "delegation/same-input",
        title: "ADD runs the IPAM delegate with the same CNI_* environment and the complete network configuration the plugin got",
        level: Level::Must,
        spec: r#"SPEC.md 1.1.0 §"Delegated Plugin protocol" (the same environment variables; the complete network configuration)"#,
        applies: Applies { kinds: WITH_INTERFACES, since: SpecVersion(0, 1, 0) },
        body: same_input,
    },
    Case {
        id: "delegation/del",
        title: "DEL is passed on to the IPAM delegate",
        level: Level::Must,
        spec: r#"SPEC.md 1.1.0 §"Delegated plugin execution procedure" (CHECK, DEL and GC execute the delegated plugins too)"#,
        applies: Applies { kinds: WITH_INTERFACES, since: SpecVersion(0, 1, 0) },
        body: del,
    },
    Case {
        id: "delegation/check",
        title: "CHECK is passed on to the IPAM delegate",
        level: Level::Must,
        spec: r#"SPEC.md 1.1.0 §"Delegated plugin execution procedure" (CHECK, DEL and GC execute the delegated plugins too)"#,
        applies: Applies { kinds: WITH_INTERFACES, since: SpecVersion(0, 4, 0) },
        body: check,
    },
    Case {
        id: "delegation/gc",
        title: "GC is passed on to the IPAM delegate with the same list of valid attachments",
        level: Level::Must,
        spec: r#"SPEC.md 1.1.0 §"`GC`: Clean up any stale resources" (GC is forwarded to delegated plugins); SPEC.md 1.1.0 §"Delegated plugin execution procedure""#,
        applies: Applies { kinds: WITH_INTERFACES, since: SpecVersion(1, 1, 0) },
        body: gc_forwarded,
    },
    Case {
        id: "delegation/status",
        title: "STATUS is passed on to the IPAM delegate",
        level: Level::Must,
        spec: r#"SPEC.md 1.1.0 §"`STATUS`: Check plugin status" (a plugin that relies on a delegate sends it STATUS too)"#,
        applies: Applies { kinds: WITH_INTERFACES, since: SpecVersion(1, 1, 0) },
        body: status_forwarded,
    },
];

/// The `CNI_*` variables of the plugin under test's call `idx`.
fn cni_vars(ctx: &Ctx, idx: usize) -> Vec<(String, String)> {
    ctx.record(idx)
        .env
        .iter()
        .filter(|(k, _)| k.starts_with("CNI_"))
        .cloned()
        .collect()
}

/// A violation unless the delegate got a `verb` call for the attachment of the plugin's call `idx`.
fn forwarded(ctx: &mut Ctx, d: &Delegate, idx: usize, verb: &str) -> Result<Entry, Verdict> {
    let calls = ctx.delegate_calls_of(d, verb)?;
    ctx.blame = Some(idx);
    let own = cni_vars(ctx, idx);
    let wanted = |k: &str| own.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    let matching = calls.into_iter().find(|e| {
        ["CNI_CONTAINERID", "CNI_IFNAME"]
            .iter()
            .all(|k| wanted(k).is_none() || e.var(k).map(str::to_string) == wanted(k))
    });
    matching.ok_or_else(|| {
        Verdict::violation(
            format!("{verb} was not passed on to the IPAM delegate {}", d.kind),
            format!("a {verb} call of {} while the plugin ran {verb}", d.kind),
            "no such call",
        )
    })
}

fn same_input(ctx: &mut Ctx) -> Result<(), Verdict> {
    let d = ctx.watch_delegate()?;
    let att = ctx.attachment()?;
    let out = ctx.add(&att)?;
    let idx = out.record;
    let call = forwarded(ctx, &d, idx, "ADD")?;
    let mut wrong: Vec<String> = cni_vars(ctx, idx)
        .into_iter()
        .filter(|(k, v)| call.var(k) != Some(v.as_str()))
        .map(|(k, v)| {
            format!(
                "{k}: the plugin got {v:?}, the delegate {:?}",
                call.var(&k).unwrap_or("(unset)")
            )
        })
        .collect();
    let given: Option<Value> = serde_json::from_str(&ctx.record(idx).stdin).ok();
    if call.stdin_json() != given {
        wrong.push(format!(
            "configuration: the plugin got {}, the delegate {}",
            crate::case::truncate(&ctx.record(idx).stdin, 300),
            crate::case::truncate(&call.stdin, 300)
        ));
    }
    if wrong.is_empty() {
        return Ok(());
    }
    Err(Verdict::violation(
        format!("the IPAM delegate {} did not get the plugin's own input", d.kind),
        "the same CNI_* variables and the complete network configuration",
        wrong.join("; "),
    ))
}

fn del(ctx: &mut Ctx) -> Result<(), Verdict> {
    let d = ctx.watch_delegate()?;
    let att = ctx.attachment()?;
    let out = ctx.add(&att)?;
    ctx.del(&att, Some(&out.result))?;
    let idx = ctx.own_call("DEL").unwrap_or(out.record);
    forwarded(ctx, &d, idx, "DEL").map(drop)
}

fn check(ctx: &mut Ctx) -> Result<(), Verdict> {
    let d = ctx.watch_delegate()?;
    let version = ctx.version()?;
    if version.parse::<SpecVersion>().is_ok_and(|v| !v.has_check()) {
        return Err(Verdict::Skip(format!("the run's version {version} has no CHECK")));
    }
    let att = ctx.attachment()?;
    let out = ctx.add(&att)?;
    let (idx, _) = ctx.check_raw(&att, &out.result, &version)?;
    forwarded(ctx, &d, idx, "CHECK").map(drop)
}

fn gc_forwarded(ctx: &mut Ctx) -> Result<(), Verdict> {
    let version = v110(ctx)?;
    let d = ctx.watch_delegate()?;
    let att = ctx.attachment()?;
    ctx.add_at(&att, &version)?;
    let valid = vec![json!({"containerID": att.container_id, "ifname": att.ifname})];
    let idx = gc(
        ctx,
        valid.clone(),
        &["cni.dev/valid-attachments", "cni.dev/attachments"],
    )?;
    let call = forwarded(ctx, &d, idx, "GC")?;
    let got = call
        .stdin_json()
        .and_then(|c| c.get("cni.dev/valid-attachments").cloned());
    if got != Some(Value::Array(valid.clone())) {
        return Err(Verdict::violation(
            format!("GC reached the IPAM delegate {} without the valid attachments", d.kind),
            format!("cni.dev/valid-attachments = {}", Value::Array(valid)),
            got.map_or("no cni.dev/valid-attachments".into(), |g| g.to_string()),
        ));
    }
    Ok(())
}

fn status_forwarded(ctx: &mut Ctx) -> Result<(), Verdict> {
    let version = v110(ctx)?;
    let d = ctx.watch_delegate()?;
    let stdin = ctx.own_request(&version, None);
    let idx = ctx.invoke_own("STATUS", None, &stdin);
    forwarded(ctx, &d, idx, "STATUS").map(drop)
}
