//! The steps that make a release and check what it wrote: the tarball's listing, modes and
//! owners, the checksum file, the installer's digest and mode, the shipped binary (run here,
//! or under qemu for aarch64), and a second release giving the same bytes.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail, ensure};
use xshell::cmd;

use super::{Ctx, Outcome, ReleaseState};
use crate::fs::{display_relative, scratch_dir, write_atomic};
use crate::release::archive;
use crate::release::contents::CONTENTS;
use crate::release::{self, Release, binary, elf};
use crate::tools;

/// The tarball's files and modes as the archive lists them: [`CONTENTS`], sorted by name.
fn expected_entries() -> Vec<(&'static str, u32)> {
    let mut entries: Vec<(&str, u32)> = CONTENTS.iter().map(|e| (e.name, e.mode)).collect();
    entries.sort_unstable();
    entries
}

pub fn release_and_check(ctx: &mut Ctx<'_>) -> Result<Outcome> {
    ctx.release = ReleaseState::NotRun;
    match release_checked(ctx) {
        Ok(release) => {
            ctx.release = ReleaseState::Made(release);
            Ok(Outcome::Passed)
        }
        Err(err) => {
            ctx.release = ReleaseState::Failed;
            Err(err)
        }
    }
}

fn release_checked(ctx: &Ctx<'_>) -> Result<Release> {
    let release = release::run(ctx.sh, &release::Args::default())?;
    println!(
        "\nChecking the artifacts in {}",
        display_relative(&release.out_dir)
    );
    check_artifacts(ctx, &release, elf::X86_64)?;

    // The binary users get is the one in the tarball: check it, not target/'s copy.
    let listed = ctx.pkg_tarball()?;
    let dir = scratch_dir("test-release");
    let binary = write_entry(&listed, "ai-proxy", &dir)?;
    println!("  binary: {}", elf::check_static(&binary, elf::X86_64)?);
    let printed = binary::check_version(ctx.sh, None, &binary, &release.version)?;
    println!("  --version: {printed}");
    let _ = std::fs::remove_dir_all(dir);
    Ok(release)
}

/// The promises about one target's output directory: listing, modes, owners, gzip header,
/// checksum file, installer mode and embedded digest.
fn check_artifacts(ctx: &Ctx<'_>, release: &Release, machine: elf::Machine) -> Result<()> {
    let bytes = std::fs::read(&release.archive)
        .with_context(|| format!("reading {}", release.archive.display()))?;
    let listed = archive::read(&bytes)?;
    check_listing(&listed, &bytes)?;

    let dockerfile = entry_text(&listed, "Dockerfile")?;
    ensure!(
        dockerfile.contains(&format!(
            "org.opencontainers.image.version=\"{}\"",
            release.version
        )),
        "the shipped Dockerfile does not label version {}",
        release.version
    );
    let binary = &listed
        .iter()
        .find(|e| e.name == "ai-proxy")
        .context("no ai-proxy in the tarball")?
        .data;
    println!(
        "  binary in tarball: {}",
        elf::check_static_bytes(binary, machine)?
    );

    let out = &release.out_dir;
    let checksum = release::CHECKSUM_NAME;
    let _in_out_dir = ctx.sh.push_dir(out);
    cmd!(ctx.sh, "sha256sum -c {checksum}")
        .run()
        .with_context(|| format!("`sha256sum -c {checksum}` failed in {}", out.display()))?;

    let installer = std::fs::read_to_string(&release.installer)
        .with_context(|| format!("reading {}", release.installer.display()))?;
    ensure!(
        installer.contains(&release.archive_sha256),
        "installer.sh does not embed the tarball's sha256 {}",
        release.archive_sha256
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&release.installer)
            .context("reading installer.sh's mode")?
            .permissions(),
    );
    ensure!(
        mode & 0o777 == 0o755,
        "installer.sh has mode {:o}, expected 755",
        mode & 0o777
    );
    println!(
        "  installer.sh: mode 0755, embeds sha256 {}",
        release.archive_sha256
    );
    Ok(())
}

