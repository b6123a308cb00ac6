//! The recording plugin: a real, small CNI plugin that logs every invocation.
//!
//! It is the separate binary `cni-conformance-recorder` (a separate binary so a plugin never
//! carries the suite's command line), installed in each scenario's bin dir as symlinks named after
//! every plugin type the scenario uses. It finds its log through the file `.recorder.json` next
//! to the path it was run as (`argv[0]`, so it also works when a runtime sees the bin dir through a
//! bind mount at another path): `{"log": "/abs/path"}`; `CNI_CONFORMANCE_RECORDER_LOG` overrides.
//!
//! Behaviour:
//! - ADD without `prevResult` creates a veth pair: the host end `rv<hash>` in the plugin's own
//!   namespace, the container end `CNI_IFNAME` in `CNI_NETNS` with 10.222.0.2/24 and a route to
//!   10.223.0.0/16 via 10.222.0.1, and returns a result of the requested version. With a
//!   `prevResult` it returns it with one more route (`10.224.N.0/24`, N from the type name): the
//!   visible change a chained plugin makes.
//! - DEL removes the veth pair if it is there (idempotent); CHECK fails when `CNI_IFNAME` is
//!   missing from `CNI_NETNS`; GC and STATUS succeed; VERSION lists 0.1.0 to 1.1.0.
//! - Knobs, in the plugin object's `recorder` key: `failOn` (list of verbs that fail; STATUS
//!   fails with code 50, others with 100), `stderr` (text printed on stderr on every call),
//!   `delayMs` (sleep before answering).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::log::{self, Entry, NetnsSeen};
use crate::hash::Fnv1a;
use crate::invoke::convert::convert;
use crate::net::{IpNet, Rtnl};
use crate::version::{SpecVersion, RELEASED};

/// Name of the file next to the recorder that says where its log is.
pub const SIDECAR: &str = ".recorder.json";
/// The container end's address.
pub const CONTAINER_ADDR: &str = "10.222.0.2/24";
/// The gateway the result names.
pub const GATEWAY: &str = "10.222.0.1";
/// The route the first plugin installs in the container.
pub const ROUTE_DST: &str = "10.223.0.0/16";
/// Error code for a configured failure.
pub const FAIL_CODE: u64 = 100;

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// What one call answers.
struct Answer {
    stdout: String,
    stderr: String,
    code: i32,
}

impl Answer {
    fn ok(stdout: String) -> Self {
        Answer {
            stdout,
            stderr: String::new(),
            code: 0,
        }
    }

    fn err(version: &str, code: u64, msg: impl Into<String>) -> Self {
        let doc = json!({"cniVersion": version, "code": code, "msg": msg.into()});
        Answer {
            stdout: serde_json::to_string(&doc).unwrap_or_default(),
            stderr: String::new(),
            code: 1,
        }
    }
}

/// The host end's name for an attachment: `rv` + 12 hex digits of a hash of (container id, ifname).
pub fn host_ifname(container_id: &str, ifname: &str) -> String {
    let mut hasher = Fnv1a::new();
    hasher.write(container_id.as_bytes());
    hasher.write(&[0]);
    hasher.write(ifname.as_bytes());
    format!("rv{:012x}", hasher.finish() & 0xffff_ffff_ffff)
}

fn log_path(exe: Option<&Path>) -> Option<PathBuf> {
    if let Ok(p) = std::env::var("CNI_CONFORMANCE_RECORDER_LOG") {
        if !p.is_empty() {
            return Some(PathBuf::from(p));
        }
    }
    // argv[0] first: the recorder is installed as symlinks, and the sidecar sits next to the link.
    let argv0 = std::env::args_os().next().map(PathBuf::from);
    let found = [argv0.as_deref(), exe].into_iter().flatten().find_map(|p| {
        let doc: Value = serde_json::from_slice(&std::fs::read(p.parent()?.join(SIDECAR)).ok()?).ok()?;
        doc.get("log").and_then(Value::as_str).map(PathBuf::from)
    });
    found
}

fn ns_id(f: &File) -> Option<(u64, u64)> {
    nix::sys::stat::fstat(f.as_fd()).ok().map(|s| (s.st_dev, s.st_ino))
}

/// Looks at `CNI_NETNS`: does it exist, is it a network namespace, which one.
fn look_at_netns(path: &str) -> NetnsSeen {
    let exists = Path::new(path).exists();
    let file = File::open(path).ok();
    let is_netns = file.as_ref().is_some_and(|f| {
        nix::sys::statfs::fstatfs(f.as_fd()).is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::NSFS_MAGIC)
    });
    NetnsSeen {
        path: path.to_string(),
        exists,
        is_netns,
        id: if is_netns { file.as_ref().and_then(ns_id) } else { None },
    }
}

