//! `bert-ft bench …`: single measurements for `cargo xtask bench`, one JSON object on stdout.
//! The xtask runs them interleaved with the same work in Python and takes medians.

use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use ft_collate::{AutoTokenizer, EncodedDataset};
use glue_data::{DataSource, Task};

/// Which measurement to take.
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Pairs per second of tokenizing a split (the `dataset.map` step).
    Tokenize(TokenizeArgs),
}

/// Arguments of `bench tokenize`.
#[derive(Args, Debug)]
pub struct TokenizeArgs {
    /// Model folder or Hub id whose tokenizer to use.
    #[arg(long)]
    model: String,
    /// GLUE TSV folder, parquet folder or Hub dataset id.
    #[arg(long)]
    dataset: String,
    /// GLUE task.
    #[arg(long, default_value = "mrpc")]
    task: Task,
    /// Split to tokenize.
    #[arg(long, default_value = "train")]
    split: String,
}

/// Runs one measurement and prints its JSON.
pub fn run(command: &BenchCommand) -> Result<()> {
    match command {
        BenchCommand::Tokenize(args) => tokenize(args),
    }
}

fn tokenize(args: &TokenizeArgs) -> Result<()> {
    let mut raw = DataSource::from_arg(&args.dataset)
        .load(args.task)
        .with_context(|| format!("loading {}", args.dataset))?;
    let split = raw.take(&args.split)?;
    let tokenizer = AutoTokenizer::from_pretrained(&args.model)?;
    let start = Instant::now();
    let encoded = EncodedDataset::map(&split, &tokenizer)?;
    let seconds = start.elapsed().as_secs_f64();
    let result = serde_json::json!({
        "pairs": encoded.len(),
        "tokens": encoded.num_tokens(),
        "seconds": seconds,
        "pairs_per_second": encoded.len() as f64 / seconds,
        "threads": rayon_threads(),
    });
    println!("{result}");
    Ok(())
}

fn rayon_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}
