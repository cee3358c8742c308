//! `bert-ft finetune`: the course notebook as one command, for any GLUE task.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use burn::tensor::Device;
use clap::Args;
use ft_bert::prelude::*;
use ft_bert::{BertConfig, PretrainedOptions};
use ft_collate::{AutoTokenizer, EncodedDataset, EncodedDatasetDict};
use ft_metrics::GlueMetric;
use ft_trainer::distributed::ProcessGroup;
use ft_trainer::{
    EarlyStoppingCallback, EvalPrediction, IntervalStrategy, ResumeFrom, Trainer,
    TrainingArguments, glue_compute_metrics, python_dict,
};
use glue_data::{DataSource, Task};

use crate::backend::Backend;
use crate::max_length;
use crate::training_flags::TrainingFlags;

/// Arguments of `finetune`.
#[derive(Args, Debug)]
pub struct FinetuneArgs {
    /// GLUE task.
    #[arg(long, default_value = "mrpc")]
    pub task: Task,
    /// Model: a Hub id or a local folder.
    #[arg(long, default_value = "bert-base-uncased")]
    pub model: String,
    /// Dataset: a Hub id (`nyu-mll/glue`), or a folder of GLUE TSV or parquet files.
    #[arg(long, default_value = "nyu-mll/glue")]
    pub dataset: String,
    /// Backend: flex, ndarray, tch-cpu, tch-cuda[:N], wgpu[:N] or cuda[:N].
    #[arg(long, default_value = "flex")]
    pub backend: Backend,
    /// Continue from a checkpoint folder, or `latest` in output_dir.
    #[arg(long)]
    pub resume_from_checkpoint: Option<ResumeFrom>,
    /// Build the model from this `config.json` with random weights
    /// (`AutoModelForSequenceClassification.from_config`); `--model` then only gives the
    /// tokenizer.
    #[arg(long)]
    pub init_from_config: Option<PathBuf>,
    /// Stop after this many evaluations without improvement of `--metric-for-best-model`
    /// (transformers' `EarlyStoppingCallback`).
    #[arg(long)]
    pub early_stopping_patience: Option<usize>,
    /// How much the metric must improve to count, with `--early-stopping-patience`.
    #[arg(long, requires = "early_stopping_patience", value_parser = crate::training_flags::finite)]
    pub early_stopping_threshold: Option<f64>,
    /// TrainingArguments.
    #[command(flatten)]
    pub training: TrainingFlags,
}

impl FinetuneArgs {
    /// The early-stopping callback the flags ask for, refused before any work when the
    /// arguments give it nothing to watch.
    fn early_stopping(
        &self,
        training: &TrainingArguments,
    ) -> Result<Option<EarlyStoppingCallback>> {
        let Some(patience) = self.early_stopping_patience else {
            return Ok(None);
        };
        let threshold = self.early_stopping_threshold.unwrap_or(0.0);
        if threshold < 0.0 {
            anyhow::bail!("--early-stopping-threshold must be >= 0, got {threshold}");
        }
        EarlyStoppingCallback::check_arguments(training).map_err(|message| {
            anyhow::anyhow!(
                "--early-stopping-patience: {message} (--metric-for-best-model, and \
                 --eval-strategy steps or epoch)"
            )
        })?;
        Ok(Some(EarlyStoppingCallback::new(patience, threshold)))
    }

    /// `--resume-from-checkpoint`'s folder, refused before any work when it is not there.
    fn check_resume_path(&self) -> Result<()> {
        match &self.resume_from_checkpoint {
            Some(ResumeFrom::Path(path)) if !path.is_dir() => anyhow::bail!(
                "--resume-from-checkpoint {}: no checkpoint folder there (give a \
                 `checkpoint-N` folder, or `latest` for the last one in --output-dir)",
                path.display()
            ),
            _ => Ok(()),
        }
    }
}

/// The notebook's `TrainingArguments("test-trainer", eval_strategy="epoch")`.
fn notebook_defaults() -> TrainingArguments {
    TrainingArguments::new("test-trainer").with_eval_strategy(IntervalStrategy::Epoch)
}

