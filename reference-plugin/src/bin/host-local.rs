//! Reference `host-local` IPAM plugin (work in progress).

fn main() {
    print!("{{\"code\":50,\"msg\":\"reference host-local is not built yet\"}}");
    std::process::exit(1);
}
