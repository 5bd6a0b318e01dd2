//! The `ai-proxy` command (placeholder until the proxy task lands).

fn main() {
    println!("ai-proxy {}", env!("CARGO_PKG_VERSION"));
}
