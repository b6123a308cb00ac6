//! Reference CNI plugins (`bridge` and `host-local`) written in Rust, following spec 1.1.0.
//!
//! The crate is self-contained: it shares no code with the conformance suite, so the suite can
//! judge these plugins exactly like any third-party binary.
//!
//! - [`cni`]: the protocol (environment, configuration, results of every version, errors,
//!   VERSION, delegation) and a dispatcher equivalent to the Go `skel` package.
//! - [`host_local`]: the `host-local` IPAM plugin with an on-disk store that is byte-compatible
//!   with the upstream Go plugin.
//! - [`bridge`]: the `bridge` interface plugin.
//! - [`netlink`]: a small synchronous rtnetlink client used by `bridge`.
//! - [`masq`]: ipMasq through nftables over netlink.
#![deny(missing_docs)]

pub mod bridge;
pub mod cni;
pub mod host_local;
pub mod masq;
pub mod netlink;
