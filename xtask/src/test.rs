//! `cargo xtask test` (placeholder until the test task lands).

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: &Args) -> anyhow::Result<()> {
    anyhow::bail!("test: not implemented yet")
}
