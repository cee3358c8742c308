//! Writing and reading checkpoints, the final model and the results files.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::checkpoint::{rotate_checkpoints, write_checkpoint};
use crate::error::TrainerError;
use crate::metrics::Metrics;
use crate::model::TrainableModel;
use crate::optimizer::OPTIMIZER_FILE;
use crate::state::{TRAINER_STATE_FILE, TrainerState};
use crate::trainer::Trainer;

/// The scheduler's position (transformers writes `scheduler.pt`).
const SCHEDULER_FILE: &str = "scheduler.json";
/// fp16's loss scale (transformers writes `scaler.pt`).
const SCALER_FILE: &str = "scaler.json";
/// The arguments (transformers pickles them into `training_args.bin`).
const ARGS_FILE: &str = "training_args.json";

fn save_error(path: &Path, reason: impl ToString) -> TrainerError {
    TrainerError::Save {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

fn write(path: &Path, text: &str) -> Result<(), TrainerError> {
    std::fs::write(path, text).map_err(|e| save_error(path, e))
}

impl<M: TrainableModel> Trainer<M> {
    /// `trainer.save_model(dir)`: the model (`config.json`, `model.safetensors`) and the
    /// tokenizer's files.
    pub fn save_model(&self, dir: &Path) -> Result<(), TrainerError> {
        std::fs::create_dir_all(dir).map_err(|e| save_error(dir, e))?;
        self.model()
            .save_pretrained(dir)
            .map_err(|e| save_error(dir, e))?;
        if let Some(tokenizer) = &self.tokenizer {
            tokenizer
                .save_pretrained(dir)
                .map_err(|e| save_error(dir, e))?;
        }
        Ok(())
    }

    /// `trainer.save_state()`: `trainer_state.json` in `output_dir`.
    pub fn save_state(&self) -> Result<(), TrainerError> {
        let dir = &self.args.output_dir;
        std::fs::create_dir_all(dir).map_err(|e| save_error(dir, e))?;
        write(&dir.join(TRAINER_STATE_FILE), &self.state.to_json())
    }

    /// `trainer.save_metrics(split, metrics)`: `{split}_results.json`, merged into
    /// `all_results.json` (sorted keys, four-space indent, as transformers writes them).
    pub fn save_metrics(&self, split: &str, metrics: &Metrics) -> Result<(), TrainerError> {
        let dir = &self.args.output_dir;
        std::fs::create_dir_all(dir).map_err(|e| save_error(dir, e))?;
        write(
            &dir.join(format!("{split}_results.json")),
            &json_indent4(metrics),
        )?;
        let all_path = dir.join("all_results.json");
        let mut all: BTreeMap<String, Value> = std::fs::read_to_string(&all_path)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        all.extend(metrics.iter().map(|(k, v)| (k.clone(), Value::from(*v))));
        write(&all_path, &json_indent4(&all))
    }

    /// `trainer.log_metrics(split, metrics)`: prints them as transformers does.
    pub fn log_metrics(&self, split: &str, metrics: &Metrics) {
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
    /// folder appears only once every file is on disk.
    pub fn save_checkpoint(&mut self) -> Result<std::path::PathBuf, TrainerError> {
        let step = self.state.global_step;
        let output_dir = self.args.output_dir.clone();
        if let Some(best) = self.state.best_global_step {
            let path = output_dir.join(format!("{}{best}", crate::checkpoint::CHECKPOINT_PREFIX));
            if best == step || path.exists() {
                self.state.best_model_checkpoint = Some(path.display().to_string());
            }
        }
        let mut stateful = BTreeMap::new();
        stateful.insert("TrainerControl".to_string(), self.control.to_state());
        for callback in &self.callbacks {
            if let Some(state) = callback.state() {
                stateful.insert(callback.name().to_string(), state);
            }
        }
        self.state.stateful_callbacks = stateful;
        let scheduler = serde_json::json!({
            "last_epoch": step,
            "lr_scheduler_type": self.args.lr_scheduler_type,
            "base_lr": self.args.learning_rate,
        });
        let rng = serde_json::json!({
            "seed": self.args.seed,
            "data_seed": self.args.data_seed(),
            "global_step": step,
            "note": "the data order and dropout masks are functions of the seeds and the step",
        });
        let path = write_checkpoint(&output_dir, step, |dir| {
            self.save_model(dir)?;
            if let Some(optimizer) = &self.optimizer {
                optimizer.save(&dir.join(OPTIMIZER_FILE))?;
            }
            write(&dir.join(SCHEDULER_FILE), &format!("{scheduler:#}\n"))?;
            if self.precision == crate::precision::Precision::Fp16 {
                let scaler = serde_json::to_string_pretty(&self.scaler).unwrap_or_default();
                write(&dir.join(SCALER_FILE), &scaler)?;
            }
            write(&dir.join("rng_state.json"), &format!("{rng:#}\n"))?;
            write(&dir.join(ARGS_FILE), &self.args.to_json())?;
            write(&dir.join(TRAINER_STATE_FILE), &self.state.to_json())
        })?;
        rotate_checkpoints(
            &output_dir,
            self.args.save_total_limit,
            self.state.best_model_checkpoint.as_deref().map(Path::new),
        );
        let (args, state, control) = (&self.args, &self.state, &mut self.control);
        for callback in &mut self.callbacks {
            callback.on_save(args, state, control);
        }
        Ok(path)
    }

    /// Restores the model, optimizer, state and callbacks of a checkpoint.
    pub(crate) fn load_checkpoint(&mut self, dir: &Path) -> Result<(), TrainerError> {
        let load_error = |reason: String| TrainerError::Load {
            path: dir.to_path_buf(),
            reason,
        };
        if !dir.is_dir() {
            return Err(load_error("not a folder".into()));
        }
        let saved = TrainerState::load(&dir.join(TRAINER_STATE_FILE))?;
        if saved.max_steps != self.state.max_steps {
            tracing::warn!(
                "the checkpoint planned {} steps, this run plans {}; continuing with {}",
                saved.max_steps,
                self.state.max_steps,
                self.state.max_steps
            );
        }
        let model = self
            .model
            .as_mut()
            .unwrap_or_else(|| unreachable!("present"));
        model
            .load_pretrained_weights(dir)
            .map_err(|e| load_error(e.to_string()))?;
        if let Some(optimizer) = self.optimizer.as_mut() {
            let train_device = self.device.clone().autodiff();
            optimizer.load(&dir.join(OPTIMIZER_FILE), &train_device.without_autodiff())?;
        }
        if let Ok(text) = std::fs::read_to_string(dir.join(SCALER_FILE)) {
            self.scaler = serde_json::from_str(&text).map_err(|e| load_error(e.to_string()))?;
        }
        for callback in &mut self.callbacks {
            if let Some(state) = saved.stateful_callbacks.get(callback.name()) {
                callback.load_state(state);
            }
        }
        let plan = self.state.clone();
        self.state = TrainerState {
            max_steps: plan.max_steps,
            num_train_epochs: plan.num_train_epochs,
            logging_steps: plan.logging_steps,
            eval_steps: plan.eval_steps,
            save_steps: plan.save_steps,
            train_batch_size: plan.train_batch_size,
            ..saved
        };
        Ok(())
    }
}

/// JSON with sorted keys and a four-space indent (`json.dump(..., indent=4, sort_keys=True)`).
fn json_indent4<T: serde::Serialize>(value: &T) -> String {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    if value.serialize(&mut serializer).is_err() {
        return String::new();
    }
    String::from_utf8(out).unwrap_or_default() + "\n"
}
