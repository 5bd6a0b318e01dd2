//! `cargo xtask release`: builds the static `ai-proxy` binary and writes the verified,
//! byte-reproducible release to `pkg/` (`pkg/<target>/` for a non-default target): the tarball,
//! its `.sha256` and `installer.sh`. Each step prints as it runs; nothing lands in the output
//! directory unless every check passed.

pub mod archive;
pub mod binary;
pub mod contents;
pub mod dist;
pub mod elf;
pub mod exit_codes;
pub mod oci;
pub mod render;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use xshell::{Shell, cmd};

use crate::fs::{display_relative, write_atomic};
use crate::{paths, tools};
use archive::{ARCHIVE_NAME, Content, Source};

/// The target users deploy on: a static x86-64 Linux binary.
pub const DEFAULT_TARGET: &str = "x86_64-unknown-linux-musl";
/// The port the shipped `.env.example` and the image use.
pub const DEFAULT_PORT: u16 = 8080;
/// The unprivileged user and group the container runs as.
pub const CONTAINER_UID: u32 = 1001;
pub const CONTAINER_GID: u32 = 1001;
/// The checksum file next to the tarball.
pub const CHECKSUM_NAME: &str = "ai-proxy-release.tar.gz.sha256";
pub const INSTALLER_NAME: &str = "installer.sh";

#[derive(clap::Args, Debug, Default, Clone)]
pub struct Args {
    /// Target triple to build for [default: x86_64-unknown-linux-musl]; another target's
    /// artifacts go to pkg/<target>/.
    #[arg(long, value_name = "TRIPLE")]
    pub target: Option<String>,
    /// Build with `cross` (in a container) instead of cargo.
    #[arg(long)]
    pub cross: bool,
    /// Image the Kubernetes manifests run, REGISTRY/NAME[:TAG][@sha256:DIGEST]; without a digest
    /// this release's image digest is appended [default: ai-proxy:VERSION, as loaded locally].
    #[arg(long, value_name = "REFERENCE")]
    pub image: Option<String>,
    /// The git tag being released (`v<version>`): fail before building when it names another
    /// version than the workspace's.
    #[arg(long, value_name = "TAG")]
    pub tag: Option<String>,
}

impl Args {
    /// `cargo xtask release`: checks its tools (installing them as root on Debian), then runs.
    pub fn run(&self, sh: &Shell) -> Result<()> {
        let target = self.target.as_deref().unwrap_or(DEFAULT_TARGET);
        let mut uses = vec!["release"];
        if !target.starts_with(std::env::consts::ARCH) {
            uses.push(tools::CROSS);
        }
        if !self.cross {
            tools::ensure_for(sh, &uses, tools::For::Release)?;
        }
        if let Some(tag) = &self.tag {
            let version = binary::package_version(sh)?;
            ensure!(
                tag.strip_prefix('v') == Some(version.as_str()),
                "tag `{tag}` does not name the workspace version {version}: tag v{version}, or bump \
                 the version in Cargo.toml first"
            );
            println!("Tag {tag} names version {version}");
        }
        run(sh, self).map(drop)
    }
}

/// What a release wrote, for the caller (`cargo xtask test` checks it).
#[derive(Debug, Clone)]
pub struct Release {
    pub target: String,
    pub version: String,
    /// The binary as cargo built it (the one inside the tarball).
    pub binary: PathBuf,
    pub out_dir: PathBuf,
    pub archive: PathBuf,
    pub archive_sha256: String,
    pub checksum: PathBuf,
    pub installer: PathBuf,
    /// `ai-proxy-oci.tar` and `kubernetes/`.
    pub image: Box<oci::ImageRelease>,
}

/// Where a target's artifacts go: `pkg/` for the default target, `pkg/<target>/` otherwise, so
/// building another architecture never overwrites what users download by default.
pub fn out_dir(target: &str) -> PathBuf {
    if target == DEFAULT_TARGET {
        paths::pkg_dir()
    } else {
        paths::pkg_dir().join(target)
    }
}

/// Prints numbered steps, so a failure shows which one it ended.
struct Steps {
    total: usize,
    done: usize,
    started: Instant,
}

impl Steps {
    fn next(&mut self, what: &str) {
        self.done += 1;
        println!("\n[{}/{}] {what}", self.done, self.total);
    }

    fn note(what: &str) {
        println!("      {what}");
    }
}

