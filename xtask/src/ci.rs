//! `cargo xtask ci`: the checks CI runs, in order.

use anyhow::Result;
use clap::Args;

use crate::cargo::cargo;

/// Arguments of `ci`.
#[derive(Args, Debug)]
pub struct CiArgs {}

/// Formatting, clippy with warnings denied, then the whole test suite.
pub fn run(_args: &CiArgs) -> Result<()> {
    cargo(&["fmt", "--all", "--", "--check"])?;
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    cargo(&["test", "--workspace", "--all-targets"])?;
    cargo(&["test", "--workspace", "--doc"])?;
    Ok(())
}
