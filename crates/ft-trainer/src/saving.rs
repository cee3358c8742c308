//! Writing and reading checkpoints, the final model and the results files.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::args::{TrainSamplingStrategy, TrainingArguments};
use crate::checkpoint::{rotate_checkpoints, write_checkpoint};
use crate::error::{CheckpointProblem, TrainerError};
use crate::hf_checkpoint::scheduler::read_lambda_lr;
use crate::hf_checkpoint::{OPTIMIZER_PT, SCHEDULER_PT, TorchRun, changed_settings};
use crate::metrics::Metrics;
use crate::model::TrainableModel;
use crate::optimizer::{OPTIMIZER_FILE, TorchParameters, read_torch_state_dict};
use crate::schedule::Schedule;
use crate::state::{TRAINER_STATE_FILE, TrainerState};
use crate::trainer::Trainer;
use crate::trainer::position::StepShape;
use ft_bert::HubWeights;

/// The scheduler's position (transformers writes `scheduler.pt`).
const SCHEDULER_FILE: &str = "scheduler.json";
/// fp16's loss scale (transformers writes `scaler.pt`).
const SCALER_FILE: &str = "scaler.json";
/// The arguments (transformers pickles them into `training_args.bin`).
const ARGS_FILE: &str = "training_args.json";
/// The seeds the data order and dropout masks are drawn from (transformers: `rng_state.pth`).
const RNG_FILE: &str = "rng_state.json";

fn write(path: &Path, text: &str) -> Result<(), TrainerError> {
    std::fs::write(path, text).map_err(|e| TrainerError::save(path, e))
}

/// The schedule's position, as `scheduler.json` holds it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct SchedulerState {
    /// Steps taken (`last_epoch` in PyTorch's `LRScheduler`).
    last_epoch: usize,
    lr_scheduler_type: crate::args::SchedulerType,
    base_lr: f64,
}

/// The seeds of a run, as `rng_state.json` holds them.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct RngState {
    seed: u64,
    data_seed: u64,
    global_step: usize,
    /// Processes that trained together; checkpoints from before data parallelism had one.
    #[serde(default = "one_process")]
    world_size: usize,
    note: String,
}

fn one_process() -> usize {
    1
}

/// A checkpoint's `training_args.json`.
fn read_arguments(dir: &Path) -> Result<TrainingArguments, TrainerError> {
    TrainingArguments::default().merge_json_file(&dir.join(ARGS_FILE))
}

/// Reads and parses one JSON file of a checkpoint.
fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, TrainerError> {
    let text = std::fs::read_to_string(path).map_err(|e| TrainerError::load(path, e))?;
    serde_json::from_str(&text).map_err(|e| TrainerError::load(path, e))
}

/// Arguments that decide how many rows a step takes: a resume with other values skips the
/// rows already seen by their count (see `trainer/position.rs`).
const STEP_SHAPE: &[&str] = &[
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "dataloader_drop_last",
];

/// Arguments that decide which rows a step sees: changing them on resume moves the run to
/// another place in the data than the uninterrupted run would have reached.
const DATA_POSITION: &[&str] = &[
    "train_sampling_strategy",
    "seed",
    "data_seed",
    "num_train_epochs",
    "max_steps",
];

/// The fields of `now` that differ from `saved`, with both values.
pub(crate) fn differing_arguments(
    saved: &TrainingArguments,
    now: &TrainingArguments,
) -> Result<Vec<(String, Value, Value)>, serde_json::Error> {
    let as_map = |args: &TrainingArguments| -> Result<_, serde_json::Error> {
        match serde_json::to_value(args)? {
            Value::Object(map) => Ok(map),
            _ => Ok(serde_json::Map::new()),
        }
    };
    let (saved, now) = (as_map(saved)?, as_map(now)?);
    Ok(now
        .into_iter()
        .filter_map(|(key, value)| {
            let before = saved.get(&key).cloned().unwrap_or(Value::Null);
            (before != value).then_some((key, before, value))
        })
        .collect())
}

