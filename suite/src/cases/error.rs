//! `error/*`: how a plugin fails: a non-zero exit (SPEC.md 1.1.0 §"Errors") and an Error object with
//! the well-known code (SPEC.md 1.1.0 §"Error"; the codes: docs/spec-notes.md#error-codes).

use serde_json::Value;

use crate::case::{first_line, Applies, Attachment, Case, Ctx, Level, Verdict, ANY_KIND, WITH_INTERFACES};
use crate::cni::ErrorDoc;
use crate::schema::DocKind;
use crate::version::SpecVersion;

const ALWAYS: SpecVersion = SpecVersion(0, 1, 0);
const V1: SpecVersion = SpecVersion(1, 0, 0);

/// The cases of this area.
pub const CASES: &[Case] = &[
    Case {
        id: "error/non-json-stdin",
        title: "ADD with stdin that is not JSON fails (non-zero exit) and creates nothing",
        level: Level::Must,
        spec: r#"SPEC.md 1.1.0 §"Errors" (exit non-zero on failure); SPEC.md 1.1.0 §"Section 2: Execution Protocol" > "Overview" (the configuration is JSON)"#,
        applies: Applies {
            kinds: ANY_KIND,
            since: ALWAYS,
        },
        body: non_json_stdin,
    },
    Case {
        id: "error/non-json-stdin-code",
        title: "non-JSON stdin gives an Error object on stdout with code 6 (decoding failure)",
        level: Level::Should,
        spec: r#"SPEC.md 1.0.0 §"Error" (code 6: failed to decode content); docs/spec-notes.md#error-codes"#,
        applies: Applies {
            kinds: ANY_KIND,
            since: V1,
        },
        body: non_json_stdin_code,
    },
    Case {
        id: "error/missing-env",
        title: "ADD without CNI_CONTAINERID, CNI_NETNS and CNI_IFNAME fails and creates nothing",
        level: Level::Must,
        spec: r#"SPEC.md 1.1.0 §"`ADD`: Add container to network, or apply modifications" (required environment parameters); SPEC.md 1.1.0 §"Errors" (exit non-zero on failure)"#,
        applies: Applies {
            kinds: ANY_KIND,
            since: ALWAYS,
        },
        body: missing_env,
    },
    Case {
        id: "error/missing-env-code",
        title: "missing variables give an Error object with code 4 naming every missing variable",
        level: Level::Should,
        spec: r#"SPEC.md 1.0.0 §"Error" (code 4: the message names the invalid variables); docs/spec-notes.md#error-codes"#,
        applies: Applies {
            kinds: ANY_KIND,
            since: V1,
        },
        body: missing_env_code,
    },
    Case {
        id: "error/incompatible-version",
        title: "ADD with a cniVersion the plugin does not support fails with code 1",
        level: Level::Must,
        spec: r#"SPEC.md 1.1.0 §"Errors" (exit non-zero on failure); SPEC.md 1.1.0 §"Error" (code 1: incompatible CNI version)"#,
        applies: Applies {
            kinds: ANY_KIND,
            since: ALWAYS,
        },
        body: incompatible_version,
    },
    Case {
        id: "error/bad-ifname",
        title: "ADD with an interface name the kernel cannot use (empty, 16 bytes, '..', '/', ':', blank) fails",
        level: Level::Must,
        spec: r#"SPEC.md 1.1.0 §"Parameters" (CNI_IFNAME: a name the plugin cannot use is an error)"#,
        applies: Applies {
            kinds: WITH_INTERFACES,
            since: ALWAYS,
        },
        body: bad_ifname,
    },
    Case {
        id: "error/missing-netns",
        title: "ADD with a CNI_NETNS path that does not exist fails (no fallback to another namespace)",
        level: Level::Must,
        spec: r#"SPEC.md 1.1.0 §"`ADD`: Add container to network, or apply modifications" (the interface goes inside CNI_NETNS); SPEC.md 1.1.0 §"Errors" (exit non-zero on failure)"#,
        applies: Applies {
            kinds: &[crate::profile::PluginKind::Interface],
            since: ALWAYS,
        },
        body: missing_netns,
    },
    Case {
        id: "error/bad-container-id",
        title: "ADD with a container id outside [a-zA-Z0-9_.-] fails with code 4",
        level: Level::Should,
        spec: r#"SPEC.md 1.0.0 §"Parameters" (CNI_CONTAINERID: the characters allowed); SPEC.md 1.0.0 §"Error" (code 4)"#,
        applies: Applies {
            kinds: ANY_KIND,
            since: V1,
        },
        body: bad_container_id,
    },
    Case {
        id: "error/missing-network-name",
        title: "ADD with a configuration without \"name\" fails with code 7",
        level: Level::Should,
        spec: r#"SPEC.md 1.0.0 §"Deriving execution configuration from plugin configuration" (name is always inserted); SPEC.md 1.0.0 §"Error" (code 7: invalid network config)"#,
        applies: Applies {
            kinds: ANY_KIND,
            since: V1,
        },
        body: missing_network_name,
    },
    Case {
        id: "error/unknown-command",
        title: "an unknown CNI_COMMAND fails with code 4",
        level: Level::Should,
        spec: r#"SPEC.md 1.0.0 §"Parameters" (CNI_COMMAND names an operation); SPEC.md 1.0.0 §"Error" (code 4: invalid environment variables)"#,
        applies: Applies {
            kinds: ANY_KIND,
            since: V1,
        },
        body: unknown_command,
    },
    Case {
        id: "error/check-below-0-4-0",
        title: "CHECK with a 0.3.x configuration fails with code 1 (CHECK exists from 0.4.0)",
        level: Level::Should,
        spec: r#"SPEC.md 0.4.0 §"Parameters" (CHECK arrives in 0.4.0); SPEC.md 0.4.0 §"Well-known Error Codes" (code 1: incompatible CNI version)"#,
        applies: Applies {
            kinds: ANY_KIND,
            since: SpecVersion(0, 4, 0),
        },
        body: check_below_040,
    },
    Case {
        id: "error/gc-status-below-1-1-0",
        title: "GC and STATUS with a 1.0.0 configuration fail with code 1 (they exist from 1.1.0)",
        level: Level::Should,
        spec: r#"SPEC.md 1.1.0 §"`GC`: Clean up any stale resources" (new in 1.1.0); SPEC.md 1.1.0 §"`STATUS`: Check plugin status" (new in 1.1.0); SPEC.md 1.1.0 §"Error" (code 1: incompatible CNI version)"#,
        applies: Applies {
            kinds: ANY_KIND,
            since: SpecVersion(1, 1, 0),
        },
        body: gc_status_below_110,
    },
];

