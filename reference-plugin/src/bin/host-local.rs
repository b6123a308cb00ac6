//! The reference `host-local` IPAM plugin binary. Its entry skips Rust's runtime start-up (see
//! `cni_reference_plugins::cni::dispatch::start`).
#![cfg_attr(not(test), no_main)]

// Lets `bridge` of the same build recognise this binary and run it in-process.
cni_reference_plugins::plugin_note!("host-local");

cni_reference_plugins::plugin_main!(cni_reference_plugins::host_local::HostLocal);
