//! `train()`: set-up and step counting, the epoch loop, and `_finalize_training`.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use ft_collate::{DataLoader, EncodedDataset};

use crate::args::{IntervalStrategy, TrainingArguments};
use crate::checkpoint::{delete_checkpoint, get_last_checkpoint, sorted_checkpoints};
use crate::distributed::weights_digest;
use crate::error::{SetupError, TrainerError};
use crate::metrics::{TrainOutput, speed_metrics};
use crate::model::TrainableModel;
use crate::schedule::Schedule;
use crate::state::{StepRecord, TrainerState};
use crate::trainer::flow::LossTracker;
use crate::trainer::position::{Position, StepShape};
use crate::trainer::step::{StepOutcome, StepReport};
use crate::trainer::{ResumeFrom, Trainer};

/// A run's step counts, as transformers' `set_initial_training_values` computes them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct TrainPlan {
    /// Micro-batches per epoch (`len(train_dataloader)`).
    pub(crate) batches_per_epoch: usize,
    /// Micro-batches per optimizer step.
    pub(crate) gradient_accumulation_steps: usize,
    /// Optimizer steps per epoch; the last one may take fewer micro-batches.
    pub(crate) updates_per_epoch: usize,
    pub(crate) max_steps: usize,
    pub(crate) num_train_epochs: usize,
    /// Examples the whole run sees, for `train_samples_per_second`.
    pub(crate) num_train_samples: f64,
}

impl TrainPlan {
    /// The plan for `batches_per_epoch` micro-batches per process, `examples` rows and
    /// `world_size` processes.
    pub(crate) fn new(
        args: &TrainingArguments,
        batches_per_epoch: usize,
        examples: usize,
        world_size: usize,
    ) -> Self {
        let ga = args.gradient_accumulation_steps;
        let updates_per_epoch = batches_per_epoch.div_ceil(ga).max(1);
        let (max_steps, num_train_epochs, num_train_samples) = if args.max_steps > 0 {
            let max_steps = args.max_steps as usize;
            let total_batch = args.per_device_train_batch_size * ga * world_size;
            (
                max_steps,
                max_steps.div_ceil(updates_per_epoch),
                (max_steps * total_batch) as f64,
            )
        } else {
            (
                (args.num_train_epochs * updates_per_epoch as f64).ceil() as usize,
                args.num_train_epochs.ceil() as usize,
                examples as f64 * args.num_train_epochs,
            )
        };
        Self {
            batches_per_epoch,
            gradient_accumulation_steps: ga,
            updates_per_epoch,
            max_steps,
            num_train_epochs,
            num_train_samples,
        }
    }

    /// The state at step 0, with the intervals resolved against `max_steps`.
    fn initial_state(&self, args: &TrainingArguments) -> TrainerState {
        let steps = |value| TrainingArguments::steps_for(value, self.max_steps);
        TrainerState {
            max_steps: self.max_steps,
            num_train_epochs: self.num_train_epochs,
            train_batch_size: Some(args.per_device_train_batch_size),
            logging_steps: steps(args.logging_steps),
            eval_steps: args.eval_steps.map_or(500, steps),
            save_steps: steps(args.save_steps),
            ..TrainerState::default()
        }
    }
}

impl<M: TrainableModel> Trainer<M> {
    /// `trainer.train()`: runs the training loop, evaluating, logging and saving as the
    /// arguments say, and returns `TrainOutput`.
    pub fn train(
        &mut self,
        resume_from_checkpoint: Option<ResumeFrom>,
    ) -> Result<TrainOutput, TrainerError> {
        if self.is_world_process_zero() {
            self.args.create_output_dir()?;
        }
        let (dataset, loader) = self.training_data()?;
        let world_size = self.group.world_size();
        let plan = TrainPlan::new(&self.args, loader.len(), dataset.len(), world_size);
        self.progress.begin(plan.initial_state(&self.args));
        // transformers creates the optimizer at the start of `train()`: no moments from an
        // earlier call carry over.
        self.optimization.optimizer.reset();
        let start_at = match resume_from_checkpoint {
            Some(resume) => self.resume(resume, dataset.len())?,
            None => Position::START,
        };
        self.set_process_flags();
        self.check_ranks_agree("at the start of training")?;
        self.log_run_header(&plan, dataset.len());
        self.call_on_train_begin()?;
        // For the loop alone: SIGTERM before or after it ends the process as usual.
        self.progress.watch_sigterm(self.args.enable_jit_checkpoint);
        let output = self.training_loop(&plan, &loader, start_at);
        self.progress.unwatch_sigterm();
        output
    }

