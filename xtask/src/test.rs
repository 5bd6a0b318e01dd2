//! `cargo xtask test`: every check of the project, in order, each printed as it runs with its
//! result, closing with one `N passed, N failed` line. The tools the chosen steps need are
//! checked first (and installed, as root on Debian/Ubuntu); a missing tool or container engine
//! is a failure unless `--skip-missing` is given, and the closing line names what it skipped.

mod artifacts;
mod oci;
mod workflows;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use xshell::{Shell, cmd};

use crate::fs::{display_relative, scratch_dir};
use crate::release::archive::{self, ARCHIVE_NAME};
use crate::release::{self, Release};
use crate::{paths, tools};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Run only these steps (comma-separated or repeated), e.g. `--only release,hadolint`.
    #[arg(long, value_delimiter = ',', value_name = "STEP")]
    only: Vec<String>,
    /// Print the steps in order and exit.
    #[arg(long)]
    list: bool,
    /// Skip the steps whose tools or container engine are missing, instead of failing; the
    /// closing line names every skipped step.
    #[arg(long)]
    skip_missing: bool,
}

/// How a step ended when it did not fail.
enum Outcome {
    Passed,
    /// Why it could not run here, and how to enable it.
    Skipped(String),
}

type StepFn = fn(&mut Ctx<'_>) -> Result<Outcome>;

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
        run: artifacts::release_and_check,
    },
    Step {
        name: "reproducible",
        what: "a second release gives the identical tarball sha256 and image digest",
        run: artifacts::reproducible,
    },
    Step {
        name: "aarch64",
        what: "release for aarch64-unknown-linux-musl, run it under qemu",
        run: artifacts::aarch64,
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
        what: "actionlint on .github/workflows/*.yml, then every run: step's commands exist here",
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
    Step {
        name: "instructions",
        what: "cargo xtask bench --instructions --check-budget (callgrind, 5% over fails)",
        run: instructions,
    },
];

struct Ctx<'a> {
    sh: &'a Shell,
    skip_missing: bool,
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

impl Ctx<'_> {
    /// Something this step needs is not usable: a failure unless `--skip-missing`.
    fn unavailable(&self, what: &str, how: &str) -> Result<Outcome> {
        if !self.skip_missing {
            bail!("{what} ({how}; or pass --skip-missing to skip this step)");
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
            display_relative(&path)
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

impl Args {
    pub fn run(&self, sh: &Shell) -> Result<()> {
        if self.list {
            for step in STEPS {
                println!("{:<18} {}", step.name, step.what);
            }
            return Ok(());
        }
        let selected = self.selected()?;
        let names: Vec<&str> = selected.iter().map(|step| step.name).collect();
        let missing = if self.skip_missing {
            tools::missing(sh, &tools::needed_by(&names))
        } else {
            tools::ensure_for(sh, &names, tools::For::Test)?;
            Vec::new()
        };
        let mut ctx = Ctx {
            sh,
            skip_missing: self.skip_missing,
            release: ReleaseState::NotRun,
        };
        let tally = run_steps(&mut ctx, &selected, &missing);
        if tally.failed > 0 {
            // The closing line must stay the last line: exit without anyhow's error report.
            std::process::exit(1);
        }
        Ok(())
    }

    fn selected(&self) -> Result<Vec<&'static Step>> {
        for name in &self.only {
            if !STEPS.iter().any(|step| step.name == name) {
                let names: Vec<&str> = STEPS.iter().map(|step| step.name).collect();
                bail!("unknown step `{name}`; the steps are: {}", names.join(", "));
            }
        }
        Ok(STEPS
            .iter()
            .filter(|step| self.only.is_empty() || self.only.iter().any(|n| n == step.name))
            .collect())
    }
}

#[derive(Default)]
struct Tally {
    passed: usize,
    failed: usize,
    skipped: Vec<&'static str>,
}

/// Runs each step, printing it as it starts and ends, then the summary and the closing line.
/// A step that needs a tool in `missing` (only with `--skip-missing`) is skipped, not run.
fn run_steps(ctx: &mut Ctx<'_>, selected: &[&'static Step], missing: &[&tools::Tool]) -> Tally {
    let total = selected.len();
    let mut tally = Tally::default();
    let mut summary = Vec::new();
    let mut table = vec![
        "| step | result | seconds |".to_owned(),
        "|---|---|---:|".to_owned(),
    ];
    let started = Instant::now();
    for (index, step) in selected.iter().enumerate() {
        println!("\n==> [{}/{total}] {}: {}", index + 1, step.name, step.what);
        let step_started = Instant::now();
        let lacking: Vec<&str> = missing
            .iter()
            .filter(|t| t.used_by.contains(&step.name))
            .map(|t| t.name)
            .collect();
        let result = if lacking.is_empty() {
            (step.run)(ctx)
        } else {
            Ok(Outcome::Skipped(format!(
                "missing {} (`cargo xtask setup` installs them)",
                lacking.join(", ")
            )))
        };
        let secs = step_started.elapsed().as_secs_f64();
        let (line, short) = match &result {
            Ok(Outcome::Passed) => {
                tally.passed += 1;
                (format!("passed {} ({secs:.1} s)", step.name), "passed ")
            }
            Ok(Outcome::Skipped(why)) => {
                tally.skipped.push(step.name);
                (format!("SKIPPED: {}: {why}", step.name), "skipped")
            }
            Err(err) => {
                tally.failed += 1;
                let line = format!("FAILED {} ({secs:.1} s): {err:#}", step.name);
                (line, "FAILED ")
            }
        };
        println!("<== [{}/{total}] {line}", index + 1);
        summary.push(format!("  {short} {:<18} {secs:>7.1} s", step.name));
        table.push(format!("| {} | {} | {secs:.1} |", step.name, short.trim()));
    }
    println!("\nSummary ({:.0} s):", started.elapsed().as_secs_f64());
    for line in &summary {
        println!("{line}");
    }
    let (passed, failed) = (tally.passed, tally.failed);
    let closing = if tally.skipped.is_empty() {
        format!("{passed} passed, {failed} failed")
    } else {
        let skipped = tally.skipped.join(", ");
        let n = tally.skipped.len();
        format!("{passed} passed, {failed} failed, {n} skipped by --skip-missing: {skipped}")
    };
    write_job_summary(&table, &closing);
    println!("{closing}");
    tally
}

