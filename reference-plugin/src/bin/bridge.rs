//! Reference `bridge` plugin (work in progress).

fn main() {
    print!("{{\"code\":50,\"msg\":\"reference bridge is not built yet\"}}");
    std::process::exit(1);
}