/// Reads stdin, giving up after `limit` (a runtime that never closes stdin is logged, not a hang).
fn read_stdin(limit: Duration) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = std::io::stdin().lock().read_to_end(&mut buf);
        let _ = tx.send(buf);
    });
    rx.recv_timeout(limit)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// The recorder's `main`: answers the call, logs it, returns the exit status.
pub fn main() -> i32 {
    let start_ns = now_ns();
    let argv: Vec<String> = std::env::args().collect();
    let exe = std::env::current_exe().ok();
    let plugin = argv
        .first()
        .and_then(|a| Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let netns = env.get("CNI_NETNS").filter(|p| !p.is_empty()).map(|p| look_at_netns(p));
    let own_netns = File::open("/proc/self/ns/net").ok().as_ref().and_then(ns_id);
    let stdin = read_stdin(Duration::from_secs(10));
    let command = env.get("CNI_COMMAND").cloned().unwrap_or_default();
    let mut answer = answer(&plugin, &command, &env, &stdin);
    if let Some(text) = knob(&stdin, "stderr").and_then(|v| v.as_str().map(str::to_string)) {
        answer.stderr.push_str(&text);
        answer.stderr.push('\n');
    }
    if let Some(ms) = knob(&stdin, "delayMs").and_then(|v| v.as_u64()) {
        std::thread::sleep(Duration::from_millis(ms.min(60_000)));
    }
    let _ = std::io::stdout().write_all(answer.stdout.as_bytes());
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().write_all(answer.stderr.as_bytes());
    if let Some(path) = log_path(exe.as_deref()) {
        let entry = Entry {
            plugin,
            argv,
            env,
            stdin,
            stdout: answer.stdout,
            stderr: answer.stderr,
            exit_code: answer.code,
            start_ns,
            end_ns: now_ns(),
            pid: std::process::id(),
            netns,
            own_netns,
        };
        if let Err(e) = log::append(&path, &entry) {
            eprintln!("recorder: cannot append to {}: {e}", path.display());
        }
    }
    answer.code
}

fn knob(stdin: &str, key: &str) -> Option<Value> {
    let v: Value = serde_json::from_str(stdin).ok()?;
    v.get("recorder")?.get(key).cloned()
}

fn answer(plugin: &str, command: &str, env: &BTreeMap<String, String>, stdin: &str) -> Answer {
    let all: Vec<String> = RELEASED.iter().map(ToString::to_string).collect();
    let conf: Value = serde_json::from_str(stdin).unwrap_or(Value::Null);
    let version = conf
        .get("cniVersion")
        .and_then(Value::as_str)
        .unwrap_or("0.1.0")
        .to_string();
    if command == "VERSION" {
        return Answer::ok(json!({"cniVersion": version, "supportedVersions": all}).to_string());
    }
    if !conf.is_object() {
        return Answer::err(
            &version,
            6,
            "error unmarshall network config: stdin is not a JSON object",
        );
    }
    if !all.contains(&version) {
        return Answer::err(&version, 1, format!("incompatible CNI versions: config is {version:?}"));
    }
    let fails = knob(stdin, "failOn")
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .any(|v| v.as_str() == Some(command));
    if fails {
        let code = if command == "STATUS" { 50 } else { FAIL_CODE };
        return Answer::err(
            &version,
            code,
            format!("recorder {plugin}: configured to fail {command}"),
        );
    }
    let var = |k: &str| env.get(k).map_or("", String::as_str);
    match command {
        "ADD" => add(
            plugin,
            &version,
            &conf,
            var("CNI_CONTAINERID"),
            var("CNI_NETNS"),
            var("CNI_IFNAME"),
        ),
        "DEL" => {
            del(var("CNI_CONTAINERID"), var("CNI_NETNS"), var("CNI_IFNAME"));
            Answer::ok(String::new())
        }
        "CHECK" => check(&version, var("CNI_NETNS"), var("CNI_IFNAME")),
        "GC" | "STATUS" => Answer::ok(String::new()),
        other => Answer::err(&version, 4, format!("unknown CNI_COMMAND: {other}")),
    }
}

fn add(plugin: &str, version: &str, conf: &Value, cid: &str, netns: &str, ifname: &str) -> Answer {
    if let Some(prev) = conf.get("prevResult") {
        let mut modern = match convert(prev, version, "1.1.0") {
            Ok(m) => m,
            Err(e) => return Answer::err(version, 6, format!("cannot read prevResult: {e}")),
        };
        let n = plugin.bytes().fold(0u8, |a, b| a.wrapping_mul(31).wrapping_add(b));
        let route = json!({"dst": format!("10.224.{n}.0/24"), "gw": GATEWAY});
        match modern.get_mut("routes") {
            Some(Value::Array(a)) => a.push(route),
            _ => modern["routes"] = json!([route]),
        }
        return match convert(&modern, "1.1.0", version) {
            Ok(r) => Answer::ok(r.to_string()),
            Err(e) => Answer::err(version, 999, e.to_string()),
        };
    }
    match make_interface(cid, netns, ifname) {
        Ok((host_mac, cont_mac)) => {
            let r = json!({
                "cniVersion": "1.1.0",
                "interfaces": [
                    {"name": host_ifname(cid, ifname), "mac": host_mac},
                    {"name": ifname, "mac": cont_mac, "sandbox": netns}
                ],
                "ips": [{"address": CONTAINER_ADDR, "gateway": GATEWAY, "interface": 1}],
                "routes": [{"dst": ROUTE_DST, "gw": GATEWAY}],
                "dns": {"nameservers": [GATEWAY]}
            });
            match convert(&r, "1.1.0", version) {
                Ok(r) => Answer::ok(r.to_string()),
                Err(e) => Answer::err(version, 999, e.to_string()),
            }
        }
        Err((code, msg)) => Answer::err(version, code, msg),
    }
}

fn make_interface(cid: &str, netns: &str, ifname: &str) -> Result<(String, String), (u64, String)> {
    let internal = |e: crate::net::NetError| (999u64, e.to_string());
    let ns = File::open(netns).map_err(|e| (4u64, format!("cannot open CNI_NETNS {netns:?}: {e}")))?;
    let inside = Rtnl::in_netns(ns.as_fd()).map_err(internal)?;
    if inside.link_by_name(ifname).map_err(internal)?.is_some() {
        return Err((FAIL_CODE, format!("interface {ifname} already exists in {netns}")));
    }
    let host = Rtnl::new().map_err(internal)?;
    let hname = host_ifname(cid, ifname);
    host.create_veth(&hname, ifname, Some(ns.as_fd())).map_err(internal)?;
    let hl = host
        .link_by_name(&hname)
        .map_err(internal)?
        .ok_or((999, format!("{hname} vanished")))?;
    host.set_up(hl.index, true).map_err(internal)?;
    let cl = inside
        .link_by_name(ifname)
        .map_err(internal)?
        .ok_or((999, format!("{ifname} vanished")))?;
    inside.set_up(cl.index, true).map_err(internal)?;
    let addr: IpNet = CONTAINER_ADDR
        .parse()
        .map_err(|_| (999u64, "bad address".to_string()))?;
    inside.add_address(cl.index, addr).map_err(internal)?;
    let dst: IpNet = ROUTE_DST.parse().map_err(|_| (999u64, "bad route".to_string()))?;
    let gw = IpAddr::V4(
        GATEWAY
            .parse::<Ipv4Addr>()
            .map_err(|_| (999u64, "bad gw".to_string()))?,
    );
    inside
        .add_route(Some(dst), Some(gw), Some(cl.index))
        .map_err(internal)?;
    Ok((hl.mac.unwrap_or_default(), cl.mac.unwrap_or_default()))
}

fn del(cid: &str, netns: &str, ifname: &str) {
    if let Ok(host) = Rtnl::new() {
        if let Ok(Some(l)) = host.link_by_name(&host_ifname(cid, ifname)) {
            let _ = host.delete_link(l.index);
        }
    }
    if netns.is_empty() {
        return;
    }
    if let Ok(ns) = File::open(netns) {
        if let Ok(inside) = Rtnl::in_netns(ns.as_fd()) {
            if let Ok(Some(l)) = inside.link_by_name(ifname) {
                if l.kind.as_deref() == Some("veth") {
                    let _ = inside.delete_link(l.index);
                }
            }
        }
    }
}

fn check(version: &str, netns: &str, ifname: &str) -> Answer {
    if version.parse::<SpecVersion>().is_ok_and(|v| !v.has_check()) {
        return Answer::err(version, 1, "config version does not allow CHECK");
    }
    let present = File::open(netns)
        .ok()
        .and_then(|ns| Rtnl::in_netns(ns.as_fd()).ok())
        .and_then(|r| r.link_by_name(ifname).ok().flatten())
        .is_some();
    if present {
        Answer::ok(String::new())
    } else {
        Answer::err(
            version,
            FAIL_CODE,
            format!("interface {ifname} is missing from {netns:?}"),
        )
    }
}
