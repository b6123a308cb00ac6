//! The hermetic lab each case runs in.

pub mod firewall;
