//! No verdict without evidence. A case body's verdict stands only when its invocations back it:
//! a plugin the suite could not start proves nothing; a call that never returned is the finding
//! (whatever the body concluded from its empty output); and a pass that rests only on refused
//! ADDs proves nothing when a valid ADD of the plugin fails too.

use super::{AddPremise, Ctx, Verdict};
use crate::invocation::Exit;

/// The verdict of a case once its invocations are reviewed; the blame moves to the invocation
/// that decides it. Skips and suite errors stand as they are.
pub fn review(ctx: &mut Ctx, verdict: Result<(), Verdict>) -> Result<(), Verdict> {
    if matches!(verdict, Err(Verdict::Skip(_) | Verdict::Broken(_))) {
        return verdict;
    }
    let own = ctx.target.plugin.display().to_string();
    let mine: Vec<usize> = (0..ctx.invocations.len())
        .filter(|&i| ctx.invocations[i].program == own)
        .collect();
    let unstarted = mine
        .iter()
        .copied()
        .find(|&i| matches!(ctx.invocations[i].exit, Exit::NotStarted(_)));
    if let Some(i) = unstarted {
        let rec = &ctx.invocations[i];
        let verdict = Verdict::Broken(format!(
            "the plugin could not be started for {} ({}), so the case proves nothing",
            rec.command, rec.exit
        ));
        ctx.blame = Some(i);
        return Err(verdict);
    }
    if let Some((i, hang)) = mine.iter().find_map(|&i| ctx.timeout_of(i).map(|h| (i, h))) {
        ctx.blame = Some(i);
        let message = if verdict.is_ok() {
            format!("{hang}; the case cannot pass on a call that never returned")
        } else {
            hang
        };
        return Err(Verdict::violation(
            message,
            "every call returns within --timeout",
            "no answer",
        ));
    }
    if let (Ok(()), AddPremise::Fails(why)) = (&verdict, &ctx.target.add_premise) {
        let adds: Vec<usize> = mine
            .iter()
            .copied()
            .filter(|&i| ctx.invocations[i].command == "ADD")
            .collect();
        if !adds.is_empty() && adds.iter().all(|&i| !ctx.invocations[i].exit.success()) {
            return Err(Verdict::Skip(format!(
                "the case passed only because every ADD of the plugin failed, and a valid ADD fails too \
                 ({why}); a refusal proves nothing here"
            )));
        }
    }
    verdict
}