/// Builds, checks and writes one release; the error says which step failed and what to do.
pub fn run(sh: &Shell, args: &Args) -> Result<Release> {
    let target = args
        .target
        .clone()
        .unwrap_or_else(|| DEFAULT_TARGET.to_owned());
    elf::Machine::for_target(&target)?;
    ensure!(
        target.contains("-linux-musl"),
        "target `{target}` is not a *-linux-musl target: the FROM scratch image needs a static \
         binary, which Rust builds only for musl"
    );
    let mut steps = Steps {
        total: 9,
        done: 0,
        started: Instant::now(),
    };

    let builder = if args.cross {
        binary::Builder::Cross
    } else {
        binary::Builder::Cargo
    };
    let (version, binary) = build_and_check(sh, &mut steps, builder, &target)?;

    let params = render::Params {
        version: version.clone(),
        target: target.clone(),
        port: DEFAULT_PORT,
        uid: CONTAINER_UID,
        gid: CONTAINER_GID,
        source_url: env!("CARGO_PKG_REPOSITORY").to_owned(),
    };
    steps.next("Rendering templates/Dockerfile and templates/INSTALL.md");
    let dockerfile = render::dockerfile(&params)?;
    let install_md = render::install_md(&params)?;

    let (mtime, mtime_from) = archive::source_date_epoch(sh)?;
    steps.next(&format!(
        "Packing {ARCHIVE_NAME} (every mtime {mtime}, from {mtime_from})"
    ));
    let entries = archive::collect(tarball_sources(&binary, &dockerfile, &install_md))?;
    let tarball = archive::build(&entries, mtime)?;
    let archive_sha256 = archive::sha256_hex(&tarball);
    Steps::note(&format!("sha256 {archive_sha256}"));

    steps.next("Building the OCI image from the Dockerfile and tarball; rendering kubernetes/");
    let image = oci::prepare(&params, args.image.as_deref(), &entries, mtime)?;

    let out = out_dir(&target);
    let staging = Staging::new(&out)?;
    steps.next("Rendering templates/installer.sh with the tarball's sha256; bash -n; shellcheck");
    let installer = render::installer(&params, ARCHIVE_NAME, &archive_sha256)?;
    let staged_installer = staging.dir.join(INSTALLER_NAME);
    write_atomic(&staged_installer, installer.as_bytes(), 0o755)?;
    lint_installer(sh, &staged_installer)?;

    steps.next(&format!("Writing {}/", display_relative(&out)));
    let image = Box::new(write_out(&staging, &out, &tarball, &archive_sha256, image)?);
    drop(staging);

    let release = Release {
        target,
        version,
        binary,
        archive: out.join(ARCHIVE_NAME),
        archive_sha256,
        checksum: out.join(CHECKSUM_NAME),
        installer: out.join(INSTALLER_NAME),
        image,
        out_dir: out,
    };
    print_table(&release, steps.started)?;
    Ok(release)
}

/// The "Writing" step: the tarball, the checksums and the image go through `staging` into
/// `out`, beside the installer already staged there.
fn write_out(
    staging: &Staging,
    out: &Path,
    tarball: &[u8],
    archive_sha256: &str,
    image: oci::Prepared,
) -> Result<oci::ImageRelease> {
    write_atomic(&staging.dir.join(ARCHIVE_NAME), tarball, 0o644)?;
    let checksum = archive::checksum_line(archive_sha256, ARCHIVE_NAME);
    write_atomic(&staging.dir.join(CHECKSUM_NAME), checksum.as_bytes(), 0o644)?;
    // The image gets a checksum file of its own: a user who downloads only the tarball and its
    // .sha256 must be able to run a plain `sha256sum -c` on it.
    let oci_sha256 = image.stage(&staging.dir)?;
    let oci_checksum = archive::checksum_line(&oci_sha256, oci::OCI_NAME);
    write_atomic(
        &staging.dir.join(oci::OCI_CHECKSUM_NAME),
        oci_checksum.as_bytes(),
        0o644,
    )?;
    for name in [
        ARCHIVE_NAME,
        CHECKSUM_NAME,
        oci::OCI_CHECKSUM_NAME,
        INSTALLER_NAME,
    ] {
        std::fs::rename(staging.dir.join(name), out.join(name))
            .with_context(|| format!("moving {name} into {}", out.display()))?;
    }
    image.install(&staging.dir, out)
}

