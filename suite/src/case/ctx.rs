//! What a case body works with: the target, a fresh lab, and helpers that run the plugin the way
//! a runtime would and turn misbehaviour into findings.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use super::hangs::HangMemory;
use super::{Finding, Verdict};
use crate::invocation::{self, Exit, Invocation, Record};
use crate::lab::{ContainerNs, Lab, LabError};
use crate::profile::{LabNeed, Profile};
use crate::schema::{self, DocKind};

/// The plugin under test and how the run judges it.
#[derive(Debug, Clone)]
pub struct Target {
    /// Path of the plugin binary.
    pub plugin: PathBuf,
    /// Its file name.
    pub plugin_name: String,
    /// Directories for `CNI_PATH` (delegates and chain members are found there).
    pub cni_path: Vec<PathBuf>,
    /// Configuration and kind.
    pub profile: Profile,
    /// `supportedVersions` from its VERSION answer (empty when it gave none).
    pub supported: Vec<String>,
    /// The version the main cases run at: the highest released version every chain member supports.
    pub version: Option<String>,
    /// Every released version the plugin and all its peers (chain members, IPAM delegates) support.
    pub common_versions: Vec<crate::version::SpecVersion>,
    /// Limit for one invocation.
    pub timeout: Duration,
    /// `--strict`.
    pub strict: bool,
    /// The value of `PATH` plugins get.
    pub path_env: String,
    /// Verbs of the plugin under test that have timed out in this run (shared by every case).
    pub hangs: HangMemory,
    /// Whether a valid ADD of the plugin works at all, as preflight's trial ADD found.
    pub add_premise: AddPremise,
}

/// What preflight's trial ADD (a valid request in a fresh lab) showed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AddPremise {
    /// Not tried (a library caller that skipped preflight's trial).
    #[default]
    Untried,
    /// The ADD succeeded.
    Works,
    /// The ADD failed; the text says how. A case whose pass rests only on ADDs failing proves
    /// nothing then.
    Fails(String),
}

impl Target {
    /// `CNI_PATH` joined with `:`.
    pub fn cni_path_env(&self) -> String {
        self.cni_path
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(":")
    }

    /// Finds a chain member's binary by `type`, searching `CNI_PATH` like a runtime.
    pub fn find_plugin(&self, plugin_type: &str) -> Option<PathBuf> {
        if plugin_type.contains('/') {
            return None;
        }
        self.cni_path.iter().map(|d| d.join(plugin_type)).find(|p| p.is_file())
    }
}

/// One container attachment: a container namespace, a container id and an interface name.
#[derive(Debug, Clone)]
pub struct Attachment {
    /// The container's namespace.
    pub container: Arc<ContainerNs>,
    /// `CNI_CONTAINERID`.
    pub container_id: String,
    /// `CNI_IFNAME`.
    pub ifname: String,
}

impl Attachment {
    /// `CNI_NETNS`.
    pub fn netns(&self) -> String {
        self.container.path.display().to_string()
    }
}

/// A successful ADD of the whole chain.
#[derive(Debug, Clone)]
pub struct AddOutcome {
    /// The final result (stdout of the last plugin, parsed).
    pub result: Value,
    /// Index of the plugin-under-test's ADD in [`Ctx::invocations`].
    pub record: usize,
}

