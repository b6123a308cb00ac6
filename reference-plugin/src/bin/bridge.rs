//! The reference `bridge` plugin binary.

// Identifies this binary and its build (see `cni_reference_plugins::builtin`).
cni_reference_plugins::plugin_note!("bridge");

fn main() {
    cni_reference_plugins::cni::dispatch::main(&cni_reference_plugins::bridge::Bridge)
}
