//! `version/*`: the VERSION verb (SPEC §2 "VERSION", 0.2.0+).

use serde_json::{json, Value};

use crate::case::{Applies, Case, Ctx, Level, Verdict, ANY_KIND};
use crate::schema::DocKind;
use crate::version::SpecVersion;

const SINCE: SpecVersion = SpecVersion(0, 2, 0);

/// The cases of this area.
pub const CASES: &[Case] = &[
    Case {
        id: "version/answers",
        title: "VERSION with only CNI_COMMAND set prints cniVersion and a non-empty supportedVersions list",
        level: Level::Must,
        spec: r#"SPEC.md 1.1.0 §"`VERSION`: probe plugin version support"; SPEC.md 1.1.0 §"VERSION Success" (VERSION exists from 0.2.0 on)"#,
        applies: Applies {
            kinds: ANY_KIND,
            since: SINCE,
        },
        body: answers,
    },
    Case {
        id: "version/schema",
        title: "the VERSION answer matches the VERSION result schema",
        level: Level::Must,
        spec: r#"SPEC.md 1.1.0 §"VERSION Success" (cniVersion and supportedVersions)"#,
        applies: Applies {
            kinds: ANY_KIND,
            since: SINCE,
        },
        body: schema,
    },
    Case {
        id: "version/ignores-stdin",
        title: "VERSION still answers when stdin is empty or not JSON",
        level: Level::Should,
        spec: r#"SPEC.md 1.1.0 §"`VERSION`: probe plugin version support" (only CNI_COMMAND is required); docs/spec-notes.md#version-ignores-stdin"#,
        applies: Applies {
            kinds: ANY_KIND,
            since: SINCE,
        },
        body: ignores_stdin,
    },
    Case {
        id: "version/echoes-request",
        title: "the VERSION answer's cniVersion echoes the request's cniVersion",
        level: Level::Must,
        spec: r#"SPEC.md 1.1.0 §"VERSION Success" (cniVersion is the request's); docs/spec-notes.md#version-answers-with-the-library-version"#,
        applies: Applies {
            kinds: ANY_KIND,
            since: SINCE,
        },
        body: echoes_request,
    },
];

/// The VERSION request the suite sends first: the newest version it knows.
const ASK: &str = "1.1.0";

/// Runs VERSION with only `CNI_COMMAND` and `PATH`, returns the parsed answer.
fn ask(ctx: &mut Ctx, stdin: &[u8]) -> Result<Value, Verdict> {
    let env = vec![
        ("CNI_COMMAND".to_string(), "VERSION".to_string()),
        ("PATH".to_string(), ctx.target.path_env.clone()),
    ];
    let program = ctx.target.plugin.clone();
    let idx = ctx.invoke(&program, env, stdin.to_vec());
    ctx.expect_success(idx, "VERSION")?;
    let rec = ctx.record(idx);
    rec.stdout_json().ok_or_else(|| {
        Verdict::violation(
            "VERSION output is not JSON",
            "a JSON object on stdout",
            crate::case::truncate(&rec.stdout, 200),
        )
    })
}

fn answers(ctx: &mut Ctx) -> Result<(), Verdict> {
    let v = ask(ctx, json!({ "cniVersion": ASK }).to_string().as_bytes())?;
    let cni = v.get("cniVersion").and_then(Value::as_str);
    let list = v.get("supportedVersions").and_then(Value::as_array);
    match (cni, list) {
        (None, _) => Err(Verdict::violation(
            "VERSION answer lacks a string cniVersion",
            "\"cniVersion\": \"<version>\"",
            v.to_string(),
        )),
        (_, None) => Err(Verdict::violation(
            "VERSION answer lacks a supportedVersions array",
            "\"supportedVersions\": [...]",
            v.to_string(),
        )),
        (_, Some(l)) if l.is_empty() => Err(Verdict::violation(
            "supportedVersions is empty",
            "at least one version",
            v.to_string(),
        )),
        (_, Some(l)) => {
            let bad: Vec<String> = l
                .iter()
                .filter(|x| x.as_str().and_then(|s| s.parse::<SpecVersion>().ok()).is_none())
                .map(Value::to_string)
                .collect();
            if bad.is_empty() {
                Ok(())
            } else {
                Err(Verdict::violation(
                    "supportedVersions holds entries that are not versions",
                    "MAJOR.MINOR.PATCH strings",
                    bad.join(", "),
                ))
            }
        }
    }
}

fn schema(ctx: &mut Ctx) -> Result<(), Verdict> {
    let v = ask(ctx, json!({ "cniVersion": ASK }).to_string().as_bytes())?;
    let claimed = v
        .get("cniVersion")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<SpecVersion>().ok());
    let version = match claimed {
        Some(c) if c.is_released() && c >= SINCE => c.to_string(),
        _ => ASK.to_string(),
    };
    ctx.schema_check(&version, DocKind::VersionResult, &v)
}

fn ignores_stdin(ctx: &mut Ctx) -> Result<(), Verdict> {
    for stdin in [&b""[..], &b"{not json"[..]] {
        let v = ask(ctx, stdin)?;
        if !v.get("supportedVersions").is_some_and(Value::is_array) {
            return Err(Verdict::violation(
                format!(
                    "VERSION with stdin {:?} gave no supportedVersions",
                    String::from_utf8_lossy(stdin)
                ),
                "the same answer as with a JSON request",
                v.to_string(),
            ));
        }
    }
    Ok(())
}

fn echoes_request(ctx: &mut Ctx) -> Result<(), Verdict> {
    // Ask at a version the plugin supports that is not its newest, so an echo is distinguishable
    // from "always print my library version".
    let mut supported: Vec<SpecVersion> = ctx
        .target
        .supported
        .iter()
        .filter_map(|s| s.parse().ok())
        .filter(|v: &SpecVersion| v.is_released() && *v >= SINCE)
        .collect();
    supported.sort();
    let Some(request) = supported.first().copied() else {
        return Err(Verdict::Skip(
            "the plugin claims no released version of 0.2.0 or later".into(),
        ));
    };
    let v = ask(ctx, json!({ "cniVersion": request.to_string() }).to_string().as_bytes())?;
    let answered = v.get("cniVersion").and_then(Value::as_str).unwrap_or("");
    if answered == request.to_string() {
        return Ok(());
    }
    Err(Verdict::quirk(
        "VERSION answered with its own version instead of echoing the request (libcni skel does this)",
        format!("cniVersion {request}"),
        format!("cniVersion {answered:?}"),
    ))
}
