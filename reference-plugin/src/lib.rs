//! Reference CNI plugins (`bridge` and `host-local`) written in Rust, following spec 1.1.0.
#![deny(missing_docs)]

pub mod masq;
pub mod netlink;
