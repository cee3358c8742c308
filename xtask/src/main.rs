//! `cargo xtask`: the project's tasks, in Rust so that they run wherever cargo runs.
//!
//! Jobs (`finetune-mrpc`, `finetune`, `predict`, `encode`) build the `bert-ft` binary in
//! release mode with the cargo features their `--backend` needs, then run it. `bench` measures
//! against the Hugging Face Trainer; `ci` is what CI runs.

mod bench;
mod cargo;
mod ci;
mod fuzz;
mod gpu_check;
// Test-only: the layering invariant of the workspace, checked against `cargo metadata`, and
// inside each crate, no circle of files.
#[cfg(test)]
mod imports;
#[cfg(test)]
mod layering;
mod python;
mod setup;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Project tasks for bert-ft")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

/// Arguments passed through to `bert-ft`.
#[derive(clap::Args, Debug)]
struct Passthrough {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

#[derive(Subcommand)]
enum Task {
    /// What CI runs: the machine's set-up, formatting, clippy with warnings denied, then every test.
    Ci(ci::CiArgs),
    /// Writes the encodings of a split as JSON lines (`bert-ft encode`).
    Encode(Passthrough),
    /// Measures speed and memory side by side with the Hugging Face Trainer.
    Bench(bench::BenchArgs),
    /// Fine-tunes BERT on GLUE MRPC as the course notebook does (`bert-ft finetune-mrpc`).
    FinetuneMrpc(Passthrough),
    /// Fine-tunes on any GLUE task (`bert-ft finetune --task ...`).
    Finetune(Passthrough),
    /// Predictions of a fine-tuned model for a GLUE-format TSV (`bert-ft predict`).
    Predict(Passthrough),
    /// Builds what a lent GPU machine runs (binary, data, scripts) into `gpu-check/`.
    GpuCheck(gpu_check::GpuCheckArgs),
    /// Fuzzes the readers of user files (nightly, cargo-fuzz), growing `fuzz/corpus/`.
    Fuzz(fuzz::FuzzArgs),
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Task::Ci(args) => ci::run(&args),
        Task::Encode(p) => cargo::run_cli("encode", &p.args),
        Task::Bench(args) => bench::run(&args),
        Task::FinetuneMrpc(p) => cargo::run_cli("finetune-mrpc", &p.args),
        Task::Finetune(p) => cargo::run_cli("finetune", &p.args),
        Task::Predict(p) => cargo::run_cli("predict", &p.args),
        Task::GpuCheck(args) => gpu_check::run(&args),
        Task::Fuzz(args) => fuzz::run(&args),
    }
}
