//! `bert-ft`: the command line of the project. `cargo xtask` builds it with the backend
//! features a command needs and runs it.

mod backend;
mod bench;
mod curves;
mod encode;
mod finetune;
mod interrupt;
mod predict;
mod process;
mod training_flags;

use anyhow::Result;

// burn reallocates the same activation sizes every step; with glibc each comes back from the
// OS as fresh pages the kernel must zero. mimalloc reuses them, and keeps them for good where
// the backend allocates through it (`process::keep_freed_memory`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "bert-ft",
    version,
    about = "Fine-tune BERT-family models on GLUE, Trainer-style"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fine-tunes on GLUE MRPC as the course notebook does (`finetune --task mrpc`).
    FinetuneMrpc(finetune::FinetuneArgs),
    /// Fine-tunes on a GLUE task, evaluates, and writes the results.
    Finetune(finetune::FinetuneArgs),
    /// Writes a fine-tuned model's predictions for a GLUE-format TSV file.
    Predict(predict::PredictArgs),
    /// Writes the model inputs of a split, one JSON object per row.
    Encode(encode::EncodeArgs),
    /// One benchmark measurement, as JSON on stdout (driven by `cargo xtask bench`).
    #[command(subcommand, hide = true)]
    Bench(bench::BenchCommand),
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            let interrupted = error.chain().any(|e| {
                matches!(
                    e.downcast_ref(),
                    Some(ft_trainer::TrainerError::Interrupted { .. })
                )
            });
            eprintln!("error: {error:#}");
            if interrupted {
                std::process::ExitCode::from(interrupt::INTERRUPTED_EXIT as u8)
            } else {
                std::process::ExitCode::FAILURE
            }
        }
    }
}

fn run() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::FinetuneMrpc(mut args) => {
            args.task = glue_data::Task::Mrpc;
            finetune::run(&args)
        }
        Command::Finetune(args) => finetune::run(&args),
        Command::Predict(args) => predict::run(&args),
        Command::Encode(args) => encode::run(&args),
        Command::Bench(command) => bench::run(&command),
    }
}
