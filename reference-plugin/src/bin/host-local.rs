//! The reference `host-local` IPAM plugin binary.

// Lets `bridge` of the same build recognise this binary and run it in-process.
cni_reference_plugins::plugin_note!("host-local");

fn main() {
    cni_reference_plugins::cni::dispatch::main(&cni_reference_plugins::host_local::HostLocal)
}
