//! Every `TrainingArguments` field as a `--kebab-case` flag.
//!
//! The arguments come in three layers, each replacing only what it sets: the command's own
//! defaults (for `finetune`, the notebook's `TrainingArguments("test-trainer",
//! eval_strategy="epoch")`), then the keys of `--training-args-json`, then the flags given.
//! Both the file and the flags go through `TrainingArguments::merge_json`, so a flag is checked
//! exactly as the same key in a file is.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use ft_trainer::{
    IntervalStrategy, OptimizerNames, SaveStrategy, SchedulerType, TrainSamplingStrategy,
    TrainingArguments,
};
use serde::Serialize;

/// `TrainingArguments` on the command line; unset flags keep the values of
/// `--training-args-json`, or else the command's defaults.
#[derive(Args, Debug, Default, Serialize)]
pub struct TrainingFlags {
    /// Read the arguments from a JSON file (such as a checkpoint's `training_args.json`, or
    /// transformers' `to_json_string()`): its keys replace the command's defaults, and flags
    /// replace its values.
    #[arg(long)]
    #[serde(skip)]
    pub training_args_json: Option<PathBuf>,
    /// Where checkpoints and results go.
    #[arg(long)]
    pub output_dir: Option<PathBuf>,
    /// no | steps | epoch.
    #[arg(long)]
    pub eval_strategy: Option<IntervalStrategy>,
    /// Steps between evaluations (below 1: a fraction of all steps).
    #[arg(long, value_parser = finite)]
    pub eval_steps: Option<f64>,
    /// no | steps | epoch.
    #[arg(long)]
    pub logging_strategy: Option<IntervalStrategy>,
    /// Steps between logs (below 1: a fraction of all steps).
    #[arg(long, value_parser = finite)]
    pub logging_steps: Option<f64>,
    /// Also log after the first step.
    #[arg(long)]
    pub logging_first_step: Option<bool>,
    /// no | steps | epoch | best.
    #[arg(long)]
    pub save_strategy: Option<SaveStrategy>,
    /// Steps between checkpoints (below 1: a fraction of all steps).
    #[arg(long, value_parser = finite)]
    pub save_steps: Option<f64>,
    /// Keep at most this many checkpoints.
    #[arg(long)]
    pub save_total_limit: Option<usize>,
    /// Epochs (fractions allowed).
    #[arg(long, value_parser = finite)]
    pub num_train_epochs: Option<f64>,
    /// Optimizer steps, overriding the epochs when positive.
    #[arg(long, allow_hyphen_values = true)]
    pub max_steps: Option<i64>,
    /// Training batch size.
    #[arg(long)]
    pub per_device_train_batch_size: Option<usize>,
    /// Evaluation batch size.
    #[arg(long)]
    pub per_device_eval_batch_size: Option<usize>,
    /// Peak learning rate.
    #[arg(long, value_parser = finite)]
    pub learning_rate: Option<f64>,
    /// Decoupled weight decay.
    #[arg(long, value_parser = finite)]
    pub weight_decay: Option<f64>,
    /// AdamW beta1.
    #[arg(long, value_parser = finite)]
    pub adam_beta1: Option<f64>,
    /// AdamW beta2.
    #[arg(long, value_parser = finite)]
    pub adam_beta2: Option<f64>,
    /// AdamW epsilon.
    #[arg(long, value_parser = finite)]
    pub adam_epsilon: Option<f64>,
    /// Global gradient-norm clip (0 disables).
    #[arg(long, value_parser = finite)]
    pub max_grad_norm: Option<f64>,
    /// Label smoothing of the classification loss (0 disables it).
    #[arg(long, value_parser = finite)]
    pub label_smoothing_factor: Option<f64>,
    /// linear | cosine | constant | constant_with_warmup.
    #[arg(long)]
    pub lr_scheduler_type: Option<SchedulerType>,
    /// Warm-up steps (below 1: a fraction of all steps).
    #[arg(long, value_parser = finite)]
    pub warmup_steps: Option<f64>,
    /// Micro-batches per optimizer step.
    #[arg(long)]
    pub gradient_accumulation_steps: Option<usize>,
    /// Recompute each encoder layer's activations in the backward pass (less memory);
    /// `--gradient-checkpointing` is its name before transformers 5.24.
    #[arg(long, alias = "gradient-checkpointing")]
    pub activation_checkpointing: Option<bool>,
    /// Seed of the head, data order and dropout.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Seed of the data order only.
    #[arg(long)]
    pub data_seed: Option<u64>,
    /// Reload the best checkpoint at the end.
    #[arg(long)]
    pub load_best_model_at_end: Option<bool>,
    /// Evaluate once before the first step.
    #[arg(long)]
    pub eval_on_start: Option<bool>,
    /// On SIGTERM, finish the step, write a checkpoint and stop.
    #[arg(long)]
    pub enable_jit_checkpoint: Option<bool>,
    /// Metric deciding the best checkpoint.
    #[arg(long)]
    pub metric_for_best_model: Option<String>,
    /// Whether larger is better for that metric.
    #[arg(long)]
    pub greater_is_better: Option<bool>,
    /// Drop the last incomplete batch.
    #[arg(long)]
    pub dataloader_drop_last: Option<bool>,
    /// random | sequential | group_by_length.
    #[arg(long)]
    pub train_sampling_strategy: Option<TrainSamplingStrategy>,
    /// Deprecated: `--train-sampling-strategy group_by_length`.
    #[arg(long)]
    pub group_by_length: Option<bool>,
    /// adamw_torch_fused | adamw_torch (the same update).
    #[arg(long)]
    pub optim: Option<OptimizerNames>,
    /// Integrations to report to: tensorboard, all or none.
    #[arg(long, num_args = 1..)]
    pub report_to: Option<Vec<String>>,
    /// Hide the progress bar.
    #[arg(long)]
    pub disable_tqdm: Option<bool>,
    /// Train with bfloat16 compute.
    #[arg(long)]
    pub bf16: Option<bool>,
    /// Train with float16 compute and loss scaling.
    #[arg(long)]
    pub fp16: Option<bool>,
}

