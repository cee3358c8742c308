//! Every `TrainingArguments` field as a `--kebab-case` flag.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use ft_trainer::{IntervalStrategy, SaveStrategy, SchedulerType, TrainingArguments};

/// `TrainingArguments` on the command line; unset flags keep the defaults (or the values of
/// `--training-args-json`).
#[derive(Args, Debug, Default)]
pub struct TrainingFlags {
    /// Read the arguments from a JSON file first (flags override it).
    #[arg(long)]
    pub training_args_json: Option<PathBuf>,
    /// Where checkpoints and results go.
    #[arg(long)]
    pub output_dir: Option<PathBuf>,
    /// no | steps | epoch.
    #[arg(long)]
    pub eval_strategy: Option<IntervalStrategy>,
    /// Steps between evaluations (below 1: a fraction of all steps).
    #[arg(long)]
    pub eval_steps: Option<f64>,
    /// no | steps | epoch.
    #[arg(long)]
    pub logging_strategy: Option<IntervalStrategy>,
    /// Steps between logs (below 1: a fraction of all steps).
    #[arg(long)]
    pub logging_steps: Option<f64>,
    /// Also log after the first step.
    #[arg(long)]
    pub logging_first_step: Option<bool>,
    /// no | steps | epoch | best.
    #[arg(long)]
    pub save_strategy: Option<SaveStrategy>,
    /// Steps between checkpoints (below 1: a fraction of all steps).
    #[arg(long)]
    pub save_steps: Option<f64>,
    /// Keep at most this many checkpoints.
    #[arg(long)]
    pub save_total_limit: Option<usize>,
    /// Epochs (fractions allowed).
    #[arg(long)]
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
    #[arg(long)]
    pub learning_rate: Option<f64>,
    /// Decoupled weight decay.
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// AdamW beta1.
    #[arg(long)]
    pub adam_beta1: Option<f64>,
    /// AdamW beta2.
    #[arg(long)]
    pub adam_beta2: Option<f64>,
    /// AdamW epsilon.
    #[arg(long)]
    pub adam_epsilon: Option<f64>,
    /// Global gradient-norm clip (0 disables).
    #[arg(long)]
    pub max_grad_norm: Option<f64>,
    /// linear | cosine | constant | constant_with_warmup.
    #[arg(long)]
    pub lr_scheduler_type: Option<SchedulerType>,
    /// Warm-up steps (below 1: a fraction of all steps).
    #[arg(long)]
    pub warmup_steps: Option<f64>,
    /// Micro-batches per optimizer step.
    #[arg(long)]
    pub gradient_accumulation_steps: Option<usize>,
    /// Seed of the head, data order and dropout.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Seed of the data order only.
    #[arg(long)]
    pub data_seed: Option<u64>,
    /// Reload the best checkpoint at the end.
    #[arg(long)]
    pub load_best_model_at_end: Option<bool>,
    /// Metric deciding the best checkpoint.
    #[arg(long)]
    pub metric_for_best_model: Option<String>,
    /// Whether larger is better for that metric.
    #[arg(long)]
    pub greater_is_better: Option<bool>,
    /// Drop the last incomplete batch.
    #[arg(long)]
    pub dataloader_drop_last: Option<bool>,
    /// Batch rows of similar length together.
    #[arg(long)]
    pub group_by_length: Option<bool>,
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

macro_rules! apply {
    ($flags:ident, $args:ident, $($field:ident),*; $($opt:ident),*) => {
        $(if let Some(value) = $flags.$field.clone() { $args.$field = value; })*
        $(if let Some(value) = $flags.$opt.clone() { $args.$opt = Some(value); })*
    };
}

impl TrainingFlags {
    /// The arguments: `base` (or the JSON file), with every given flag applied, validated.
    pub fn to_arguments(&self, base: TrainingArguments) -> Result<TrainingArguments> {
        let mut args = match &self.training_args_json {
            Some(path) => TrainingArguments::from_json_file(path)?,
            None => base,
        };
        apply!(self, args,
            output_dir, eval_strategy, logging_strategy, logging_steps, logging_first_step,
            save_strategy, save_steps, num_train_epochs, max_steps, per_device_train_batch_size,
            per_device_eval_batch_size, learning_rate, weight_decay, adam_beta1, adam_beta2,
            adam_epsilon, max_grad_norm, lr_scheduler_type, warmup_steps,
            gradient_accumulation_steps, seed, load_best_model_at_end, dataloader_drop_last,
            group_by_length, disable_tqdm, bf16, fp16;
            eval_steps, save_total_limit, data_seed, metric_for_best_model, greater_is_better);
        Ok(args.validated()?)
    }
}
