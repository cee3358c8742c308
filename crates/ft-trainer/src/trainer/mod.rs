//! The `Trainer`: what it holds, how it is built, and the pieces every part of the loop
//! shares. The loop itself is in parts, named as transformers names them:
//!
//! - [`train`](Trainer::train) (`train.rs`): set-up, step counting, the epoch loop, `finalize`;
//! - `training_step` and `optimizer_step` (`step.rs`): one micro-batch's forward and backward,
//!   then one update, whose `StepOutcome` the loop acts on;
//! - `maybe_log_save_evaluate` (`flow.rs`), with `DefaultFlowCallback`'s decisions.

mod flow;
mod jit_checkpoint;
pub(crate) mod position;
mod progress;
mod step;
mod train;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use burn::tensor::Device;
use ft_collate::{
    AutoTokenizer, DataCollatorWithPadding, DataLoader, EncodedDataset, Sampler, Shard,
};
use glue_data::LabelColumn;

use crate::args::{Integration, TrainSamplingStrategy, TrainingArguments};
use crate::callbacks::{CallbackHandler, ConsoleCallback, TrainerCallback};
use crate::distributed::ProcessGroup;
use crate::error::{SetupError, TrainerError};
use crate::metrics::{ComputeMetrics, Metrics};
use crate::model::TrainableModel;
use crate::optimizer::{AdamW, AdamWConfig};
use crate::precision::{LossScaler, Precision};
use crate::state::{StepRecord, TrainerControl, TrainerState};
use crate::tensorboard::TensorBoardCallback;
pub(crate) use progress::Progress;

/// Where `train` resumes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResumeFrom {
    /// The last checkpoint in `output_dir` (`resume_from_checkpoint=True`).
    Latest,
    /// A given checkpoint folder.
    Path(PathBuf),
}

impl std::str::FromStr for ResumeFrom {
    type Err = std::convert::Infallible;

    /// `latest` (or `true`) is the last checkpoint; anything else is a path.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(match text {
            "latest" | "true" | "True" => ResumeFrom::Latest,
            path => ResumeFrom::Path(PathBuf::from(path)),
        })
    }
}

/// The data the Trainer was given: the datasets, and the collator and tokenizer that batch
/// them and are saved with every checkpoint. `with_tokenizer` makes a collator only where
/// none was given, as transformers does.
#[derive(Default)]
pub(crate) struct TrainerData {
    pub(crate) train_dataset: Option<Arc<EncodedDataset>>,
    pub(crate) eval_dataset: Option<Arc<EncodedDataset>>,
    pub(crate) collator: Option<DataCollatorWithPadding>,
    pub(crate) tokenizer: Option<AutoTokenizer>,
}

/// What an optimizer step needs besides the model and its gradients. Built once, with the
/// Trainer, from arguments that are fixed from then on: `train()` resets AdamW's moments
/// (transformers makes a new optimizer there), and resuming loads them in place.
pub(crate) struct Optimization {
    pub(crate) optimizer: AdamW,
    /// The precision the micro-batches run in (fp32 masters whatever it is).
    pub(crate) precision: Precision,
    /// fp16's dynamic loss scale; untouched otherwise.
    pub(crate) scaler: LossScaler,
}

/// transformers' `Trainer`: trains a model on a device with `TrainingArguments`, evaluates it,
/// predicts with it, and writes checkpoints that transformers can load.
pub struct Trainer<M: TrainableModel> {
    /// The model on the training device. Held by value: the optimizer step moves it through
    /// AdamW, which updates flex's buffers in place only while it holds their one handle.
    pub(crate) model: M,
    /// The arguments, validated; fixed from `new` on.
    pub(crate) args: TrainingArguments,
    /// The device without autodiff: evaluation runs here, training on its autodiff twin.
    pub(crate) device: Device,
    /// What is batched, and how.
    pub(crate) data: TrainerData,
    /// `compute_metrics=`: what evaluation adds to the loss.
    pub(crate) compute_metrics: Option<ComputeMetrics>,
    /// Every callback, and with them every output but checkpoints: the console, TensorBoard.
    pub(crate) callbacks: CallbackHandler,
    /// The state, the callbacks' requests and every step's record.
    pub(crate) progress: Progress,
    /// AdamW, the precision of the micro-batches, and fp16's loss scale.
    pub(crate) optimization: Optimization,
    /// The processes training this model together; this one alone by default.
    pub(crate) group: ProcessGroup,
}

impl<M: TrainableModel> Trainer<M> {
    /// `Trainer(model, args)` on `device`. The model is moved to the device's autodiff
    /// variant for training; evaluation runs without autodiff. Add datasets, a tokenizer or
    /// collator, metrics and callbacks with the `with_*` methods.
    pub fn new(model: M, args: TrainingArguments, device: &Device) -> Result<Self, TrainerError> {
        let args = args.validated()?;
        let precision = Precision::for_args(&args, device)?;
        let train_device = device.clone().autodiff();
        let model = model.fork(&train_device).train();
        let progress = Progress::new(model.non_embedding_parameters());
        let optimizer =
            AdamW::for_device(AdamWConfig::from(&args), &device.clone().without_autodiff());
        let mut trainer = Self {
            model,
            device: device.clone().without_autodiff(),
            data: TrainerData::default(),
            compute_metrics: None,
            callbacks: CallbackHandler::new(ConsoleCallback::for_args(&args)),
            progress,
            optimization: Optimization {
                optimizer,
                precision,
                scaler: LossScaler::default(),
            },
            group: ProcessGroup::single(),
            args,
        };
        trainer.add_report_to_callbacks();
        Ok(trainer)
    }