/// Runs ADD with `stdin` and `env`, expecting failure; returns the record index.
fn failing_add(ctx: &mut Ctx, env: Vec<(String, String)>, stdin: Vec<u8>) -> Result<usize, Verdict> {
    let program = ctx.target.plugin.clone();
    let idx = ctx.invoke(&program, env, stdin);
    let rec = ctx.record(idx);
    if rec.exit.success() {
        let seen = format!("exit 0: {}", first_line(&rec.stdout, &rec.stderr));
        ctx.blame = Some(idx);
        return Err(Verdict::violation(
            "the plugin reported success",
            "a non-zero exit",
            seen,
        ));
    }
    Ok(idx)
}

/// A finding unless the container has no interface besides `lo` (and any the lab put there). A
/// `should` finding: the spec asks a failing plugin to clean up only in "should" words ("the
/// upper plugin should execute again with DEL before returning failure").
fn nothing_created(ctx: &mut Ctx, att: &crate::case::Attachment) -> Result<(), Verdict> {
    let links = ctx.lab.container_rtnl(&att.container)?.links()?;
    let premade = ctx.premade_links(att);
    let extra: Vec<String> = links
        .iter()
        .filter(|l| l.name != "lo" && !premade.contains(&l.name))
        .map(|l| l.name.clone())
        .collect();
    if extra.is_empty() {
        Ok(())
    } else {
        Err(Verdict::should(
            "a failed ADD left interfaces in the container",
            "no interface besides lo",
            extra.join(", "),
        ))
    }
}

/// Checks the Error object of invocation `idx`: schema, and `code` against `want`.
fn error_object(ctx: &mut Ctx, idx: usize, want: u64, version: &str) -> Result<ErrorDoc, Verdict> {
    ctx.blame = Some(idx);
    let rec = ctx.record(idx).clone();
    let Some(doc) = rec.stdout_json() else {
        return Err(Verdict::violation(
            "no Error object on stdout",
            "a JSON Error object on stdout",
            first_line(&rec.stdout, &rec.stderr),
        ));
    };
    ctx.schema_check(version, DocKind::Error, &doc)?;
    let err = ErrorDoc::parse(&rec.stdout).unwrap_or(ErrorDoc {
        code: None,
        msg: None,
        details: None,
    });
    if err.code != Some(want) {
        return Err(Verdict::violation(
            format!("wrong error code (code {want} is the well-known one for this failure)"),
            format!("code {want}"),
            err.code.map_or("no numeric code".into(), |c| {
                format!("code {c}: {}", err.msg.clone().unwrap_or_default())
            }),
        ));
    }
    Ok(err)
}

