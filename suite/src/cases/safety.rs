//! `safety/*`: what a plugin must not do to the host or to the runtime that calls it.

use crate::case::{first_line, Applies, Case, Ctx, Level, Verdict, ANY_KIND, WITH_INTERFACES};
use crate::version::SpecVersion;

/// The cases of this area.
pub const CASES: &[Case] = &[
    Case {
        id: "safety/host-netns-refused",
        title: "ADD with CNI_NETNS naming the plugin's own (host) namespace fails and leaves the host as it was",
        level: Level::Should,
        spec: r#"SPEC.md 1.1.0 §"Parameters" (CNI_NETNS is the container's isolation domain); docs/spec-notes.md#the-plugins-own-network-namespace"#,
        applies: Applies { kinds: WITH_INTERFACES, since: SpecVersion(0, 1, 0) },
        body: host_netns_refused,
    },
    Case {
        id: "safety/exits-cleanly",
        title: "ADD and DEL close stdout and stderr when they exit and leave no process behind (not even a daemon in its own session)",
        level: Level::Should,
        spec: r#"SPEC.md 1.1.0 §"Section 2: Execution Protocol" > "Overview" (the result comes on stdout); docs/spec-notes.md#waiting-for-a-plugins-output"#,
        applies: Applies { kinds: ANY_KIND, since: SpecVersion(0, 1, 0) },
        body: exits_cleanly,
    },
    Case {
        id: "safety/writes-only-data-places",
        title: "ADD and DEL write no file outside the plugin's data places (/var/lib/cni, /run, the configured data directories), not even one that DEL removes",
        level: Level::Should,
        spec: r#"docs/lab.md#what-the-report-shows (the lab is the plugin's host; files a plugin writes elsewhere are the machine's)"#,
        applies: Applies { kinds: ANY_KIND, since: SpecVersion(0, 1, 0) },
        body: writes_only_data_places,
    },
];

fn host_netns_refused(ctx: &mut Ctx) -> Result<(), Verdict> {
    let version = ctx.version()?;
    let att = ctx.attachment()?;
    let before = ctx.lab.snapshot()?;
    let stdin = ctx.own_request(&version, None).to_string().into_bytes();
    let mut env = ctx.env("ADD", Some(&att));
    // The plugin runs in the lab host namespace: its own namespace file is the host's.
    for (k, v) in env.iter_mut() {
        if k == "CNI_NETNS" {
            *v = "/proc/self/ns/net".into();
        }
    }
    let program = ctx.target.plugin.clone();
    let idx = ctx.invoke(&program, env, stdin);
    ctx.blame = Some(idx);
    let rec = ctx.record(idx).clone();
    let changes = ctx.lab.snapshot()?.traces_since(&before);
    if rec.exit.success() {
        return Err(Verdict::violation(
            "ADD into the plugin's own network namespace succeeded",
            "a non-zero exit (code 8 in libcni-based plugins) and no change to the host",
            format!(
                "exit 0; host changes: {}",
                if changes.is_empty() {
                    "none".into()
                } else {
                    changes.join("; ")
                }
            ),
        ));
    }
    if !changes.is_empty() {
        return Err(Verdict::violation(
            "ADD into the plugin's own namespace was refused only after it changed the host",
            "the refusal before any change",
            format!(
                "{}; host changes: {}",
                first_line(&rec.stdout, &rec.stderr),
                changes.join("; ")
            ),
        ));
    }
    Ok(())
}

fn exits_cleanly(ctx: &mut Ctx) -> Result<(), Verdict> {
    let att = ctx.attachment()?;
    let out = ctx.add(&att)?;
    ctx.del(&att, Some(&out.result))?;
    // Every call is followed by a sweep of the lab: what a call left running is named in its
    // record. Anything still alive now escaped the sweeps (a call ran beside another).
    let left = ctx.lab.processes()?;
    // A peer's unclean exit is the peer's finding.
    for i in 0..ctx.invocations.len() {
        if !ctx.is_own(i) && !ctx.invocations[i].notes.is_empty() {
            let notes = ctx.invocations[i].notes.join("; ");
            let verb = ctx.invocations[i].command.clone();
            ctx.report_peer(i, &format!("{verb} did not finish cleanly"), notes);
        }
    }
    if let Some(i) = (0..ctx.invocations.len()).find(|i| ctx.is_own(*i) && !ctx.invocations[*i].notes.is_empty()) {
        ctx.blame = Some(i);
        let rec = &ctx.invocations[i];
        return Err(Verdict::violation(
            format!("{} did not finish cleanly", rec.command),
            "stdout and stderr closed at exit, no process left running in the lab",
            rec.notes.join("; "),
        ));
    }
    if !left.is_empty() {
        ctx.blame = ctx.invocations.iter().position(|r| r.command == "ADD");
        return Err(Verdict::violation(
            "a process started by the plugin kept running in the lab after ADD and DEL returned",
            "no process left running in the lab",
            left.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
        ));
    }
    Ok(())
}

fn writes_only_data_places(ctx: &mut Ctx) -> Result<(), Verdict> {
    let att = ctx.attachment()?;
    let before = ctx.lab.snapshot()?;
    ctx.track_changes();
    let out = ctx.add(&att)?;
    let after_add = ctx.lab.snapshot()?.writes_since(&before);
    ctx.del(&att, Some(&out.result))?;
    let after_del = ctx.lab.snapshot()?.writes_since(&before);
    let message = "wrote files outside the plugin's data places (they stayed in the lab; on a real host they would be the machine's)";
    let later: Vec<_> = after_del
        .into_iter()
        .filter(|c| !after_add.iter().any(|w| w.what == c.what))
        .collect();
    let writes: Vec<_> = after_add.into_iter().chain(later).collect();
    let own = ctx.charge_and_report(&writes, &format!("ADD or DEL {message}"));
    if own.is_empty() {
        return Ok(());
    }
    ctx.blame = ctx.own_call("ADD");
    Err(Verdict::violation(
        format!("ADD or DEL {message}"),
        "files only under /var/lib/cni, /run and the data directories the configuration names",
        own.join("; "),
    ))
}
