//! `gc/*`: the GC verb (SPEC 1.1.0 §2 GC): stale attachments' resources go, valid ones stay.

use serde_json::{json, Value};

use crate::case::{first_line, Applies, Attachment, Case, Ctx, Level, Verdict, ANY_KIND};
use crate::lab::snapshot::Change;
use crate::lab::HostSnapshot;
use crate::version::SpecVersion;

const V11: SpecVersion = SpecVersion(1, 1, 0);

/// The cases of this area.
pub const CASES: &[Case] = &[
    Case {
        id: "gc/keeps-valid",
        title: "GC listing every attachment as valid exits 0, prints nothing and changes nothing",
        level: Level::Must,
        spec: r#"SPEC.md 1.1.0 §"`GC`: Clean up any stale resources" (no output on success; only attachments missing from the list are stale); docs/spec-notes.md#the-gc-attachment-key"#,
        applies: Applies {
            kinds: ANY_KIND,
            since: V11,
        },
        body: keeps_valid,
    },
    Case {
        id: "gc/removes-stale",
        title: "GC removes the host resources (NAT rules, IPAM reservation) of an attachment missing from the list",
        level: Level::Should,
        spec: r#"SPEC.md 1.1.0 §"`GC`: Clean up any stale resources" (remove the resources of attachments missing from the list); docs/spec-notes.md#the-gc-attachment-key"#,
        applies: Applies {
            kinds: ANY_KIND,
            since: V11,
        },
        body: removes_stale,
    },
    Case {
        id: "gc/empty-list",
        title: "GC with an empty list removes everything of the network's attachments that names them",
        level: Level::Should,
        spec: r#"SPEC.md 1.1.0 §"`GC`: Clean up any stale resources" (an attachment missing from the list is stale); docs/spec-notes.md#the-gc-attachment-key"#,
        applies: Applies {
            kinds: ANY_KIND,
            since: V11,
        },
        body: empty_list,
    },
    Case {
        id: "gc/legacy-key",
        title: "GC accepts the 1.1.0 tag's key cni.dev/attachments without the newer cni.dev/valid-attachments",
        level: Level::Should,
        spec: r#"SPEC.md 1.1.0 §"`GC`: Clean up any stale resources" (the tag names the list cni.dev/attachments); docs/spec-notes.md#the-gc-attachment-key"#,
        applies: Applies {
            kinds: ANY_KIND,
            since: V11,
        },
        body: legacy_key,
    },
];

/// 1.1.0 when the plugin and its peers speak it, else a skip.
pub(super) fn v110(ctx: &Ctx) -> Result<String, Verdict> {
    if ctx.target.common_versions.contains(&V11) {
        Ok(V11.to_string())
    } else {
        Err(Verdict::Skip(
            "the plugin or one of its peers (chain members, IPAM delegate) does not speak 1.1.0".into(),
        ))
    }
}

/// The GC list entry of an attachment.
fn entry(att: &Attachment) -> Value {
    json!({"containerID": att.container_id, "ifname": att.ifname})
}

/// Runs GC through the chain (list order, like libcni) with the given keys; returns the index of
/// the plugin-under-test's record.
pub(super) fn gc(ctx: &mut Ctx, valid: Vec<Value>, keys: &[&str]) -> Result<usize, Verdict> {
    let version = v110(ctx)?;
    let n = ctx.target.profile.plugins.len();
    let mut own = 0;
    for i in 0..n {
        let program = if i + 1 == n {
            ctx.target.plugin.clone()
        } else {
            let ty = ctx.target.profile.plugins[i]
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("");
            ctx.target
                .find_plugin(ty)
                .ok_or_else(|| Verdict::Skip(format!("chain member {ty:?} not found")))?
        };
        let mut stdin = ctx.request(i, &version, None);
        for k in keys {
            stdin[*k] = Value::Array(valid.clone());
        }
        let env = ctx.env("GC", None);
        own = ctx.invoke(&program, env, stdin.to_string().into_bytes());
    }
    Ok(own)
}

/// A finding unless GC record `idx` exited 0 with empty stdout. A failing GC is a `should`
/// finding: "Plugins should generally complete a GC action without error".
fn quiet_success(ctx: &mut Ctx, idx: usize) -> Result<(), Verdict> {
    ctx.blame = Some(idx);
    let rec = ctx.record(idx);
    if !rec.exit.success() {
        return Err(Verdict::should(
            "GC failed",
            "exit 0",
            format!("{}: {}", rec.exit, first_line(&rec.stdout, &rec.stderr)),
        ));
    }
    if !rec.stdout.trim().is_empty() {
        return Err(Verdict::violation(
            "GC printed output on success",
            "nothing on stdout",
            crate::case::truncate(&rec.stdout, 200),
        ));
    }
    Ok(())
}

