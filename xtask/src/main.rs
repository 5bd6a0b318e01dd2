//! `cargo xtask`: parses the command line and hands the one `Shell` to the task it names.

mod bench;
mod fs;
mod paths;
mod release;
mod test;
mod tools;

use anyhow::Context;
use clap::{Parser, Subcommand};
use xshell::Shell;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "ai-proxy release tooling")]
pub struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what `release` or `test` needs and is missing (Debian/Ubuntu; sudo when not root).
    Setup(tools::SetupArgs),
    /// Build the static binary and write pkg/: the release tarball, its checksum and installer.sh.
    Release(release::Args),
    /// Gather pkg/'s releases into dist/ under distinct names, with one SHA256SUMS, and verify them.
    Dist(release::dist::Args),
    /// Run every test: unit, integration, SDK, lints on rendered artifacts, container end-to-end.
    Test(test::Args),
    /// Measure ai-proxy against direct and nginx side by side.
    Bench(bench::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let sh = Shell::new().context("starting a shell")?;
    sh.change_dir(paths::project_root());
    match cli.task {
        Task::Setup(cmd) => cmd.run(&sh),
        Task::Release(cmd) => cmd.run(&sh),
        Task::Dist(cmd) => cmd.run(&sh),
        Task::Test(cmd) => cmd.run(&sh),
        Task::Bench(cmd) => cmd.run(&sh),
    }
}