/// The working context of one case.
pub struct Ctx<'a> {
    /// The plugin under test.
    pub target: &'a Target,
    /// This case's private lab.
    pub lab: Lab,
    /// Every invocation the case made, in order.
    pub invocations: Vec<Record>,
    /// The invocation a failure is about (index into `invocations`); the last one when unset.
    pub blame: Option<usize>,
    /// What the invocations are for (the case id, or "preflight"), named when a verb times out.
    pub purpose: &'static str,
    /// Indexes of invocations that were not run because their verb hangs (see [`HangMemory`]).
    not_run: Vec<usize>,
    /// What peers (chain members, delegates) did wrong in this case: reported, never judged.
    pub peers: Vec<super::PeerFinding>,
    /// While set, every invocation is bracketed by host snapshots (see [`Ctx::track_changes`]).
    pub(super) tracking: bool,
    /// What each invocation changed on the lab host while tracking: (invocation index, changes).
    pub(super) changes: Vec<(usize, Vec<crate::lab::snapshot::Change>)>,
    /// A directory put first in `CNI_PATH` that holds a recording stand-in for the plugin's
    /// delegate (see [`Ctx::watch_delegate`]).
    pub(super) delegate_dir: Option<PathBuf>,
    containers: u32,
    /// For profiles that hold one attachment at a time: attachments made but not yet ADDed, and
    /// attachments the plugin ADDed and has not DELed.
    pending: u32,
    open: u32,
}

impl<'a> Ctx<'a> {
    /// Builds a lab for one case, with what the profile needs.
    pub fn new(target: &'a Target) -> Result<Self, LabError> {
        let lab = Lab::new()?;
        for dir in target.profile.data_dirs() {
            lab.add_data_dir(dir);
        }
        for need in &target.profile.needs {
            match need {
                LabNeed::MasterLink {
                    name,
                    gateway,
                    gateway_vlan,
                } => {
                    let rtnl = lab.host_rtnl()?;
                    let peer = format!("{}p", &name[..name.len().min(14)]);
                    rtnl.create_veth(name, &peer, None)?;
                    for n in [name.as_str(), peer.as_str()] {
                        if let Some(l) = rtnl.link_by_name(n)? {
                            rtnl.set_up(l.index, true)?;
                        }
                    }
                    if let Some(gw) = gateway {
                        let net: crate::net::IpNet = gw
                            .parse()
                            .map_err(|e| LabError::Other(format!("profile gateway: {e}")))?;
                        let mut index = rtnl.index_of(&peer)?;
                        if let Some(id) = gateway_vlan {
                            let sub = format!("lab-gw.{id}");
                            rtnl.create_vlan(&sub, index, *id)?;
                            index = rtnl.index_of(&sub)?;
                            rtnl.set_up(index, true)?;
                        }
                        rtnl.add_address(index, net)?;
                    }
                }
                LabNeed::DhcpServer(spec) => lab.start_dhcp_server(spec)?,
                // Done per attachment, in `attachment_named`.
                LabNeed::InterfaceOnDhcpSegment => {}
                LabNeed::PluginDaemon { args, socket } => lab.start_plugin_daemon(&crate::lab::DaemonSpec {
                    program: target.plugin.clone(),
                    args: args.clone(),
                    socket: socket.clone(),
                })?,
            }
        }
        Ok(Ctx {
            target,
            lab,
            invocations: Vec::new(),
            blame: None,
            purpose: "a case",
            not_run: Vec::new(),
            peers: Vec::new(),
            tracking: false,
            changes: Vec::new(),
            delegate_dir: None,
            containers: 0,
            pending: 0,
            open: 0,
        })
    }

    /// The spec version the case runs at; a skip when the plugin supports none the suite knows.
    pub fn version(&self) -> Result<String, Verdict> {
        self.target
            .version
            .clone()
            .ok_or_else(|| Verdict::Skip("the plugin supports no released spec version (see version/*)".into()))
    }

    /// A new container namespace and attachment (`eth0`, a fresh container id).
    pub fn attachment(&mut self) -> Result<Attachment, Verdict> {
        let name = self
            .target
            .profile
            .fixed_ifname
            .clone()
            .unwrap_or_else(|| "eth0".into());
        self.attachment_named(&name)
    }

    /// A skip when the plugin works on a fixed interface (loopback), for cases that choose names.
    pub fn needs_free_ifname(&self) -> Result<(), Verdict> {
        match &self.target.profile.fixed_ifname {
            Some(n) => Err(Verdict::Skip(format!(
                "the plugin works on the fixed interface {n}, not on CNI_IFNAME"
            ))),
            None => Ok(()),
        }
    }

