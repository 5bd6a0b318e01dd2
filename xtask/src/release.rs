//! `cargo xtask release` (placeholder until the release task lands).

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: &Args) -> anyhow::Result<()> {
    anyhow::bail!("release: not implemented yet")
}
