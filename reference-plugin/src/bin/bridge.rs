//! The reference `bridge` plugin binary. Its entry skips Rust's runtime start-up (see
//! `cni_reference_plugins::cni::dispatch::start`).
#![cfg_attr(not(test), no_main)]

// Identifies this binary and its build (see `cni_reference_plugins::builtin`).
cni_reference_plugins::plugin_note!("bridge");

cni_reference_plugins::plugin_main!(cni_reference_plugins::bridge::Bridge);
