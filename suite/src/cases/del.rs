//! `del/*`: the DEL verb (SPEC §2 DEL: idempotent, best effort, leaves nothing behind).

use crate::case::{Applies, Case, Ctx, Level, Verdict, ANY_KIND};
use crate::version::SpecVersion;

const ALWAYS: SpecVersion = SpecVersion(0, 1, 0);

/// The cases of this area.
pub const CASES: &[Case] = &[
    Case {
        id: "del/idempotent",
        title: "DEL succeeds three times in a row after an ADD",
        level: Level::Must,
        spec: "SPEC §2 DEL (plugins must accept repeated DELs)",
        applies: Applies { kinds: ANY_KIND, since: ALWAYS },
        body: idempotent,
    },
    Case {
        id: "del/without-add",
        title: "DEL of an attachment that was never added succeeds",
        level: Level::Must,
        spec: "SPEC §2 DEL (success when the resources are already gone)",
        applies: Applies { kinds: ANY_KIND, since: ALWAYS },
        body: without_add,
    },
    Case {
        id: "del/leaves-no-trace",
        title: "ADD then DEL of a second attachment leaves the host exactly as before (links, addresses, routes, sysctls, rules, data files)",
        level: Level::Must,
        spec: "SPEC §2 DEL (remove what ADD created; release IPAM)",
        applies: Applies { kinds: ANY_KIND, since: ALWAYS },
        body: leaves_no_trace,
    },
];

fn idempotent(ctx: &mut Ctx) -> Result<(), Verdict> {
    let att = ctx.attachment()?;
    let out = ctx.add(&att)?;
    for round in 1..=3 {
        ctx.del(&att, Some(&out.result)).map_err(|v| match v {
            Verdict::Violation(mut f) => {
                f.message = format!("DEL number {round} failed");
                Verdict::Violation(f)
            }
            other => other,
        })?;
    }
    Ok(())
}

fn without_add(ctx: &mut Ctx) -> Result<(), Verdict> {
    let att = ctx.attachment()?;
    ctx.del(&att, None)
}

fn leaves_no_trace(ctx: &mut Ctx) -> Result<(), Verdict> {
    // The first attachment creates what a network shares (a bridge, a NAT chain jump, the IPAM
    // store); the baseline is taken after it, so the diff shows only what one attachment leaks.
    let first = ctx.attachment()?;
    ctx.add(&first)?;
    let before = ctx.lab.snapshot()?;
    let second = ctx.attachment()?;
    let out = ctx.add(&second)?;
    ctx.del(&second, Some(&out.result))?;
    let after = ctx.lab.snapshot()?;
    // Content changes of files that existed before (e.g. host-local's last_reserved_ip) are state,
    // not leaks; everything else counts.
    let leaks: Vec<String> = after
        .diff(&before)
        .into_iter()
        .filter(|c| !(c.sign == '~' && c.what.starts_with("file ")))
        .map(|c| c.to_string())
        .collect();
    if leaks.is_empty() {
        return Ok(());
    }
    ctx.blame = ctx.invocations.len().checked_sub(1);
    Err(Verdict::violation(
        "DEL left traces of the attachment on the host",
        "the host as it was before the ADD",
        leaks.join("; "),
    ))
}