    /// A new container namespace and attachment with a given interface name.
    pub fn attachment_named(&mut self, ifname: &str) -> Result<Attachment, Verdict> {
        if self.target.profile.one_attachment_at_a_time && (self.open > 0 || self.pending > 0) {
            return Err(Verdict::Skip(
                "the case needs two attachments at once, and this configuration holds one at a time \
                 (vlan: one link per master and tag; host-device: one device)"
                    .into(),
            ));
        }
        self.pending += 1;
        self.containers += 1;
        let name = format!("ctr{}", self.containers);
        let container = self.lab.add_container(&name)?;
        if self.target.profile.needs.contains(&LabNeed::InterfaceOnDhcpSegment) {
            self.lab.plug_into_dhcp_segment(&container, ifname)?;
        }
        Ok(Attachment {
            container,
            container_id: format!("cniconformance-{name}"),
            ifname: ifname.into(),
        })
    }

    /// Interfaces the lab put into the attachment's container before the plugin ran (the link an
    /// interface plugin would have made when the plugin under test is its IPAM delegate).
    pub fn premade_links(&self, att: &Attachment) -> Vec<String> {
        if self.target.profile.needs.contains(&LabNeed::InterfaceOnDhcpSegment) {
            vec![att.ifname.clone()]
        } else {
            Vec::new()
        }
    }

    /// The standard environment for `command` (all six `CNI_*` variables for attachment verbs, as
    /// libcni sets them; only `CNI_COMMAND` and `CNI_PATH` otherwise), plus `PATH`.
    pub fn env(&self, command: &str, att: Option<&Attachment>) -> Vec<(String, String)> {
        let mut env = vec![("CNI_COMMAND".to_string(), command.to_string())];
        if let Some(a) = att {
            env.push(("CNI_CONTAINERID".into(), a.container_id.clone()));
            env.push(("CNI_NETNS".into(), a.netns()));
            env.push(("CNI_IFNAME".into(), a.ifname.clone()));
            env.push(("CNI_ARGS".into(), String::new()));
        }
        if command != "VERSION" {
            let path = match &self.delegate_dir {
                Some(dir) => format!("{}:{}", dir.display(), self.target.cni_path_env()),
                None => self.target.cni_path_env(),
            };
            env.push(("CNI_PATH".into(), path));
        }
        env.push(("PATH".into(), self.target.path_env.clone()));
        env
    }

    /// The request configuration for chain member `index` (name and cniVersion injected, and
    /// `prevResult` when given).
    pub fn request(&self, index: usize, version: &str, prev: Option<&Value>) -> Value {
        let mut obj: Map<String, Value> = self
            .target
            .profile
            .plugins
            .get(index)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        obj.insert("cniVersion".into(), Value::String(version.into()));
        obj.insert("name".into(), Value::String(self.target.profile.network.clone()));
        if let Some(p) = prev {
            obj.insert("prevResult".into(), p.clone());
        }
        Value::Object(obj)
    }

    /// The request configuration of the plugin under test.
    pub fn own_request(&self, version: &str, prev: Option<&Value>) -> Value {
        self.request(self.target.profile.plugins.len().saturating_sub(1), version, prev)
    }

