//! The reference `host-local` IPAM plugin binary.

fn main() {
    cni_reference_plugins::cni::dispatch::main(&cni_reference_plugins::host_local::HostLocal)
}