impl<M: TrainableModel> Trainer<M> {
    /// `trainer.save_model(dir)`: the model (`config.json`, `model.safetensors`) and the
    /// tokenizer's files, written by rank 0 alone.
    pub fn save_model(&self, dir: &Path) -> Result<(), TrainerError> {
        if !self.is_world_process_zero() {
            return Ok(());
        }
        std::fs::create_dir_all(dir).map_err(|e| TrainerError::save(dir, e))?;
        self.model
            .save_pretrained(dir)
            .map_err(|e| TrainerError::save(dir, e))?;
        if let Some(tokenizer) = &self.data.tokenizer {
            tokenizer
                .save_pretrained(dir)
                .map_err(|e| TrainerError::save(dir, e))?;
        }
        Ok(())
    }

    /// `trainer.save_state()`: `trainer_state.json` in `output_dir` (rank 0 alone).
    pub fn save_state(&self) -> Result<(), TrainerError> {
        if !self.is_world_process_zero() {
            return Ok(());
        }
        let dir = &self.args.output_dir;
        std::fs::create_dir_all(dir).map_err(|e| TrainerError::save(dir, e))?;
        let path = dir.join(TRAINER_STATE_FILE);
        write(
            &path,
            &self
                .progress
                .state
                .to_json()
                .map_err(|e| TrainerError::save(&path, e))?,
        )
    }

