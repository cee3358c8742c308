//! One optimizer step in two parts, as transformers splits it: `training_step` runs one
//! micro-batch forward and backward; `optimizer_step` reads the summed gradients' norm and,
//! unless something is not finite, applies AdamW at the schedule's learning rate.

use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::{Int, Tensor, TensorData, TensorReadError};
use ft_bert::device_read::{read_scalar, read_vec};
use ft_bert::prelude::*;
use ft_bert::{Labels, SequenceClassifierOutput};
use ft_collate::{Batch, CollateError};

use crate::error::{SetupError, TrainerError};
use crate::label_smoothing::LabelSmoother;
use crate::model::{TrainableModel, model_input};
use crate::optimizer::{AdamW, Clipping};
use crate::precision::Precision;
use crate::trainer::{Trainer, mix_seed};

/// What `optimizer_step` did with a step's gradients; the loop acts on it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum StepOutcome {
    /// AdamW updated the weights.
    Applied,
    /// An fp16 overflow, expected now and then: the weights were left alone and the loss
    /// scale halved, as `torch.amp.GradScaler` does. The step still counts.
    SkippedOverflow {
        /// `loss` or `gradient norm`.
        what: &'static str,
        /// The value that overflowed.
        value: f64,
    },
    /// A NaN or infinite loss or gradient norm that no loss scale explains: nothing was
    /// applied, and training must stop.
    NonFinite {
        /// `loss` or `gradient norm`.
        what: &'static str,
        /// The value.
        value: f64,
    },
}

/// One optimizer step's micro-batches: their summed loss and gradients.
pub(crate) struct Accumulated {
    loss_sum: Tensor<1>,
    grads: GradientsParams,
    /// fp16's loss scale the gradients carry (1 otherwise).
    loss_scale: f64,
    /// Micro-batches taken from the loader.
    pub(crate) micro_batches: usize,
    /// Floating-point operations of the micro-batches, for `total_flos`.
    flos: f64,
}

fn no_loss(context: impl Fn() -> String) -> TrainerError {
    TrainerError::Internal {
        context: context(),
        what: "the model returned no loss for a labelled batch",
    }
}

/// What `optimizer_step` reports: the outcome, with the step's loss and unscaled gradient
/// norm (read from the device together).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct StepReport {
    pub(crate) outcome: StepOutcome,
    pub(crate) loss: f64,
    pub(crate) grad_norm: f64,
}

impl<M: TrainableModel> Trainer<M> {
    /// `training_step`: the forward and backward pass of one micro-batch on `model` (the
    /// master, or its half-precision copy), with the loss multiplied by `loss_scale` before
    /// backward. Returns the loss, unscaled and detached, and the gradients.
    pub(crate) fn training_step(
        &self,
        model: &M,
        batch: &ModelInput,
        loss_scale: f64,
    ) -> Result<(Tensor<1>, GradientsParams), TrainerError> {
        let context = || format!("training step {}", self.progress.state.global_step + 1);
        if self.args.activation_checkpointing {
            return self.training_step_checkpointed(model, batch, loss_scale, context);
        }
        let output = self.compute_loss(model, batch, context)?;
        let loss = output.loss.ok_or_else(|| no_loss(context))?;
        let backward_loss = if loss_scale == 1.0 {
            loss.clone()
        } else {
            loss.clone().mul_scalar(loss_scale)
        };
        let grads = GradientsParams::from_grads(backward_loss.backward(), model);
        Ok((loss.detach().inner(), grads))
    }

    /// [`Trainer::training_step`] under `activation_checkpointing`: the model recomputes its
    /// layers' activations in its own backward pass, from the same loss as `compute_loss`.
    fn training_step_checkpointed(
        &self,
        model: &M,
        batch: &ModelInput,
        loss_scale: f64,
        context: impl Fn() -> String,
    ) -> Result<(Tensor<1>, GradientsParams), TrainerError> {
        let labels = batch.labels.as_ref().ok_or_else(|| no_loss(&context))?;
        let smoothing = self.label_smoothing(labels, &context)?;
        let loss = |logits| match smoothing {
            Some((smoother, classes)) => Ok(smoother.loss(logits, classes.clone())),
            None => model.loss(logits, labels),
        };
        let (output, grads) = model
            .forward_backward_checkpointed(batch, loss, loss_scale)
            .map_err(|e| TrainerError::model(context(), e))?;
        let loss = output.loss.ok_or_else(|| no_loss(&context))?;
        Ok((loss.inner(), grads))
    }

