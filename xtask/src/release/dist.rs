//! `cargo xtask dist`: gathers the releases in `pkg/` into `pkg/dist/`, the flat set of files a
//! GitHub release carries, each under a distinct name, plus one `SHA256SUMS` over all of them,
//! and checks every checksum file with `sha256sum -c` as users will.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use xshell::{Shell, cmd};

use super::archive::{self, ARCHIVE_NAME};
use super::oci::OCI_NAME;
use super::{CHECKSUM_NAME, DEFAULT_TARGET, INSTALLER_NAME, out_dir};
use crate::fs::{display_relative, write_atomic};
use crate::paths;

/// The checksum file over every attached file.
pub const SUMS_NAME: &str = "SHA256SUMS";

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Another target whose release (in pkg/<target>/) must be included; repeatable.
    #[arg(long = "target", value_name = "TRIPLE")]
    targets: Vec<String>,
}

impl Args {
    pub fn run(&self, sh: &Shell) -> Result<()> {
        let dist = dist_dir();
        if dist.exists() {
            std::fs::remove_dir_all(&dist)
                .with_context(|| format!("removing {}", dist.display()))?;
        }
        std::fs::create_dir_all(&dist).with_context(|| format!("creating {}", dist.display()))?;
        let mut names = Vec::new();
        for target in std::iter::once(DEFAULT_TARGET).chain(self.targets.iter().map(String::as_str))
        {
            names.extend(gather_release(&dist, target)?);
        }
        names.extend(gather_extras(&dist)?);
        names.sort();
        let mut sums = String::new();
        for name in &names {
            let bytes =
                std::fs::read(dist.join(name)).with_context(|| format!("reading {name}"))?;
            sums.push_str(&archive::checksum_line(&archive::sha256_hex(&bytes), name));
        }
        write_atomic(&dist.join(SUMS_NAME), sums.as_bytes(), 0o644)?;
        let _in_dist = sh.push_dir(&dist);
        for name in names
            .iter()
            .filter(|n| n.ends_with(".sha256"))
            .chain([&SUMS_NAME.to_owned()])
        {
            cmd!(sh, "sha256sum --strict -c {name}")
                .run()
                .with_context(|| format!("`sha256sum -c {name}` failed in {}", dist.display()))?;
        }
        println!(
            "dist: {} files and {SUMS_NAME} in {}",
            names.len(),
            display_relative(&dist)
        );
        Ok(())
    }
}

/// `pkg/dist/`.
pub fn dist_dir() -> PathBuf {
    paths::pkg_dir().join("dist")
}

/// The names a target's three files get: the default target's as users know them, another
/// target's with its architecture, e.g. `ai-proxy-release-aarch64.tar.gz`, `installer-aarch64.sh`.
fn asset_names(target: &str) -> [String; 3] {
    if target == DEFAULT_TARGET {
        return [ARCHIVE_NAME, CHECKSUM_NAME, INSTALLER_NAME].map(str::to_owned);
    }
    let arch = target.split('-').next().unwrap_or(target);
    let archive = ARCHIVE_NAME.replace(".tar.gz", &format!("-{arch}.tar.gz"));
    let checksum = format!("{archive}.sha256");
    [
        archive,
        checksum,
        INSTALLER_NAME.replace(".sh", &format!("-{arch}.sh")),
    ]
}

/// Copies one target's release into `dist`; its checksum line names the renamed tarball.
fn gather_release(dist: &Path, target: &str) -> Result<Vec<String>> {
    let from = out_dir(target);
    let [archive_name, checksum_name, installer_name] = asset_names(target);
    let read = |name: &str| {
        let path = from.join(name);
        std::fs::read(&path).with_context(|| {
            format!(
                "{} is missing: run `cargo xtask release --target {target}` first",
                display_relative(&path)
            )
        })
    };
    let tarball = read(ARCHIVE_NAME)?;
    let sha256 = archive::sha256_hex(&tarball);
    let recorded =
        String::from_utf8(read(CHECKSUM_NAME)?).context("the checksum file is not UTF-8")?;
    ensure!(
        recorded == archive::checksum_line(&sha256, ARCHIVE_NAME),
        "{} does not match its tarball: run `cargo xtask release --target {target}` again",
        display_relative(&from.join(CHECKSUM_NAME))
    );
    write_atomic(&dist.join(&archive_name), &tarball, 0o644)?;
    let line = archive::checksum_line(&sha256, &archive_name);
    write_atomic(&dist.join(&checksum_name), line.as_bytes(), 0o644)?;
    write_atomic(&dist.join(&installer_name), &read(INSTALLER_NAME)?, 0o755)?;
    let image_name = if target == DEFAULT_TARGET {
        OCI_NAME.to_owned()
    } else {
        let arch = target.split('-').next().unwrap_or(target);
        OCI_NAME.replace(".tar", &format!("-{arch}.tar"))
    };
    let image = read(OCI_NAME)?;
    write_atomic(&dist.join(&image_name), &image, 0o644)?;
    let image_sums = format!("{image_name}.sha256");
    let line = archive::checksum_line(&archive::sha256_hex(&image), &image_name);
    write_atomic(&dist.join(&image_sums), line.as_bytes(), 0o644)?;
    Ok(vec![
        archive_name,
        checksum_name,
        installer_name,
        image_name,
        image_sums,
    ])
}

/// The default release's Kubernetes manifests: `pkg/kubernetes/a/b.yaml` as
/// `kubernetes-a-b.yaml`.
fn gather_extras(dist: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    let manifests = paths::pkg_dir().join("kubernetes");
    if manifests.is_dir() {
        for entry in walkdir::WalkDir::new(&manifests).sort_by_file_name() {
            let entry = entry.context("listing pkg/kubernetes")?;
            if !entry.file_type().is_file() {
                continue;
            }
            let relative = entry
                .path()
                .strip_prefix(&manifests)?
                .to_string_lossy()
                .replace('/', "-");
            let name = format!("kubernetes-{relative}");
            std::fs::copy(entry.path(), dist.join(&name))
                .with_context(|| format!("copying {name}"))?;
            names.push(name);
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_targets_get_their_architecture_in_every_name() {
        assert_eq!(
            asset_names(DEFAULT_TARGET),
            [ARCHIVE_NAME, CHECKSUM_NAME, INSTALLER_NAME]
        );
        assert_eq!(
            asset_names("aarch64-unknown-linux-musl"),
            [
                "ai-proxy-release-aarch64.tar.gz",
                "ai-proxy-release-aarch64.tar.gz.sha256",
                "installer-aarch64.sh"
            ]
        );
    }
}