    /// Runs `program` in the lab with exactly `env` and `stdin`, and keeps the record. A verb of
    /// the plugin under test that already timed out in this run is not run again: its record says
    /// so and ends as [`Exit::TimedOut`] at once.
    pub fn invoke(&mut self, program: &Path, env: Vec<(String, String)>, stdin: Vec<u8>) -> usize {
        if let Some(idx) = self.skip_if_hung(program, &env, &stdin) {
            return idx;
        }
        let inv = Invocation {
            program: program.to_path_buf(),
            env,
            stdin,
            timeout: self.target.timeout,
            output_cap: invocation::DEFAULT_OUTPUT_CAP,
            lab: Some(&self.lab),
        };
        // Best effort: a snapshot that fails only costs the attribution of this call.
        let before = if self.tracking { self.lab.snapshot().ok() } else { None };
        let rec = invocation::run(&inv);
        let made = before.and_then(|b| self.lab.snapshot().ok().map(|a| a.diff(&b)));
        if inv.program == self.target.plugin {
            match rec.command.as_str() {
                "ADD" => {
                    self.pending = self.pending.saturating_sub(1);
                    self.open += u32::from(rec.exit.success());
                }
                "DEL" => self.open = self.open.saturating_sub(1),
                _ => {}
            }
        }
        self.invocations.push(rec);
        let idx = self.invocations.len() - 1;
        if let Some(made) = made {
            self.changes.push((idx, made));
        }
        idx
    }

    /// The record of an invocation that is not run because its verb of the plugin under test
    /// hangs, or `None` when it may run.
    fn skip_if_hung(&mut self, program: &Path, env: &[(String, String)], stdin: &[u8]) -> Option<usize> {
        if program != self.target.plugin {
            return None;
        }
        let verb = env.iter().find(|(k, _)| k == "CNI_COMMAND").map(|(_, v)| v.as_str())?;
        let first = self.target.hangs.hung(verb)?;
        self.invocations.push(Record {
            program: program.display().to_string(),
            command: verb.to_string(),
            env: env.to_vec(),
            stdin: String::from_utf8_lossy(stdin).into_owned(),
            stdout: String::new(),
            stderr: String::new(),
            stdout_dropped: 0,
            stderr_dropped: 0,
            exit: Exit::TimedOut,
            duration_ms: 0,
            notes: vec![format!("{} {}", crate::invocation::NOT_RUN, first.describe(verb))],
        });
        let idx = self.invocations.len() - 1;
        self.not_run.push(idx);
        Some(idx)
    }

    /// Runs `program` like [`Ctx::invoke`] with a request of the profile's own, valid
    /// configuration: when the plugin under test times out on it, the run remembers that the
    /// verb hangs. (A timeout on a deliberately broken request is that case's finding alone.)
    fn invoke_valid(&mut self, program: &Path, env: Vec<(String, String)>, stdin: Vec<u8>) -> usize {
        let idx = self.invoke(program, env, stdin);
        let rec = &self.invocations[idx];
        if program == self.target.plugin && rec.exit == Exit::TimedOut && !self.not_run.contains(&idx) {
            self.target
                .hangs
                .remember(&rec.command, self.purpose, self.target.timeout);
        }
        idx
    }

    /// Why invocation `idx` of the plugin under test never returned, when it did not: it hangs
    /// (not run, an earlier call timed out) or it ran into the limit here.
    pub fn timeout_of(&self, idx: usize) -> Option<String> {
        let rec = self.invocations.get(idx)?;
        if rec.exit != Exit::TimedOut || rec.program != self.target.plugin.display().to_string() {
            return None;
        }
        Some(match self.target.hangs.hung(&rec.command) {
            Some(first) if self.not_run.contains(&idx) => first.describe(&rec.command),
            _ => format!(
                "{} of the plugin under test did not return within {} s; the suite killed it",
                rec.command,
                self.target.timeout.as_secs_f64()
            ),
        })
    }

    /// Runs the plugin under test with the standard environment for `command`.
    pub fn invoke_own(&mut self, command: &str, att: Option<&Attachment>, stdin: &Value) -> usize {
        let env = self.env(command, att);
        let program = self.target.plugin.clone();
        self.invoke(&program, env, stdin.to_string().into_bytes())
    }

    /// A kept record.
    pub fn record(&self, index: usize) -> &Record {
        &self.invocations[index]
    }

