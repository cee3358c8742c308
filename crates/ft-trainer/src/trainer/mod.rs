//! The `Trainer`: set-up and the training loop.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::{Device, Tensor};
use ft_collate::{AutoTokenizer, DataCollatorWithPadding, DataLoader, EncodedDataset, Sampler};
use glue_data::LabelColumn;
use serde_json::Value;

use crate::args::{IntervalStrategy, SaveStrategy, TrainingArguments};
use crate::callbacks::{ConsoleCallback, TrainerCallback};
use crate::checkpoint::get_last_checkpoint;
use crate::error::TrainerError;
use crate::metrics::{ComputeMetrics, Metrics, TrainOutput, speed_metrics};
use crate::model::TrainableModel;
use crate::optimizer::{AdamW, AdamWConfig};
use crate::precision::{LossScaler, Precision};
use crate::schedule::Schedule;
use crate::state::{LogEntry, TrainerControl, TrainerState};

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

/// transformers' `Trainer`: trains a model on a device with `TrainingArguments`, evaluates it,
/// predicts with it, and writes checkpoints that transformers can load.
pub struct Trainer<M: TrainableModel> {
    pub(crate) model: Option<M>,
    pub(crate) args: TrainingArguments,
    pub(crate) device: Device,
    pub(crate) train_dataset: Option<Arc<EncodedDataset>>,
    pub(crate) eval_dataset: Option<Arc<EncodedDataset>>,
    pub(crate) collator: Option<DataCollatorWithPadding>,
    pub(crate) tokenizer: Option<AutoTokenizer>,
    pub(crate) compute_metrics: Option<ComputeMetrics>,
    pub(crate) callbacks: Vec<Box<dyn TrainerCallback>>,
    pub(crate) state: TrainerState,
    pub(crate) control: TrainerControl,
    pub(crate) optimizer: Option<AdamW>,
    pub(crate) interrupt: Option<Arc<AtomicBool>>,
    pub(crate) flos_per_token: f64,
    pub(crate) precision: Precision,
    pub(crate) scaler: LossScaler,
}

