//! `del/*`: the DEL verb (SPEC §2 DEL: idempotent, best effort, leaves nothing behind).

use crate::case::{Applies, Attachment, Case, Ctx, Level, Verdict, ANY_KIND, WITH_INTERFACES};
use crate::lab::snapshot::Change;
use crate::version::SpecVersion;

const ALWAYS: SpecVersion = SpecVersion(0, 1, 0);

/// The cases of this area.
pub const CASES: &[Case] = &[
    Case {
        id: "del/idempotent",
        title: "DEL succeeds three times in a row after an ADD",
        level: Level::Must,
        spec: r#"SPEC.md 1.1.0 §"`DEL`: Remove container from network, or un-apply modifications" (plugins must accept repeated DELs)"#,
        applies: Applies { kinds: ANY_KIND, since: ALWAYS },
        body: idempotent,
    },
    Case {
        id: "del/without-add",
        title: "DEL of an attachment that was never added succeeds",
        level: Level::Must,
        spec: r#"SPEC.md 1.1.0 §"`DEL`: Remove container from network, or un-apply modifications" (success when what ADD made is already gone)"#,
        applies: Applies { kinds: ANY_KIND, since: ALWAYS },
        body: without_add,
    },
    Case {
        id: "del/leaves-no-trace",
        title: "ADD then DEL of a second attachment leaves the host exactly as before (links, addresses, routes, sysctls, rules, data files)",
        level: Level::Should,
        spec: r#"SPEC.md 1.1.0 §"`DEL`: Remove container from network, or un-apply modifications" (undo what ADD did; release IPAM)"#,
        applies: Applies { kinds: ANY_KIND, since: ALWAYS },
        body: leaves_no_trace,
    },
    Case {
        id: "del/netns-gone",
        title: "DEL succeeds after the container's netns was deleted",
        level: Level::Must,
        spec: r#"SPEC.md 1.1.0 §"`DEL`: Remove container from network, or un-apply modifications" (success when what ADD made is already gone)"#,
        applies: Applies { kinds: ANY_KIND, since: ALWAYS },
        body: netns_gone,
    },
    Case {
        id: "del/netns-gone-leaves-no-trace",
        title: "DEL after the netns was deleted still removes everything ADD made on the host (NAT rules, IPAM)",
        level: Level::Should,
        spec: r#"SPEC.md 1.1.0 §"`DEL`: Remove container from network, or un-apply modifications" (best effort: release IPAM and other resources even if the netns is gone); docs/spec-notes.md#upstream-bridge-del-without-a-network-namespace"#,
        applies: Applies { kinds: ANY_KIND, since: ALWAYS },
        body: netns_gone_no_trace,
    },
    Case {
        id: "del/empty-netns",
        title: "DEL with an empty CNI_NETNS succeeds",
        level: Level::Should,
        spec: r#"SPEC.md 1.0.0 §"`DEL`: Remove container from network, or un-apply modifications" (CNI_NETNS is optional for DEL)"#,
        applies: Applies { kinds: ANY_KIND, since: V1 },
        body: empty_netns,
    },
    Case {
        id: "del/empty-netns-leaves-no-trace",
        title: "DEL with an empty CNI_NETNS still removes everything ADD made on the host (NAT rules, IPAM)",
        level: Level::Should,
        spec: r#"SPEC.md 1.0.0 §"`DEL`: Remove container from network, or un-apply modifications" (CNI_NETNS is optional for DEL); SPEC.md 0.4.0 §"Parameters" (a DEL without CNI_NETNS cleans up as much as possible); docs/spec-notes.md#upstream-bridge-del-without-a-network-namespace"#,
        applies: Applies { kinds: ANY_KIND, since: V1 },
        body: empty_netns_no_trace,
    },
    Case {
        id: "del/without-prevresult",
        title: "DEL without prevResult after an ADD succeeds",
        level: Level::Should,
        spec: r#"SPEC.md 1.1.0 §"`DEL`: Remove container from network, or un-apply modifications" (success when state is missing); SPEC.md 0.4.0 §"Parameters" (a DEL without prevResult returns success; 0.3.x runtimes send none)"#,
        applies: Applies { kinds: ANY_KIND, since: ALWAYS },
        body: without_prevresult,
    },
    Case {
        id: "del/without-prevresult-leaves-no-trace",
        title: "DEL without prevResult still removes everything ADD made on the host",
        level: Level::Should,
        spec: r#"SPEC.md 0.4.0 §"Parameters" (a DEL without prevResult cleans up as much as possible)"#,
        applies: Applies { kinds: ANY_KIND, since: ALWAYS },
        body: without_prevresult_no_trace,
    },
    Case {
        id: "del/after-failed-add",
        title: "DEL after an ADD that failed (the interface already existed) succeeds",
        level: Level::Must,
        spec: r#"SPEC.md 1.1.0 §"Lifecycle & Ordering" (a delete follows even a failed add); SPEC.md 1.1.0 §"`DEL`: Remove container from network, or un-apply modifications""#,
        applies: Applies { kinds: WITH_INTERFACES, since: ALWAYS },
        body: after_failed_add,
    },
    Case {
        id: "del/host-state-kept",
        title: "ADD then DEL of the first attachment keeps every link, address, route and packet-filter rule the host already had",
        level: Level::Should,
        spec: r#"SPEC.md 1.1.0 §"`DEL`: Remove container from network, or un-apply modifications" (the plugin undoes its own changes); docs/lab.md#what-a-lab-is (the lab is the plugin's host)"#,
        applies: Applies { kinds: ANY_KIND, since: ALWAYS },
        body: host_state_kept,
    },
    Case {
        id: "del/prints-nothing",
        title: "DEL prints nothing on stdout when it succeeds, the first time and when repeated",
        level: Level::Should,
        spec: r#"SPEC.md 1.1.0 §"`DEL`: Remove container from network, or un-apply modifications" (no result is defined for DEL); docs/spec-notes.md#output-of-del-check-gc-and-status"#,
        applies: Applies { kinds: ANY_KIND, since: ALWAYS },
        body: prints_nothing,
    },
    Case {
        id: "del/restores-host-sysctls",
        title: "ADD then DEL of the only attachment leaves the host's network sysctls as they were (forwarding aside)",
        level: Level::Should,
        spec: r#"SPEC.md 1.1.0 §"`DEL`: Remove container from network, or un-apply modifications" (undo the modifications ADD made); docs/spec-notes.md#network-wide-state (forwarding)"#,
        applies: Applies { kinds: ANY_KIND, since: ALWAYS },
        body: restores_host_sysctls,
    },
    Case {
        id: "del/other-ifname-intact",
        title: "DEL of a container's second attachment (net1) leaves its first attachment (eth0) working and reserved",
        level: Level::Should,
        spec: r#"SPEC.md 1.1.0 §"`DEL`: Remove container from network, or un-apply modifications" (delete CNI_IFNAME in CNI_NETNS); SPEC.md 1.1.0 §"`ADD`: Add container to network, or apply modifications" (a container may join a network under several interface names); docs/spec-notes.md#upstream-bridge-one-masquerade-chain-per-container"#,
        applies: Applies { kinds: ANY_KIND, since: ALWAYS },
        body: other_ifname_intact,
    },
    Case {
        id: "del/keeps-only-network-state",
        title: "after the last attachment is deleted, the plugin has added to its host only network-wide state (bridges and what is on them, firewall state, sysctls, data files)",
        level: Level::Should,
        spec: r#"SPEC.md 1.1.0 §"`DEL`: Remove container from network, or un-apply modifications" (undo any modifications applied in the plugin's ADD); docs/spec-notes.md#network-wide-state; docs/lab.md#what-the-report-shows"#,
        applies: Applies { kinds: ANY_KIND, since: ALWAYS },
        body: keeps_only_network_state,
    },
];