    fn chain_program(&self, index: usize) -> Result<PathBuf, Verdict> {
        let last = self.target.profile.plugins.len().saturating_sub(1);
        if index == last {
            return Ok(self.target.plugin.clone());
        }
        let ty = self.target.profile.plugins[index]
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("");
        self.target.find_plugin(ty).ok_or_else(|| {
            Verdict::Skip(format!(
                "chain member {ty:?} not found in CNI_PATH {}",
                self.target.cni_path_env()
            ))
        })
    }

    /// ADD through the whole chain at the run's version. A failing ADD of the plugin under test is
    /// a violation (the case needed a working ADD); a failing earlier member is a suite problem.
    pub fn add(&mut self, att: &Attachment) -> Result<AddOutcome, Verdict> {
        let version = self.version()?;
        self.add_at(att, &version)
    }

    /// ADD through the whole chain at `version`.
    pub fn add_at(&mut self, att: &Attachment, version: &str) -> Result<AddOutcome, Verdict> {
        self.add_at_edited(att, version, |_| {})
    }

    /// ADD through the whole chain at `version`; `edit` changes the `prevResult` the plugin under
    /// test receives (it is not called when the plugin under test is first in the chain).
    pub fn add_at_edited(
        &mut self,
        att: &Attachment,
        version: &str,
        edit: impl FnOnce(&mut Value),
    ) -> Result<AddOutcome, Verdict> {
        let n = self.target.profile.plugins.len();
        let mut prev: Option<Value> = None;
        let mut own = 0;
        let mut edit = Some(edit);
        for i in 0..n {
            let program = self.chain_program(i)?;
            if i + 1 == n {
                if let (Some(p), Some(f)) = (prev.as_mut(), edit.take()) {
                    f(p);
                }
            }
            let stdin = self.request(i, version, prev.as_ref()).to_string().into_bytes();
            let env = self.env("ADD", Some(att));
            let idx = self.invoke_valid(&program, env, stdin);
            if let Some(hang) = self.timeout_of(idx) {
                self.blame = Some(idx);
                return Err(Verdict::violation(hang, "ADD returns within --timeout", "no answer"));
            }
            let rec = &self.invocations[idx];
            if !rec.exit.success() {
                if i + 1 < n {
                    return Err(self.peer_failed(idx, "failed ADD"));
                }
                self.blame = Some(idx);
                let msg = format!("ADD failed ({})", rec.exit);
                let mut seen = first_line(&rec.stdout, &rec.stderr);
                // A plugin that works through a daemon of the lab: what the daemon said counts.
                for log in self.lab.service_logs() {
                    seen.push_str(&format!("; {}", truncate(&log, 600)));
                }
                return Err(Verdict::Violation(Finding {
                    message: msg,
                    expected: Some("exit 0 and a result".into()),
                    seen: Some(seen),
                }));
            }
            let Some(result) = rec.stdout_json() else {
                if i + 1 < n {
                    return Err(self.peer_failed(idx, "printed no JSON result for ADD"));
                }
                self.blame = Some(idx);
                return Err(Verdict::violation(
                    "ADD succeeded but stdout is not a JSON result",
                    "a JSON result on stdout",
                    truncate(&rec.stdout, 200),
                ));
            };
            prev = Some(result);
            own = idx;
        }
        Ok(AddOutcome {
            result: prev.unwrap_or(Value::Null),
            record: own,
        })
    }

    /// DEL through the chain in reverse order; returns the index of the plugin-under-test's record.
    /// `prev` is the final ADD result (sent from 0.4.0 on, as libcni does).
    pub fn del_raw(&mut self, att: &Attachment, prev: Option<&Value>, version: &str) -> Result<usize, Verdict> {
        let n = self.target.profile.plugins.len();
        let with_prev = version
            .parse::<crate::version::SpecVersion>()
            .map(|v| v.has_check())
            .unwrap_or(false);
        let mut own = 0;
        for i in (0..n).rev() {
            let program = self.chain_program(i)?;
            let stdin = self
                .request(i, version, if with_prev { prev } else { None })
                .to_string()
                .into_bytes();
            let env = self.env("DEL", Some(att));
            let idx = self.invoke_valid(&program, env, stdin);
            if i + 1 == n {
                own = idx;
            }
        }
        Ok(own)
    }