    /// `trainer.save_metrics(split, metrics)`: `{split}_results.json`, merged into
    /// `all_results.json` (sorted keys, four-space indent, as transformers writes them); rank 0
    /// alone writes.
    pub fn save_metrics(&self, split: &str, metrics: &Metrics) -> Result<(), TrainerError> {
        if !self.is_world_process_zero() {
            return Ok(());
        }
        let dir = &self.args.output_dir;
        std::fs::create_dir_all(dir).map_err(|e| TrainerError::save(dir, e))?;
        let path = dir.join(format!("{split}_results.json"));
        write(
            &path,
            &json_indent4(metrics).map_err(|e| TrainerError::save(&path, e))?,
        )?;
        let all_path = dir.join("all_results.json");
        // As transformers: the file's metrics are kept, and a file that cannot be read is an
        // error rather than silently replaced.
        let mut all: BTreeMap<String, Value> = match std::fs::read_to_string(&all_path) {
            Ok(text) => {
                serde_json::from_str(&text).map_err(|e| TrainerError::load(&all_path, e))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(TrainerError::io(&all_path, e)),
        };
        all.extend(metrics.iter().map(|(k, v)| (k.clone(), Value::from(*v))));
        let text = json_indent4(&all).map_err(|e| TrainerError::save(&all_path, e))?;
        write(&all_path, &text)
    }

    /// `trainer.log_metrics(split, metrics)`: prints them as transformers does (rank 0 alone).
    pub fn log_metrics(&self, split: &str, metrics: &Metrics) {
        if !self.is_world_process_zero() {
            return;
        }
        println!("***** {split} metrics *****");
        let width = metrics.keys().map(String::len).max().unwrap_or(0);
        for (key, value) in metrics {
            let shown = if key.ends_with("_runtime") {
                let total = *value;
                let hours = (total / 3600.0).floor();
                let minutes = ((total - hours * 3600.0) / 60.0).floor();
                let seconds = total - hours * 3600.0 - minutes * 60.0;
                format!("{}:{:02}:{:05.2}", hours as u64, minutes as u64, seconds)
            } else if key == "total_flos" {
                format!("{}GF", (*value as u64) >> 30)
            } else {
                crate::metrics::python_float((value * 1e4).round() / 1e4)
            };
            println!("  {key:<width$} = {shown:>11}");
        }
    }

    /// Writes `checkpoint-{global_step}`: the model and tokenizer (loadable by transformers),
    /// `trainer_state.json`, and the optimizer, scheduler and RNG state to resume from. The
    /// folder appears only once every file is on disk. Rank 0 writes it; the other processes
    /// wait until it is whole, since they may read it next (the best model, at the end).
    pub fn save_checkpoint(&mut self) -> Result<std::path::PathBuf, TrainerError> {
        let step = self.progress.state.global_step;
        let output_dir = self.args.output_dir.clone();
        if let Some(best) = self.progress.state.best_global_step {
            let path = output_dir.join(format!("{}{best}", crate::checkpoint::CHECKPOINT_PREFIX));
            if best == step || path.exists() {
                self.progress.state.best_model_checkpoint = Some(path.display().to_string());
            }
        }
        let mut stateful = BTreeMap::new();
        stateful.insert(
            "TrainerControl".to_string(),
            self.progress.control.to_state(),
        );
        for callback in self.callbacks.iter() {
            if let Some(state) = callback.state() {
                stateful.insert(callback.name().to_string(), state);
            }
        }
        self.progress.state.stateful_callbacks = stateful;
        let scheduler = SchedulerState {
            last_epoch: step,
            lr_scheduler_type: self.args.lr_scheduler_type,
            base_lr: self.args.learning_rate,
        };
        let rng = RngState {
            seed: self.args.seed,
            data_seed: self.args.data_seed(),
            global_step: step,
            world_size: self.group.world_size(),
            note: "the data order and dropout masks are functions of the seeds and the step".into(),
        };
        let path = if !self.is_world_process_zero() {
            crate::checkpoint::checkpoint_path(&output_dir, step)
        } else {
            self.write_checkpoint_files(&output_dir, step, &scheduler, &rng)?
        };
        self.group.barrier();
        self.run_callbacks(|c, a, s, ctl| c.on_save(a, s, ctl));
        Ok(path)
    }

    /// Rank 0's part of `save_checkpoint`: every file, then the rotation.
    fn write_checkpoint_files(
        &self,
        output_dir: &Path,
        step: usize,
        scheduler: &SchedulerState,
        rng: &RngState,
    ) -> Result<std::path::PathBuf, TrainerError> {
        let path = write_checkpoint(output_dir, step, |dir| {
            self.save_model(dir)?;
            self.optimization
                .optimizer
                .save(&dir.join(OPTIMIZER_FILE))?;
            write_json(&dir.join(SCHEDULER_FILE), scheduler)?;
            if self.optimization.precision == crate::precision::Precision::Fp16 {
                write_json(&dir.join(SCALER_FILE), &self.optimization.scaler)?;
            }
            write_json(&dir.join(RNG_FILE), rng)?;
            write(&dir.join(ARGS_FILE), &self.args.to_json()?)?;
            let run = TorchRun {
                args: &self.args,
                schedule: Schedule::for_run(&self.args, self.progress.state.max_steps),
                step,
            };
            crate::hf_checkpoint::write_torch_files(
                dir,
                &self.model,
                &self.optimization.optimizer,
                &run,
            )?;
            let state = self.progress.state.to_json();
            let path = dir.join(TRAINER_STATE_FILE);
            write(&path, &state.map_err(|e| TrainerError::save(&path, e))?)
        })?;
        rotate_checkpoints(
            output_dir,
            self.args.save_total_limit,
            self.progress
                .state
                .best_model_checkpoint
                .as_deref()
                .map(Path::new),
        );
        Ok(path)
    }

    /// Restores a checkpoint: the model, the optimizer, fp16's loss scale, the state and the
    /// callbacks'. The schedule continues from the checkpoint's step with this run's
    /// arguments; each argument that differs from the checkpoint's is warned about by name.
    /// Each file of ours is read where present, transformers' otherwise (`optimizer.pt`,
    /// `scheduler.pt`), so a checkpoint transformers' Trainer wrote resumes too.
    /// Everything that can fail is read before the Trainer changes, the weights last. Returns
    /// the batch shape the checkpoint was trained with.
    pub(crate) fn load_checkpoint(&mut self, dir: &Path) -> Result<StepShape, TrainerError> {
        if !dir.is_dir() {
            return Err(TrainerError::invalid_checkpoint(
                dir,
                CheckpointProblem::NotAFolder,
            ));
        }
        let saved = TrainerState::load(&dir.join(TRAINER_STATE_FILE))?;
        let world_size = self.check_checkpoint_position(dir, &saved)?;
        let shape = self.checkpoint_step_shape(dir, &saved, world_size)?;
        self.load_optimizer(dir)?;
        let scaler_file = dir.join(SCALER_FILE);
        let scaler = match scaler_file.is_file() {
            true => read_json(&scaler_file)?,
            false => self.optimization.scaler,
        };
        self.model
            .load_pretrained_weights(dir)
            .map_err(|e| TrainerError::load(dir, e))?;
        self.optimization.scaler = scaler;
        for callback in self.callbacks.iter_mut() {
            if let Some(state) = saved.stateful_callbacks.get(callback.name()) {
                callback.load_state(state);
            }
        }
        self.progress.restore(saved);
        Ok(shape)
    }

    /// The scheduler and the seeds must be at the step the state says: a checkpoint whose
    /// files disagree was not written whole by one save. Returns the number of processes the
    /// checkpoint was trained on (`rng_state.json` says; a transformers checkpoint is taken
    /// as this run's).
    fn check_checkpoint_position(
        &self,
        dir: &Path,
        saved: &TrainerState,
    ) -> Result<usize, TrainerError> {
        let (scheduler_file, scheduler_step) = self.scheduler_step(dir)?;
        let rng_file = dir.join(RNG_FILE);
        let rng: Option<RngState> = match rng_file.is_file() {
            true => Some(read_json(&rng_file)?),
            false => None,
        };
        let steps = [
            (scheduler_file, Some(scheduler_step)),
            (RNG_FILE, rng.as_ref().map(|rng| rng.global_step)),
        ];
        for (file, step) in steps {
            let Some(step) = step.filter(|&step| step != saved.global_step) else {
                continue;
            };
            return Err(TrainerError::invalid_checkpoint(
                dir.join(file),
                CheckpointProblem::StepsDisagree {
                    step,
                    state_step: saved.global_step,
                },
            ));
        }
        if saved.max_steps != self.progress.state.max_steps {
            tracing::warn!(
                "the checkpoint planned {} steps, this run plans {}; continuing with {}",
                saved.max_steps,
                self.progress.state.max_steps,
                self.progress.state.max_steps
            );
        }
        Ok(rng.map_or(self.group.world_size(), |rng| rng.world_size))
    }

    /// The scheduler's file and step: `scheduler.json`, else transformers' `scheduler.pt`,
    /// whose base rate is compared with this run's.
    fn scheduler_step(&self, dir: &Path) -> Result<(&'static str, usize), TrainerError> {
        let ours = dir.join(SCHEDULER_FILE);
        if ours.is_file() {
            let scheduler: SchedulerState = read_json(&ours)?;
            return Ok((SCHEDULER_FILE, scheduler.last_epoch));
        }
        let state = read_lambda_lr(&dir.join(SCHEDULER_PT))?;
        self.warn_about_changed_settings(dir, SCHEDULER_PT, &[], &state.base_lrs);
        // A scheduler that never stepped says -1; it is at step 0.
        Ok((SCHEDULER_PT, usize::try_from(state.last_epoch).unwrap_or(0)))
    }

    /// The batch shape the checkpoint was trained with, from its `training_args.json`, whose
    /// every change is warned about. A transformers checkpoint pickles its arguments as a
    /// Python object (`training_args.bin`), which bert-ft does not read: its per-device batch
    /// comes from `trainer_state.json`, the rest is taken as this run's.
    fn checkpoint_step_shape(
        &self,
        dir: &Path,
        saved: &TrainerState,
        world_size: usize,
    ) -> Result<StepShape, TrainerError> {
        if dir.join(ARGS_FILE).is_file() {
            let saved_args = read_arguments(dir)?;
            self.warn_about_changed_arguments(dir, &saved_args, saved.global_step)?;
            return Ok(StepShape::new(&saved_args, world_size));
        }
        tracing::warn!(
            "{} has no training_args.json (transformers' training_args.bin is a pickled Python              object bert-ft does not read): only its optimizer's and scheduler's settings are              compared with this run's arguments, and it is taken to have been trained with              this run's gradient_accumulation_steps, dataloader_drop_last and number of              processes",
            dir.display()
        );
        if self.args.train_sampling_strategy != TrainSamplingStrategy::Sequential {
            tracing::warn!(
                "{} has no rng_state.json: bert-ft's {:?} order is not torch's, so the rows after                  the resume are not those transformers would have drawn                  (train_sampling_strategy=\"sequential\" makes them the same)",
                dir.display(),
                self.args.train_sampling_strategy
            );
        }
        let mut shape = StepShape::new(&self.args, world_size);
        if let Some(batch) = saved.train_batch_size {
            shape.per_device_train_batch_size = batch.max(1);
        }
        Ok(shape)
    }

    /// Loads AdamW's state: `optimizer.safetensors`, else transformers' `optimizer.pt`,
    /// whose indices are mapped to our parameters (see `optimizer/torch_state.rs`).
    fn load_optimizer(&mut self, dir: &Path) -> Result<(), TrainerError> {
        let ours = dir.join(OPTIMIZER_FILE);
        if ours.is_file() {
            return self.optimization.optimizer.load(&ours, &self.model);
        }
        let path = dir.join(OPTIMIZER_PT);
        let state = read_torch_state_dict(&path, &TorchParameters::of(&self.model))?;
        self.warn_about_changed_settings(dir, OPTIMIZER_PT, &state.groups, &[]);
        tracing::info!(
            "resuming AdamW from transformers' {} at step {}",
            path.display(),
            state.step
        );
        self.optimization
            .optimizer
            .restore(state.step, state.moments, &self.model)
            .map_err(|problem| TrainerError::invalid_checkpoint(&path, problem))
    }

    /// Warns about each hyper-parameter of a transformers file that this run's arguments
    /// change: transformers would resume with the file's, bert-ft takes this run's.
    fn warn_about_changed_settings(
        &self,
        dir: &Path,
        file: &str,
        groups: &[crate::optimizer::ParamGroup],
        base_lrs: &[f64],
    ) {
        for changed in changed_settings(groups, base_lrs, &self.args) {
            tracing::warn!(
                "resuming from {} with {} = {}; its {file} has {}: bert-ft continues with this \
                 run's value, where transformers would keep the checkpoint's",
                dir.display(),
                changed.argument,
                changed.now,
                changed.saved,
            );
        }
    }

    /// Warns about each argument this run changes from the checkpoint's `training_args.json`
    /// (transformers checks four; every field is checked here), and returns their names.
    pub(crate) fn warn_about_changed_arguments(
        &self,
        dir: &Path,
        checkpoint: &TrainingArguments,
        resumed_step: usize,
    ) -> Result<Vec<String>, TrainerError> {
        let changed = differing_arguments(checkpoint, &self.args)
            .map_err(|e| TrainerError::load(dir.join(ARGS_FILE), e))?;
        for (name, before, now) in &changed {
            let effect = if STEP_SHAPE.contains(&name.as_str()) {
                "the rows the checkpoint had seen are skipped by their count, and steps are \
                 counted in this run's batches from here on"
            } else if DATA_POSITION.contains(&name.as_str()) {
                "the run continues from this step's count of batches, so it sees other rows \
                 than the uninterrupted run would have"
            } else {
                "the new value applies from here on"
            };
            tracing::warn!(
                "resuming from {} at step {resumed_step} with {name} = {now}; the checkpoint \
                 was trained with {before}: {effect}",
                dir.display(),
            );
        }
        Ok(changed.into_iter().map(|(name, ..)| name).collect())
    }
}

/// Writes `value` as pretty JSON; a value that cannot be serialised is an error, never an
/// empty file.
fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), TrainerError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| TrainerError::save(path, e))?;
    write(path, &(text + "\n"))
}

