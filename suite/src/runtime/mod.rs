//! Runtime mode: judging how a runtime calls plugins.
//!
//! - [`scenario`]: the network configurations (one per scenario) and how they are staged: a conf
//!   dir, a bin dir of recorder symlinks named after the plugin types, and the log file.
//! - [`recorder`]: the recording plugin, a separate binary (`cni-conformance-recorder`) so that a
//!   plugin never carries the suite's command line and a runtime can exec it under any name; it
//!   behaves like a real plugin (veth, address, route, results in every version) and logs each call.
//! - [`log`]: the append-only JSON-lines log (one `O_APPEND` write per call).
//! - [`mode`]: runs the runtime command once per scenario inside a fresh lab and collects the logs.
//! - [`evidence`] and [`rules`]: what a scenario produced, and the `runtime/*` rules judged over it.
//! - [`hygiene`]: the rule on what the runtime command leaves running in its lab.
//! - [`cri_evidence`] and [`kubernetes`]: the kubelet stand-in's record of a CRI runtime, and the
//!   `kubernetes/*` rules judged over it and the log.

pub mod cri_evidence;
pub mod evidence;
pub mod hygiene;
pub mod kubernetes;
pub mod log;
pub mod mode;
pub mod recorder;
pub mod rules;
pub mod scenario;