/// Snapshots until the diff from `before` has no change matching `keep`, or two seconds passed.
fn settled(ctx: &Ctx, before: &HostSnapshot, keep: impl Fn(&str) -> bool) -> Result<Vec<Change>, Verdict> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let lines: Vec<Change> = ctx
            .lab
            .snapshot()?
            .trace_changes_since(before)
            .into_iter()
            .filter(|c| keep(&c.to_string()))
            .collect();
        if lines.is_empty() || std::time::Instant::now() >= deadline {
            return Ok(lines);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn keeps_valid(ctx: &mut Ctx) -> Result<(), Verdict> {
    let version = v110(ctx)?;
    let att = ctx.attachment()?;
    let out = ctx.add_at(&att, &version)?;
    let before = ctx.lab.snapshot()?;
    ctx.track_changes();
    let idx = gc(
        ctx,
        vec![entry(&att)],
        &["cni.dev/valid-attachments", "cni.dev/attachments"],
    )?;
    quiet_success(ctx, idx)?;
    let message = "GC changed the host although every attachment is valid";
    let changed = ctx.lab.snapshot()?.trace_changes_since(&before);
    let changed = ctx.charge_and_report(&changed, message);
    if !changed.is_empty() {
        ctx.blame = Some(idx);
        return Err(Verdict::violation(message, "no change", changed.join("; ")));
    }
    let (idx, ok) = ctx.check_raw(&att, &out.result, &version)?;
    if !ok {
        ctx.blame = Some(idx);
        let rec = ctx.record(idx);
        return Err(Verdict::violation(
            "CHECK of a valid attachment fails after GC",
            "exit 0",
            first_line(&rec.stdout, &rec.stderr),
        ));
    }
    Ok(())
}

fn removes_stale(ctx: &mut Ctx) -> Result<(), Verdict> {
    let version = v110(ctx)?;
    let keep = ctx.attachment()?;
    ctx.add_at(&keep, &version)?;
    let before = ctx.lab.snapshot()?;
    let stale = ctx.attachment()?;
    ctx.track_changes();
    ctx.add_at(&stale, &version)?;
    // The container died without a DEL: its namespace is gone, its host resources are not.
    ctx.lab.remove_container(&stale.container.name)?;
    let idx = gc(
        ctx,
        vec![entry(&keep)],
        &["cni.dev/valid-attachments", "cni.dev/attachments"],
    )?;
    quiet_success(ctx, idx)?;
    let message = "GC left resources of a stale attachment";
    let left = settled(ctx, &before, |_| true)?;
    let left = ctx.charge_and_report(&left, message);
    if left.is_empty() {
        Ok(())
    } else {
        ctx.blame = Some(idx);
        Err(Verdict::violation(
            message,
            "the host as it was before the stale ADD",
            left.join("; "),
        ))
    }
}

fn empty_list(ctx: &mut Ctx) -> Result<(), Verdict> {
    let version = v110(ctx)?;
    let before = ctx.lab.snapshot()?;
    let att = ctx.attachment()?;
    ctx.track_changes();
    let out = ctx.add_at(&att, &version)?;
    let ips: Vec<String> = crate::cni::NormalResult::parse(&out.result)
        .map(|r| r.ips.iter().map(|i| i.address.addr.to_string()).collect())
        .unwrap_or_default();
    ctx.lab.remove_container(&att.container.name)?;
    let idx = gc(ctx, Vec::new(), &["cni.dev/valid-attachments", "cni.dev/attachments"])?;
    quiet_success(ctx, idx)?;
    // Network-wide state (a bridge, a NAT base chain) may stay; what names the attachment may not.
    let id = att.container_id.clone();
    let names_it = move |l: &str| {
        l.contains(&id)
            || ips.iter().any(|ip| {
                l.contains(&format!("/{ip} "))
                    || l.ends_with(&format!("/{ip}"))
                    || l.contains(&format!(" {ip}/"))
                    || l.contains(&format!("{ip} "))
            })
    };
    let message = "GC with an empty list left resources naming the attachment";
    let left = settled(ctx, &before, names_it)?;
    let left = ctx.charge_and_report(&left, message);
    if left.is_empty() {
        Ok(())
    } else {
        ctx.blame = Some(idx);
        Err(Verdict::violation(
            message,
            "nothing naming its id or address",
            left.join("; "),
        ))
    }
}

fn legacy_key(ctx: &mut Ctx) -> Result<(), Verdict> {
    let version = v110(ctx)?;
    let att = ctx.attachment()?;
    ctx.add_at(&att, &version)?;
    let idx = gc(ctx, vec![entry(&att)], &["cni.dev/attachments"])?;
    quiet_success(ctx, idx)
}
