//! `matrix/*`: the lifecycle at every spec version the plugin claims (SPEC §1 version history).

use serde_json::Value;

use crate::case::{first_line, Applies, Attachment, Case, Ctx, Level, Verdict, ANY_KIND};
use crate::cni::NormalResult;
use crate::profile::PluginKind;
use crate::schema::DocKind;
use crate::version::SpecVersion;

/// The cases of this area.
pub const CASES: &[Case] = &[Case {
    id: "matrix/add-check-del",
    title: "ADD, CHECK (0.4.0+) and DEL work at every released version the plugin claims, each result in that version's shape",
    level: Level::Must,
    spec: r#"docs/spec-notes.md#result-shapes-by-version; SPEC.md 0.2.0 §"Result" (ip4/ip6); SPEC.md 0.4.0 §"Result" (ips[].version); SPEC.md 1.1.0 §"ADD Success" (cniVersion is the version supplied on input)"#,
    applies: Applies { kinds: ANY_KIND, since: SpecVersion(0, 1, 0) },
    body: add_check_del,
}];

fn add_check_del(ctx: &mut Ctx) -> Result<(), Verdict> {
    let versions: Vec<SpecVersion> = ctx.target.common_versions.clone();
    if versions.is_empty() {
        return Err(Verdict::Skip(
            "no released version is spoken by the plugin and all its peers".into(),
        ));
    }
    let mut problems = Vec::new();
    for v in versions {
        let version = v.to_string();
        let att = ctx.attachment()?;
        let out = match ctx.add_at(&att, &version) {
            Ok(o) => o,
            Err(Verdict::Violation(f)) => {
                problems.push(format!("{version}: {}: {}", f.message, f.seen.unwrap_or_default()));
                continue;
            }
            Err(other) => return Err(other),
        };
        if let Err(Verdict::Violation(f)) = ctx.schema_check(&version, DocKind::AddResult, &out.result) {
            problems.push(format!(
                "{version}: result does not match the schema: {}",
                f.seen.unwrap_or_default()
            ));
        }
        if ctx.target.profile.kind != PluginKind::Ipam {
            problems.extend(
                unlisted_families(ctx, &att, &out.result)?
                    .into_iter()
                    .map(|p| format!("{version}: {p}")),
            );
            if let Err(Verdict::Violation(f)) = super::kernel::verify_result(ctx, &att, &out.result) {
                problems.push(format!("{version}: {}", f.seen.unwrap_or(f.message)));
            }
        }
        let echoed = out.result.get("cniVersion").and_then(Value::as_str);
        if echoed != Some(version.as_str()) {
            problems.push(format!("{version}: result cniVersion is {echoed:?}"));
        }
        if v.has_check() {
            let (idx, ok) = ctx.check_raw(&att, &out.result, &version)?;
            if !ok {
                let rec = ctx.record(idx);
                problems.push(format!(
                    "{version}: CHECK failed: {}",
                    first_line(&rec.stdout, &rec.stderr)
                ));
            }
        }
        let idx = ctx.del_raw(&att, Some(&out.result), &version)?;
        let rec = ctx.record(idx);
        if !rec.exit.success() {
            problems.push(format!(
                "{version}: DEL failed: {}",
                first_line(&rec.stdout, &rec.stderr)
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Verdict::violation(
            "the lifecycle fails at some claimed versions",
            "ADD/CHECK/DEL succeed with a valid result at every claimed version",
            problems.join("; "),
        ))
    }
}

/// Address families that CNI_IFNAME holds a global address of in the container but the result
/// names no address of: every version's layout can carry one address per family, so a result
/// that leaves one out hides what the plugin set up.
fn unlisted_families(ctx: &Ctx, att: &Attachment, result: &Value) -> Result<Vec<String>, Verdict> {
    let rtnl = ctx.lab.container_rtnl(&att.container)?;
    let Some(link) = rtnl.link_by_name(&att.ifname)? else {
        return Ok(Vec::new());
    };
    let listed: Vec<bool> = NormalResult::parse(result)
        .map(|r| r.ips.iter().map(|ip| ip.address.is_ipv6()).collect())
        .unwrap_or_default();
    let mut out = Vec::new();
    for a in rtnl.addresses_of(link.index)?.into_iter().filter(|a| a.scope == 0) {
        let v6 = a.addr.is_ipv6();
        if !listed.contains(&v6) {
            let text = format!(
                "{} carries {} but the result names no IPv{} address",
                att.ifname,
                a.addr,
                if v6 { 6 } else { 4 }
            );
            if !out.contains(&text) {
                out.push(text);
            }
        }
    }
    Ok(out)
}