    /// `compute_loss`: the model's outputs on `batch`, with its loss, or with transformers'
    /// label-smoothed loss when `label_smoothing_factor` asks for it. Evaluation takes the
    /// same loss, as transformers' `prediction_step` does.
    pub(crate) fn compute_loss(
        &self,
        model: &M,
        batch: &ModelInput,
        context: impl Fn() -> String,
    ) -> Result<SequenceClassifierOutput, TrainerError> {
        let forward = |batch: &ModelInput| {
            model
                .forward(batch)
                .map_err(|e| TrainerError::model(context(), e))
        };
        let Some(labels) = &batch.labels else {
            return forward(batch);
        };
        match self.label_smoothing(labels, &context)? {
            Some((smoother, classes)) => {
                // The labels are kept from the model, as transformers pops them, so that it
                // does not compute a loss of its own.
                let unlabelled = batch.clone().with_labels(None);
                let output = forward(&unlabelled)?;
                let loss = smoother.loss(output.logits.clone(), classes.clone());
                Ok(SequenceClassifierOutput {
                    logits: output.logits,
                    loss: Some(loss),
                })
            }
            None => forward(batch),
        }
    }

    /// The smoother and the class ids when `label_smoothing_factor` asks for smoothing;
    /// refused for regression scores, which have no classes to smooth over.
    fn label_smoothing<'a>(
        &self,
        labels: &'a Labels,
        context: impl Fn() -> String,
    ) -> Result<Option<(LabelSmoother, &'a Tensor<1, Int>)>, TrainerError> {
        let Some(smoother) = LabelSmoother::from_factor(self.args.label_smoothing_factor) else {
            return Ok(None);
        };
        match labels {
            Labels::Class(classes) => Ok(Some((smoother, classes))),
            Labels::Score(_) => {
                Err(SetupError::LabelSmoothingOnScores { context: context() }.into())
            }
        }
    }

    /// Runs up to `window` micro-batches through `training_step` and sums their losses and
    /// gradients; `None` when the loader had nothing left.
    pub(crate) fn accumulate_gradients(
        &mut self,
        batches: &mut impl Iterator<Item = Result<Batch, CollateError>>,
        window: usize,
    ) -> Result<Option<Accumulated>, TrainerError> {
        // Under mixed precision other than autocast, the step runs on a half-precision copy
        // of the master.
        let half = self.optimization.precision.compute_model(&self.model);
        let loss_scale = self.loss_scale();
        let first_micro_batch =
            self.progress.state.global_step * self.args.gradient_accumulation_steps;
        let mut accumulator: GradientsAccumulator<M> = GradientsAccumulator::new();
        let mut loss_sum: Option<Tensor<1>> = None;
        let mut micro_batches = 0;
        let mut flos = 0.0;
        for batch in batches.take(window) {
            let batch = batch?;
            // Dropout draws from the backend's RNG: seeding it per micro-batch makes a resumed
            // run draw exactly the masks the uninterrupted run drew.
            let index = (first_micro_batch + micro_batches) as u64;
            self.device.seed(mix_seed(self.args.seed, index));
            let model = half.as_ref().unwrap_or(&self.model);
            let input = model_input(&batch).map_err(|e| {
                TrainerError::model(
                    format!("training step {}", self.progress.state.global_step + 1),
                    e,
                )
            })?;
            let precision = self.optimization.precision;
            let (loss, grads) =
                precision.autocast(|| self.training_step(model, &input, loss_scale))?;
            accumulator.accumulate(model, grads);
            loss_sum = Some(match loss_sum {
                Some(sum) => sum + loss,
                None => loss,
            });
            let tokens = batch.batch_size() * batch.input_ids.dims()[1];
            flos += self.progress.flos(tokens);
            micro_batches += 1;
        }
        Ok(loss_sum.map(|loss_sum| Accumulated {
            loss_sum,
            grads: accumulator.grads(),
            loss_scale,
            micro_batches,
            flos,
        }))
    }

    /// `optimizer_step`: unscales and clips the gradients to the global norm and steps AdamW
    /// at `learning_rate`, unless the loss or the norm is not finite. Under fp16 that is an
    /// overflow: the step is skipped and the loss scale halved. Otherwise it is
    /// [`StepOutcome::NonFinite`] and nothing changes.
    ///
    /// One read from the device: the loss and the norm together. Where AdamW updates on the
    /// device, the whole update is queued first, clipped and guarded on the device, and the
    /// read decides afterwards whether it counts; with the fused host loop, the read comes
    /// first and gives the loop its coefficient.
    pub(crate) fn optimizer_step(
        &mut self,
        step: Accumulated,
        learning_rate: f64,
    ) -> Result<StepReport, TrainerError> {
        let Accumulated {
            loss_sum,
            mut grads,
            loss_scale,
            flos,
            ..
        } = step;
        let loss_sum = if self.group.is_distributed() {
            self.average_across_ranks(loss_sum, &mut grads, flos)?
        } else {
            self.progress.state.total_flos += flos;
            loss_sum
        };
        let clipping = Clipping {
            max_grad_norm: self.args.max_grad_norm,
            unscale: loss_scale,
            must_be_finite: loss_sum.clone(),
        };
        let queued = self.optimization.optimizer.updates_on_device();
        // The host loop's gradients and clipping, until the read gives its coefficient.
        let (scaled_norm, host_step) = if queued {
            let norm = self.queue_clipped_step(grads, learning_rate, clipping)?;
            (norm, None)
        } else {
            let norm = AdamW::grad_norm(&self.model, &grads)
                .unwrap_or_else(|| Tensor::zeros([1], &self.device))
                .reshape([1]);
            (norm, Some((grads, clipping)))
        };
        let (loss, scaled_norm) = self.read_loss_and_norm(loss_sum, scaled_norm)?;
        let grad_norm = scaled_norm / loss_scale;
        let fault = [("loss", loss), ("gradient norm", grad_norm)]
            .into_iter()
            .find(|(_, value)| !value.is_finite());
        let fp16 = self.optimization.precision == Precision::Fp16;
        let outcome = match fault {
            Some((what, value)) => {
                if queued {
                    self.optimization.optimizer.retract_step();
                }
                if fp16 && self.optimization.scaler.scale > 1.0 {
                    self.optimization.scaler.update(true);
                    StepOutcome::SkippedOverflow { what, value }
                } else {
                    StepOutcome::NonFinite { what, value }
                }
            }
            None => {
                if fp16 {
                    self.optimization.scaler.update(false);
                }
                if let Some((grads, clipping)) = host_step {
                    let scale = clipping.host_scale(scaled_norm);
                    let optimizer = &mut self.optimization.optimizer;
                    // Aborts rather than unwinds if AdamW panics: the model is moved, not
                    // copied.
                    replace_with::replace_with_or_abort(&mut self.model, |model| {
                        optimizer.step(model, grads, learning_rate, scale)
                    });
                }
                StepOutcome::Applied
            }
        };
        Ok(StepReport {
            outcome,
            loss,
            grad_norm,
        })
    }

    /// Queues AdamW's whole update, clipped and guarded on the device, reading nothing;
    /// returns the gradients' norm (shape `[1]`).
    fn queue_clipped_step(
        &mut self,
        grads: GradientsParams,
        learning_rate: f64,
        clipping: Clipping,
    ) -> Result<Tensor<1>, TrainerError> {
        let optimizer = &mut self.optimization.optimizer;
        let mut norm = None;
        // Aborts rather than unwinds if AdamW panics: the model is moved, not copied.
        replace_with::replace_with_or_abort(&mut self.model, |model| {
            let (model, result) = optimizer.step_clipped(model, grads, learning_rate, clipping);
            norm = Some(result);
            model
        });
        let context = || format!("step {}", self.progress.state.global_step + 1);
        match norm {
            Some(Ok(norm)) => Ok(norm),
            Some(Err(source)) => Err(TrainerError::DeviceRead {
                what: format!("the gradient norm of {}", context()),
                source,
            }),
            None => Err(TrainerError::Internal {
                context: context(),
                what: "AdamW returned no gradient norm",
            }),
        }
    }

    /// DDP's gradient all-reduce: every rank's gradients replaced by their mean over the ranks,
    /// and the loss by its mean, so that every rank clips, checks and steps on the same values
    /// and takes the same decisions. The step's floating-point operations are summed into
    /// `total_flos`, as transformers gathers them.
    fn average_across_ranks(
        &mut self,
        loss_sum: Tensor<1>,
        grads: &mut GradientsParams,
        flos: f64,
    ) -> Result<Tensor<1>, TrainerError> {
        let error = |source| TrainerError::DeviceRead {
            what: format!(
                "the gradients of step {}",
                self.progress.state.global_step + 1
            ),
            source,
        };
        let loss = read_scalar::<f64, 1>(loss_sum).map_err(error)?;
        let mut scalars = [loss, flos];
        crate::distributed::average_gradients(
            &self.group,
            &self.model,
            grads,
            &mut scalars,
            &self.device,
        )
        .map_err(error)?;
        let [loss, flos] = scalars;
        self.progress.state.total_flos += flos;
        let mean = loss / self.group.world_size() as f64;
        Ok(Tensor::from_data(
            TensorData::new(vec![mean as f32], [1]),
            &self.device,
        ))
    }

    /// fp16's current loss scale; 1 in other precisions.
    fn loss_scale(&self) -> f64 {
        if self.optimization.precision == Precision::Fp16 {
            self.optimization.scaler.scale
        } else {
            1.0
        }
    }

    /// The summed loss and the gradients' global norm, read together.
    fn read_loss_and_norm(
        &self,
        loss_sum: Tensor<1>,
        norm: Tensor<1>,
    ) -> Result<(f64, f64), TrainerError> {
        let both = Tensor::cat(vec![loss_sum.reshape([1]), norm.reshape([1])], 0);
        let error = |source| TrainerError::DeviceRead {
            what: format!(
                "the loss and gradient norm of step {}",
                self.progress.state.global_step + 1
            ),
            source,
        };
        match read_vec::<f64, 1>(both).map_err(error)?[..] {
            [loss, norm] => Ok((loss, norm)),
            ref values => Err(error(TensorReadError::InvalidShape {
                expected: 2,
                actual: values.len(),
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    use burn::module::{Module, ModuleVisitor, Param};
    use burn::tensor::Device;
    use ft_bert::BertForSequenceClassification;

    use super::*;
    use crate::optimizer::AdamWConfig;
    use crate::trainer::tests::tiny_trainer;

    /// Every parameter's gradient set to `value`, and the loss to `loss`.
    fn accumulated(
        trainer: &Trainer<BertForSequenceClassification>,
        value: f32,
        loss: f32,
    ) -> Accumulated {
        struct Fill<'a>(&'a mut GradientsParams, f32, Device);
        impl ModuleVisitor for Fill<'_> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                let grad = param.val().inner().ones_like().mul_scalar(self.1);
                self.0.register(param.id, grad.to_device(&self.2));
            }
        }
        let mut grads = GradientsParams::new();
        let device = trainer.device.clone();
        trainer
            .model
            .visit(&mut Fill(&mut grads, value, device.clone()));
        Accumulated {
            loss_sum: Tensor::from_data(TensorData::new(vec![loss], [1]), &device),
            grads,
            loss_scale: trainer.loss_scale(),
            micro_batches: 1,
            flos: 0.0,
        }
    }

    fn weights(trainer: &Trainer<BertForSequenceClassification>) -> Vec<f32> {
        struct Collect(Vec<f32>);
        impl ModuleVisitor for Collect {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                let values = param.val().into_data().try_to_vec::<f32>().unwrap();
                self.0.extend(values);
            }
        }
        let mut collect = Collect(Vec::new());
        trainer.model.visit(&mut collect);
        collect.0
    }

    /// Two rows of a tiny vocabulary, the second padded, on the training device.
    fn batch(trainer: &Trainer<BertForSequenceClassification>, labels: bool) -> ModelInput {
        let batch = ft_collate::PaddedBatch {
            batch_size: 2,
            seq_len: 4,
            input_ids: vec![2, 5, 7, 3, 2, 9, 3, 0],
            token_type_ids: Some(vec![0; 8]),
            attention_mask: vec![1, 1, 1, 1, 1, 1, 1, 0],
            labels: labels.then(|| ft_collate::HostLabels::Class(vec![0, 1])),
            idx: vec![0, 1],
            lengths: vec![4, 3],
            num_tokens: 7,
        }
        .to_device(&trainer.device.clone().autodiff());
        model_input(&batch).unwrap()
    }

    /// The tiny trainer with each of AdamW's two paths: the fused host loop flex picks, and
    /// the tensor operations a GPU runs, which queue the whole step before the read.
    fn both_optimizers(
        dir: &std::path::Path,
    ) -> [(&'static str, Trainer<BertForSequenceClassification>); 2] {
        let host = tiny_trainer(dir);
        let config = AdamWConfig::from(&host.args);
        let queued = tiny_trainer(dir).with_optimizer(AdamW::new(config));
        assert!(!host.optimization.optimizer.updates_on_device());
        assert!(queued.optimization.optimizer.updates_on_device());
        [("host loop", host), ("queued", queued)]
    }

    #[test]
    fn a_training_step_returns_the_unscaled_loss_and_scaled_gradients() {
        let dir = tempfile::tempdir().unwrap();
        let trainer = tiny_trainer(dir.path());
        let batch = batch(&trainer, true);
        let run = |scale| {
            trainer.device.seed(7);
            let (loss, grads) = trainer
                .training_step(&trainer.model, &batch, scale)
                .unwrap();
            let norm = AdamW::grad_norm(&trainer.model, &grads).unwrap();
            (loss.into_scalar::<f64>(), norm.into_scalar::<f64>())
        };
        let (loss, norm) = run(1.0);
        let (scaled_loss, scaled_norm) = run(4.0);
        assert!(loss.is_finite() && loss > 0.0, "{loss}");
        assert_eq!(scaled_loss, loss, "the loss is returned unscaled");
        assert!(norm > 0.0);
        assert!(
            (scaled_norm - 4.0 * norm).abs() < 1e-4 * scaled_norm,
            "{scaled_norm} vs {norm}"
        );

        let error = trainer
            .training_step(&trainer.model, &self::batch(&trainer, false), 1.0)
            .unwrap_err();
        // `train()` refuses unlabelled data up front; here it is a broken invariant.
        assert!(
            matches!(&error, TrainerError::Internal { context, .. } if context == "training step 1"),
            "{error}"
        );
    }

    #[test]
    fn a_finite_step_is_applied_with_its_clipped_norm() {
        let dir = tempfile::tempdir().unwrap();
        let mut applied = Vec::new();
        for (path, mut trainer) in both_optimizers(dir.path()) {
            let before = weights(&trainer);
            let step = accumulated(&trainer, 0.5, 0.7);
            let report = trainer.optimizer_step(step, 1e-3).unwrap();
            assert_eq!(report.outcome, StepOutcome::Applied, "{path}");
            assert!((report.loss - 0.7).abs() < 1e-6, "{path}");
            // Well above max_grad_norm (1): the update is clipped.
            let expected_norm = 0.5 * (before.len() as f64).sqrt();
            assert!(
                (report.grad_norm - expected_norm).abs() < 1e-3 * expected_norm,
                "{path}: {}",
                report.grad_norm
            );
            assert_eq!(trainer.optimization.optimizer.steps(), 1, "{path}");
            assert_ne!(weights(&trainer), before, "{path}");
            applied.push(weights(&trainer));
        }
        let worst = applied[0]
            .iter()
            .zip(&applied[1])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-6, "the paths' updates differ by {worst}");
    }

    /// Where AdamW updates on the device, the whole clipped update is queued before anything
    /// is read: the one read of the step comes after it. The host loop needs its coefficient
    /// first, and reads once; both paths clip alike, and neither applies a non-finite step.
    #[test]
    fn a_queued_step_reads_nothing_before_the_update() {
        use ft_bert::device_read::reads_on_this_thread;
        let dir = tempfile::tempdir().unwrap();
        let mut applied = Vec::new();
        for ((path, mut trainer), reads_first) in
            both_optimizers(dir.path()).into_iter().zip([1, 0])
        {
            let before = weights(&trainer);
            let queue = |trainer: &mut Trainer<_>, gradient, loss| {
                let step = accumulated(trainer, gradient, loss);
                let clipping = Clipping {
                    max_grad_norm: 1.0,
                    unscale: 1.0,
                    must_be_finite: step.loss_sum,
                };
                let reads = reads_on_this_thread();
                let norm = trainer
                    .queue_clipped_step(step.grads, 1e-3, clipping)
                    .unwrap();
                assert_eq!(reads_on_this_thread() - reads, reads_first, "{path}");
                norm.into_scalar::<f64>()
            };
            let norm = queue(&mut trainer, 0.5, f32::NAN);
            assert!(norm.is_finite(), "{path}: {norm}");
            assert_eq!(weights(&trainer), before, "{path}: a NaN loss was applied");
            trainer.optimization.optimizer.retract_step();

            let norm = queue(&mut trainer, 0.5, 0.7);
            let expected = 0.5 * (before.len() as f64).sqrt();
            assert!((norm - expected).abs() < 1e-3 * expected, "{path}: {norm}");
            assert_eq!(trainer.optimization.optimizer.steps(), 1, "{path}");
            applied.push(weights(&trainer));
        }
        assert_ne!(
            applied[0],
            applied[1].iter().map(|_| 0.0).collect::<Vec<_>>()
        );
        let worst = applied[0]
            .iter()
            .zip(&applied[1])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-6, "the paths' updates differ by {worst}");
    }

    #[test]
    fn a_non_finite_gradient_stops_without_touching_the_weights() {
        let dir = tempfile::tempdir().unwrap();
        for (path, mut trainer) in both_optimizers(dir.path()) {
            // One good step first, so that there are moments to keep.
            let step = accumulated(&trainer, 0.5, 0.7);
            trainer.optimizer_step(step, 1e-3).unwrap();
            let before = weights(&trainer);
            let moments = trainer.optimization.optimizer.moments("classifier.weight");
            let step = accumulated(&trainer, f32::NAN, 0.7);
            let report = trainer.optimizer_step(step, 1e-3).unwrap();
            assert!(
                matches!(
                    report.outcome,
                    StepOutcome::NonFinite { what: "gradient norm", value } if value.is_nan()
                ),
                "{path}: {report:?}"
            );
            assert_eq!(trainer.optimization.optimizer.steps(), 1, "{path}");
            assert_eq!(weights(&trainer), before, "{path}");
            let after = trainer.optimization.optimizer.moments("classifier.weight");
            assert_eq!(after.unwrap(), moments.unwrap(), "{path}");

            let step = accumulated(&trainer, 0.5, f32::INFINITY);
            let report = trainer.optimizer_step(step, 1e-3).unwrap();
            assert_eq!(
                report.outcome,
                StepOutcome::NonFinite {
                    what: "loss",
                    value: f64::INFINITY
                },
                "{path}"
            );
            assert_eq!(weights(&trainer), before, "{path}");
            assert_eq!(trainer.optimization.optimizer.steps(), 1, "{path}");
        }
    }

    #[test]
    fn an_fp16_overflow_skips_the_step_and_halves_the_scale() {
        let dir = tempfile::tempdir().unwrap();
        for (path, mut trainer) in both_optimizers(dir.path()) {
            // Set directly: whether this device computes in f16 is not what is tested here.
            trainer.optimization.precision = Precision::Fp16;
            let before = weights(&trainer);
            let step = accumulated(&trainer, f32::INFINITY, 0.7);
            let report = trainer.optimizer_step(step, 1e-3).unwrap();
            assert!(
                matches!(
                    report.outcome,
                    StepOutcome::SkippedOverflow {
                        what: "gradient norm",
                        ..
                    }
                ),
                "{path}: {report:?}"
            );
            assert_eq!(trainer.optimization.scaler.scale, 32768.0, "{path}");
            assert_eq!(trainer.optimization.optimizer.steps(), 0, "{path}");
            assert_eq!(weights(&trainer), before, "{path}");

            // The next finite step is applied, its gradients unscaled by the new scale.
            let step = accumulated(&trainer, 32768.0 * 0.5, 0.7);
            let report = trainer.optimizer_step(step, 1e-3).unwrap();
            assert_eq!(report.outcome, StepOutcome::Applied, "{path}");
            let expected_norm = 0.5 * (before.len() as f64).sqrt();
            assert!(
                (report.grad_norm - expected_norm).abs() < 1e-3 * expected_norm,
                "{path}: {}",
                report.grad_norm
            );
            assert_eq!(trainer.optimization.scaler.growth_tracker, 1, "{path}");
            assert_eq!(trainer.optimization.optimizer.steps(), 1, "{path}");
        }
    }

    #[test]
    fn an_interrupt_writes_a_checkpoint_and_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let flag = Arc::new(AtomicBool::new(false));
        let mut trainer = tiny_trainer(dir.path()).with_interrupt_flag(flag.clone());
        trainer.progress.state.global_step = 3;
        trainer.check_interrupt().unwrap();
        assert!(!dir.path().join("checkpoint-3").exists());

        flag.store(true, std::sync::atomic::Ordering::SeqCst);
        match trainer.check_interrupt() {
            Err(TrainerError::Interrupted { step, checkpoint }) => {
                assert_eq!(step, 3);
                assert_eq!(checkpoint, dir.path().join("checkpoint-3"));
                for file in [
                    "model.safetensors",
                    "trainer_state.json",
                    "optimizer.safetensors",
                ] {
                    assert!(checkpoint.join(file).is_file(), "{file}");
                }
            }
            other => panic!("expected an interrupt, got {other:?}"),
        }
    }
}