/// Prints to stdout on rank 0 only: the other processes of a job would repeat every line.
macro_rules! say {
    ($group:expr, $($arg:tt)*) => {
        if $group.is_world_process_zero() {
            println!($($arg)*);
        }
    };
}

/// Runs the whole notebook: load, tokenize, fine-tune, evaluate, predict, write results. With
/// several processes (under `mpirun`), each trains on its share of the data on its own device,
/// and rank 0 prints and writes.
pub fn run(args: &FinetuneArgs, group: &ProcessGroup) -> Result<()> {
    let training = args.training.to_arguments(notebook_defaults())?;
    let early_stopping = args.early_stopping(&training)?;
    args.check_resume_path()?;
    // Before loading anything: a bad output_dir would otherwise fail at the first checkpoint.
    training.create_output_dir()?;
    let backend = if group.is_distributed() {
        args.backend.for_local_rank(group.local_rank())
    } else {
        args.backend
    };
    let device = backend.device()?;
    say!(group, "Using device: {backend} ({device:?})");
    if group.is_distributed() {
        report_processes(group, backend);
    }

    let raw = DataSource::from_arg(&args.dataset)
        .load(args.task)
        .with_context(|| format!("loading GLUE {} from {}", args.task, args.dataset))?;
    say!(group, "{raw}");
    let mut tokenizer = AutoTokenizer::from_pretrained(&args.model)
        .with_context(|| format!("loading the tokenizer of {}", args.model))?;
    let model = load_model(args, training.seed, &device, group)?;
    if let Some(warning) = max_length::fit_to_model(&mut tokenizer, model.max_sequence_length())?
        && group.is_world_process_zero()
    {
        tracing::warn!("{warning}");
    }
    let tokenized = EncodedDatasetDict::map(&raw, &tokenizer)?;
    let data_collator = ft_collate::DataCollatorWithPadding::new(&tokenizer);
    say!(group, "{data_collator}");

    let train = Arc::new(tokenized.split("train")?.clone());
    let validation = Arc::new(tokenized.split(args.task.validation_split())?.clone());
    let metric = ft_metrics::glue_metric(args.task.name())?;
    let mut trainer = Trainer::new(model, training, &device)?
        .with_train_dataset(train)
        .with_eval_dataset(validation.clone())
        .with_data_collator(data_collator)
        .with_tokenizer(tokenizer)
        .with_compute_metrics(glue_compute_metrics(metric.clone()))
        .with_interrupt_flag(crate::interrupt::flag())
        .with_process_group(group.clone());
    if let Some(callback) = early_stopping {
        trainer = trainer.with_callback(callback);
    }
    train_and_report(&mut trainer, args, &validation, &metric, group)
}

/// `--model`'s weights, or a random model of `--init-from-config`'s architecture.
fn load_model(
    args: &FinetuneArgs,
    seed: u64,
    device: &Device,
    group: &ProcessGroup,
) -> Result<AutoModelForSequenceClassification> {
    if let Some(path) = &args.init_from_config {
        let mut config = BertConfig::from_file(path)?;
        config.set_num_labels(args.task.num_labels());
        say!(
            group,
            "Initialising {} at random from {}",
            config.architecture.class_name(),
            path.display()
        );
        return Ok(AutoModelForSequenceClassification::from_config(
            &config, seed, device,
        )?);
    }
    let options = PretrainedOptions {
        num_labels: Some(args.task.num_labels()),
        seed,
        hub: None,
    };
    let (model, info) = AutoModelForSequenceClassification::from_pretrained_with_info(
        &args.model,
        &options,
        device,
    )
    .with_context(|| format!("loading the model {}", args.model))?;
    if group.is_world_process_zero() {
        print!("{info}");
    }
    Ok(model)
}