const V1: SpecVersion = SpecVersion(1, 0, 0);

/// Leaks between two snapshots.
fn leaks(before: &crate::lab::HostSnapshot, after: &crate::lab::HostSnapshot) -> Vec<Change> {
    after.trace_changes_since(before)
}

/// ADDs a first attachment (so shared network state exists), snapshots, ADDs a second one, runs
/// `del` on it, and returns the leaks.
fn second_attachment_leaks(
    ctx: &mut Ctx,
    del: impl FnOnce(&mut Ctx, &Attachment, &serde_json::Value) -> Result<(), Verdict>,
) -> Result<Vec<Change>, Verdict> {
    second_attachment_leaks_with(ctx, |ctx, att| {
        let out = ctx.add(att)?;
        del(ctx, att, &out.result)
    })
}

/// Like [`second_attachment_leaks`], with the whole life of the second attachment in `life`.
/// The kernel tears down a deleted namespace asynchronously, so the "after" snapshot is retried
/// for up to two seconds while it still differs. The second attachment's calls are tracked, so
/// each leak can be charged to the call that made it.
fn second_attachment_leaks_with(
    ctx: &mut Ctx,
    life: impl FnOnce(&mut Ctx, &Attachment) -> Result<(), Verdict>,
) -> Result<Vec<Change>, Verdict> {
    let first = ctx.attachment()?;
    let out = ctx.add(&first)?;
    // A configuration that holds one attachment at a time (vlan: one link per master and tag)
    // releases the first before the second; what it shared (the IPAM store) stays.
    if ctx.target.profile.one_attachment_at_a_time {
        ctx.del(&first, Some(&out.result))?;
    }
    let before = ctx.lab.snapshot()?;
    let second = ctx.attachment()?;
    ctx.track_changes();
    life(ctx, &second)?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let found = leaks(&before, &ctx.lab.snapshot()?);
        if found.is_empty() || std::time::Instant::now() >= deadline {
            return Ok(found);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// A violation for the leaks the plugin under test made; those of peers are reported apart.
fn no_leaks(ctx: &mut Ctx, leaks: Vec<Change>, how: &str) -> Result<(), Verdict> {
    let how = if how.is_empty() {
        String::new()
    } else {
        format!(" {how}")
    };
    let message = format!("DEL{how} left traces of the attachment on the host");
    let own = ctx.charge_and_report(&leaks, &message);
    if own.is_empty() {
        return Ok(());
    }
    ctx.blame = ctx.own_call("DEL");
    // "should either delete the interface ... or undo any modifications" (SPEC §2 DEL; DHCP's
    // release "would not be considered critical"): a trace is a should finding, also in a
    // must case such as del/after-failed-add.
    Err(Verdict::should(
        message,
        "the host as it was before the ADD",
        own.join("; "),
    ))
}

/// DEL of the plugin under test with a modified environment; must exit 0.
fn del_with_env(
    ctx: &mut Ctx,
    att: &Attachment,
    prev: Option<&serde_json::Value>,
    netns: Option<&str>,
) -> Result<(), Verdict> {
    let version = ctx.version()?;
    let n = ctx.target.profile.plugins.len();
    let with_prev = version.parse::<SpecVersion>().is_ok_and(|v| v.has_check());
    for i in (0..n).rev() {
        let program = if i + 1 == n {
            ctx.target.plugin.clone()
        } else {
            let ty = ctx.target.profile.plugins[i]
                .get("type")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("");
            ctx.target
                .find_plugin(ty)
                .ok_or_else(|| Verdict::Skip(format!("chain member {ty:?} not found")))?
        };
        let stdin = ctx
            .request(i, &version, if with_prev { prev } else { None })
            .to_string()
            .into_bytes();
        let mut env = ctx.env("DEL", Some(att));
        if let Some(ns) = netns {
            for (k, v) in env.iter_mut() {
                if k == "CNI_NETNS" {
                    *v = ns.to_string();
                }
            }
        }
        let idx = ctx.invoke(&program, env, stdin);
        if i + 1 == n {
            ctx.expect_success(idx, "DEL")?;
        }
    }
    Ok(())
}

fn netns_gone(ctx: &mut Ctx) -> Result<(), Verdict> {
    let att = ctx.attachment()?;
    let out = ctx.add(&att)?;
    ctx.lab.remove_container(&att.container.name)?;
    del_with_env(ctx, &att, Some(&out.result), None)
}

fn netns_gone_no_trace(ctx: &mut Ctx) -> Result<(), Verdict> {
    let leaks = second_attachment_leaks(ctx, |ctx, att, result| {
        ctx.lab.remove_container(&att.container.name)?;
        del_with_env(ctx, att, Some(result), None)
    })?;
    no_leaks(ctx, leaks, "after the netns was deleted")
}

fn empty_netns(ctx: &mut Ctx) -> Result<(), Verdict> {
    let att = ctx.attachment()?;
    let out = ctx.add(&att)?;
    del_with_env(ctx, &att, Some(&out.result), Some(""))
}

fn empty_netns_no_trace(ctx: &mut Ctx) -> Result<(), Verdict> {
    let leaks = second_attachment_leaks(ctx, |ctx, att, result| {
        del_with_env(ctx, att, Some(result), Some(""))?;
        // The runtime then removes the netns, which takes the container end of any link with it.
        ctx.lab.remove_container(&att.container.name)?;
        Ok(())
    })?;
    no_leaks(ctx, leaks, "with an empty CNI_NETNS")
}

fn without_prevresult(ctx: &mut Ctx) -> Result<(), Verdict> {
    let att = ctx.attachment()?;
    ctx.add(&att)?;
    del_with_env(ctx, &att, None, None)
}

fn without_prevresult_no_trace(ctx: &mut Ctx) -> Result<(), Verdict> {
    let leaks = second_attachment_leaks(ctx, |ctx, att, _| del_with_env(ctx, att, None, None))?;
    no_leaks(ctx, leaks, "without prevResult")
}

fn after_failed_add(ctx: &mut Ctx) -> Result<(), Verdict> {
    ctx.needs_free_ifname()?;
    // ADD fails because CNI_IFNAME already exists in the container (put there by the suite); the
    // runtime then DELs the attachment, which must succeed and leave nothing of the failed ADD.
    let leaks = second_attachment_leaks_with(ctx, |ctx, att| {
        let rtnl = ctx.lab.container_rtnl(&att.container)?;
        rtnl.create_veth(&att.ifname, "blocker0", None)?;
        let version = ctx.version()?;
        let stdin = ctx.own_request(&version, None);
        let idx = ctx.invoke_own("ADD", Some(att), &stdin);
        if ctx.record(idx).exit.success() {
            return Err(Verdict::Skip(
                "ADD did not fail although the interface existed (add/interface-exists judges that)".into(),
            ));
        }
        del_with_env(ctx, att, None, None)
    })?;
    no_leaks(ctx, leaks, "after a failed ADD")
}

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
    let leaks = second_attachment_leaks(ctx, |ctx, att, result| ctx.del(att, Some(result)))?;
    no_leaks(ctx, leaks, "")
}

fn prints_nothing(ctx: &mut Ctx) -> Result<(), Verdict> {
    let att = ctx.attachment()?;
    let out = ctx.add(&att)?;
    let version = ctx.version()?;
    for round in ["first", "repeated"] {
        let idx = ctx.del_raw(&att, Some(&out.result), &version)?;
        ctx.expect_success(idx, "DEL")?;
        let rec = ctx.record(idx);
        if !rec.stdout.trim().is_empty() {
            let seen = crate::case::truncate(&rec.stdout, 200);
            ctx.blame = Some(idx);
            return Err(Verdict::violation(
                format!("the {round} DEL succeeded but printed something on stdout"),
                "nothing on stdout (logs belong on stderr)",
                seen,
            ));
        }
    }
    Ok(())
}

/// Directories of `/proc/sys` whose values belong to the whole (lab) host, not to one link.
const HOST_SYSCTL_DIRS: &[&str] = &[
    "net/core",
    "net/ipv4",
    "net/ipv4/conf/all",
    "net/ipv4/conf/default",
    "net/ipv6",
    "net/ipv6/conf/all",
    "net/ipv6/conf/default",
    "net/bridge",
];

/// Sysctls a plugin may leave changed: forwarding is network-wide state that gateway plugins
/// switch on and never off (other networks may rely on it), turning IPv4 forwarding on makes the
/// kernel turn `accept_redirects` off, and lists of loaded algorithms grow when a module loads.
fn excused_sysctl(name: &str, forwarding_changed: bool) -> bool {
    name.ends_with("forwarding")
        || name.ends_with("ip_forward")
        || name.contains("available")
        || (forwarding_changed && name.ends_with("accept_redirects"))
}

/// The lab host's values of the sysctls in [`HOST_SYSCTL_DIRS`] (files directly in those
/// directories; unreadable ones are left out).
fn host_sysctls(ctx: &Ctx) -> Result<std::collections::BTreeMap<String, String>, Verdict> {
    let read = || {
        let mut out = std::collections::BTreeMap::new();
        for dir in HOST_SYSCTL_DIRS {
            let Ok(entries) = std::fs::read_dir(std::path::Path::new("/proc/sys").join(dir)) else {
                continue;
            };
            for e in entries.flatten() {
                if !e.file_type().is_ok_and(|t| t.is_file()) {
                    continue;
                }
                let name = format!("{dir}/{}", e.file_name().to_string_lossy());
                if let Ok(v) = std::fs::read_to_string(e.path()) {
                    out.insert(
                        name.replace('/', "."),
                        v.split_whitespace().collect::<Vec<_>>().join(" "),
                    );
                }
            }
        }
        Ok(out)
    };
    crate::ns::run_in(Some(ctx.lab.host_net()), None, read).map_err(Verdict::from)
}

fn restores_host_sysctls(ctx: &mut Ctx) -> Result<(), Verdict> {
    let before = host_sysctls(ctx)?;
    let att = ctx.attachment()?;
    let out = ctx.add(&att)?;
    ctx.del(&att, Some(&out.result))?;
    let after = host_sysctls(ctx)?;
    let forwarding_changed = before
        .iter()
        .any(|(k, v)| k.ends_with("forward") && after.get(k).is_some_and(|w| w != v));
    let changed: Vec<String> = before
        .iter()
        .filter(|(k, _)| !excused_sysctl(k, forwarding_changed))
        .filter_map(|(k, v)| after.get(k).filter(|w| *w != v).map(|w| format!("{k}: {v} -> {w}")))
        .collect();
    if changed.is_empty() {
        return Ok(());
    }
    ctx.blame = ctx.invocations.iter().rposition(|r| r.command == "DEL");
    Err(Verdict::violation(
        "host sysctls changed by the attachment stay changed after its DEL",
        "every host-wide network sysctl back at its value from before the ADD",
        changed.join("; "),
    ))
}

/// Whether a snapshot line is packet-filter state (as opposed to links, addresses, routes, files).
fn is_firewall(what: &str) -> bool {
    !["link ", "address ", "route ", "sysctl ", "file "]
        .iter()
        .any(|p| what.starts_with(p))
}

fn other_ifname_intact(ctx: &mut Ctx) -> Result<(), Verdict> {
    ctx.needs_free_ifname()?;
    if ctx.target.profile.one_attachment_at_a_time {
        return Err(Verdict::Skip(
            "the configuration holds one attachment at a time (vlan: one link per master and tag)".into(),
        ));
    }
    let first = ctx.attachment()?;
    let kept = ctx.add(&first)?;
    // Only a result that matched the kernel before can show damage afterwards
    // (add/result-matches-kernel judges the result itself).
    let kept_matched = ctx.target.profile.kind != crate::profile::PluginKind::Ipam
        && super::kernel::verify_result(ctx, &first, &kept.result).is_ok();
    let before = ctx.lab.snapshot()?;
    let second = Attachment {
        ifname: "net1".into(),
        ..first.clone()
    };
    // Whether a plugin attaches one container to a network twice is its choice (ptp's host route
    // to the gateway and bandwidth's ifb device are per container): a refused ADD is a skip.
    let out = match ctx.add(&second) {
        Ok(out) => out,
        Err(Verdict::Violation(f)) => {
            return Err(Verdict::Skip(format!(
                "the plugin does not attach a container to the same network a second time (ADD of net1: {})",
                f.seen.unwrap_or(f.message)
            )))
        }
        Err(other) => return Err(other),
    };
    let version = ctx.version()?;
    let del = ctx.del_raw(&second, Some(&out.result), &version)?;
    ctx.blame = Some(del);
    let lost = ctx.lab.snapshot()?.diff(&before);
    let (firewall, state): (Vec<_>, Vec<_>) = lost
        .into_iter()
        .filter(|c| c.sign == '-')
        .partition(|c| is_firewall(&c.what));
    if !state.is_empty() {
        return Err(Verdict::violation(
            format!(
                "DEL of {}/net1 removed what {}/{} holds on the host",
                second.container_id, first.container_id, first.ifname
            ),
            "the first attachment's links, addresses, routes and reservations untouched",
            state.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
        ));
    }
    if kept_matched {
        if let Err(Verdict::Violation(mut f)) = super::kernel::verify_result(ctx, &first, &kept.result) {
            f.message = format!(
                "after DEL of net1, the result of {} no longer matches the container",
                first.ifname
            );
            return Err(Verdict::Violation(f));
        }
    }
    // Earlier chain members DEL after the plugin under test; when one of them failed, what it
    // left half-removed is not the plugin's doing.
    if let Some(member) = (del + 1..ctx.invocations.len()).find(|i| !ctx.invocations[*i].exit.success()) {
        return Err(ctx.peer_failed(member, "failed DEL of net1"));
    }
    let rec = ctx.record(del);
    if !rec.exit.success() {
        return Err(Verdict::quirk(
            "DEL of net1 failed while eth0 of the same container is attached (upstream's Go bridge \
             cannot delete the masquerade chain both share: \
             docs/spec-notes.md#upstream-bridge-one-masquerade-chain-per-container)",
            "exit 0",
            format!("{}: {}", rec.exit, crate::case::first_line(&rec.stdout, &rec.stderr)),
        ));
    }
    if !firewall.is_empty() {
        return Err(Verdict::quirk(
            "DEL of net1 (through the whole chain) removed packet-filter state that eth0 of the same \
             container relies on; upstream's Go bridge keys its masquerade chain on network and \
             container id only (docs/spec-notes.md#upstream-bridge-one-masquerade-chain-per-container)",
            "the first attachment's rules untouched",
            firewall.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
        ));
    }
    Ok(())
}

/// The host link the configuration hands to the plugin to move into the container (host-device's
/// `device`), if any.
fn handed_device(ctx: &Ctx) -> Option<String> {
    ctx.target
        .profile
        .plugins
        .last()
        .and_then(|p| p.get("device"))
        .and_then(serde_json::Value::as_str)
        .map(str::to_string)
}

/// True when `lost` is the old line of the handed-over device and the device is back under its
/// name with the same kind, MTU, master and MAC: whether it is up is the plugin's to decide for a
/// device it was given (upstream host-device returns it down).
fn returned_as_was(
    device: &str,
    lost: &crate::lab::snapshot::Change,
    changes: &[crate::lab::snapshot::Change],
) -> bool {
    let prefix = format!("link {device} ");
    if lost.sign != '-' || !lost.what.starts_with(&prefix) {
        return false;
    }
    let without_state = |line: &str| -> String {
        line.split_whitespace()
            .filter(|w| *w != "up" && *w != "down")
            .collect::<Vec<_>>()
            .join(" ")
    };
    changes
        .iter()
        .any(|c| c.sign == '+' && c.what.starts_with(&prefix) && without_state(&c.what) == without_state(&lost.what))
}

fn host_state_kept(ctx: &mut Ctx) -> Result<(), Verdict> {
    // Network-wide state a first attachment creates (a bridge, NAT base chains) may stay; what the
    // host had before the plugin ever ran must still be there, unchanged.
    let before = ctx.lab.snapshot()?;
    let att = ctx.attachment()?;
    ctx.track_changes();
    let out = ctx.add(&att)?;
    ctx.del(&att, Some(&out.result))?;
    let changes = ctx.lab.snapshot()?.diff(&before);
    let handed = handed_device(ctx);
    let lost: Vec<Change> = changes
        .iter()
        .filter(|c| c.sign == '-' || (c.sign == '~' && !c.what.starts_with("file ") && !c.what.starts_with("sysctl ")))
        .filter(|c| !handed.as_deref().is_some_and(|dev| returned_as_was(dev, c, &changes)))
        .cloned()
        .collect();
    let message = "the host lost or changed state it had before the plugin ran";
    let lost = ctx.charge_and_report(&lost, message);
    if lost.is_empty() {
        return Ok(());
    }
    ctx.blame = ctx.own_call("ADD");
    Err(Verdict::violation(
        message,
        "the host's own links, addresses, routes and rules untouched",
        lost.join("; "),
    ))
}

/// Links, addresses and routes a plugin added and kept after its last DEL that are not
/// network-wide state: bridges, links on a bridge (or named `<bridge>.<n>`), and addresses and
/// routes on those. Firewall state, sysctls and data files are network-wide by nature.
fn non_network_additions(changes: &[Change]) -> Vec<Change> {
    let field = |line: &str, key: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .unwrap_or("-")
            .to_string()
    };
    let added: Vec<&str> = changes
        .iter()
        .filter(|c| c.sign == '+')
        .map(|c| c.what.as_str())
        .collect();
    let links: Vec<(String, String, String)> = added
        .iter()
        .filter_map(|l| l.strip_prefix("link "))
        .filter_map(|l| {
            let name = l.split_whitespace().next()?.to_string();
            Some((name, field(l, "kind="), field(l, "master=")))
        })
        .collect();
    let bridges: Vec<&str> = links
        .iter()
        .filter(|(_, k, _)| k == "bridge")
        .map(|(n, _, _)| n.as_str())
        .collect();
    let on_bridge = |dev: &str, master: &str| {
        bridges.contains(&dev)
            || bridges.contains(&master)
            || bridges
                .iter()
                .any(|b| dev.strip_prefix(b).is_some_and(|rest| rest.starts_with('.')))
    };
    let network_link = |dev: &str| {
        links
            .iter()
            .find(|(n, _, _)| n == dev)
            .map_or(bridges.contains(&dev), |(n, _, m)| on_bridge(n, m))
            // A link the host had before (a master link of the profile) may carry new state too.
            || !links.iter().any(|(n, _, _)| n == dev) && dev != "lo" && dev != "-"
    };
    // A link the host had before that only changed (a device handed over and returned) is not an
    // addition: del/host-state-kept judges changes to what the host had.
    let existed = |name: &str| {
        changes.iter().any(|c| {
            c.sign == '-' && c.what.strip_prefix("link ").and_then(|l| l.split_whitespace().next()) == Some(name)
        })
    };
    let kept: Vec<&str> = added
        .into_iter()
        .filter(|line| {
            if let Some(l) = line.strip_prefix("link ") {
                let name = l.split_whitespace().next().unwrap_or("");
                !on_bridge(name, &field(l, "master=")) && !existed(name)
            } else if let Some(l) = line.strip_prefix("address ") {
                !network_link(l.rsplit(" on ").next().unwrap_or("-"))
            } else if line.starts_with("route ") {
                !network_link(&field(line, "dev="))
            } else {
                false
            }
        })
        .collect();
    changes
        .iter()
        .filter(|c| c.sign == '+' && kept.contains(&c.what.as_str()))
        .cloned()
        .collect()
}

fn keeps_only_network_state(ctx: &mut Ctx) -> Result<(), Verdict> {
    let before = ctx.lab.snapshot()?;
    let att = ctx.attachment()?;
    ctx.track_changes();
    let out = ctx.add(&att)?;
    ctx.del(&att, Some(&out.result))?;
    let changes = ctx.lab.snapshot()?.diff(&before);
    let message = "the plugin's host kept links, addresses or routes after its last attachment was deleted that are not network-wide state";
    let kept = ctx.charge_and_report(&non_network_additions(&changes), message);
    if kept.is_empty() {
        return Ok(());
    }
    ctx.blame = ctx.own_call("ADD");
    Err(Verdict::violation(
        message,
        "only bridges, links on them and their addresses and routes",
        kept.join("; "),
    ))
}