    /// DEL that must succeed.
    pub fn del(&mut self, att: &Attachment, prev: Option<&Value>) -> Result<(), Verdict> {
        let version = self.version()?;
        let idx = self.del_raw(att, prev, &version)?;
        self.expect_success(idx, "DEL")
    }

    /// A violation unless invocation `idx` exited 0.
    pub fn expect_success(&mut self, idx: usize, what: &str) -> Result<(), Verdict> {
        let rec = &self.invocations[idx];
        if rec.exit.success() {
            return Ok(());
        }
        self.blame = Some(idx);
        if let Some(hang) = self.timeout_of(idx) {
            return Err(Verdict::violation(
                hang,
                format!("{what} returns within --timeout"),
                "no answer",
            ));
        }
        Err(Verdict::violation(
            format!("{what} failed"),
            "exit 0",
            format!("{}: {}", rec.exit, first_line(&rec.stdout, &rec.stderr)),
        ))
    }

    /// Validates `doc` against the schema of `version`; violations become a finding.
    pub fn schema_check(&self, version: &str, kind: DocKind, doc: &Value) -> Result<(), Verdict> {
        match schema::validate(version, kind, doc) {
            Ok(v) if v.is_empty() => Ok(()),
            Ok(v) => Err(Verdict::violation(
                format!("{kind:?} does not match the {version} schema"),
                format!("a valid {version} document"),
                v.iter()
                    .map(|x| format!("{}: {}", if x.path.is_empty() { "/" } else { &x.path }, x.message))
                    .collect::<Vec<_>>()
                    .join("; "),
            )),
            Err(e) => Err(Verdict::Skip(format!("no schema to check against: {e}"))),
        }
    }
}

/// A one-line description of what a plugin printed: its error object when stdout holds one,
/// otherwise the first non-empty line of stdout, else of stderr.
pub(crate) fn first_line(stdout: &str, stderr: &str) -> String {
    if let Some(e) = crate::cni::ErrorDoc::parse(stdout) {
        if e.code.is_some() || e.msg.is_some() {
            let code = e.code.map_or("no code".to_string(), |c| format!("code {c}"));
            let details = e.details.map(|d| format!(" ({d})")).unwrap_or_default();
            return truncate(&format!("error {code}: {}{details}", e.msg.unwrap_or_default()), 300);
        }
    }
    let pick = |s: &str| s.lines().map(str::trim).find(|l| !l.is_empty()).map(str::to_string);
    let line = pick(stdout)
        .or_else(|| pick(stderr))
        .unwrap_or_else(|| "(no output)".into());
    truncate(&line, 300)
}

/// Shortens text for a one-line message.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}

impl Ctx<'_> {
    /// CHECK through the chain in list order with the final ADD result as `prevResult`; returns
    /// the plugin-under-test's record and whether it passed. When an earlier chain member fails,
    /// the plugin under test was never asked: a skip naming that member.
    pub fn check_raw(&mut self, att: &Attachment, prev: &Value, version: &str) -> Result<(usize, bool), Verdict> {
        let n = self.target.profile.plugins.len();
        let mut own = 0;
        for i in 0..n {
            let program = self.chain_program(i)?;
            let stdin = self.request(i, version, Some(prev)).to_string().into_bytes();
            let env = self.env("CHECK", Some(att));
            let idx = self.invoke_valid(&program, env, stdin);
            if !self.invocations[idx].exit.success() {
                if i + 1 < n {
                    // An earlier chain member refused: the plugin under test was never asked.
                    return Err(self.peer_failed(idx, "failed CHECK before the plugin under test ran"));
                }
                return Ok((idx, false));
            }
            own = idx;
        }
        Ok((own, true))
    }
}
