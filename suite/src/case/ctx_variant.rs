//! Running the chain with a *variant* of the profile's configuration, the way a runtime would run
//! a slightly different network: changed plugin objects (a smaller address pool, an extra IPv6
//! range), `runtimeConfig` injected for the capabilities a plugin declares (as libcni does for
//! `portMappings`, `bandwidth`, `ips`), extra `CNI_ARGS`, and many ADDs at once.
//!
//! [`Ctx::add`]/[`Ctx::del`] keep running the profile exactly as given; cases that need another
//! configuration build a [`Variant`] from [`Ctx::variant`] and use the `*_variant` helpers here.

use std::path::PathBuf;

use serde_json::{Map, Value};

use super::{first_line, truncate, AddOutcome, Attachment, Ctx, Finding, Verdict};
use crate::invocation::{self, Invocation};
use crate::version::SpecVersion;

/// A network configuration derived from the profile.
#[derive(Debug, Clone)]
pub struct Variant {
    /// Plugin objects in chain order (without `name`/`cniVersion`).
    pub plugins: Vec<Value>,
    /// Index in `plugins` of the plugin under test; `None` when the variant leaves it out (a
    /// baseline network).
    pub under_test: Option<usize>,
    /// Capability arguments: capability name → value. A plugin gets `runtimeConfig.<name>` only
    /// when its `capabilities` object declares `<name>: true`.
    pub capability_args: Map<String, Value>,
    /// The `CNI_ARGS` value (empty by default).
    pub cni_args: String,
}

impl Variant {
    /// The plugin object of the plugin under test, for editing.
    pub fn own_mut(&mut self) -> Option<&mut Map<String, Value>> {
        let i = self.under_test?;
        self.plugins.get_mut(i).and_then(Value::as_object_mut)
    }

    /// Index of the first plugin object that has an `ipam` object (the one that delegates, or the
    /// IPAM plugin tested directly).
    pub fn ipam_holder(&self) -> Option<usize> {
        self.plugins
            .iter()
            .position(|p| p.get("ipam").is_some_and(Value::is_object))
    }

    /// The `ipam` object of [`Variant::ipam_holder`], for editing.
    pub fn ipam_mut(&mut self) -> Option<&mut Map<String, Value>> {
        let i = self.ipam_holder()?;
        self.plugins[i].get_mut("ipam").and_then(Value::as_object_mut)
    }

    /// The `ipam` object of [`Variant::ipam_holder`].
    pub fn ipam(&self) -> Option<&Map<String, Value>> {
        let i = self.ipam_holder()?;
        self.plugins[i].get("ipam").and_then(Value::as_object)
    }

    /// The same network without the plugin under test (the chain before it): a baseline.
    pub fn without_under_test(&self) -> Variant {
        let mut v = self.clone();
        if let Some(i) = v.under_test.take() {
            v.plugins.truncate(i);
        }
        v
    }

    /// True when some plugin declares capability `name`.
    pub fn declares(&self, name: &str) -> bool {
        self.plugins.iter().any(|p| declares(p, name))
    }

    /// Declares capability `name` on the plugin at `index` (as a config file would).
    pub fn declare(&mut self, index: usize, name: &str) {
        if let Some(obj) = self.plugins.get_mut(index).and_then(Value::as_object_mut) {
            let caps = obj.entry("capabilities").or_insert_with(|| Value::Object(Map::new()));
            if let Some(c) = caps.as_object_mut() {
                c.insert(name.into(), Value::Bool(true));
            }
        }
    }
}