/// Running sums between logs.
#[derive(Debug, Default)]
pub(crate) struct LossTracker {
    /// Loss summed since the last log.
    pub(crate) since_log: f64,
    /// Loss summed over logged intervals.
    pub(crate) logged_total: f64,
    pub(crate) last_logged_step: usize,
    pub(crate) last_grad_norm: Option<f64>,
    pub(crate) last_learning_rate: f64,
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
        let flos_per_token = 6.0 * model.non_embedding_parameters() as f64;
        let mut trainer = Self {
            model: Some(model),
            device: device.clone().without_autodiff(),
            train_dataset: None,
            eval_dataset: None,
            collator: None,
            tokenizer: None,
            compute_metrics: None,
            callbacks: Vec::new(),
            state: TrainerState::default(),
            control: TrainerControl::default(),
            optimizer: None,
            interrupt: None,
            flos_per_token,
            precision,
            scaler: LossScaler::default(),
            args,
        };
        trainer
            .callbacks
            .push(Box::new(ConsoleCallback::for_args(&trainer.args)));
        Ok(trainer)
    }

    /// `train_dataset=`.
    pub fn with_train_dataset(mut self, dataset: impl Into<Arc<EncodedDataset>>) -> Self {
        self.train_dataset = Some(dataset.into());
        self
    }

    /// `eval_dataset=`.
    pub fn with_eval_dataset(mut self, dataset: impl Into<Arc<EncodedDataset>>) -> Self {
        self.eval_dataset = Some(dataset.into());
        self
    }

    /// `data_collator=`.
    pub fn with_data_collator(mut self, collator: DataCollatorWithPadding) -> Self {
        self.collator = Some(collator);
        self
    }

    /// `tokenizer=` (`processing_class`): saved with every checkpoint, and, as in
    /// transformers, the source of a default `DataCollatorWithPadding`.
    pub fn with_tokenizer(mut self, tokenizer: AutoTokenizer) -> Self {
        if self.collator.is_none() {
            self.collator = Some(DataCollatorWithPadding::new(&tokenizer));
        }
        self.tokenizer = Some(tokenizer);
        self
    }

    /// `compute_metrics=`.
    pub fn with_compute_metrics(mut self, compute_metrics: ComputeMetrics) -> Self {
        self.compute_metrics = Some(compute_metrics);
        self
    }

    /// `callbacks=[...]`: adds a callback.
    pub fn with_callback(mut self, callback: impl TrainerCallback + 'static) -> Self {
        self.callbacks.push(Box::new(callback));
        self
    }

    /// Replaces the console output (progress bar, logs, table) with nothing.
    pub fn without_console(mut self) -> Self {
        self.callbacks.retain(|c| c.name() != "ConsoleCallback");
        self
    }

    /// A flag that, once set (by a Ctrl-C handler), makes training stop after the current
    /// step, write a checkpoint and return [`TrainerError::Interrupted`].
    pub fn with_interrupt_flag(mut self, flag: Arc<AtomicBool>) -> Self {
        self.interrupt = Some(flag);
        self
    }

    /// The arguments, after validation.
    pub fn args(&self) -> &TrainingArguments {
        &self.args
    }

    /// The state (`trainer.state`).
    pub fn state(&self) -> &TrainerState {
        &self.state
    }

    /// The model (on the training device).
    pub fn model(&self) -> &M {
        self.model
            .as_ref()
            .unwrap_or_else(|| unreachable!("the model is only taken during a step"))
    }

    /// The trained model, leaving the Trainer.
    pub fn into_model(self) -> M {
        self.model
            .unwrap_or_else(|| unreachable!("the model is only taken during a step"))
    }

    pub(crate) fn collator(&self) -> Result<&DataCollatorWithPadding, TrainerError> {
        self.collator.as_ref().ok_or_else(|| {
            TrainerError::Setup(
                "no data collator: pass `tokenizer` or `data_collator` to the Trainer".into(),
            )
        })
    }

    /// Refuses data the model cannot take, before any step runs.
    pub(crate) fn check_dataset(
        &self,
        dataset: &EncodedDataset,
        role: &str,
    ) -> Result<(), TrainerError> {
        let model = self.model();
        let vocab = model.vocab_size();
        if let Some(row) = dataset
            .rows()
            .find(|r| r.input_ids.iter().any(|&id| id as usize >= vocab))
        {
            return Err(TrainerError::Setup(format!(
                "{role} dataset row idx {} has a token id beyond the model's vocabulary of {vocab}: \
                 is the tokenizer the model's?",
                row.idx
            )));
        }
        let max_len = model.max_sequence_length();
        if let Some(row) = dataset.rows().find(|r| r.input_ids.len() > max_len) {
            return Err(TrainerError::Setup(format!(
                "{role} dataset row idx {} has {} tokens, more than the model's {max_len} positions",
                row.idx,
                row.input_ids.len()
            )));
        }
        let num_labels = model.num_labels();
        match dataset.labels() {
            LabelColumn::Class(labels) => {
                if num_labels == 1 && labels.iter().flatten().next().is_some() {
                    return Err(TrainerError::Setup(format!(
                        "{role} dataset has class labels but the model has num_labels=1 (regression)"
                    )));
                }
                if let Some(bad) = labels.iter().flatten().find(|&&l| l as usize >= num_labels) {
                    return Err(TrainerError::Setup(format!(
                        "{role} dataset has label {bad}, but the model has num_labels={num_labels}"
                    )));
                }
            }
            LabelColumn::Score(_) if num_labels != 1 => {
                return Err(TrainerError::Setup(format!(
                    "{role} dataset has regression scores but the model has num_labels={num_labels}; \
                     use num_labels=1"
                )));
            }
            LabelColumn::Score(_) => {}
        }
        Ok(())
    }

    fn train_loader(&self, dataset: &Arc<EncodedDataset>) -> Result<DataLoader, TrainerError> {
        let args = &self.args;
        let sampler = if args.group_by_length {
            Sampler::GroupByLength {
                seed: args.data_seed(),
                lengths: dataset.lengths(),
                batch_size: args.per_device_train_batch_size * args.gradient_accumulation_steps,
            }
        } else {
            Sampler::Random {
                seed: args.data_seed(),
            }
        };
        Ok(DataLoader::new(
            dataset.clone(),
            self.collator()?.clone(),
            sampler,
            args.per_device_train_batch_size,
            args.dataloader_drop_last,
        )?)
    }

    /// `trainer.train()`: runs the training loop, evaluating, logging and saving as the
    /// arguments say, and returns `TrainOutput`.
    pub fn train(
        &mut self,
        resume_from_checkpoint: Option<ResumeFrom>,
    ) -> Result<TrainOutput, TrainerError> {
        let args = self.args.clone();
        let dataset = self
            .train_dataset
            .clone()
            .ok_or_else(|| TrainerError::Setup("`train()` needs a train_dataset".into()))?;
        if !dataset.has_labels() {
            return Err(TrainerError::Setup(
                "the train_dataset has rows without labels; a model cannot learn from them".into(),
            ));
        }
        self.check_dataset(&dataset, "train")?;
        if args.eval_strategy != IntervalStrategy::No {
            let eval = self.eval_dataset.clone().ok_or_else(|| {
                TrainerError::Setup(format!(
                    "You have set `args.eval_strategy` to {} but you didn't pass an `eval_dataset` \
                     to `Trainer`. Either set `args.eval_strategy` to `no` or pass an `eval_dataset`. ",
                    args.eval_strategy
                ))
            })?;
            self.check_dataset(&eval, "eval")?;
        }
        let loader = self.train_loader(&dataset)?;
        if loader.is_empty() {
            return Err(TrainerError::Setup(
                "the train_dataset gives no batch (empty, or smaller than one batch with dataloader_drop_last)".into(),
            ));
        }

        // Step counting, as transformers' `set_initial_training_values`.
        let ga = args.gradient_accumulation_steps;
        let len_dl = loader.len();
        let updates_per_epoch = len_dl.div_ceil(ga).max(1);
        let total_batch = args.per_device_train_batch_size * ga;
        let (max_steps, num_train_epochs, num_train_samples) = if args.max_steps > 0 {
            let max_steps = args.max_steps as usize;
            (
                max_steps,
                max_steps.div_ceil(updates_per_epoch),
                (max_steps * total_batch) as f64,
            )
        } else {
            (
                (args.num_train_epochs * updates_per_epoch as f64).ceil() as usize,
                args.num_train_epochs.ceil() as usize,
                dataset.len() as f64 * args.num_train_epochs,
            )
        };

        self.state = TrainerState {
            max_steps,
            num_train_epochs,
            train_batch_size: Some(args.per_device_train_batch_size),
            logging_steps: TrainingArguments::steps_for(args.logging_steps, max_steps),
            eval_steps: args
                .eval_steps
                .map_or(500, |s| TrainingArguments::steps_for(s, max_steps)),
            save_steps: TrainingArguments::steps_for(args.save_steps, max_steps),
            ..TrainerState::default()
        };
        let schedule = Schedule {
            kind: args.lr_scheduler_type,
            base: args.learning_rate,
            warmup: args.warmup_steps_for(max_steps),
            total: max_steps,
        };
        self.optimizer = Some(AdamW::for_device(AdamWConfig::from(&args), &self.device));

        if let Some(resume) = resume_from_checkpoint {
            let path = match resume {
                ResumeFrom::Latest => get_last_checkpoint(&args.output_dir)
                    .ok_or_else(|| TrainerError::NoCheckpoint(args.output_dir.clone()))?,
                ResumeFrom::Path(path) => path,
            };
            self.load_checkpoint(&path)?;
            tracing::info!(
                "resuming from {} at step {} (epoch {:.2})",
                path.display(),
                self.state.global_step,
                self.state.epoch
            );
        }
        let epochs_trained = self.state.global_step / updates_per_epoch;
        let batches_to_skip = (self.state.global_step % updates_per_epoch) * ga;
        let initial_global_step = self.state.global_step;

        tracing::info!(
            "***** Running training *****\n  Num examples = {}\n  Num Epochs = {}\n  \
             Instantaneous batch size per device = {}\n  Total train batch size (w. accumulation) = {}\n  \
             Gradient Accumulation steps = {}\n  Total optimization steps = {}\n  \
             Number of trainable parameters = {}",
            dataset.len(),
            num_train_epochs,
            args.per_device_train_batch_size,
            total_batch,
            ga,
            max_steps,
            self.model().num_params()
        );
        self.control = TrainerControl::default();
        self.run_callbacks(|c, a, s, ctl| c.on_train_begin(a, s, ctl));

        let start = Instant::now();
        let mut tracker = LossTracker {
            last_logged_step: self.state.global_step,
            ..LossTracker::default()
        };
        let train_device = self.device.clone().autodiff();
        let mut stop = self.state.global_step >= max_steps;
        for epoch in epochs_trained..num_train_epochs {
            if stop {
                break;
            }
            self.control.should_epoch_stop = false;
            self.run_callbacks(|c, a, s, ctl| c.on_epoch_begin(a, s, ctl));
            let skip = if epoch == epochs_trained {
                batches_to_skip
            } else {
                0
            };
            let mut batches = loader.iter(epoch as u64, skip, &train_device);
            let mut micro_step = skip;
            let updates_done = skip / ga;
            for update in updates_done..updates_per_epoch {
                let window = if update + 1 == updates_per_epoch && len_dl % ga != 0 {
                    len_dl % ga
                } else {
                    ga
                };
                self.control.should_log = false;
                self.control.should_evaluate = false;
                self.control.should_save = false;
                self.run_callbacks(|c, a, s, ctl| c.on_step_begin(a, s, ctl));

                let mut accumulator: GradientsAccumulator<M> = GradientsAccumulator::new();
                let mut loss_sum: Option<Tensor<1>> = None;
                // Under mixed precision the step runs on a half-precision copy of the master.
                let half = self.precision.compute_model(self.model());
                let loss_scale = if self.precision == Precision::Fp16 {
                    self.scaler.scale
                } else {
                    1.0
                };
                for taken in 0..window {
                    let Some(batch) = batches.next() else { break };
                    let batch = batch?;
                    // Dropout draws from the backend's RNG: seeding it per micro-batch makes a
                    // resumed run draw exactly the masks the uninterrupted run drew.
                    let global_micro = (self.state.global_step * ga + taken) as u64;
                    self.device.seed(mix_seed(args.seed, global_micro));
                    let model = half.as_ref().unwrap_or_else(|| self.model());
                    let output = model.forward_batch(&batch).map_err(|e| {
                        TrainerError::model(
                            format!("training step {}", self.state.global_step + 1),
                            e,
                        )
                    })?;
                    let loss = output.loss.ok_or_else(|| {
                        TrainerError::Setup(
                            "the model returned no loss for a labelled batch".into(),
                        )
                    })?;
                    let backward_loss = if loss_scale == 1.0 {
                        loss.clone()
                    } else {
                        loss.clone().mul_scalar(loss_scale)
                    };
                    let grads = GradientsParams::from_grads(backward_loss.backward(), model);
                    accumulator.accumulate(model, grads);
                    let loss = loss.detach().inner();
                    loss_sum = Some(match loss_sum {
                        Some(sum) => sum + loss,
                        None => loss,
                    });
                    self.state.total_flos += self.flos_per_token
                        * (batch.batch_size() * batch.input_ids.dims()[1]) as f64;
                    micro_step += 1;
                }
                drop(half);
                let Some(loss_sum) = loss_sum else { break };
                let grads = accumulator.grads();
                let model = self
                    .model
                    .take()
                    .unwrap_or_else(|| unreachable!("the model is present between steps"));
                // One host read per step: the loss and the gradient norm together.
                let norm = AdamW::grad_norm(&model, &grads)
                    .unwrap_or_else(|| Tensor::zeros([1], &self.device))
                    .reshape([1]);
                let values = Tensor::cat(vec![loss_sum.reshape([1]), norm], 0)
                    .into_data()
                    .try_into_vec_as::<f64>()
                    .unwrap_or_default();
                let (loss_value, grad_norm) = (
                    values.first().copied().unwrap_or(f64::NAN),
                    values.get(1).copied().unwrap_or(f64::NAN) / loss_scale,
                );
                let step_number = self.state.global_step + 1;
                let epoch_position = epoch as f64 + micro_step as f64 / len_dl as f64;
                let learning_rate = schedule.learning_rate(step_number);
                let fault = [("loss", loss_value), ("gradient norm", grad_norm)]
                    .into_iter()
                    .find(|(_, value)| !value.is_finite());
                match fault {
                    // fp16 overflows are expected now and then: skip the step, lower the scale.
                    Some((what, value))
                        if self.precision == Precision::Fp16 && self.scaler.scale > 1.0 =>
                    {
                        tracing::warn!(
                            "step {step_number}: non-finite {what} ({value}) under fp16 loss scale {}; \
                             the step is skipped and the scale halved",
                            self.scaler.scale
                        );
                        self.scaler.update(true);
                        self.model = Some(model);
                    }
                    Some((what, value)) => {
                        self.model = Some(model);
                        return Err(TrainerError::NonFinite {
                            what,
                            value,
                            step: step_number,
                            epoch: epoch_position,
                        });
                    }
                    None => {
                        let clip = if args.max_grad_norm > 0.0 {
                            (args.max_grad_norm / (grad_norm + 1e-6)).min(1.0)
                        } else {
                            1.0
                        };
                        if self.precision == Precision::Fp16 {
                            self.scaler.update(false);
                        }
                        let optimizer = self
                            .optimizer
                            .as_mut()
                            .unwrap_or_else(|| unreachable!("created above"));
                        self.model =
                            Some(optimizer.step(model, grads, learning_rate, clip / loss_scale));
                    }
                }

                self.state.global_step = step_number;
                self.state.epoch = epoch_position;
                if loss_value.is_finite() {
                    tracker.since_log += loss_value;
                }
                tracker.last_grad_norm = Some(grad_norm);
                tracker.last_learning_rate = learning_rate;
                self.flow_on_step_end();
                self.run_callbacks(|c, a, s, ctl| c.on_step_end(a, s, ctl));
                self.maybe_log_save_evaluate(&mut tracker)?;

                if self
                    .interrupt
                    .as_ref()
                    .is_some_and(|f| f.load(Ordering::SeqCst))
                {
                    let checkpoint = self.save_checkpoint()?;
                    return Err(TrainerError::Interrupted {
                        step: self.state.global_step,
                        checkpoint,
                    });
                }
                if self.control.should_training_stop || self.control.should_epoch_stop {
                    break;
                }
            }
            drop(batches);
            self.flow_on_epoch_end();
            self.run_callbacks(|c, a, s, ctl| c.on_epoch_end(a, s, ctl));
            self.maybe_log_save_evaluate(&mut tracker)?;
            stop = self.control.should_training_stop;
        }

        // `_finalize_training`.
        tracker.logged_total += tracker.since_log;
        let steps_trained = self.state.global_step - initial_global_step;
        let train_loss = tracker.logged_total / (steps_trained as f64).max(0.001);
        let mut metrics = speed_metrics(
            "train",
            start.elapsed().as_secs_f64(),
            num_train_samples * steps_trained as f64 / max_steps.max(1) as f64,
            steps_trained as f64,
        );
        metrics.insert("total_flos".into(), self.state.total_flos);
        metrics.insert("train_loss".into(), train_loss);
        self.log(metrics.clone());
        metrics.insert("epoch".into(), self.state.epoch);
        if args.load_best_model_at_end
            && let Some(best) = self.state.best_model_checkpoint.clone()
        {
            tracing::info!(
                "Loading best model from {best} (score: {:?}).",
                self.state.best_metric
            );
            let model = self
                .model
                .as_mut()
                .unwrap_or_else(|| unreachable!("present"));
            model
                .load_pretrained_weights(std::path::Path::new(&best))
                .map_err(|e| TrainerError::Load {
                    path: PathBuf::from(&best),
                    reason: e.to_string(),
                })?;
        }
        if args.save_total_limit == Some(1)
            && let Some(best) = self.state.best_model_checkpoint.clone()
        {
            for (_, path) in crate::checkpoint::sorted_checkpoints(&args.output_dir) {
                if path != std::path::Path::new(&best) {
                    let _ = std::fs::remove_dir_all(path);
                }
            }
        }
        self.run_callbacks(|c, a, s, ctl| c.on_train_end(a, s, ctl));
        Ok(TrainOutput {
            global_step: self.state.global_step,
            training_loss: train_loss,
            metrics,
        })
    }

    /// `DefaultFlowCallback.on_step_end`.
    fn flow_on_step_end(&mut self) {
        let (args, state, control) = (&self.args, &self.state, &mut self.control);
        let step = state.global_step;
        if step == 1 && args.logging_first_step {
            control.should_log = true;
        }
        if args.logging_strategy == IntervalStrategy::Steps
            && state.logging_steps > 0
            && step.is_multiple_of(state.logging_steps)
        {
            control.should_log = true;
        }
        if args.eval_strategy == IntervalStrategy::Steps
            && state.eval_steps > 0
            && step.is_multiple_of(state.eval_steps)
        {
            control.should_evaluate = true;
        }
        if args.save_strategy == SaveStrategy::Steps
            && state.save_steps > 0
            && step.is_multiple_of(state.save_steps)
        {
            control.should_save = true;
        }
        if step >= state.max_steps {
            control.should_training_stop = true;
            if args.eval_strategy == IntervalStrategy::Steps
                && state.eval_steps > 0
                && !step.is_multiple_of(state.eval_steps)
            {
                control.should_evaluate = true;
            }
            if args.save_strategy == SaveStrategy::Steps {
                control.should_save = true;
            }
        }
    }

    /// `DefaultFlowCallback.on_epoch_end`.
    fn flow_on_epoch_end(&mut self) {
        let (args, control) = (&self.args, &mut self.control);
        if args.logging_strategy == IntervalStrategy::Epoch {
            control.should_log = true;
        }
        if args.eval_strategy == IntervalStrategy::Epoch {
            control.should_evaluate = true;
        }
        if args.save_strategy == SaveStrategy::Epoch {
            control.should_save = true;
        }
    }

    /// `_maybe_log_save_evaluate`: log, then evaluate, then save.
    fn maybe_log_save_evaluate(&mut self, tracker: &mut LossTracker) -> Result<(), TrainerError> {
        if self.control.should_log && self.state.global_step > tracker.last_logged_step {
            let steps = (self.state.global_step - tracker.last_logged_step) as f64;
            let mut logs = Metrics::new();
            logs.insert("loss".into(), tracker.since_log / steps);
            if let Some(norm) = tracker.last_grad_norm {
                logs.insert("grad_norm".into(), norm);
            }
            logs.insert("learning_rate".into(), tracker.last_learning_rate);
            tracker.logged_total += tracker.since_log;
            tracker.since_log = 0.0;
            tracker.last_logged_step = self.state.global_step;
            self.log(logs);
            self.control.should_log = false;
        }
        if self.control.should_evaluate {
            let metrics = self.evaluate()?;
            let is_new_best = self.determine_best_metric(&metrics)?;
            if self.args.save_strategy == SaveStrategy::Best {
                self.control.should_save = is_new_best;
            }
        }
        if self.control.should_save {
            self.save_checkpoint()?;
            self.control.should_save = false;
        }
        Ok(())
    }

    /// `_determine_best_metric`: updates the best metric; true on a strict improvement.
    fn determine_best_metric(&mut self, metrics: &Metrics) -> Result<bool, TrainerError> {
        let Some(metric) = self.args.metric_for_best_model.clone() else {
            return Ok(false);
        };
        let key = crate::callbacks::metric_key(&metric);
        let value = *metrics.get(&key).ok_or_else(|| {
            TrainerError::Setup(format!(
                "The `metric_for_best_model` training argument is set to '{key}', which is not \
                 found in the evaluation metrics. The available evaluation metrics are: {:?}.",
                metrics.keys().collect::<Vec<_>>()
            ))
        })?;
        let greater = self.args.greater_is_better.unwrap_or(true);
        let better = match self.state.best_metric {
            None => true,
            Some(best) if greater => value > best,
            Some(best) => value < best,
        };
        if better {
            self.state.best_metric = Some(value);
            if self.args.save_strategy != SaveStrategy::No {
                self.state.best_global_step = Some(self.state.global_step);
            }
        }
        Ok(better)
    }

    /// `self.log(logs)`: adds `epoch` and `step`, appends to `log_history`, calls `on_log`.
    pub(crate) fn log(&mut self, logs: Metrics) {
        let mut entry: LogEntry = logs.into_iter().map(|(k, v)| (k, Value::from(v))).collect();
        entry.insert("epoch".into(), Value::from(self.state.epoch));
        entry.insert("step".into(), Value::from(self.state.global_step));
        self.state.log_history.push(entry.clone());
        let (args, state, control) = (&self.args, &self.state, &mut self.control);
        for callback in &mut self.callbacks {
            callback.on_log(args, state, control, &entry);
        }
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
        for callback in &mut self.callbacks {
            event(
                callback.as_mut(),
                &self.args,
                &self.state,
                &mut self.control,
            );
        }
    }
}

/// A per-micro-batch seed from the run's seed (SplitMix64's finaliser).
fn mix_seed(seed: u64, index: u64) -> u64 {
    let mut z = seed ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
