//! `cargo xtask bench` (placeholder until the bench task lands).

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: &Args) -> anyhow::Result<()> {
    anyhow::bail!("bench: not implemented yet")
}