    /// `eval_on_start`, the epochs from `start_at` until the plan's end or a stop, and
    /// `finalize`.
    fn training_loop(
        &mut self,
        plan: &TrainPlan,
        loader: &DataLoader,
        start_at: Position,
    ) -> Result<TrainOutput, TrainerError> {
        let start = Instant::now();
        if self.args.eval_on_start {
            self.evaluate()?;
        }
        let first_step = self.progress.state.global_step;
        let mut tracker = LossTracker {
            last_logged_step: first_step,
            ..LossTracker::default()
        };
        let schedule = Schedule::for_run(&self.args, plan.max_steps);
        let mut stop = first_step >= plan.max_steps;
        for epoch in start_at.epoch..plan.num_train_epochs {
            if stop {
                break;
            }
            let consumed = if epoch == start_at.epoch {
                start_at.consumed_rows
            } else {
                0
            };
            self.train_epoch(plan, loader, &schedule, epoch, consumed, &mut tracker)?;
            stop = self.progress.control.should_training_stop;
        }
        self.finalize(plan, tracker, start, first_step)
    }

    /// The train dataset and its loader, refused before any step if the model cannot learn
    /// from it or evaluation would find no eval dataset.
    fn training_data(&self) -> Result<(Arc<EncodedDataset>, DataLoader), TrainerError> {
        let dataset = self
            .data
            .train_dataset
            .clone()
            .ok_or(SetupError::NoTrainDataset)?;
        if !dataset.has_labels() {
            return Err(SetupError::UnlabelledTrainRows.into());
        }
        self.check_dataset(&dataset, "train")?;
        if self.args.eval_strategy != IntervalStrategy::No {
            let eval = self.data.eval_dataset.as_ref().ok_or_else(|| {
                SetupError::EvalStrategyWithoutDataset {
                    strategy: self.args.eval_strategy.to_string(),
                }
            })?;
            self.check_dataset(eval, "eval")?;
        }
        let loader = self.train_loader(&dataset)?;
        if loader.is_empty() {
            return Err(SetupError::NoTrainBatches.into());
        }
        Ok((dataset, loader))
    }

    /// Restores the checkpoint to resume from, and says where in the data (of `len` rows)
    /// the run continues.
    fn resume(&mut self, from: ResumeFrom, len: usize) -> Result<Position, TrainerError> {
        let path = match from {
            ResumeFrom::Latest => get_last_checkpoint(&self.args.output_dir)
                .ok_or_else(|| TrainerError::NoCheckpoint(self.args.output_dir.clone()))?,
            ResumeFrom::Path(path) => path,
        };
        let saved = self.load_checkpoint(&path)?;
        let now = StepShape::new(&self.args, self.group.world_size());
        let at = Position::resumed(saved, now, len, self.progress.state.global_step);
        if saved != now {
            tracing::warn!(
                "{} was trained {} rows a step ({} per device on {} processes, {} accumulated); \
                 this run takes {}: it skips the {} rows of epoch {} already seen, and \
                 continues at step {} in steps of its own",
                path.display(),
                saved.rows_per_step(),
                saved.per_device_train_batch_size,
                saved.world_size,
                saved.gradient_accumulation_steps,
                now.rows_per_step(),
                at.consumed_rows,
                at.epoch,
                at.global_step,
            );
            self.progress.state.global_step = at.global_step;
        }
        tracing::info!(
            "resuming from {} at step {} (epoch {:.2})",
            path.display(),
            self.progress.state.global_step,
            self.progress.state.epoch
        );
        Ok(at)
    }

    fn log_run_header(&self, plan: &TrainPlan, examples: usize) {
        let args = &self.args;
        tracing::info!(
            "***** Running training *****\n  Num examples = {examples}\n  Num Epochs = {}\n  \
             Instantaneous batch size per device = {}\n  \
             Total train batch size (w. parallel, distributed & accumulation) = {}\n  \
             Gradient Accumulation steps = {}\n  Total optimization steps = {}\n  \
             Number of trainable parameters = {}",
            plan.num_train_epochs,
            args.per_device_train_batch_size,
            StepShape::new(args, self.group.world_size()).rows_per_step(),
            plan.gradient_accumulation_steps,
            plan.max_steps,
            self.model.num_params()
        );
    }

    /// `on_train_begin` on every callback; the first refusal stops training before it starts.
    fn call_on_train_begin(&mut self) -> Result<(), TrainerError> {
        let progress = &mut self.progress;
        for callback in self.callbacks.iter_mut() {
            callback
                .on_train_begin(&self.args, &progress.state, &mut progress.control)
                .map_err(|source| TrainerError::Callback {
                    callback: callback.name().to_string(),
                    source,
                })?;
        }
        Ok(())
    }