    /// The callbacks `report_to` names, as transformers adds them when the Trainer is made.
    fn add_report_to_callbacks(&mut self) {
        for integration in self.args.report_to.clone() {
            match integration {
                Integration::Tensorboard => {
                    let mut callback = TensorBoardCallback::new();
                    if let Some(config) = self.model.config_json() {
                        callback = callback.with_model_config(config);
                    }
                    self.callbacks.add(Box::new(callback));
                }
            }
        }
    }

    /// `train_dataset=`.
    pub fn with_train_dataset(mut self, dataset: impl Into<Arc<EncodedDataset>>) -> Self {
        self.data.train_dataset = Some(dataset.into());
        self
    }

    /// `eval_dataset=`.
    pub fn with_eval_dataset(mut self, dataset: impl Into<Arc<EncodedDataset>>) -> Self {
        self.data.eval_dataset = Some(dataset.into());
        self
    }

    /// `data_collator=`.
    pub fn with_data_collator(mut self, collator: DataCollatorWithPadding) -> Self {
        self.data.collator = Some(collator);
        self
    }

    /// `tokenizer=` (`processing_class`): saved with every checkpoint, and, as in
    /// transformers, the source of a default `DataCollatorWithPadding`.
    pub fn with_tokenizer(mut self, tokenizer: AutoTokenizer) -> Self {
        if self.data.collator.is_none() {
            self.data.collator = Some(DataCollatorWithPadding::new(&tokenizer));
        }
        self.data.tokenizer = Some(tokenizer);
        self
    }

    /// `compute_metrics=`.
    pub fn with_compute_metrics(mut self, compute_metrics: ComputeMetrics) -> Self {
        self.compute_metrics = Some(compute_metrics);
        self
    }

    /// `callbacks=[...]`: adds a callback.
    pub fn with_callback(mut self, callback: impl TrainerCallback + 'static) -> Self {
        self.callbacks.add(Box::new(callback));
        self
    }

    /// `optimizers=(optimizer, None)`: AdamW built by the caller, in place of the one the
    /// arguments make (for one, [`AdamW::new`]'s tensor operations on a CPU device, as a GPU
    /// runs them). `train()` starts it afresh, as it does its own.
    pub fn with_optimizer(mut self, optimizer: AdamW) -> Self {
        self.optimization.optimizer = optimizer;
        self
    }

    /// Replaces the console output (progress bar, logs, table) with nothing.
    pub fn without_console(mut self) -> Self {
        self.callbacks.remove_console();
        self
    }

    /// A flag that, once set (by a Ctrl-C handler), makes training stop after the current
    /// step, write a checkpoint and return [`TrainerError::Interrupted`].
    pub fn with_interrupt_flag(mut self, flag: Arc<AtomicBool>) -> Self {
        self.progress.set_interrupt(flag);
        self
    }

    /// Trains data-parallel with the other processes of `group`: each process takes its
    /// share of every epoch, the gradients are averaged across processes before clipping,
    /// evaluation is split and gathered, and only rank 0 logs and writes files. Every process
    /// of the group must build the same Trainer and make the same calls.
    pub fn with_process_group(mut self, group: ProcessGroup) -> Self {
        self.group = group;
        self.set_process_flags();
        self
    }

    /// The processes training together.
    pub fn process_group(&self) -> &ProcessGroup {
        &self.group
    }

    /// `trainer.is_world_process_zero()`: whether this process logs and saves.
    pub fn is_world_process_zero(&self) -> bool {
        self.group.is_world_process_zero()
    }

    /// `state.is_world_process_zero` and `state.is_local_process_zero`, from the group.
    pub(crate) fn set_process_flags(&mut self) {
        self.progress.state.is_world_process_zero = self.group.is_world_process_zero();
        self.progress.state.is_local_process_zero = self.group.is_local_process_zero();
    }

    /// The arguments, after validation.
    pub fn args(&self) -> &TrainingArguments {
        &self.args
    }

    /// Every optimizer step of the last `train()` call, for plots; steps before a resume
    /// are in `state().log_history` alone.
    pub fn step_history(&self) -> &[StepRecord] {
        self.progress.history()
    }

    /// The state (`trainer.progress.state`).
    pub fn state(&self) -> &TrainerState {
        &self.progress.state
    }

    /// The model (on the training device).
    pub fn model(&self) -> &M {
        &self.model
    }

    /// The trained model, leaving the Trainer.
    pub fn into_model(self) -> M {
        self.model
    }

    pub(crate) fn collator(&self) -> Result<&DataCollatorWithPadding, TrainerError> {
        self.data
            .collator
            .as_ref()
            .ok_or_else(|| SetupError::NoDataCollator.into())
    }

