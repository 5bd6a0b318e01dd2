//! Builds the `ai-proxy` release binary reproducibly: `--locked`, the release profile, and every
//! machine-specific path (checkout, target directory, cargo home) remapped to a fixed name, so the
//! bytes do not depend on where the repository was cloned.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use xshell::{Shell, cmd};

use crate::paths;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builder {
    /// `$CARGO build`, linking with the target's linker on this machine.
    Cargo,
    /// `cross build`, in a container with the target's toolchain.
    Cross,
}

/// Fails with the command to run when the target or `cross` is missing.
pub fn check_toolchain(sh: &Shell, builder: Builder, target: &str) -> Result<()> {
    match builder {
        Builder::Cross => {
            if !crate::tools::have("cross") {
                bail!(
                    "`cross` is not installed: `cargo install cross` (it also needs a working \
                     docker or podman), or build without --cross"
                );
            }
        }
        Builder::Cargo => {
            // Without rustup (a distribution's Rust) there is nothing to ask: cargo will say.
            let Ok(installed) = cmd!(sh, "rustup target list --installed")
                .quiet()
                .ignore_stderr()
                .read()
            else {
                println!("      rustup not found: assuming the toolchain has {target}");
                return Ok(());
            };
            if !installed.lines().any(|line| line.trim() == target) {
                bail!(
                    "the Rust target {target} is not installed for this toolchain; install it \
                     with:\n    rustup target add {target}"
                );
            }
        }
    }
    Ok(())
}

/// The version of the `ai-proxy` package, as cargo resolves it.
pub fn package_version(sh: &Shell) -> Result<String> {
    let cargo = paths::cargo();
    let pkgid = cmd!(sh, "{cargo} pkgid --quiet --package ai-proxy")
        .quiet()
        .read()
        .context("asking cargo for the ai-proxy version (`cargo pkgid --package ai-proxy`)")?;
    // `path+file:///…/proxy#ai-proxy@0.1.0`, or `…/proxy#0.1.0` when the directory is the name.
    let version = pkgid.rsplit(['@', '#']).next().unwrap_or_default().trim();
    if version.is_empty() || !version.starts_with(|c: char| c.is_ascii_digit()) {
        bail!("cannot read a version from `cargo pkgid --package ai-proxy`: {pkgid:?}");
    }
    Ok(version.to_owned())
}

/// Runs `<runner…> <binary> --version` and fails unless it prints `ai-proxy <version>`;
/// `runner` is none on this host's architecture, e.g. `qemu-aarch64` for another.
pub fn check_version(
    sh: &Shell,
    runner: Option<&str>,
    binary: &Path,
    version: &str,
) -> Result<String> {
    let command = match runner {
        Some(runner) => sh.cmd(runner).arg(binary),
        None => sh.cmd(binary),
    };
    let printed = command
        .arg("--version")
        .quiet()
        .read()
        .with_context(|| format!("running `{} --version`", binary.display()))?;
    let expected = format!("ai-proxy {version}");
    if printed.trim() != expected {
        bail!(
            "`{} --version` printed {printed:?}, expected {expected:?}",
            binary.display()
        );
    }
    Ok(printed)
}

/// `--remap-path-prefix` flags for every path that can leak into the binary (panic locations,
/// `file!()`, build-script `OUT_DIR` includes). rustc applies the last matching flag, so the
/// more specific directories come after the checkout that may contain them.
pub fn remap_flags() -> Vec<String> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")));
    let mut flags = vec![
        remap(&paths::project_root(), "/ai-proxy"),
        remap(&paths::target_dir(), "/ai-proxy/target"),
    ];
    if let Some(cargo_home) = cargo_home {
        flags.push(remap(&cargo_home, "/cargo"));
    }
    flags
}

fn remap(from: &Path, to: &str) -> String {
    format!("--remap-path-prefix={}={to}", from.display())
}

/// Environment for C code built by build scripts (ring, the TLS crate's crypto, is C and
/// assembly) when cross-compiling: Debian has no aarch64 musl gcc, but clang targets any
/// architecture, and ring needs no libc headers. A value the user already set wins.
fn c_toolchain_env(target: &str) -> Vec<(String, String)> {
    let host_arch = std::env::consts::ARCH;
    let arch = target.split('-').next().unwrap_or_default();
    if arch == host_arch {
        return Vec::new();
    }
    let suffix = target.replace('-', "_");
    let clang_target = match arch {
        "aarch64" => "aarch64-linux-musl",
        "riscv64gc" => "riscv64-linux-musl",
        _ => return Vec::new(),
    };
    [
        (format!("CC_{suffix}"), "clang".to_owned()),
        (
            format!("CFLAGS_{suffix}"),
            format!("--target={clang_target}"),
        ),
    ]
    .into_iter()
    .filter(|(name, _)| std::env::var_os(name).is_none())
    .collect()
}

/// Builds the binary and returns its path; `extra` adds cargo arguments (the bench's features).
pub fn build(sh: &Shell, builder: Builder, target: &str, extra: &[String]) -> Result<PathBuf> {
    let flags = remap_flags();
    // CARGO_ENCODED_RUSTFLAGS (separated by 0x1f) survives spaces in paths, and being the same
    // on every run, it keeps cargo's fingerprint, so a second release is a no-op build. A
    // RUSTFLAGS from the environment would change the binary: it is replaced, not merged.
    let encoded = flags.join("\x1f");
    if std::env::var_os("RUSTFLAGS").is_some()
        || std::env::var_os("CARGO_ENCODED_RUSTFLAGS").is_some()
    {
        println!("      note: ignoring RUSTFLAGS/CARGO_ENCODED_RUSTFLAGS from the environment");
    }
    let program: OsString = match builder {
        Builder::Cargo => paths::cargo().into(),
        Builder::Cross => "cross".into(),
    };
    let mut command = cmd!(
        sh,
        "{program} build --release --locked --package ai-proxy --bin ai-proxy --target {target} {extra...}"
    )
    .env("CARGO_ENCODED_RUSTFLAGS", &encoded)
    .env_remove("RUSTFLAGS");
    if builder == Builder::Cargo {
        for (name, value) in c_toolchain_env(target) {
            command = command.env(name, value);
        }
    }
    command.run().with_context(|| {
        format!("building ai-proxy for {target} failed (the compiler output above says why)")
    })?;
    let binary = paths::target_dir()
        .join(target)
        .join("release")
        .join("ai-proxy");
    if !binary.is_file() {
        bail!(
            "the build succeeded but {} does not exist",
            binary.display()
        );
    }
    Ok(binary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaps_the_checkout_first_and_narrower_paths_after_it() {
        let flags = remap_flags();
        let root = paths::project_root();
        assert_eq!(
            flags[0],
            format!("--remap-path-prefix={}=/ai-proxy", root.display())
        );
        assert!(flags[1].ends_with("=/ai-proxy/target"), "{flags:?}");
    }

    #[test]
    fn sets_a_c_cross_compiler_only_for_foreign_architectures() {
        let host = format!("{}-unknown-linux-musl", std::env::consts::ARCH);
        assert!(c_toolchain_env(&host).is_empty());
        if std::env::consts::ARCH == "x86_64"
            && std::env::var_os("CC_aarch64_unknown_linux_musl").is_none()
        {
            let env = c_toolchain_env("aarch64-unknown-linux-musl");
            assert!(
                env.contains(&("CC_aarch64_unknown_linux_musl".into(), "clang".into())),
                "{env:?}"
            );
        }
    }
}
