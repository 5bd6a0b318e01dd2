//! The ai-proxy binaries under test: the release build (`release::binary::build`, the same
//! command and flags as `cargo xtask release`), set aside so a later build cannot replace it.

use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use xshell::Shell;

use crate::paths;
use crate::release::binary;

/// Builds the release binary as `cargo xtask release` does (same flags, so after a release the
/// default build is a no-op) and copies it to `target/bench/bin/ai-proxy-<label>`, so later
/// builds with other features cannot replace what is being measured.
pub fn build_proxy(sh: &Shell, extra: &[String], label: &str) -> Result<PathBuf> {
    let target = format!("{}-unknown-linux-musl", std::env::consts::ARCH);
    let build = |quiet: bool| {
        let _quiet = quiet.then(|| sh.push_env("CARGO_TERM_QUIET", "true"));
        binary::build(sh, binary::Builder::Cargo, &target, extra)
            .with_context(|| format!("building the ai-proxy release binary ({label})"))
    };
    let aside_dir = paths::target_dir().join("bench").join("bin");
    fs::create_dir_all(&aside_dir)?;
    let aside = aside_dir.join(format!("ai-proxy-{label}"));
    // `target/<triple>/release/ai-proxy` is shared: a concurrent build with other features
    // (another `cargo xtask` call) may replace it between our build and the copy. A second,
    // no-op build puts ours back; if the file then equals the copy, the copy is ours.
    for _ in 0..3 {
        let fresh = build(false)?;
        fs::copy(&fresh, &aside)
            .with_context(|| format!("copying {} to {}", fresh.display(), aside.display()))?;
        build(true)?;
        if fs::read(&fresh)? == fs::read(&aside)? {
            return Ok(aside);
        }
    }
    bail!(
        "target/{target}/release/ai-proxy kept changing under concurrent builds with other \
         features: run the bench alone"
    )
}

/// The three allocator builds. `--no-default-features` so that exactly one allocator is on
/// whatever the proxy's defaults become.
pub fn allocator_builds(sh: &Shell) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for (name, features) in [
        ("musl-malloc", None),
        ("mimalloc", Some("mimalloc")),
        ("jemalloc", Some("jemalloc")),
    ] {
        let mut extra = vec!["--no-default-features".to_owned()];
        if let Some(f) = features {
            extra.extend(["--features".to_owned(), f.to_owned()]);
        }
        out.push((name.to_owned(), build_proxy(sh, &extra, name)?));
    }
    Ok(out)
}