    /// One epoch, after its first `consumed` rows (counted over all processes, after a
    /// resume), until its end or a stop.
    fn train_epoch(
        &mut self,
        plan: &TrainPlan,
        loader: &DataLoader,
        schedule: &Schedule,
        epoch: usize,
        consumed: usize,
        tracker: &mut LossTracker,
    ) -> Result<(), TrainerError> {
        self.progress.control.should_epoch_stop = false;
        self.run_callbacks(|c, a, s, ctl| c.on_epoch_begin(a, s, ctl));
        let mut batches = loader.iter(epoch as u64, consumed, &self.device.clone().autodiff());
        let shape = StepShape::new(&self.args, self.group.world_size());
        // Micro-batches of this run's size that the consumed rows make up.
        let mut micro_step = consumed as f64 / shape.rows_per_micro_batch() as f64;
        loop {
            self.progress.clear_step_requests();
            self.run_callbacks(|c, a, s, ctl| c.on_step_begin(a, s, ctl));
            // The last step of an epoch takes the micro-batches that are left.
            let window = plan.gradient_accumulation_steps;
            let Some(step) = self.accumulate_gradients(&mut batches, window)? else {
                break;
            };
            micro_step += step.micro_batches as f64;
            let position = epoch as f64 + micro_step / plan.batches_per_epoch as f64;
            let learning_rate = schedule.learning_rate(self.progress.state.global_step + 1);
            let report = self.optimizer_step(step, learning_rate)?;
            self.complete_step(report, learning_rate, position, tracker)?;
            self.check_interrupt()?;
            if self.progress.control.should_training_stop || self.progress.control.should_epoch_stop
            {
                break;
            }
        }
        drop(batches);
        self.progress.flow_on_epoch_end(&self.args);
        self.run_callbacks(|c, a, s, ctl| c.on_epoch_end(a, s, ctl));
        self.maybe_log_save_evaluate(tracker)
    }

    /// Acts on an optimizer step's outcome, as the end of an update in transformers'
    /// `_inner_training_loop`: a non-finite step stops training; any other counts, and the
    /// step-end hooks, logging, evaluation and saving run.
    fn complete_step(
        &mut self,
        report: StepReport,
        learning_rate: f64,
        epoch_position: f64,
        tracker: &mut LossTracker,
    ) -> Result<(), TrainerError> {
        let step = self.progress.state.global_step + 1;
        match report.outcome {
            StepOutcome::Applied => {}
            StepOutcome::SkippedOverflow { what, value } => tracing::warn!(
                "step {step}: non-finite {what} ({value}) under fp16; the step is skipped and \
                 the loss scale lowered to {}",
                self.optimization.scaler.scale
            ),
            StepOutcome::NonFinite { what, value } => {
                return Err(TrainerError::NonFinite {
                    what,
                    value,
                    step,
                    epoch: epoch_position,
                });
            }
        }
        self.progress.record_step(StepRecord {
            step,
            epoch: epoch_position,
            loss: report.loss,
            learning_rate,
            grad_norm: report.grad_norm,
        });
        if report.loss.is_finite() {
            tracker.since_log += report.loss;
        }
        tracker.last_grad_norm = Some(report.grad_norm);
        tracker.last_learning_rate = learning_rate;
        self.progress.flow_on_step_end(&self.args);
        self.run_callbacks(|c, a, s, ctl| c.on_step_end(a, s, ctl));
        self.maybe_log_save_evaluate(tracker)
    }

    /// `_finalize_training`: the run's metrics, the best model back and the other
    /// checkpoints gone as the arguments say, then `on_train_end`.
    fn finalize(
        &mut self,
        plan: &TrainPlan,
        mut tracker: LossTracker,
        start: Instant,
        first_step: usize,
    ) -> Result<TrainOutput, TrainerError> {
        tracker.logged_total += tracker.since_log;
        let steps_trained = self.progress.state.global_step - first_step;
        let train_loss = tracker.logged_total / (steps_trained as f64).max(0.001);
        let mut metrics = speed_metrics(
            "train",
            start.elapsed().as_secs_f64(),
            plan.num_train_samples * steps_trained as f64 / plan.max_steps.max(1) as f64,
            steps_trained as f64,
        );
        metrics.insert("total_flos".into(), self.progress.state.total_flos);
        metrics.insert("train_loss".into(), train_loss);
        self.log(metrics.clone());
        metrics.insert("epoch".into(), self.progress.state.epoch);
        if let Some(best) = self.progress.state.best_model_checkpoint.clone() {
            let best = Path::new(&best);
            if self.args.load_best_model_at_end {
                self.load_best_model(best)?;
            }
            if self.args.save_total_limit == Some(1) && self.is_world_process_zero() {
                self.delete_all_checkpoints_but(best);
            }
        }
        self.check_ranks_agree("at the end of training")?;
        self.run_callbacks(|c, a, s, ctl| c.on_train_end(a, s, ctl));
        Ok(TrainOutput {
            global_step: self.progress.state.global_step,
            training_loss: train_loss,
            metrics,
        })
    }

