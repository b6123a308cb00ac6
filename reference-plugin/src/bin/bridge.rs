//! The reference `bridge` plugin binary.

fn main() {
    cni_reference_plugins::cni::dispatch::main(&cni_reference_plugins::bridge::Bridge)
}