/// JSON with sorted keys and a four-space indent (`json.dump(..., indent=4, sort_keys=True)`).
fn json_indent4<T: serde::Serialize>(value: &T) -> Result<String, serde_json::Error> {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    value.serialize(&mut serializer)?;
    // serde_json writes only valid UTF-8.
    Ok(String::from_utf8_lossy(&out).into_owned() + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trainer::tests::tiny_trainer;

    #[test]
    fn resuming_names_every_argument_that_changed() {
        let dir = tempfile::tempdir().unwrap();
        let mut trainer = tiny_trainer(dir.path());
        trainer.progress.state.global_step = 4;
        let checkpoint = trainer.save_checkpoint().unwrap();
        let saved = read_arguments(&checkpoint).unwrap();
        assert!(
            trainer
                .warn_about_changed_arguments(&checkpoint, &saved, 4)
                .unwrap()
                .is_empty()
        );

        trainer.args.learning_rate = 1e-3;
        trainer.args.weight_decay = 0.01;
        trainer.args.lr_scheduler_type = crate::args::SchedulerType::Cosine;
        let mut changed = trainer
            .warn_about_changed_arguments(&checkpoint, &saved, 4)
            .unwrap();
        changed.sort();
        assert_eq!(
            changed,
            ["learning_rate", "lr_scheduler_type", "weight_decay"]
        );
    }

    #[test]
    fn a_checkpoint_whose_files_disagree_on_the_step_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut trainer = tiny_trainer(dir.path());
        trainer.progress.state.global_step = 4;
        let checkpoint = trainer.save_checkpoint().unwrap();
        trainer.load_checkpoint(&checkpoint).unwrap();
        assert_eq!(trainer.progress.state.global_step, 4);

        let scheduler = checkpoint.join(SCHEDULER_FILE);
        let text = std::fs::read_to_string(&scheduler).unwrap();
        std::fs::write(
            &scheduler,
            text.replace("\"last_epoch\": 4", "\"last_epoch\": 3"),
        )
        .unwrap();
        let error = trainer.load_checkpoint(&checkpoint).unwrap_err();
        assert!(
            matches!(&error, TrainerError::Load { path, .. } if *path == scheduler),
            "{error:?}"
        );
        let cause = std::error::Error::source(&error).map(ToString::to_string);
        assert_eq!(
            cause.as_deref(),
            Some("it is at step 3, but trainer_state.json is at step 4")
        );

        // Without scheduler.json, transformers' scheduler.pt says where the run is.
        std::fs::remove_file(&scheduler).unwrap();
        trainer.load_checkpoint(&checkpoint).unwrap();
        let torch_scheduler = checkpoint.join(SCHEDULER_PT);
        std::fs::remove_file(&torch_scheduler).unwrap();
        assert!(matches!(
            trainer.load_checkpoint(&checkpoint),
            Err(TrainerError::Load { path, .. }) if path == torch_scheduler
        ));
    }

    #[test]
    fn results_merge_into_all_results_and_a_corrupt_one_is_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let trainer = tiny_trainer(dir.path());
        let metrics = |key: &str| Metrics::from([(key.to_string(), 0.5)]);
        trainer
            .save_metrics("train", &metrics("train_loss"))
            .unwrap();
        trainer.save_metrics("eval", &metrics("eval_f1")).unwrap();
        let all: BTreeMap<String, f64> = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("all_results.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(all.keys().collect::<Vec<_>>(), ["eval_f1", "train_loss"]);

        std::fs::write(dir.path().join("all_results.json"), "{not json").unwrap();
        let error = trainer
            .save_metrics("eval", &metrics("eval_f1"))
            .unwrap_err();
        assert!(matches!(error, TrainerError::Load { .. }), "{error:?}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("all_results.json")).unwrap(),
            "{not json"
        );
    }

    #[test]
    fn a_value_that_cannot_be_serialised_is_an_error_and_no_file() {
        struct Unserialisable;
        impl serde::Serialize for Unserialisable {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("no JSON for this"))
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let error = write_json(&path, &Unserialisable).unwrap_err();
        assert!(matches!(&error, TrainerError::Save { path: p, .. } if *p == path));
        assert!(!path.exists());
        assert!(json_indent4(&Unserialisable).is_err());
    }
}