fn declares(plugin: &Value, name: &str) -> bool {
    plugin
        .get("capabilities")
        .and_then(|c| c.get(name))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// One plugin run a batch will make.
struct Planned {
    program: PathBuf,
    env: Vec<(String, String)>,
    stdin: Vec<u8>,
}

impl Ctx<'_> {
    /// The profile as a variant (unchanged).
    pub fn variant(&self) -> Variant {
        let plugins = self.target.profile.plugins.clone();
        Variant {
            under_test: plugins.len().checked_sub(1),
            plugins,
            capability_args: Map::new(),
            cni_args: String::new(),
        }
    }

    /// The request configuration for member `index` of `v`: `name`, `cniVersion`, `runtimeConfig`
    /// for declared capabilities, and `prevResult` when given.
    pub fn variant_request(&self, v: &Variant, index: usize, version: &str, prev: Option<&Value>) -> Value {
        let mut obj: Map<String, Value> = v
            .plugins
            .get(index)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        obj.insert("cniVersion".into(), Value::String(version.into()));
        obj.insert("name".into(), Value::String(self.target.profile.network.clone()));
        let plugin = Value::Object(obj.clone());
        let mut rc: Map<String, Value> = Map::new();
        for (name, value) in &v.capability_args {
            if declares(&plugin, name) {
                rc.insert(name.clone(), value.clone());
            }
        }
        if !rc.is_empty() {
            obj.insert("runtimeConfig".into(), Value::Object(rc));
        }
        if let Some(p) = prev {
            obj.insert("prevResult".into(), p.clone());
        }
        Value::Object(obj)
    }

    fn variant_env(&self, v: &Variant, command: &str, att: &Attachment) -> Vec<(String, String)> {
        let mut env = self.env(command, Some(att));
        for (k, val) in env.iter_mut() {
            if k == "CNI_ARGS" {
                *val = v.cni_args.clone();
            }
        }
        env
    }

    fn variant_program(&self, v: &Variant, index: usize) -> Result<PathBuf, Verdict> {
        if v.under_test == Some(index) {
            return Ok(self.target.plugin.clone());
        }
        let ty = v.plugins[index].get("type").and_then(Value::as_str).unwrap_or("");
        self.target.find_plugin(ty).ok_or_else(|| {
            Verdict::Skip(format!(
                "chain member {ty:?} not found in CNI_PATH {}",
                self.target.cni_path_env()
            ))
        })
    }

    /// ADD of `v` through its chain. `Ok(Ok(outcome))` on success; `Ok(Err(record))` when the
    /// plugin under test failed (the record index); `Err` when an earlier member failed or the
    /// chain cannot run.
    pub fn add_variant_raw(&mut self, att: &Attachment, v: &Variant) -> Result<Result<AddOutcome, usize>, Verdict> {
        let version = self.version()?;
        let mut prev: Option<Value> = None;
        let mut own = 0;
        for i in 0..v.plugins.len() {
            let program = self.variant_program(v, i)?;
            let stdin = self
                .variant_request(v, i, &version, prev.as_ref())
                .to_string()
                .into_bytes();
            let env = self.variant_env(v, "ADD", att);
            let idx = self.invoke(&program, env, stdin);
            let rec = &self.invocations[idx];
            let is_own = v.under_test == Some(i);
            if !rec.exit.success() {
                if is_own {
                    return Ok(Err(idx));
                }
                return Err(self.peer_failed(idx, "failed ADD"));
            }
            let Some(result) = rec.stdout_json() else {
                let shown = truncate(&rec.stdout, 200);
                self.blame = Some(idx);
                return Err(if is_own {
                    Verdict::violation("ADD succeeded but stdout is not a JSON result", "a JSON result", shown)
                } else {
                    self.peer_failed(idx, "printed no JSON result for ADD")
                });
            };
            prev = Some(result);
            if is_own {
                own = idx;
            }
        }
        Ok(Ok(AddOutcome {
            result: prev.unwrap_or(Value::Null),
            record: own,
        }))
    }

    /// ADD of `v` that must succeed (a failure of the plugin under test is a violation).
    pub fn add_variant(&mut self, att: &Attachment, v: &Variant) -> Result<AddOutcome, Verdict> {
        match self.add_variant_raw(att, v)? {
            Ok(out) => Ok(out),
            Err(idx) => {
                self.blame = Some(idx);
                if let Some(hang) = self.timeout_of(idx) {
                    return Err(Verdict::violation(hang, "ADD returns within --timeout", "no answer"));
                }
                let rec = self.record(idx);
                Err(Verdict::Violation(Finding {
                    message: format!("ADD failed ({})", rec.exit),
                    expected: Some("exit 0 and a result".into()),
                    seen: Some(first_line(&rec.stdout, &rec.stderr)),
                }))
            }
        }
    }

    /// DEL of `v` through its chain in reverse order (`prevResult` from 0.4.0 on); returns the
    /// record of the plugin under test's DEL (or of the last DEL run when it is not in `v`).
    pub fn del_variant(&mut self, att: &Attachment, v: &Variant, prev: Option<&Value>) -> Result<usize, Verdict> {
        let version = self.version()?;
        let with_prev = version.parse::<SpecVersion>().is_ok_and(|s| s.has_check());
        let mut own = None;
        let mut last = 0;
        for i in (0..v.plugins.len()).rev() {
            let program = self.variant_program(v, i)?;
            let stdin = self
                .variant_request(v, i, &version, if with_prev { prev } else { None })
                .to_string()
                .into_bytes();
            let env = self.variant_env(v, "DEL", att);
            last = self.invoke(&program, env, stdin);
            if v.under_test == Some(i) {
                own = Some(last);
            }
        }
        Ok(own.unwrap_or(last))
    }

    /// ADDs every attachment at once (one thread per invocation), for a variant of a single
    /// plugin, each invocation with the limit of [`parallel_timeout`]. Returns, per attachment in
    /// order, the parsed result or the failing record's index.
    pub fn add_variant_parallel(
        &mut self,
        atts: &[Attachment],
        v: &Variant,
    ) -> Result<Vec<Result<Value, usize>>, Verdict> {
        if v.plugins.len() != 1 {
            return Err(Verdict::Skip(
                "parallel ADDs are made for a single plugin, not a chain".into(),
            ));
        }
        let version = self.version()?;
        let program = self.variant_program(v, 0)?;
        if let Some(first) = self.target.hangs.hung("ADD").filter(|_| program == self.target.plugin) {
            return Err(Verdict::violation(
                first.describe("ADD"),
                "ADD returns within --timeout",
                "no answer (the parallel ADDs were not started)",
            ));
        }
        let planned: Vec<Planned> = atts
            .iter()
            .map(|a| Planned {
                program: program.clone(),
                env: self.variant_env(v, "ADD", a),
                stdin: self.variant_request(v, 0, &version, None).to_string().into_bytes(),
            })
            .collect();
        let lab = Some(&self.lab);
        let timeout = parallel_timeout(self.target.timeout, planned.len());
        let records: Vec<invocation::Record> = std::thread::scope(|s| {
            let handles: Vec<_> = planned
                .into_iter()
                .map(|p| {
                    s.spawn(move || {
                        invocation::run(&Invocation {
                            program: p.program,
                            env: p.env,
                            stdin: p.stdin,
                            timeout,
                            output_cap: invocation::DEFAULT_OUTPUT_CAP,
                            lab,
                        })
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join()).collect::<Result<Vec<_>, _>>()
        })
        .map_err(|_| Verdict::Broken("a thread running a parallel ADD panicked".into()))?;
        let mut out = Vec::with_capacity(records.len());
        for rec in records {
            let ok = rec.exit.success();
            let json = rec.stdout_json();
            self.invocations.push(rec);
            let idx = self.invocations.len() - 1;
            out.push(match (ok, json) {
                (true, Some(doc)) => Ok(doc),
                _ => Err(idx),
            });
        }
        Ok(out)
    }
}

/// The limit of each of `n` invocations that run at once: `n` processes share the machine's
/// CPUs, so one of them may take up to `n / CPUs` times as long as alone (32 upstream bridge ADDs
/// on a 2-vCPU emulated guest took over 30 s each). Scaled by that share, at most 4 times, so a
/// hung plugin is still caught.
pub fn parallel_timeout(timeout: std::time::Duration, n: usize) -> std::time::Duration {
    let cpus = std::thread::available_parallelism().map_or(1, |c| c.get());
    timeout.mul_f64((n as f64 / cpus as f64).clamp(1.0, 4.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn baseline_and_capabilities() {
        let mut v = Variant {
            plugins: vec![
                json!({"type": "bridge", "ipam": {"type": "host-local"}}),
                json!({"type": "portmap"}),
            ],
            under_test: Some(1),
            capability_args: Map::new(),
            cni_args: String::new(),
        };
        assert!(!v.declares("portMappings"));
        v.declare(1, "portMappings");
        assert!(v.declares("portMappings"));
        assert_eq!(v.ipam_holder(), Some(0));
        let base = v.without_under_test();
        assert_eq!(base.plugins.len(), 1);
        assert_eq!(base.under_test, None);
        assert!(!base.declares("portMappings"));
    }

    #[test]
    fn parallel_limit_grows_with_the_share_of_cpus_up_to_four_times() {
        let base = std::time::Duration::from_secs(30);
        assert_eq!(super::parallel_timeout(base, 1), base);
        let cpus = std::thread::available_parallelism().map_or(1, |c| c.get());
        let many = super::parallel_timeout(base, 32);
        assert!(many >= base && many <= base * 4, "{many:?}");
        if cpus <= 8 {
            assert_eq!(many, base * 4);
        }
    }
}
