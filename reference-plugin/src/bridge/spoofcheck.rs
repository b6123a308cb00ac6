//! `macspoofchk`: drop frames entering the bridge from the attachment's host veth unless their
//! source MAC is the container interface's. The rules are the upstream plugin's, so either
//! plugin can tear down what the other set up:
//!
//! ```text
//! table bridge nat
//!   chain PREROUTING { type filter hook prerouting priority -300; policy accept; }
//!     iifname "<host veth>" jump cni-br-iface-<cid>-<ifname>
//!   chain cni-br-iface-<cid>-<ifname>
//!     jump cni-br-iface-<cid>-<ifname>-mac
//!   chain cni-br-iface-<cid>-<ifname>-mac
//!     ether saddr <container mac> return
//!     drop
//! ```
//!
//! every rule commented `macspoofchk-<cid>-<ifname>`. Like upstream (which drives the `nft`
//! program through a library), the rules are applied with `nft -f -` in one transaction and
//! read back with `nft -j`; only attachments with `macspoofchk: true` pay for it.

use crate::cni::error::{self, CniError};
use serde_json::Value;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The per-attachment reference used in chain names and comments.
pub fn ref_id(container_id: &str, ifname: &str) -> String {
    format!("{container_id}-{ifname}")
}

fn iface_chain(refid: &str) -> String {
    format!("cni-br-iface-{refid}")
}

fn comment(refid: &str) -> String {
    format!("macspoofchk-{refid}")
}

fn nft_binary() -> Result<PathBuf, CniError> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from));
    dirs.into_iter()
        .map(|d| d.join("nft"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            CniError::with_details(
                error::KERNEL_OPERATION_FAILED,
                "macspoofchk needs the nft program, which was not found",
                "install nftables or set macspoofchk to false",
            )
        })
}

