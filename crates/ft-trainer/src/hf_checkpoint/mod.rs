//! The files transformers' Trainer resumes from, in our checkpoints and out of its own.
//!
//! Beside its own files (`optimizer.safetensors`, `scheduler.json`, `rng_state.json`), every
//! checkpoint bert-ft writes holds what `Trainer.train(resume_from_checkpoint=…)` reads:
//! `optimizer.pt` (torch's `AdamW.state_dict()`), `scheduler.pt` (`LambdaLR.state_dict()`)
//! and `rng_state.pth` (see [`rng`]), written by [`crate::torch_save`]. The other way, a
//! checkpoint transformers wrote has none of our files, and resuming reads its
//! `optimizer.pt` and `scheduler.pt` (with burn-store's PyTorch reader) where ours are
//! absent: each file of ours is read first when present, transformers' otherwise.

pub mod rng;
pub mod scheduler;

use std::path::Path;

use burn::module::Module;

use crate::args::{OptimizerNames, TrainingArguments};
use crate::error::TrainerError;
use crate::optimizer::{AdamW, GroupSettings, ParamGroup, TorchParameters};
use crate::schedule::Schedule;
use crate::torch_save::{self, TorchSaveError, Value};

/// transformers' `OPTIMIZER_NAME`.
pub const OPTIMIZER_PT: &str = "optimizer.pt";
/// transformers' `SCHEDULER_NAME`.
pub const SCHEDULER_PT: &str = "scheduler.pt";
/// The RNG file of a run on one process.
pub const RNG_STATE_PTH: &str = "rng_state.pth";

/// Where a run is, as the files transformers reads describe it.
#[derive(Debug, Clone, Copy)]
pub struct TorchRun<'a> {
    /// The run's arguments.
    pub args: &'a TrainingArguments,
    /// Its learning-rate schedule.
    pub schedule: Schedule,
    /// Optimizer steps taken.
    pub step: usize,
}

impl TorchRun<'_> {
    /// The param groups' hyper-parameters after `step` steps.
    fn group_settings(&self) -> GroupSettings {
        GroupSettings {
            lr: self.schedule.learning_rate(self.step + 1),
            initial_lr: self.schedule.base,
            betas: (self.args.adam_beta1, self.args.adam_beta2),
            eps: self.args.adam_epsilon,
            weight_decay: self.args.weight_decay,
            fused: self.args.optim == OptimizerNames::AdamwTorchFused,
        }
    }
}

/// Writes `optimizer.pt`, `scheduler.pt` and `rng_state.pth` into `dir`, for `model`
/// trained by `optimizer` as far as `run` says.
pub fn write_torch_files<M: Module>(
    dir: &Path,
    model: &M,
    optimizer: &AdamW,
    run: &TorchRun<'_>,
) -> Result<(), TrainerError> {
    let parameters = TorchParameters::of(model);
    let state = optimizer.torch_state_dict(&parameters, &run.group_settings())?;
    save(&dir.join(OPTIMIZER_PT), &state)?;
    drop(state);
    let scheduler = scheduler::lambda_lr_state_dict(&run.schedule, run.step);
    save(&dir.join(SCHEDULER_PT), &scheduler)?;
    save(&dir.join(RNG_STATE_PTH), &rng::rng_state(run.args.seed))
}

/// Writes one torch file. One too large for this writer (past 4 GiB, a model of well over
/// 500M parameters) is left out with a warning: our own files still resume the run, and
/// transformers resumes without that file as it does without any.
fn save(path: &Path, value: &Value) -> Result<(), TrainerError> {
    match torch_save::save(value, path) {
        Ok(()) => Ok(()),
        Err(error @ TorchSaveError::TooLarge { .. }) => {
            let _ = std::fs::remove_file(path);
            tracing::warn!(
                "{} is left out of the checkpoint: {error}; bert-ft resumes from its own \
                 files, transformers without it",
                path.display()
            );
            Ok(())
        }
        Err(error) => Err(TrainerError::save(path, error)),
    }
}

/// A hyper-parameter of a transformers checkpoint that differs from this run's argument.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangedSetting {
    /// The argument (`learning_rate`).
    pub argument: &'static str,
    /// The checkpoint's value.
    pub saved: f64,
    /// This run's.
    pub now: f64,
}

/// The arguments this run changes from the hyper-parameters of a transformers checkpoint's
/// param groups (the decaying group first) and its scheduler's base rates: all that a
/// transformers checkpoint says of its arguments in files bert-ft reads.
pub fn changed_settings(
    groups: &[ParamGroup],
    base_lrs: &[f64],
    args: &TrainingArguments,
) -> Vec<ChangedSetting> {
    let first = groups.first();
    let found = [
        (
            "learning_rate",
            base_lrs
                .first()
                .copied()
                .or(first.and_then(|g| g.initial_lr)),
            args.learning_rate,
        ),
        ("adam_beta1", first.map(|g| g.betas.0), args.adam_beta1),
        ("adam_beta2", first.map(|g| g.betas.1), args.adam_beta2),
        ("adam_epsilon", first.map(|g| g.eps), args.adam_epsilon),
        (
            "weight_decay",
            first.map(|g| g.weight_decay),
            args.weight_decay,
        ),
    ];
    found
        .into_iter()
        .filter_map(|(argument, saved, now)| {
            let saved = saved?;
            (saved != now).then_some(ChangedSetting {
                argument,
                saved,
                now,
            })
        })
        .collect()
}
