//! `bert-ft encode`: shows exactly what the model is given for each row of a split.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use ft_collate::{AutoTokenizer, EncodedDataset};
use glue_data::{DataSource, Task};

/// Arguments of `encode`.
#[derive(Args, Debug)]
pub struct EncodeArgs {
    /// Model folder or Hub id whose tokenizer to use.
    #[arg(long, default_value = "bert-base-uncased")]
    model: String,
    /// GLUE TSV folder, parquet folder or Hub dataset id.
    #[arg(long, default_value = "nyu-mll/glue")]
    dataset: String,
    /// GLUE task (`mrpc`, `sst2`, ...).
    #[arg(long, default_value = "mrpc")]
    task: Task,
    /// Split (`train`, `validation`, `test`, ...).
    #[arg(long, default_value = "train")]
    split: String,
    /// Output file (JSON lines).
    #[arg(long)]
    output: PathBuf,
}

/// One line of the output.
#[derive(serde::Serialize)]
struct Line<'a> {
    idx: u32,
    input_ids: &'a [u32],
    /// Left out where the tokenizer's `model_input_names` have none, as transformers does.
    #[serde(skip_serializing_if = "Option::is_none")]
    token_type_ids: Option<&'a [u8]>,
    attention_mask: Vec<u8>,
}

/// Tokenizes the split as the Trainer would and writes it, in dataset order.
pub fn run(args: &EncodeArgs) -> Result<()> {
    let mut raw = DataSource::from_arg(&args.dataset)
        .load(args.task)
        .with_context(|| format!("loading {} from {}", args.task, args.dataset))?;
    let split = raw.take(&args.split)?;
    let tokenizer = AutoTokenizer::from_pretrained(&args.model)
        .with_context(|| format!("loading the tokenizer of {}", args.model))?;
    let encoded = EncodedDataset::map(&split, &tokenizer)?;
    let file = std::fs::File::create(&args.output)
        .with_context(|| format!("creating {}", args.output.display()))?;
    let mut out = BufWriter::new(file);
    for row in encoded.rows() {
        let line = Line {
            idx: row.idx,
            input_ids: row.input_ids,
            token_type_ids: row.token_type_ids,
            attention_mask: vec![1; row.input_ids.len()],
        };
        serde_json::to_writer(&mut out, &line)?;
        out.write_all(b"\n")?;
    }
    out.flush()
        .with_context(|| format!("writing {}", args.output.display()))?;
    tracing::info!(
        rows = encoded.len(),
        tokens = encoded.num_tokens(),
        output = %args.output.display(),
        "encoded"
    );
    Ok(())
}