/// Steps 1 to 4: toolchain, build, static-ELF check, `--version` when the host runs it.
fn build_and_check(
    sh: &Shell,
    steps: &mut Steps,
    builder: binary::Builder,
    target: &str,
) -> Result<(String, PathBuf)> {
    let machine = elf::Machine::for_target(target)?;
    steps.next(&format!("Checking the toolchain for {target}"));
    binary::check_toolchain(sh, builder, target)?;
    let version = binary::package_version(sh)?;
    Steps::note(&format!("ai-proxy {version}"));

    steps.next(&format!(
        "Building ai-proxy {version} for {target} (release profile, --locked)"
    ));
    let binary = binary::build(sh, builder, target, &[])?;
    Steps::note(&binary.display().to_string());

    steps.next("Checking the binary is a static ELF for the target");
    Steps::note(&elf::check_static(&binary, machine)?);

    steps.next("Running `ai-proxy --version`");
    if machine.runs_on_host() {
        Steps::note(&binary::check_version(sh, None, &binary, &version)?);
    } else {
        Steps::note(&format!(
            "skipped: {} binaries do not run on this host (`cargo xtask test` runs it under qemu)",
            machine.name
        ));
    }

    Ok((version, binary))
}

/// The tarball's sources, one per [`contents::CONTENTS`] entry, with the modes they get in it.
fn tarball_sources(binary: &Path, dockerfile: &str, install_md: &str) -> Vec<Source> {
    let root = paths::project_root();
    let templates = paths::templates_dir();
    contents::CONTENTS
        .iter()
        .map(|e| Source {
            name: e.name,
            mode: e.mode,
            content: match (e.origin, e.name) {
                (contents::Origin::Binary, _) => Content::File(binary.to_path_buf()),
                (contents::Origin::Rendered, "Dockerfile") => {
                    Content::Rendered(dockerfile.to_owned())
                }
                (contents::Origin::Rendered, _) => Content::Rendered(install_md.to_owned()),
                (contents::Origin::Template, name) => Content::File(templates.join(name)),
                (contents::Origin::Root, name) => Content::File(root.join(name)),
            },
        })
        .collect()
}

/// Fails on any `bash -n` or shellcheck finding, with what to do about each.
pub fn lint_installer(sh: &Shell, path: &Path) -> Result<()> {
    cmd!(sh, "bash -n {path}").quiet().run().with_context(|| {
        format!(
            "`bash -n` found a syntax error in {}: fix templates/installer.sh",
            path.display()
        )
    })?;
    if !tools::have("shellcheck") {
        anyhow::bail!(
            "shellcheck is not installed, and the release must not ship an unchecked installer: \
             cargo xtask setup --for release"
        );
    }
    cmd!(sh, "shellcheck --shell=bash --severity=style {path}").quiet().run().with_context(|| {
        format!(
            "shellcheck reported the findings above in the rendered {}: fix templates/installer.sh",
            path.display()
        )
    })
}

/// A directory next to the artifacts where they are written and checked before they replace the
/// previous release; removed when dropped, also on error.
struct Staging {
    dir: PathBuf,
}

impl Staging {
    fn new(out: &Path) -> Result<Self> {
        let dir = out.join(".staging");
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        }
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self { dir })
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        // Best effort: a leftover directory is removed by the next release anyway.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn print_table(release: &Release, started: Instant) -> Result<()> {
    println!(
        "\nRelease {} for {} in {:.1} s:",
        release.version,
        release.target,
        started.elapsed().as_secs_f64()
    );
    let paths = [
        &release.archive,
        &release.checksum,
        &release.installer,
        &release.image.oci,
    ];
    let names: Vec<String> = paths.iter().map(|p| display_relative(p)).collect();
    let width = names.iter().map(String::len).max().unwrap_or_default();
    println!("{:<width$}  {:>9}  sha256", "artifact", "bytes");
    for (path, name) in paths.iter().zip(&names) {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        println!(
            "{name:<width$}  {:>9}  {}",
            bytes.len(),
            archive::sha256_hex(&bytes)
        );
    }
    let binary = std::fs::metadata(&release.binary)
        .with_context(|| format!("reading {}", release.binary.display()))?;
    println!(
        "(the ai-proxy binary in the tarball: {} bytes)",
        binary.len()
    );
    println!("(the image in {}: {})", oci::OCI_NAME, release.image.digest);
    Ok(())
}
