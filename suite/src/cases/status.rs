//! `status/*`: the STATUS verb (SPEC 1.1.0 §2 STATUS).

use serde_json::{json, Value};

use crate::case::{first_line, Applies, Case, Ctx, Delegate, Level, Verdict, ANY_KIND};
use crate::runtime::log::Entry;
use crate::version::SpecVersion;

use super::gc::v110;

/// The cases of this area.
pub const CASES: &[Case] = &[
    Case {
        id: "status/ready",
        title: "STATUS of a healthy plugin exits 0 and prints nothing",
        level: Level::Must,
        spec: r#"SPEC.md 1.1.0 §"`STATUS`: Check plugin status" (exit 0 when able to serve ADD); docs/spec-notes.md#output-of-del-check-gc-and-status"#,
        applies: Applies {
            kinds: ANY_KIND,
            since: SpecVersion(1, 1, 0),
        },
        body: ready,
    },
    Case {
        id: "status/exhausted",
        title: "STATUS fails with code 50 once the address pool is used up, and ADD still works after a DEL",
        level: Level::Should,
        spec: r#"SPEC.md 1.1.0 §"`STATUS`: Check plugin status" (resources exhausted: code 50; other operations still served)"#,
        applies: Applies {
            kinds: ANY_KIND,
            since: SpecVersion(1, 1, 0),
        },
        body: exhausted,
    },
];

fn status(ctx: &mut Ctx, stdin: &Value) -> usize {
    let env = ctx.env("STATUS", None);
    let program = ctx.target.plugin.clone();
    ctx.invoke(&program, env, stdin.to_string().into_bytes())
}

fn ready(ctx: &mut Ctx) -> Result<(), Verdict> {
    let version = v110(ctx)?;
    let stdin = ctx.own_request(&version, None);
    let idx = status(ctx, &stdin);
    ctx.blame = Some(idx);
    let rec = ctx.record(idx);
    if !rec.exit.success() {
        return Err(Verdict::violation(
            "STATUS failed on a fresh lab",
            "exit 0",
            format!("{}: {}", rec.exit, first_line(&rec.stdout, &rec.stderr)),
        ));
    }
    if !rec.stdout.trim().is_empty() {
        return Err(Verdict::violation(
            "STATUS printed output on success",
            "nothing on stdout",
            crate::case::truncate(&rec.stdout, 200),
        ));
    }
    Ok(())
}

/// The request with its host-local range replaced by a /30 (one usable address); `None` when the
/// plugin does not use host-local (the case then cannot exhaust a pool it does not know).
fn tiny_pool(ctx: &Ctx, version: &str) -> Option<Value> {
    if ctx.target.profile.plugins.len() != 1 {
        return None;
    }
    let mut req = ctx.own_request(version, None);
    let ipam = req.get_mut("ipam")?.as_object_mut()?;
    if ipam.get("type").and_then(Value::as_str) != Some("host-local") {
        return None;
    }
    ipam.remove("subnet");
    ipam.insert("ranges".into(), json!([[{"subnet": "10.91.0.0/30"}]]));
    Some(req)
}

/// What the IPAM delegate answered to the STATUS the plugin passed on, when the plugin delegates:
/// `Some(None)` when it got no STATUS at all.
fn delegate_status(ctx: &Ctx, d: Option<&Delegate>) -> Result<Option<Option<Entry>>, Verdict> {
    let Some(d) = d else { return Ok(None) };
    Ok(Some(ctx.delegate_calls_of(d, "STATUS")?.into_iter().last()))
}

fn exhausted(ctx: &mut Ctx) -> Result<(), Verdict> {
    let version = v110(ctx)?;
    let Some(req) = tiny_pool(ctx, &version) else {
        return Err(Verdict::Skip(
            "the configuration does not use host-local, so the suite cannot exhaust its pool".into(),
        ));
    };
    // An interface plugin learns of the pool from its delegate: watch what the delegate answers,
    // to charge whichever of the two dropped the error.
    let delegate = if ctx.ipam_type().is_some() {
        Some(ctx.watch_delegate()?)
    } else {
        None
    };
    let att = ctx.attachment()?;
    let add = ctx.invoke_own("ADD", Some(&att), &req);
    ctx.expect_success(add, "ADD on a one-address pool")?;
    let idx = status(ctx, &req);
    ctx.blame = Some(idx);
    let rec = ctx.record(idx).clone();
    let code = crate::cni::ErrorDoc::parse(&rec.stdout).and_then(|e| e.code);
    if rec.exit.success() || code != Some(50) {
        let seen = format!("{}: {}", rec.exit, first_line(&rec.stdout, &rec.stderr));
        match delegate_status(ctx, delegate.as_ref())? {
            Some(Some(call)) if call.exit_code == 0 => {
                // The delegate itself said ready: the plugin passed on what it was told.
                let Some(d) = delegate.as_ref() else {
                    return Err(Verdict::Broken("delegate call without a delegate".into()));
                };
                let kind = d.kind.clone();
                let at = ctx.record_delegate_call(d, &call);
                ctx.report_peer(
                    at,
                    "STATUS reports ready although its pool is exhausted",
                    format!("exit 0: {}", crate::case::truncate(call.stdout.trim(), 200)),
                );
                return Err(Verdict::Skip(format!(
                    "the IPAM delegate {kind} answered STATUS with success on an exhausted pool (see peers); \
                     the plugin passed that on"
                )));
            }
            Some(None) => {
                return Err(Verdict::violation(
                    "STATUS does not report the exhausted pool: it was not passed on to the IPAM delegate",
                    "a non-zero exit with code 50",
                    seen,
                ))
            }
            Some(Some(call)) => {
                return Err(Verdict::violation(
                    "STATUS does not report the exhausted pool its IPAM delegate reported",
                    format!(
                        "the delegate's error passed on: {}",
                        crate::case::truncate(call.stdout.trim(), 200)
                    ),
                    seen,
                ))
            }
            None => {
                return Err(Verdict::violation(
                    "STATUS does not report the exhausted pool",
                    "a non-zero exit with code 50",
                    seen,
                ))
            }
        }
    }
    let mut with_prev = req.clone();
    if let Some(result) = ctx.record(add).stdout_json() {
        with_prev["prevResult"] = result;
    }
    let del = ctx.invoke_own("DEL", Some(&att), &with_prev);
    ctx.expect_success(del, "DEL after STATUS reported an error")?;
    let again = ctx.attachment()?;
    let add2 = ctx.invoke_own("ADD", Some(&again), &req);
    ctx.expect_success(add2, "ADD after the pool was freed")
}
