//! `cni-conformance invoke`: a libcni-like executor for humans and scripts (the library's
//! [`cni_conformance::invoke`] does the work). Exit 0 on success, 1 when a plugin or the
//! operation failed (the CNI error object on stdout, the message on stderr), 2 for usage errors.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{Map, Value};

use super::{limits, output, usage, Usage};
use cni_conformance::cli::{InvokeArgs, InvokeVerb};
use cni_conformance::invoke::{Attachment, Cache, Executor, NetworkList};

/// Runs invoke mode.
pub fn run(args: InvokeArgs) -> Result<u8, Usage> {
    let list = usage(NetworkList::from_file(&args.config).map_err(anyhow::Error::from))?;
    let timeout = limits::seconds("--timeout", args.timeout)?;
    let executor = Executor {
        cni_path: cni_path(args.cni_path.as_deref()),
        cache: Cache::new(&args.cache_dir),
        timeout,
    };
    let needs_attachment = matches!(args.verb, InvokeVerb::Add | InvokeVerb::Check | InvokeVerb::Del);
    let att = if needs_attachment {
        Some(usage(attachment(&args))?)
    } else {
        None
    };
    let outcome = match (args.verb, &att) {
        (InvokeVerb::Add, Some(att)) => executor.add(&list, att).map(Some),
        (InvokeVerb::Check, Some(att)) => executor.check(&list, att).map(|()| None),
        (InvokeVerb::Del, Some(att)) => executor.del(&list, att).map(|()| None),
        (InvokeVerb::Gc, _) => {
            let valid = usage(valid_attachments(args.valid_attachments.as_deref()))?;
            executor.gc(&list, valid.as_deref()).map(|()| None)
        }
        (InvokeVerb::Status, _) => executor.status(&list).map(|()| None),
        _ => return Err(Usage(anyhow!("internal: attachment missing"))),
    };
    match outcome {
        Ok(result) => {
            if let Some(r) = result {
                output::stdout(&format!("{}\n", serde_json::to_string_pretty(&r).unwrap_or_default()))?;
            }
            Ok(0)
        }
        Err(e) => {
            output::stdout(&format!(
                "{}\n",
                serde_json::to_string_pretty(&e.to_json()).unwrap_or_default()
            ))?;
            output::stderr_line(&format!("cni-conformance invoke: {e}"));
            Ok(1)
        }
    }
}

fn cni_path(given: Option<&str>) -> Vec<PathBuf> {
    let text = given
        .map(str::to_string)
        .or_else(|| std::env::var("CNI_PATH").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(cni_conformance::cni::path::default_cni_path);
    text.split(':').filter(|d| !d.is_empty()).map(PathBuf::from).collect()
}

fn attachment(args: &InvokeArgs) -> Result<Attachment> {
    let container_id = args
        .container_id
        .clone()
        .ok_or_else(|| anyhow!("--container-id is required for add, check and del"))?;
    let netns = match (&args.netns, args.verb) {
        (Some(n), _) => n.clone(),
        (None, InvokeVerb::Del) => String::new(),
        (None, _) => bail!("--netns is required for add and check"),
    };
    let mut pairs = Vec::new();
    for pair in args.args.as_deref().unwrap_or("").split(';').filter(|p| !p.is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .filter(|(k, v)| !k.is_empty() && !v.is_empty())
            .ok_or_else(|| anyhow!("--args: {pair:?} is not K=V"))?;
        pairs.push((k.to_string(), v.to_string()));
    }
    let capability_args: Map<String, Value> = match &args.capability_args {
        None => Map::new(),
        Some(text) => serde_json::from_str(text).context("--capability-args must be a JSON object")?,
    };
    Ok(Attachment {
        container_id,
        netns,
        ifname: args.ifname.clone(),
        args: pairs,
        capability_args,
    })
}

fn valid_attachments(text: Option<&str>) -> Result<Option<Vec<(String, String)>>> {
    let Some(text) = text else { return Ok(None) };
    let v: Vec<Map<String, Value>> =
        serde_json::from_str(text).context("--valid-attachments must be a JSON array of objects")?;
    v.iter()
        .map(|o| {
            let get = |k: &str| o.get(k).and_then(Value::as_str).map(str::to_string);
            match (get("containerID"), get("ifname")) {
                (Some(c), Some(i)) => Ok((c, i)),
                _ => bail!("--valid-attachments entries need containerID and ifname strings"),
            }
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}
