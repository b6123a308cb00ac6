//! `cni-conformance`: a conformance and test suite for CNI plugins and the runtimes that call them.
//!
//! Modules by job: [`ns`] namespace primitives, [`net`] rtnetlink, [`lab`] hermetic labs and host
//! snapshots, [`invocation`] one sandboxed run of a plugin binary, [`probe`] packets, [`schema`] per-version JSON Schemas,
//! [`cni`] reading CNI documents, [`profile`] plugin configurations, [`case`] the case model,
//! [`cases`] the catalogue, [`spec_ref`] the references it cites, [`runner`] case selection and parallel execution, [`report`] output,
//! [`invoke`] the libcni-like executor of network configurations, [`runtime`] runtime mode (recorder, scenarios, rules), [`vm`]
//! the same run inside a QEMU guest, [`cri`] the kubelet stand-in (a CRI client).
#![deny(missing_docs)]

pub mod case;
pub mod cases;
pub mod cli;
pub mod cni;
pub mod cri;
pub(crate) mod hash;
pub mod invocation;
pub mod invoke;
pub mod lab;
pub mod net;
pub mod ns;
pub mod preflight;
pub mod probe;
pub mod probe_rate;
pub mod profile;
pub mod report;
pub mod runner;
pub mod runtime;
pub mod schema;
pub mod spec_ref;
pub mod version;
pub mod vm;
