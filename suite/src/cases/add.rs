//! `add/*`: the ADD verb (SPEC §2 ADD, §5 Success).

use serde_json::Value;

use crate::case::{Applies, Case, Ctx, Level, Verdict, ANY_KIND, WITH_INTERFACES};
use crate::profile::PluginKind;
use crate::schema::DocKind;
use crate::version::SpecVersion;

const ALWAYS: SpecVersion = SpecVersion(0, 1, 0);

/// The cases of this area.
pub const CASES: &[Case] = &[
    Case {
        id: "add/result-schema",
        title: "the ADD result matches the result schema of the requested version",
        level: Level::Must,
        spec: r#"SPEC.md 1.1.0 §"ADD Success"; docs/spec-notes.md#result-shapes-by-version"#,
        applies: Applies {
            kinds: ANY_KIND,
            since: ALWAYS,
        },
        body: result_schema,
    },
    Case {
        id: "add/result-version",
        title: "the ADD result's cniVersion equals the request's cniVersion",
        level: Level::Must,
        spec: r#"SPEC.md 1.1.0 §"ADD Success" (cniVersion is the version supplied on input)"#,
        applies: Applies {
            kinds: ANY_KIND,
            since: ALWAYS,
        },
        body: result_version,
    },
    Case {
        id: "add/result-matches-kernel",
        title: "every interface, MAC, MTU, address, route and sandbox in the ADD result exists in the kernel",
        level: Level::Must,
        spec: r#"SPEC.md 1.1.0 §"ADD Success" (interfaces, ips, routes, sandbox); SPEC.md 1.1.0 §"`ADD`: Add container to network, or apply modifications" (CNI_IFNAME inside CNI_NETNS)"#,
        applies: Applies {
            kinds: WITH_INTERFACES,
            since: ALWAYS,
        },
        body: result_matches_kernel,
    },
    Case {
        id: "add/custom-ifname",
        title: "ADD honours a non-default CNI_IFNAME (net1) and the result names it",
        level: Level::Must,
        spec: r#"SPEC.md 1.1.0 §"Parameters" (CNI_IFNAME: the interface to create; a name the plugin cannot use is an error); SPEC.md 1.1.0 §"ADD Success" (interfaces)"#,
        applies: Applies {
            kinds: &[PluginKind::Interface],
            since: SpecVersion(0, 3, 0),
        },
        body: custom_ifname,
    },
    Case {
        id: "add/interface-exists",
        title: "ADD fails when CNI_IFNAME already exists in the container",
        level: Level::Must,
        spec: r#"SPEC.md 1.0.0 §"`ADD`: Add container to network, or apply modifications" (an interface of the requested name that already exists is an error)"#,
        applies: Applies {
            kinds: &[PluginKind::Interface],
            since: SpecVersion(1, 0, 0),
        },
        body: interface_exists,
    },
    Case {
        id: "add/ipam-result-shape",
        title: "an IPAM plugin's ADD result has no interfaces and no ips[].interface",
        level: Level::Must,
        spec: r#"SPEC.md 1.1.0 §"Delegated plugins (IPAM)" (an abbreviated result: no interfaces, no ips[].interface)"#,
        applies: Applies {
            kinds: &[PluginKind::Ipam],
            since: SpecVersion(0, 3, 0),
        },
        body: ipam_result_shape,
    },
];

fn ipam_result_shape(ctx: &mut Ctx) -> Result<(), Verdict> {
    let att = ctx.attachment()?;
    let out = ctx.add(&att)?;
    ctx.blame = Some(out.record);
    let mut extra = Vec::new();
    if out
        .result
        .get("interfaces")
        .is_some_and(|i| i.as_array().is_none_or(|l| !l.is_empty()))
    {
        extra.push(format!("interfaces {}", out.result["interfaces"]));
    }
    for (i, ip) in out
        .result
        .get("ips")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if let Some(idx) = ip.get("interface") {
            extra.push(format!("ips[{i}].interface {idx}"));
        }
    }
    if extra.is_empty() {
        return Ok(());
    }
    let finding = Verdict::violation(
        "the IPAM result describes interfaces, which the calling plugin owns",
        "no interfaces and no ips[].interface",
        extra.join(", "),
    );
    // 1.0.0 on: "Delegated IPAM plugins must return an abbreviated Success object"; before,
    // "IPAM plugins should return an abbreviated Result structure".
    let version: SpecVersion = ctx.version()?.parse().unwrap_or(ALWAYS);
    Err(if version >= SpecVersion(1, 0, 0) {
        finding
    } else {
        finding.soften()
    })
}

fn custom_ifname(ctx: &mut Ctx) -> Result<(), Verdict> {
    ctx.needs_free_ifname()?;
    let att = ctx.attachment_named("net1")?;
    let out = ctx.add(&att)?;
    ctx.blame = Some(out.record);
    super::kernel::verify_result(ctx, &att, &out.result)
}

fn interface_exists(ctx: &mut Ctx) -> Result<(), Verdict> {
    ctx.needs_free_ifname()?;
    let att = ctx.attachment()?;
    let rtnl = ctx.lab.container_rtnl(&att.container)?;
    rtnl.create_veth(&att.ifname, "eth0peer", None)?;
    let version = ctx.version()?;
    let stdin = ctx.own_request(&version, None);
    let idx = ctx.invoke_own("ADD", Some(&att), &stdin);
    ctx.blame = Some(idx);
    if ctx.record(idx).exit.success() {
        return Err(Verdict::violation(
            format!("ADD succeeded although {} already existed in the container", att.ifname),
            "a non-zero exit",
            "exit 0",
        ));
    }
    Ok(())
}

fn result_schema(ctx: &mut Ctx) -> Result<(), Verdict> {
    let att = ctx.attachment()?;
    let out = ctx.add(&att)?;
    ctx.blame = Some(out.record);
    let version = ctx.version()?;
    ctx.schema_check(&version, DocKind::AddResult, &out.result)
}

fn result_version(ctx: &mut Ctx) -> Result<(), Verdict> {
    let att = ctx.attachment()?;
    let out = ctx.add(&att)?;
    ctx.blame = Some(out.record);
    let version = ctx.version()?;
    match out.result.get("cniVersion").and_then(Value::as_str) {
        Some(v) if v == version => Ok(()),
        other => Err(Verdict::violation(
            "the result's cniVersion differs from the request",
            format!("cniVersion {version:?}"),
            other.map_or("no cniVersion".into(), |v| format!("cniVersion {v:?}")),
        )),
    }
}

fn result_matches_kernel(ctx: &mut Ctx) -> Result<(), Verdict> {
    let att = ctx.attachment()?;
    let out = ctx.add(&att)?;
    ctx.blame = Some(out.record);
    super::kernel::verify_result(ctx, &att, &out.result)
}
