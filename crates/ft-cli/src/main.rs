//! `bert-ft`: the command line of the project. `cargo xtask` builds it with the backend
//! features a command needs and runs it.

mod backend;
mod bench;
mod curves;
mod encode;
mod finetune;
mod interrupt;
mod max_length;
mod predict;
mod process;
mod training_flags;

use anyhow::Result;
use backend::Backend;
use ft_trainer::distributed::ProcessGroup;

// burn reallocates the same activation sizes every step; with glibc each comes back from the
// OS as fresh pages the kernel must zero. mimalloc reuses them, and keeps them for good where
// the backend allocates through it (`process::keep_freed_memory`, set in `run`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clap::{Parser, Subcommand};

// A flag given twice takes its last value, as argparse (and so transformers'
// `HfArgumentParser`) does: scripts append overrides to a base command line.
#[derive(Parser)]
#[command(
    name = "bert-ft",
    version,
    about = "Fine-tune BERT-family models on GLUE, Trainer-style",
    args_override_self = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Colour in the log lines: on a terminal only (auto), always, or never.
    #[arg(long, global = true, value_enum, default_value_t = LogColor::Auto)]
    log_color: LogColor,
}

/// When log lines carry ANSI colour codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogColor {
    /// When stderr is a terminal: a file or a pipe gets plain text.
    Auto,
    /// Always, for a pager or CI log viewer that renders them.
    Always,
    /// Never.
    Never,
}

impl LogColor {
    fn enabled(self) -> bool {
        match self {
            LogColor::Auto => std::io::IsTerminal::is_terminal(&std::io::stderr()),
            LogColor::Always => true,
            LogColor::Never => false,
        }
    }
}

// Negative numbers are values (`--learning-rate -1`), so that our own checks say what is
// wrong with them rather than clap's "unexpected argument".
#[derive(Subcommand)]
enum Command {
    /// Fine-tunes on GLUE MRPC as the course notebook does (`finetune --task mrpc`).
    #[command(allow_negative_numbers = true)]
    FinetuneMrpc(finetune::FinetuneArgs),
    /// Fine-tunes on a GLUE task, evaluates, and writes the results.
    #[command(allow_negative_numbers = true)]
    Finetune(finetune::FinetuneArgs),
    /// Writes a fine-tuned model's predictions for a GLUE-format TSV file.
    #[command(allow_negative_numbers = true)]
    Predict(predict::PredictArgs),
    /// Writes the model inputs of a split, one JSON object per row.
    #[command(allow_negative_numbers = true)]
    Encode(encode::EncodeArgs),
    /// One benchmark measurement, as JSON on stdout (driven by `cargo xtask bench`).
    #[command(subcommand, hide = true)]
    Bench(bench::BenchCommand),
}

impl Command {
    /// The backend the command computes on, if it computes.
    fn backend(&self) -> Option<Backend> {
        match self {
            Command::FinetuneMrpc(args) | Command::Finetune(args) => Some(args.backend),
            Command::Predict(args) => Some(args.backend),
            Command::Encode(_) => None,
            Command::Bench(command) => command.backend(),
        }
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // Before any work, so that a build without MPI refuses to run as one of several
    // processes.
    let group = match ProcessGroup::from_env() {
        Ok(group) => group,
        Err(error) => {
            eprintln!("error: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    init_tracing(&group, cli.log_color);
    let Err(error) = run(cli.command, &group) else {
        return std::process::ExitCode::SUCCESS;
    };
    let interrupted = error.chain().any(|e| {
        matches!(
            e.downcast_ref(),
            Some(ft_trainer::TrainerError::Interrupted { .. })
        )
    });
    if !group.is_distributed() {
        eprintln!("error: {}", report(&error));
    } else if !interrupted || group.is_world_process_zero() {
        // Every rank is interrupted at the same step: rank 0 says so for all.
        eprintln!("error on rank {}: {}", group.rank(), report(&error));
    }
    if interrupted {
        // Every rank stopped at the same step (the interrupt is agreed), so all end cleanly.
        std::process::ExitCode::from(interrupt::INTERRUPTED_EXIT as u8)
    } else if group.is_distributed() {
        // The other ranks may be waiting for this one in a collective: end them all.
        group.abort(1)
    } else {
        std::process::ExitCode::FAILURE
    }
}

/// The error and its causes on one line, each said once. Some libraries' errors repeat their
/// source's message in their own (hf-hub's "request error: io: …"), so a cause that an earlier
/// message already holds adds nothing.
fn report(error: &anyhow::Error) -> String {
    let mut said: Vec<String> = Vec::new();
    for cause in error.chain() {
        let message = cause.to_string();
        if !said.iter().any(|earlier| earlier.contains(&message)) {
            said.push(message);
        }
    }
    said.join(": ")
}

/// Logs to stderr at `RUST_LOG`'s level (info by default); with several processes, ranks
/// other than 0 log warnings and errors only, as transformers' `log_level_replica` does.
fn init_tracing(group: &ProcessGroup, color: LogColor) {
    let default = if group.is_world_process_zero() {
        "info"
    } else {
        "warn"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(color.enabled())
        .init();
}

fn run(command: Command, group: &ProcessGroup) -> Result<()> {
    // A process-wide allocator setting, made once here, before any tensor is allocated.
    if command
        .backend()
        .is_some_and(Backend::allocates_on_the_heap)
    {
        process::keep_freed_memory();
    }
    // `bench train` and `bench allreduce` run data-parallel; `bench::run` refuses the rest.
    if group.is_distributed()
        && !matches!(
            command,
            Command::FinetuneMrpc(_) | Command::Finetune(_) | Command::Bench(_)
        )
    {
        anyhow::bail!(
            "only `finetune`, `finetune-mrpc` and `bench` run as several processes; this is one \
             of {}",
            group.world_size()
        );
    }
    match command {
        Command::FinetuneMrpc(mut args) => {
            args.task = glue_data::Task::Mrpc;
            finetune::run(&args, group)
        }
        Command::Finetune(args) => finetune::run(&args, group),
        Command::Predict(args) => predict::run(&args),
        Command::Encode(args) => encode::run(&args),
        Command::Bench(command) => bench::run(&command, group),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error that repeats its source's message in its own, as hf-hub's do.
    #[derive(Debug)]
    struct Repeats(std::io::Error);

    impl std::fmt::Display for Repeats {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "request error: {}", self.0)
        }
    }

    impl std::error::Error for Repeats {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_report_says_each_cause_once() {
        let io = std::io::Error::other("failed to lookup address");
        let error = anyhow::Error::new(Repeats(io)).context("loading the model m");
        assert_eq!(
            report(&error),
            "loading the model m: request error: failed to lookup address"
        );
    }
}
