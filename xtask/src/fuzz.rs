//! `cargo xtask fuzz`: runs each cargo-fuzz target of `fuzz/` for a bounded time, starting
//! from the hand-made seeds in `fuzz/seeds/` and growing the committed corpora in
//! `fuzz/corpus/`, which it then minimises (`cargo fuzz cmin`). Needs a nightly toolchain (`rustup toolchain install
//! nightly`); installs cargo-fuzz if it is missing. CI replays the corpora on stable through
//! `crates/fuzz-harness`.

use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::cargo::workspace_root;

/// The targets of `fuzz/Cargo.toml`, one corpus folder each.
pub const TARGETS: [&str; 6] = [
    "glue_tsv",
    "glue_parquet",
    "bert_config",
    "tokenizer_config",
    "safetensors",
    "pytorch",
];

/// Arguments of `fuzz`.
#[derive(Args, Debug)]
pub struct FuzzArgs {
    /// Seconds of fuzzing per target.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Targets to run (default: all).
    #[arg(long, value_delimiter = ',')]
    targets: Vec<String>,
    /// Build with AddressSanitizer (slower; our code has no `unsafe` readers, so the default
    /// relies on panics, timeouts and libFuzzer's memory limits).
    #[arg(long)]
    address_sanitizer: bool,
}

/// `rustup run nightly cargo …`, clear of the stable toolchain's variables.
fn nightly_cargo() -> Command {
    let mut command = Command::new("rustup");
    command
        .args(["run", "nightly", "cargo"])
        .current_dir(workspace_root())
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO")
        .env_remove("RUSTC");
    command
}

fn ensure_cargo_fuzz() -> Result<()> {
    let found = nightly_cargo()
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|out| out.status.success());
    if found {
        return Ok(());
    }
    eprintln!("installing cargo-fuzz");
    let status = nightly_cargo()
        .args(["install", "cargo-fuzz", "--locked"])
        .status()
        .context("running cargo install cargo-fuzz (is rustup's nightly installed?)")?;
    if !status.success() {
        bail!("cargo install cargo-fuzz failed ({status})");
    }
    Ok(())
}

/// Fuzzes each selected target for `seconds`, stopping at the first crash, which libFuzzer
/// leaves in `fuzz/artifacts/<target>/`.
pub fn run(args: &FuzzArgs) -> Result<()> {
    ensure_cargo_fuzz()?;
    let targets: Vec<&str> = if args.targets.is_empty() {
        TARGETS.to_vec()
    } else {
        args.targets.iter().map(String::as_str).collect()
    };
    for target in &targets {
        if !TARGETS.contains(target) {
            bail!("no fuzz target `{target}`; expected one of {TARGETS:?}");
        }
    }
    let sanitizer = if args.address_sanitizer {
        "address"
    } else {
        "none"
    };
    for target in targets {
        let corpus = format!("fuzz/corpus/{target}");
        let seeds = format!("fuzz/seeds/{target}");
        std::fs::create_dir_all(workspace_root().join(&corpus))?;
        eprintln!("fuzzing {target} for {} s", args.seconds);
        let status = nightly_cargo()
            .args(["fuzz", "run", "--fuzz-dir", "fuzz", "--debug-assertions"])
            .args(["--sanitizer", sanitizer, target, &corpus, &seeds, "--"])
            .arg(format!("-max_total_time={}", args.seconds))
            // A reader that allocates without bound or hangs is a failure, not a slow input.
            .args(["-rss_limit_mb=2048", "-malloc_limit_mb=1024", "-timeout=10"])
            .arg("-max_len=262144")
            .status()
            .context("running cargo fuzz")?;
        if !status.success() {
            bail!("fuzz target {target} failed ({status}); see fuzz/artifacts/{target}/");
        }
        // Keep only inputs that add coverage, so the committed corpora stay small.
        let status = nightly_cargo()
            .args(["fuzz", "cmin", "--fuzz-dir", "fuzz", "--debug-assertions"])
            .args(["--sanitizer", sanitizer, target, &corpus])
            .status()
            .context("running cargo fuzz cmin")?;
        if !status.success() {
            bail!("minimising the corpus of {target} failed ({status})");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_has_a_corpus_and_a_binary() {
        let manifest = std::fs::read_to_string(workspace_root().join("fuzz/Cargo.toml")).unwrap();
        for target in TARGETS {
            assert!(workspace_root().join("fuzz/corpus").join(target).is_dir());
            assert!(workspace_root().join("fuzz/seeds").join(target).is_dir());
            assert!(manifest.contains(&format!("name = \"{target}\"")));
        }
    }
}
