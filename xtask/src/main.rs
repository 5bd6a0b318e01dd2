//! `cargo xtask`: the project's build, release, test and benchmark scripts, in Rust.

mod bench;
mod paths;
mod release;
mod test;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "ai-proxy release tooling")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Build the static binary and write pkg/: the release tarball, its checksum and installer.sh.
    Release(release::Args),
    /// Run every test: unit, integration, SDK, lints on rendered artifacts, container end-to-end.
    Test(test::Args),
    /// Measure ai-proxy against direct and nginx side by side.
    Bench(bench::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().task {
        Task::Release(args) => release::run(&args).map(drop),
        Task::Test(args) => test::run(&args),
        Task::Bench(args) => bench::run(&args),
    }
}