    /// Refuses data the model cannot take, before any step runs.
    pub(crate) fn check_dataset(
        &self,
        dataset: &EncodedDataset,
        role: &'static str,
    ) -> Result<(), TrainerError> {
        let model = &self.model;
        let vocab = model.vocab_size();
        if let Some(row) = dataset
            .rows()
            .find(|r| r.input_ids.iter().any(|&id| id as usize >= vocab))
        {
            return Err(SetupError::TokenBeyondVocabulary {
                role,
                idx: row.idx,
                vocab_size: vocab,
            }
            .into());
        }
        if let Some(types) = model.type_vocab_size()
            && let Some((row, t)) = dataset.rows().find_map(|r| {
                let t = r
                    .token_type_ids?
                    .iter()
                    .copied()
                    .find(|&t| usize::from(t) >= types)?;
                Some((r, t))
            })
        {
            return Err(SetupError::TokenTypeBeyondVocabulary {
                role,
                idx: row.idx,
                token_type: u32::from(t),
                type_vocab_size: types,
            }
            .into());
        }
        let max_len = model.max_sequence_length();
        if let Some(row) = dataset.rows().find(|r| r.input_ids.len() > max_len) {
            return Err(SetupError::RowTooLong {
                role,
                idx: row.idx,
                tokens: row.input_ids.len(),
                max_length: max_len,
            }
            .into());
        }
        let num_labels = model.num_labels();
        match dataset.labels() {
            LabelColumn::Class(labels) => {
                if num_labels == 1 && labels.iter().flatten().next().is_some() {
                    return Err(SetupError::ClassLabelsForRegression { role }.into());
                }
                if let Some(bad) = labels.iter().flatten().find(|&&l| l as usize >= num_labels) {
                    return Err(SetupError::LabelBeyondClasses {
                        role,
                        label: *bad,
                        num_labels,
                    }
                    .into());
                }
            }
            LabelColumn::Score(_) if num_labels != 1 => {
                return Err(SetupError::ScoresForClassifier { role, num_labels }.into());
            }
            LabelColumn::Score(_) => {}
        }
        Ok(())
    }

    fn train_loader(&self, dataset: &Arc<EncodedDataset>) -> Result<DataLoader, TrainerError> {
        let args = &self.args;
        let sampler = match args.train_sampling_strategy {
            TrainSamplingStrategy::Random => Sampler::Random {
                seed: args.data_seed(),
            },
            TrainSamplingStrategy::Sequential => Sampler::Sequential,
            TrainSamplingStrategy::GroupByLength => Sampler::GroupByLength {
                seed: args.data_seed(),
                lengths: dataset.lengths(),
                batch_size: args.per_device_train_batch_size * args.gradient_accumulation_steps,
            },
        };
        let shard = Shard::new(self.group.rank(), self.group.world_size())?;
        Ok(DataLoader::new(
            dataset.clone(),
            self.collator()?.clone(),
            sampler,
            args.per_device_train_batch_size,
            args.dataloader_drop_last,
        )?
        .with_shard(shard))
    }

    /// `self.log(logs)`: adds `epoch` and `step`, appends to `log_history`, calls `on_log`.
    pub(crate) fn log(&mut self, logs: Metrics) {
        let entry = self.progress.log_entry(logs);
        self.run_callbacks(|c, a, s, ctl| c.on_log(a, s, ctl, &entry));
    }

    /// Calls `event` on every callback.
    pub(crate) fn run_callbacks(
        &mut self,
        mut event: impl FnMut(
            &mut dyn TrainerCallback,
            &TrainingArguments,
            &TrainerState,
            &mut TrainerControl,
        ),
    ) {
        let progress = &mut self.progress;
        for callback in self.callbacks.iter_mut() {
            event(callback, &self.args, &progress.state, &mut progress.control);
        }
    }
}

/// A per-micro-batch seed from the run's seed (SplitMix64's finaliser).
fn mix_seed(seed: u64, index: u64) -> u64 {
    ft_bert::random::mix64(seed ^ index.wrapping_mul(ft_bert::random::GOLDEN_GAMMA))
}

#[cfg(test)]
pub(crate) mod tests {
    use burn::tensor::Device;
    use ft_bert::{BertConfig, BertForSequenceClassification, PreTrainedModel};

    use super::*;

    /// A Trainer on flex for a BERT small enough to build in milliseconds, without data.
    pub(crate) fn tiny_trainer(
        output_dir: &std::path::Path,
    ) -> Trainer<BertForSequenceClassification> {
        let config: BertConfig = serde_json::from_value(serde_json::json!({
            "vocab_size": 64, "hidden_size": 8, "num_hidden_layers": 1,
            "num_attention_heads": 2, "intermediate_size": 16, "max_position_embeddings": 16,
        }))
        .unwrap();
        let device = Device::flex();
        let model = BertForSequenceClassification::from_config(&config, 42, &device).unwrap();
        let mut args = TrainingArguments::new(output_dir);
        args.disable_tqdm = true;
        Trainer::new(model, args, &device)
            .unwrap()
            .without_console()
    }
}