fn nft(args: &[&str], script: Option<&str>) -> Result<String, CniError> {
    let mut child = Command::new(nft_binary()?)
        .args(args)
        .stdin(if script.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| CniError::new(error::KERNEL_OPERATION_FAILED, format!("running nft: {e}")))?;
    if let (Some(text), Some(mut input)) = (script, child.stdin.take()) {
        let _ = input.write_all(text.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| CniError::new(error::KERNEL_OPERATION_FAILED, format!("running nft: {e}")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(CniError::with_details(
            error::KERNEL_OPERATION_FAILED,
            format!("nft {} failed", args.join(" ")),
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ))
    }
}

/// Install the rules for one attachment.
pub fn setup(container_id: &str, ifname: &str, host_veth: &str, mac: &str) -> Result<(), CniError> {
    let refid = ref_id(container_id, ifname);
    let chain = iface_chain(&refid);
    let c = comment(&refid);
    let script = format!(
        "add table bridge nat\n\
         add chain bridge nat PREROUTING {{ type filter hook prerouting priority -300; policy accept; }}\n\
         add chain bridge nat {chain}\n\
         add chain bridge nat {chain}-mac\n\
         flush chain bridge nat {chain}\n\
         flush chain bridge nat {chain}-mac\n\
         add rule bridge nat PREROUTING iifname \"{host_veth}\" jump {chain} comment \"{c}\"\n\
         add rule bridge nat {chain} jump {chain}-mac comment \"{c}\"\n\
         add rule bridge nat {chain}-mac ether saddr {mac} return comment \"{c}\"\n\
         add rule bridge nat {chain}-mac drop comment \"{c}\"\n"
    );
    nft(&["-f", "-"], Some(&script))
        .map(|_| ())
        .map_err(|e| e.context("failed to setup spoof-check"))
}

/// What of one attachment's rules is in the kernel.
#[derive(Debug, Default)]
struct Found {
    jump_handles: Vec<u64>,
    iface_chain: bool,
    mac_chain: bool,
    mac_rule_for: Option<String>,
}

fn inspect(refid: &str) -> Result<Found, CniError> {
    let mut found = Found::default();
    let Ok(text) = nft(&["-j", "list", "table", "bridge", "nat"], None) else {
        return Ok(found);
    };
    let doc: Value = serde_json::from_str(&text)
        .map_err(|e| CniError::new(error::KERNEL_OPERATION_FAILED, format!("reading nft -j output: {e}")))?;
    let chain = iface_chain(refid);
    let mac_chain = format!("{chain}-mac");
    let c = comment(refid);
    for item in doc["nftables"].as_array().into_iter().flatten() {
        if let Some(ch) = item.get("chain") {
            let name = ch["name"].as_str().unwrap_or_default();
            found.iface_chain |= name == chain;
            found.mac_chain |= name == mac_chain;
        }
        if let Some(rule) = item.get("rule") {
            if rule["comment"].as_str() != Some(c.as_str()) {
                continue;
            }
            let in_chain = rule["chain"].as_str().unwrap_or_default();
            if in_chain == "PREROUTING" {
                if let Some(h) = rule["handle"].as_u64() {
                    found.jump_handles.push(h);
                }
            } else if in_chain == mac_chain {
                for expr in rule["expr"].as_array().into_iter().flatten() {
                    let m = &expr["match"];
                    if m["left"]["payload"]["field"] == "saddr" {
                        found.mac_rule_for = m["right"].as_str().map(str::to_string);
                    }
                }
            }
        }
    }
    Ok(found)
}

/// Remove one attachment's rules and chains; nothing there is not an error.
pub fn teardown(container_id: &str, ifname: &str) -> Result<(), CniError> {
    let refid = ref_id(container_id, ifname);
    let found = inspect(&refid)?;
    let chain = iface_chain(&refid);
    let mut script = String::new();
    for h in &found.jump_handles {
        script.push_str(&format!("delete rule bridge nat PREROUTING handle {h}\n"));
    }
    if found.iface_chain {
        script.push_str(&format!(
            "flush chain bridge nat {chain}\ndelete chain bridge nat {chain}\n"
        ));
    }
    if found.mac_chain {
        script.push_str(&format!(
            "flush chain bridge nat {chain}-mac\ndelete chain bridge nat {chain}-mac\n"
        ));
    }
    if script.is_empty() {
        return Ok(());
    }
    nft(&["-f", "-"], Some(&script))
        .map(|_| ())
        .map_err(|e| e.context("failed to teardown spoof-check"))
}

/// Fail unless the attachment's rules are in place for `mac`.
pub fn check(container_id: &str, ifname: &str, mac: &str) -> Result<(), CniError> {
    let found = inspect(&ref_id(container_id, ifname))?;
    let ok = !found.jump_handles.is_empty()
        && found.iface_chain
        && found.mac_chain
        && found
            .mac_rule_for
            .as_deref()
            .is_some_and(|m| m.eq_ignore_ascii_case(mac));
    if ok {
        Ok(())
    } else {
        Err(CniError::with_details(
            error::CHECK_FAILED,
            format!("macspoofchk rules for {container_id}/{ifname} are missing or do not allow {mac}"),
            format!("expected in table bridge nat: {found:?}"),
        ))
    }
}

/// GC: remove the rules and chains of attachments that are not in `valid` and whose host veth
/// no longer exists. The upstream naming carries no network name, so rules are only removed
/// when they can match nothing any more: a rule for a live veth (of this network or another)
/// is kept.
pub fn gc(valid: &[crate::cni::config::Attachment], link_exists: impl Fn(&str) -> bool) -> Result<(), CniError> {
    let Ok(text) = nft(&["-j", "list", "table", "bridge", "nat"], None) else {
        return Ok(());
    };
    let doc: Value = serde_json::from_str(&text)
        .map_err(|e| CniError::new(error::KERNEL_OPERATION_FAILED, format!("reading nft -j output: {e}")))?;
    let keep: Vec<String> = valid.iter().map(|a| ref_id(&a.container_id, &a.ifname)).collect();
    let chains: Vec<String> = doc["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| item["chain"]["name"].as_str().map(str::to_string))
        .collect();
    let mut script = String::new();
    for item in doc["nftables"].as_array().into_iter().flatten() {
        let rule = &item["rule"];
        if rule["chain"].as_str() != Some("PREROUTING") {
            continue;
        }
        let Some(refid) = rule["comment"].as_str().and_then(|c| c.strip_prefix("macspoofchk-")) else {
            continue;
        };
        if keep.iter().any(|k| k == refid) {
            continue;
        }
        let iifname = rule["expr"].as_array().into_iter().flatten().find_map(|e| {
            (e["match"]["left"]["meta"]["key"] == "iifname")
                .then(|| e["match"]["right"].as_str())
                .flatten()
        });
        match iifname {
            Some(name) if !link_exists(name) => {}
            _ => continue,
        }
        if let Some(h) = rule["handle"].as_u64() {
            script.push_str(&format!("delete rule bridge nat PREROUTING handle {h}\n"));
        }
        let chain = iface_chain(refid);
        for name in [chain.clone(), format!("{chain}-mac")] {
            if chains.contains(&name) {
                script.push_str(&format!(
                    "flush chain bridge nat {name}\ndelete chain bridge nat {name}\n"
                ));
            }
        }
    }
    if script.is_empty() {
        return Ok(());
    }
    nft(&["-f", "-"], Some(&script))
        .map(|_| ())
        .map_err(|e| e.context("failed to garbage-collect spoof-check rules"))
}
