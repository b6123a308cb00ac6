//! `cni-conformance`: a conformance and test suite for CNI plugins and the runtimes that call them.
//!
//! The crate is organised by job: [`net`] talks rtnetlink, [`lab`] builds hermetic namespaces,
//! [`schema`] validates documents per spec version.
#![deny(missing_docs)]

pub mod lab;
pub mod net;
pub mod schema;