fn non_json_stdin(ctx: &mut Ctx) -> Result<(), Verdict> {
    let att = ctx.attachment()?;
    let env = ctx.env("ADD", Some(&att));
    failing_add(ctx, env, b"this is { not json".to_vec())?;
    nothing_created(ctx, &att)
}

fn non_json_stdin_code(ctx: &mut Ctx) -> Result<(), Verdict> {
    let att = ctx.attachment()?;
    let env = ctx.env("ADD", Some(&att));
    let idx = failing_add(ctx, env, b"this is { not json".to_vec())?;
    let version = ctx.version()?;
    error_object(ctx, idx, 6, &version).map(|_| ())
}

fn env_without_attachment_vars(ctx: &mut Ctx) -> Vec<(String, String)> {
    let missing = ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"];
    let mut env = ctx.env("ADD", None);
    env.retain(|(k, _)| !missing.contains(&k.as_str()));
    env
}

fn missing_env(ctx: &mut Ctx) -> Result<(), Verdict> {
    let version = ctx.version()?;
    let stdin = ctx.own_request(&version, None).to_string().into_bytes();
    let env = env_without_attachment_vars(ctx);
    let names = |ctx: &Ctx| -> Result<Vec<String>, Verdict> {
        Ok(ctx.lab.host_rtnl()?.links()?.into_iter().map(|l| l.name).collect())
    };
    let before = names(ctx)?;
    failing_add(ctx, env, stdin)?;
    let made: Vec<String> = names(ctx)?.into_iter().filter(|n| !before.contains(n)).collect();
    if made.is_empty() {
        Ok(())
    } else {
        // Cleaning up after a failure is a "should" (see nothing_created).
        Err(Verdict::should(
            "a rejected ADD still created links on the host",
            "no new link",
            made.join(", "),
        ))
    }
}

fn missing_env_code(ctx: &mut Ctx) -> Result<(), Verdict> {
    let version = ctx.version()?;
    let stdin = ctx.own_request(&version, None).to_string().into_bytes();
    let env = env_without_attachment_vars(ctx);
    let idx = failing_add(ctx, env, stdin)?;
    let err = error_object(ctx, idx, 4, &version)?;
    let text = format!("{} {}", err.msg.unwrap_or_default(), err.details.unwrap_or_default());
    let unnamed: Vec<&str> = ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"]
        .into_iter()
        .filter(|v| !text.contains(v))
        .collect();
    if unnamed.is_empty() {
        Ok(())
    } else {
        Err(Verdict::violation(
            "the error does not name every missing variable",
            "msg or details naming CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME",
            text,
        ))
    }
}

fn incompatible_version(ctx: &mut Ctx) -> Result<(), Verdict> {
    let version = ctx.version()?;
    let att = ctx.attachment()?;
    let mut stdin = ctx.own_request(&version, None);
    stdin["cniVersion"] = Value::String("99.0.0".into());
    let env = ctx.env("ADD", Some(&att));
    let idx = failing_add(ctx, env, stdin.to_string().into_bytes())?;
    nothing_created(ctx, &att)?;
    // Failing is a must (non-zero on failure); the error object and its code 1 are "should"
    // ("it should output an error result"; 0.4.0: "the plugin should return an error code 1").
    error_object(ctx, idx, 1, &version).map(|_| ()).map_err(Verdict::soften)
}

fn bad_ifname(ctx: &mut Ctx) -> Result<(), Verdict> {
    ctx.needs_free_ifname()?;
    let version = ctx.version()?;
    let stdin = ctx.own_request(&version, None).to_string().into_bytes();
    let mut accepted = Vec::new();
    for name in ["", "sixteen-bytes-xx", "..", "a/b", "a:b", "a b"] {
        let att = ctx.attachment()?;
        let att = Attachment {
            ifname: name.to_string(),
            ..att
        };
        let env = ctx.env("ADD", Some(&att));
        let program = ctx.target.plugin.clone();
        let idx = ctx.invoke(&program, env, stdin.clone());
        if ctx.record(idx).exit.success() {
            ctx.blame = Some(idx);
            accepted.push(format!("{name:?}"));
        }
    }
    if accepted.is_empty() {
        Ok(())
    } else {
        Err(Verdict::violation(
            "ADD succeeded with interface names the kernel cannot use",
            "a non-zero exit for each",
            format!("exit 0 for {}", accepted.join(", ")),
        ))
    }
}

