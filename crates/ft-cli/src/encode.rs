//! `bert-ft encode`: shows exactly what the model is given for each row of a split.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use ft_bert::BertConfig;
use ft_collate::{AutoTokenizer, EncodedDataset};
use glue_data::{DataSource, Task};

use crate::max_length;

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
    let mut tokenizer = AutoTokenizer::from_pretrained(&args.model)
        .with_context(|| format!("loading the tokenizer of {}", args.model))?;
    if let Some(max_sequence_length) = model_positions(&args.model)?
        && let Some(warning) = max_length::fit_to_model(&mut tokenizer, max_sequence_length)?
    {
        tracing::warn!("{warning}");
    }
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

/// The longest input `--model`'s config allows; `None` for a tokenizer folder without a
/// `config.json`, which names no model.
fn model_positions(model: &str) -> Result<Option<usize>> {
    if Path::new(model).is_dir() && !Path::new(model).join("config.json").is_file() {
        return Ok(None);
    }
    let config = BertConfig::from_pretrained(model, None)
        .with_context(|| format!("reading the config of {model}"))?;
    Ok(Some(config.max_sequence_length()))
}