/// The tarball's listing: exactly [`CONTENTS`] with its modes, regular files owned by 0:0 with
/// no owner names, one mtime, and a gzip header with no time or name.
fn check_listing(listed: &[archive::Listed], bytes: &[u8]) -> Result<()> {
    let names: Vec<(&str, u32)> = listed.iter().map(|e| (e.name.as_str(), e.mode)).collect();
    let expected = expected_entries();
    ensure!(
        names == expected,
        "the tarball holds {names:?}, expected exactly {expected:?} (name, mode)"
    );
    for entry in listed {
        ensure!(entry.regular, "{} is not a regular file", entry.name);
        ensure!(
            (entry.uid, entry.gid) == (0, 0),
            "{} is owned by {}:{}, expected 0:0",
            entry.name,
            entry.uid,
            entry.gid
        );
        ensure!(
            entry.username.is_empty() && entry.groupname.is_empty(),
            "{} carries owner names {:?}:{:?}, expected none",
            entry.name,
            entry.username,
            entry.groupname
        );
    }
    let mtimes: Vec<u64> = listed.iter().map(|e| e.mtime).collect();
    ensure!(
        mtimes.windows(2).all(|w| w[0] == w[1]),
        "entries have different mtimes: {mtimes:?}"
    );
    ensure!(
        archive::gzip_header(bytes)? == (0, false),
        "the gzip header stores a time or a file name"
    );
    println!(
        "  tarball: the {} expected files, modes 0755/0644, owner 0:0, no owner names, mtime {}",
        expected.len(),
        mtimes[0]
    );
    Ok(())
}

pub fn reproducible(ctx: &mut Ctx<'_>) -> Result<Outcome> {
    let (first, first_image) = match &ctx.release {
        ReleaseState::Made(release) => {
            (release.archive_sha256.clone(), release.image.digest.clone())
        }
        ReleaseState::Failed => bail!("the release step failed: nothing to compare"),
        ReleaseState::NotRun => {
            let release = release::run(ctx.sh, &release::Args::default())?;
            (release.archive_sha256, release.image.digest)
        }
    };
    let second = release::run(ctx.sh, &release::Args::default())?;
    ensure!(
        second.archive_sha256 == first,
        "two releases of the same tree differ: {first} then {}; compare the tarballs' listings \
         (`tar -tvzf`) and the binaries",
        second.archive_sha256
    );
    ensure!(
        second.image.digest == first_image,
        "two releases of the same tree give different images: {first_image} then {}",
        second.image.digest
    );
    println!(
        "  both releases: sha256 {first}, image {}",
        second.image.digest
    );
    ctx.release = ReleaseState::Made(second);
    Ok(Outcome::Passed)
}

pub fn aarch64(ctx: &mut Ctx<'_>) -> Result<Outcome> {
    let target = "aarch64-unknown-linux-musl";
    let qemu = tools::program(tools::named("qemu-aarch64-static"))
        .context("qemu-aarch64 is not installed: cargo xtask setup")?;
    let release = release::run(
        ctx.sh,
        &release::Args {
            target: Some(target.to_owned()),
            ..release::Args::default()
        },
    )?;
    check_artifacts(ctx, &release, elf::AARCH64)?;
    let listed =
        archive::read(&std::fs::read(&release.archive).context("reading the aarch64 tarball")?)?;
    let dir = scratch_dir("test-aarch64");
    let binary = write_entry(&listed, "ai-proxy", &dir)?;
    let printed = binary::check_version(ctx.sh, Some(qemu), &binary, &release.version)?;
    println!("  {qemu} ai-proxy --version: {printed}");
    let _ = std::fs::remove_dir_all(dir);
    Ok(Outcome::Passed)
}

fn entry_text(listed: &[archive::Listed], name: &str) -> Result<String> {
    let entry = listed
        .iter()
        .find(|e| e.name == name)
        .ok_or_else(|| anyhow!("no {name} in the tarball"))?;
    String::from_utf8(entry.data.clone())
        .with_context(|| format!("{name} in the tarball is not UTF-8"))
}

/// Writes one tarball entry into `dir` with its archive mode and returns its path.
pub fn write_entry(listed: &[archive::Listed], name: &str, dir: &Path) -> Result<PathBuf> {
    let entry = listed
        .iter()
        .find(|e| e.name == name)
        .ok_or_else(|| anyhow!("no {name} in the tarball"))?;
    let path = dir.join(name);
    write_atomic(&path, &entry.data, entry.mode)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expects_the_contents_sorted_as_the_archive_lists_them() {
        let names: Vec<&str> = expected_entries().iter().map(|e| e.0).collect();
        assert_eq!(names.len(), CONTENTS.len());
        assert!(names.windows(2).all(|w| w[0] < w[1]), "{names:?}");
    }
}
