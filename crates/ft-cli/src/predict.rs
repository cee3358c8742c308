//! `bert-ft predict`: a fine-tuned model's predictions for any file of GLUE-format pairs.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use ft_bert::PretrainedOptions;
use ft_bert::prelude::*;
use ft_collate::{AutoTokenizer, EncodedDataset};
use ft_trainer::{Trainer, TrainingArguments};
use glue_data::Task;

use crate::backend::Backend;
use crate::finetune::{compute, write_predictions};
use crate::max_length;

/// Arguments of `predict`.
#[derive(Args, Debug)]
pub struct PredictArgs {
    /// A fine-tuned model folder (or Hub id) with its tokenizer.
    #[arg(long)]
    model: String,
    /// The GLUE task whose columns the input has.
    #[arg(long, default_value = "mrpc")]
    task: Task,
    /// A GLUE-format TSV file, labelled or not.
    #[arg(long)]
    input: PathBuf,
    /// Where to write the predictions TSV.
    #[arg(long)]
    output: PathBuf,
    /// Backend to run on.
    #[arg(long, default_value = "flex")]
    pub backend: Backend,
    /// Rows per batch.
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
}

/// Predicts every row, writes the TSV, and prints the metric when the file has labels.
pub fn run(args: &PredictArgs) -> Result<()> {
    let device = args.backend.device()?;
    println!("Using device: {} ({device:?})", args.backend);
    let split = glue_data::read_tsv_split(&args.input, args.task, "test")?;
    let mut tokenizer = AutoTokenizer::from_pretrained(&args.model)
        .with_context(|| format!("loading the tokenizer of {}", args.model))?;
    let options = PretrainedOptions {
        num_labels: Some(args.task.num_labels()),
        ..PretrainedOptions::default()
    };
    let (model, info) = AutoModelForSequenceClassification::from_pretrained_with_info(
        &args.model,
        &options,
        &device,
    )?;
    if !info.missing_keys.is_empty() {
        anyhow::bail!(
            "{} is not a fine-tuned classifier: it lacks {}",
            args.model,
            info.missing_keys.join(", ")
        );
    }
    if let Some(warning) = max_length::fit_to_model(&mut tokenizer, model.max_sequence_length())? {
        tracing::warn!("{warning}");
    }
    let encoded = Arc::new(EncodedDataset::map(&split, &tokenizer)?);
    let mut training = TrainingArguments::new(std::env::temp_dir().join("bert-ft-predict"));
    training.per_device_eval_batch_size = args.batch_size;
    training.disable_tqdm = true;
    let mut trainer = Trainer::new(model, training, &device)?
        .without_console()
        .with_tokenizer(tokenizer);
    let output = trainer.predict(&encoded)?;
    write_predictions(&args.output, &output.prediction)?;
    println!(
        "wrote {} predictions to {}",
        output.prediction.len(),
        args.output.display()
    );
    if output.prediction.label_ids.is_some() {
        let metric = ft_metrics::glue_metric(args.task.name())?;
        println!("{}", compute(&metric, &output.prediction)?);
    }
    Ok(())
}