    /// With several processes, checks that all hold the same weights, as the gradient
    /// all-reduce keeps them: a digest per rank, gathered.
    fn check_ranks_agree(&self, when: &'static str) -> Result<(), TrainerError> {
        if !self.group.is_distributed() {
            return Ok(());
        }
        let digest = weights_digest(&self.model).map_err(|source| TrainerError::DeviceRead {
            what: format!("the weights {when}"),
            source,
        })?;
        let digests = self.group.all_gather_u64(digest);
        if digests.iter().any(|&other| other != digest) {
            return Err(TrainerError::RanksDisagree { when, digests });
        }
        tracing::info!(
            "the weights {when} are the same on all {} processes (digest {digest:016x})",
            digests.len()
        );
        Ok(())
    }

    fn load_best_model(&mut self, best: &Path) -> Result<(), TrainerError> {
        tracing::info!(
            "Loading best model from {} (score: {:?}).",
            best.display(),
            self.progress.state.best_metric
        );
        self.model
            .load_pretrained_weights(best)
            .map_err(|e| TrainerError::load(best, e))
    }

    /// `save_total_limit=1` keeps only the best checkpoint once training ends, deleting the
    /// others as rotation does: renamed out of the checkpoint namespace, then removed.
    fn delete_all_checkpoints_but(&self, best: &Path) {
        let output_dir = &self.args.output_dir;
        // The same folder may be spelt two ways (`out/` and `./out/` across a resume).
        let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => a == b,
        };
        for (_, path) in sorted_checkpoints(output_dir) {
            if same(&path, best) {
                continue;
            }
            if let Err(error) = delete_checkpoint(output_dir, &path) {
                tracing::warn!("could not delete {}: {error}", path.display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trainer::step::StepReport;
    use crate::trainer::tests::tiny_trainer;

    #[test]
    fn a_non_finite_outcome_stops_and_any_other_counts_the_step() {
        let dir = tempfile::tempdir().unwrap();
        let mut trainer = tiny_trainer(dir.path());
        trainer.progress.state.global_step = 6;
        trainer.progress.state.max_steps = 100;
        let mut tracker = LossTracker::default();
        let report = |outcome| StepReport {
            outcome,
            loss: 0.5,
            grad_norm: 1.5,
        };
        let non_finite = StepOutcome::NonFinite {
            what: "loss",
            value: f64::NAN,
        };
        let error = trainer
            .complete_step(report(non_finite), 1e-4, 1.25, &mut tracker)
            .unwrap_err();
        assert!(matches!(
            error,
            TrainerError::NonFinite { step: 7, epoch, .. } if epoch == 1.25
        ));
        assert_eq!(trainer.progress.state.global_step, 6);
        assert_eq!(tracker.since_log, 0.0);

        let skipped = StepOutcome::SkippedOverflow {
            what: "gradient norm",
            value: f64::INFINITY,
        };
        for outcome in [skipped, StepOutcome::Applied] {
            trainer
                .complete_step(report(outcome), 1e-4, 1.5, &mut tracker)
                .unwrap();
        }
        assert_eq!(trainer.progress.state.global_step, 8);
        assert_eq!(trainer.progress.state.epoch, 1.5);
        assert_eq!(tracker.since_log, 1.0);
        assert_eq!(tracker.last_grad_norm, Some(1.5));
    }

    #[test]
    fn steps_are_counted_as_transformers_counts_them() {
        let mut args = TrainingArguments::new("x");
        args.gradient_accumulation_steps = 4;
        // 10 micro-batches an epoch: 3 updates, the last of 2 micro-batches.
        let plan = TrainPlan::new(&args, 10, 80, 1);
        assert_eq!(plan.updates_per_epoch, 3);
        assert_eq!(plan.max_steps, 9);
        assert_eq!(plan.num_train_epochs, 3);
        assert_eq!(plan.num_train_samples, 240.0);
        args.max_steps = 7;
        let plan = TrainPlan::new(&args, 10, 80, 1);
        assert_eq!(plan.max_steps, 7);
        assert_eq!(plan.num_train_epochs, 3);
        assert_eq!(plan.num_train_samples, 7.0 * 32.0);
        // Samples are counted over every process.
        let plan = TrainPlan::new(&args, 10, 80, 2);
        assert_eq!(plan.num_train_samples, 7.0 * 64.0);
    }
}
