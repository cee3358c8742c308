//! `cargo xtask ci`: the checks CI runs, in order.
//!
//! One build holds every backend this machine can run (flex, ndarray, libtorch on the CPU,
//! wgpu on lavapipe) and MPI; tests pick their devices at run time, and the data-parallel
//! tests start `mpirun`.

use anyhow::Result;
use clap::Args;

use crate::cargo::cargo;

/// Arguments of `ci`.
#[derive(Args, Debug)]
pub struct CiArgs {
    /// Only flex (no libtorch, Vulkan or MPI needed).
    #[arg(long)]
    flex_only: bool,
}

/// The crates with backend features, and the backends CI compiles in.
const BACKEND_CRATES: [&str; 4] = ["ft-collate", "ft-bert", "ft-trainer", "ft-cli"];
const CI_BACKENDS: [&str; 4] = ["flex", "ndarray", "tch", "wgpu"];
/// Data-parallel training over MPI (Open MPI's library and libclang to build).
const MPI_FEATURES: [&str; 2] = ["ft-trainer/mpi", "ft-cli/mpi"];

fn features(flex_only: bool) -> String {
    let backends: &[&str] = if flex_only { &["flex"] } else { &CI_BACKENDS };
    let mpi: &[&str] = if flex_only { &[] } else { &MPI_FEATURES };
    BACKEND_CRATES
        .iter()
        .flat_map(|krate| backends.iter().map(move |b| format!("{krate}/{b}")))
        .chain(mpi.iter().map(|feature| feature.to_string()))
        .collect::<Vec<_>>()
        .join(",")
}

/// Formatting, clippy with warnings denied, then the whole test suite on every backend.
pub fn run(args: &CiArgs) -> Result<()> {
    let features = features(args.flex_only);
    cargo(&["fmt", "--all", "--", "--check"])?;
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--features",
        &features,
        "--",
        "-D",
        "warnings",
    ])?;
    cargo(&[
        "test",
        "--workspace",
        "--all-targets",
        "--features",
        &features,
    ])?;
    cargo(&["test", "--workspace", "--doc", "--features", &features])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_backend_crate_gets_every_backend() {
        let all = features(false);
        assert!(all.contains("ft-bert/tch") && all.contains("ft-cli/wgpu"));
        assert!(all.contains("ft-cli/mpi"));
        assert_eq!(all.split(',').count(), 18);
        assert!(!features(true).contains("tch") && !features(true).contains("mpi"));
    }
}