fn bad_container_id(ctx: &mut Ctx) -> Result<(), Verdict> {
    let version = ctx.version()?;
    let att = ctx.attachment()?;
    let att = Attachment {
        container_id: "bad/id with spaces!".into(),
        ..att
    };
    let stdin = ctx.own_request(&version, None).to_string().into_bytes();
    let env = ctx.env("ADD", Some(&att));
    let idx = failing_add(ctx, env, stdin)?;
    error_object(ctx, idx, 4, &version).map(|_| ())
}

fn missing_network_name(ctx: &mut Ctx) -> Result<(), Verdict> {
    let version = ctx.version()?;
    let att = ctx.attachment()?;
    let mut conf = ctx.own_request(&version, None);
    if let Some(o) = conf.as_object_mut() {
        o.remove("name");
    }
    let env = ctx.env("ADD", Some(&att));
    let idx = failing_add(ctx, env, conf.to_string().into_bytes())?;
    error_object(ctx, idx, 7, &version).map(|_| ())
}

fn unknown_command(ctx: &mut Ctx) -> Result<(), Verdict> {
    let version = ctx.version()?;
    let att = ctx.attachment()?;
    let stdin = ctx.own_request(&version, None).to_string().into_bytes();
    let env = ctx.env("FROBNICATE", Some(&att));
    let program = ctx.target.plugin.clone();
    let idx = ctx.invoke(&program, env, stdin);
    if ctx.record(idx).exit.success() {
        ctx.blame = Some(idx);
        return Err(Verdict::violation(
            "CNI_COMMAND=FROBNICATE was accepted",
            "a non-zero exit with code 4",
            "exit 0",
        ));
    }
    error_object(ctx, idx, 4, &version).map(|_| ())
}

/// Runs `verb` at `version` (which the plugin must claim) and expects code 1.
fn verb_refused(ctx: &mut Ctx, verb: &str, version: SpecVersion, att: Option<&Attachment>) -> Result<(), Verdict> {
    let mut stdin = ctx.own_request(&version.to_string(), None);
    if verb == "GC" {
        stdin["cni.dev/valid-attachments"] = serde_json::json!([]);
    }
    let env = ctx.env(verb, att);
    let program = ctx.target.plugin.clone();
    let idx = ctx.invoke(&program, env, stdin.to_string().into_bytes());
    if ctx.record(idx).exit.success() {
        ctx.blame = Some(idx);
        return Err(Verdict::violation(
            format!("{verb} was accepted with a {version} configuration"),
            "a non-zero exit with code 1",
            "exit 0",
        ));
    }
    error_object(ctx, idx, 1, &version.to_string()).map(|_| ())
}

/// The highest version below `limit` that the plugin claims.
fn claimed_below(ctx: &Ctx, limit: SpecVersion) -> Option<SpecVersion> {
    let mut v: Vec<SpecVersion> = ctx
        .target
        .supported
        .iter()
        .filter_map(|s| s.parse().ok())
        .filter(|v: &SpecVersion| v.is_released() && *v < limit)
        .collect();
    v.sort();
    v.pop()
}

fn check_below_040(ctx: &mut Ctx) -> Result<(), Verdict> {
    let Some(old) = claimed_below(ctx, SpecVersion(0, 4, 0)).filter(|v| *v >= SpecVersion(0, 3, 0)) else {
        return Err(Verdict::Skip("the plugin claims no 0.3.x version".into()));
    };
    let att = ctx.attachment()?;
    verb_refused(ctx, "CHECK", old, Some(&att))
}

fn gc_status_below_110(ctx: &mut Ctx) -> Result<(), Verdict> {
    let Some(old) = claimed_below(ctx, SpecVersion(1, 1, 0)).filter(|v| *v >= SpecVersion(1, 0, 0)) else {
        return Err(Verdict::Skip("the plugin claims no 1.0.0 version".into()));
    };
    verb_refused(ctx, "GC", old, None)?;
    verb_refused(ctx, "STATUS", old, None)
}

fn missing_netns(ctx: &mut Ctx) -> Result<(), Verdict> {
    // Network-wide state made before the namespace is opened (a bridge) may stay; the failed ADD
    // and its DEL are judged for leftovers by del/after-failed-add.
    let version = ctx.version()?;
    let att = ctx.attachment()?;
    let stdin = ctx.own_request(&version, None).to_string().into_bytes();
    let mut env = ctx.env("ADD", Some(&att));
    let gone = format!("{}-does-not-exist", att.netns());
    for (k, v) in env.iter_mut() {
        if k == "CNI_NETNS" {
            v.clone_from(&gone);
        }
    }
    failing_add(ctx, env, stdin).map(|_| ())
}