/// On GitHub Actions, the step table and the closing line as the job's summary.
fn write_job_summary(table: &[String], closing: &str) {
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY") else {
        return;
    };
    let text = format!(
        "### cargo xtask test\n\n{}\n\n**{closing}**\n",
        table.join("\n")
    );
    let appended = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&path)
        .and_then(|mut file| std::io::Write::write_all(&mut file, text.as_bytes()));
    if let Err(err) = appended {
        // The summary is a convenience: the log above says everything it would.
        eprintln!(
            "could not write the job summary to {}: {err}",
            path.to_string_lossy()
        );
    }
}

fn fmt(ctx: &mut Ctx<'_>) -> Result<Outcome> {
    cargo(
        ctx,
        &["fmt", "--all", "--", "--check"],
        "code is not formatted: run `cargo fmt --all`",
    )
}

fn clippy(ctx: &mut Ctx<'_>) -> Result<Outcome> {
    let args = ["clippy", "--workspace", "--all-targets", "--locked"];
    cargo(ctx, &args, "clippy reported errors (above)")
}

fn unit(ctx: &mut Ctx<'_>) -> Result<Outcome> {
    cargo(
        ctx,
        &["test", "--workspace", "--locked"],
        "tests failed (above)",
    )
}

/// `$CARGO <args>`, passed when it succeeds.
fn cargo(ctx: &Ctx<'_>, args: &[&str], failure: &str) -> Result<Outcome> {
    let cargo = paths::cargo();
    cmd!(ctx.sh, "{cargo} {args...}")
        .run()
        .context(failure.to_owned())?;
    Ok(Outcome::Passed)
}

fn shellcheck(ctx: &mut Ctx<'_>) -> Result<Outcome> {
    let installer = ctx.pkg_file(release::INSTALLER_NAME)?;
    release::lint_installer(ctx.sh, &installer)?;
    println!("  bash -n and shellcheck: no findings");
    Ok(Outcome::Passed)
}

fn hadolint(ctx: &mut Ctx<'_>) -> Result<Outcome> {
    let listed = ctx.pkg_tarball()?;
    let dir = scratch_dir("test-hadolint");
    let dockerfile = artifacts::write_entry(&listed, "Dockerfile", &dir)?;
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

fn actionlint(ctx: &mut Ctx<'_>) -> Result<Outcome> {
    workflows::check(ctx.sh)?;
    Ok(Outcome::Passed)
}

fn sdk(ctx: &mut Ctx<'_>) -> Result<Outcome> {
    let tests = paths::project_root().join("proxy/tests/sdk");
    let binary = ctx.release_binary()?;
    cmd!(ctx.sh, "python3 -m pytest -q {tests}")
        .env("AI_PROXY_BIN", &binary)
        .run()
        .context("the SDK tests failed (above)")?;
    Ok(Outcome::Passed)
}

fn installer_docker(ctx: &mut Ctx<'_>) -> Result<Outcome> {
    installer_e2e(ctx, "docker")
}

fn installer_podman(ctx: &mut Ctx<'_>) -> Result<Outcome> {
    installer_e2e(ctx, "podman")
}

fn installer_e2e(ctx: &mut Ctx<'_>, engine: &str) -> Result<Outcome> {
    let suite = paths::project_root().join("xtask/tests/installer");
    let how =
        format!("start {engine} (.ci/engines.sh does it as root) until `{engine} info` works");
    if cmd!(ctx.sh, "{engine} info")
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

fn bench(ctx: &mut Ctx<'_>) -> Result<Outcome> {
    let cargo = paths::cargo();
    cmd!(ctx.sh, "{cargo} xtask bench --quick")
        .run()
        .context("the quick benchmark failed (above)")?;
    Ok(Outcome::Passed)
}

fn instructions(ctx: &mut Ctx<'_>) -> Result<Outcome> {
    let cargo = paths::cargo();
    cmd!(ctx.sh, "{cargo} xtask bench --instructions --check-budget")
        .run()
        .context(
            "ai-proxy's instructions per request are over budget, or were not measured (above)",
        )?;
    Ok(Outcome::Passed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_names_steps_that_exist() {
        for tool in tools::TOOLS {
            for used in tool.used_by {
                assert!(
                    *used == tools::CROSS || STEPS.iter().any(|s| s.name == *used),
                    "tools::TOOLS: {} is used by `{used}`, which is not a test step",
                    tool.name
                );
            }
        }
    }
}