/// The notebook's last cells: train, save, evaluate, predict the validation split, and
/// write what `run_glue.py` writes.
fn train_and_report(
    trainer: &mut Trainer<AutoModelForSequenceClassification>,
    args: &FinetuneArgs,
    validation: &Arc<EncodedDataset>,
    metric: &GlueMetric,
    group: &ProcessGroup,
) -> Result<()> {
    let output_dir = trainer.args().output_dir.clone();
    let train_output = trainer
        .train(args.resume_from_checkpoint.clone())
        .with_context(|| match &args.resume_from_checkpoint {
            Some(ResumeFrom::Path(path)) => {
                format!("training from --resume-from-checkpoint {}", path.display())
            }
            Some(ResumeFrom::Latest) => "training from the last checkpoint".to_string(),
            None => "training".to_string(),
        })?;
    say!(group, "{train_output}");
    say!(group, "{}", stop_report(trainer.state(), trainer.args()));
    trainer.save_model(&output_dir)?;
    trainer.save_state()?;
    trainer.log_metrics("train", &train_output.metrics);
    trainer.save_metrics("train", &train_output.metrics)?;

    let eval_metrics = trainer.evaluate().context("evaluating")?;
    trainer.log_metrics("eval", &eval_metrics);
    trainer.save_metrics("eval", &eval_metrics)?;

    // predictions = trainer.predict(tokenized_datasets["validation"])
    let predictions = trainer.predict(validation).context("predicting")?;
    let (rows, labels) = predictions.predictions_shape();
    say!(group, "({rows}, {labels}) ({rows},)");
    let scores = compute(metric, &predictions.prediction)?;
    say!(group, "{scores}");
    if group.is_world_process_zero() {
        write_predictions(
            &output_dir.join("predict_results.tsv"),
            &predictions.prediction,
        )?;
        crate::curves::write(&output_dir, trainer.state(), trainer.step_history())?;
    }
    Ok(())
}

/// Where training stopped and the best checkpoint, if one was chosen: what a user of early
/// stopping looks for first.
fn stop_report(state: &ft_trainer::TrainerState, args: &TrainingArguments) -> String {
    let mut report = if state.global_step < state.max_steps {
        format!(
            "Training stopped early at step {} of {} (epoch {:.2}).",
            state.global_step, state.max_steps, state.epoch
        )
    } else {
        format!("Training ran all {} steps.", state.max_steps)
    };
    if let (Some(best), Some(metric), Some(value)) = (
        &state.best_model_checkpoint,
        &args.metric_for_best_model,
        state.best_metric,
    ) {
        report += &format!(" Best checkpoint: {best} ({metric} = {value:.4}).");
    }
    report
}

/// One line per process on stderr: its rank, machine, device and CPU threads, which decide
/// its speed (Open MPI binds each rank to its cores, and rayon uses the ones it is bound to).
fn report_processes(group: &ProcessGroup, backend: Backend) {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .unwrap_or_default();
    eprintln!(
        "rank {} of {} (local rank {} of {} on {host}): {backend}, {threads} CPU thread(s)",
        group.rank(),
        group.world_size(),
        group.local_rank(),
        group.local_world_size(),
    );
}

/// `metric.compute(predictions=argmax(logits), references=label_ids)`, as a Python dict.
pub fn compute(metric: &ft_metrics::GlueMetric, prediction: &EvalPrediction) -> Result<String> {
    let metrics = glue_compute_metrics(metric.clone())(prediction)?;
    Ok(python_dict(
        metric
            .keys()
            .iter()
            .filter_map(|key| metrics.get(*key).map(|v| (*key, *v))),
    ))
}

/// `predict_results.tsv`: `index`, `prediction` (class id, or score for regression) and each
/// logit.
pub fn write_predictions(path: &Path, prediction: &EvalPrediction) -> Result<PathBuf> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
    );
    let logits: Vec<String> = (0..prediction.num_labels)
        .map(|i| format!("logit_{i}"))
        .collect();
    writeln!(out, "index\tprediction\t{}", logits.join("\t"))?;
    let classes = prediction.argmax();
    for (i, class) in classes.iter().enumerate() {
        let row = prediction.row(i);
        let predicted = if prediction.num_labels == 1 {
            row[0].to_string()
        } else {
            class.to_string()
        };
        let values: Vec<String> = row.iter().map(|v| v.to_string()).collect();
        writeln!(out, "{i}\t{predicted}\t{}", values.join("\t"))?;
    }
    out.flush()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path.to_path_buf())
}
