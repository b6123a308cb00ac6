//! `cni-conformance-recorder`: the recording CNI plugin that runtime mode installs under every
//! plugin type name of a scenario (see [`cni_conformance::runtime::recorder`]).

fn main() {
    std::process::exit(cni_conformance::runtime::recorder::main());
}
