//! The `cni-conformance` command.

fn main() {
    eprintln!("cni-conformance: under construction");
    std::process::exit(2);
}