/// A finite number: NaN and infinities cannot be written to JSON, and would pass the range
/// checks unnoticed.
pub(crate) fn finite(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() => Ok(value),
        Ok(value) => Err(format!("{value} is not a finite number")),
        Err(e) => Err(e.to_string()),
    }
}

impl TrainingFlags {
    /// The arguments: `base`, then the JSON file's keys, then every given flag, validated.
    pub fn to_arguments(&self, base: TrainingArguments) -> Result<TrainingArguments> {
        let args = match &self.training_args_json {
            Some(path) => base.merge_json_file(path)?,
            None => base,
        };
        let mut given = serde_json::to_value(self).context("reading the flags")?;
        if let Some(flags) = given.as_object_mut() {
            // A flag not given is null; a given one never is.
            flags.retain(|_, value| !value.is_null());
        }
        let args = args
            .merge_json(given)
            .context("applying the command-line flags")?;
        Ok(args.validated()?)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use clap::{CommandFactory, Parser};

    use super::*;

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        training: TrainingFlags,
    }

    fn parse(flags: &[&str]) -> TrainingFlags {
        let argv = std::iter::once("bert-ft").chain(flags.iter().copied());
        Command::try_parse_from(argv).unwrap().training
    }

    #[test]
    fn every_training_argument_has_a_flag() {
        let fields: BTreeSet<String> = serde_json::to_value(TrainingArguments::default())
            .unwrap()
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        let flags: BTreeSet<String> = Command::command()
            .get_arguments()
            .map(|arg| arg.get_id().to_string())
            .filter(|id| !["training_args_json", "group_by_length"].contains(&id.as_str()))
            .collect();
        assert_eq!(flags, fields);
    }

    #[test]
    fn the_command_defaults_then_the_json_then_the_flags() {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("args.json");
        std::fs::write(
            &json,
            r#"{"learning_rate": 1e-3, "num_train_epochs": 1, "seed": 7}"#,
        )
        .unwrap();
        let base =
            TrainingArguments::new("test-trainer").with_eval_strategy(IntervalStrategy::Epoch);
        let flags = parse(&[
            "--training-args-json",
            json.to_str().unwrap(),
            "--learning-rate",
            "2e-5",
            "--report-to",
            "none",
            "--group-by-length",
            "true",
        ]);
        let args = flags.to_arguments(base).unwrap();
        assert_eq!(args.learning_rate, 2e-5, "the flag wins over the file");
        assert_eq!(args.num_train_epochs, 1.0, "the file wins over the command");
        assert_eq!(args.seed, 7);
        assert_eq!(
            args.eval_strategy,
            IntervalStrategy::Epoch,
            "the command's default stays"
        );
        assert_eq!(args.output_dir, PathBuf::from("test-trainer"));
        assert_eq!(
            args.train_sampling_strategy,
            TrainSamplingStrategy::GroupByLength
        );
        assert_eq!(args.per_device_train_batch_size, 8, "transformers' default");
    }

    #[test]
    fn a_bad_key_or_flag_value_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("args.json");
        std::fs::write(&json, r#"{"num_train_epoch": 1}"#).unwrap();
        let flags = parse(&["--training-args-json", json.to_str().unwrap()]);
        let error = format!(
            "{:#}",
            flags
                .to_arguments(TrainingArguments::default())
                .unwrap_err()
        );
        assert!(error.contains("`num_train_epoch`"), "{error}");
        assert!(
            error.contains("did you mean `num_train_epochs`?"),
            "{error}"
        );

        let refused = Command::try_parse_from(["bert-ft", "--max-grad-norm", "inf"]);
        assert!(
            refused.is_err(),
            "a non-finite flag is refused, not dropped"
        );

        let flags = parse(&["--report-to", "wandb"]);
        let error = format!(
            "{:#}",
            flags
                .to_arguments(TrainingArguments::default())
                .unwrap_err()
        );
        assert!(error.contains("`wandb` is not an integration"), "{error}");
    }
}
