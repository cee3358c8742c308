//! `TrainerState` (saved as `trainer_state.json`) and `TrainerControl`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::TrainerError;

/// File name of the state in a checkpoint.
pub const TRAINER_STATE_FILE: &str = "trainer_state.json";

/// One `log_history` entry: metric names to values, plus `step` (and `epoch`).
pub type LogEntry = BTreeMap<String, Value>;

/// The Trainer's progress, with transformers' field names. Fields are declared in
/// alphabetical order so that the JSON is key-sorted, as transformers writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// Step of the best checkpoint so far.
    pub best_global_step: Option<usize>,
    /// Best value of `metric_for_best_model` so far.
    pub best_metric: Option<f64>,
    /// Path of the best checkpoint so far.
    pub best_model_checkpoint: Option<String>,
    /// Epochs done, with the fraction of the current one.
    pub epoch: f64,
    /// Steps between evaluations.
    pub eval_steps: usize,
    /// Optimizer steps done.
    pub global_step: usize,
    /// Always false here.
    pub is_hyper_param_search: bool,
    /// Always true here (one process).
    pub is_local_process_zero: bool,
    /// Always true here (one process).
    pub is_world_process_zero: bool,
    /// Every log, evaluation and the final summary, in order.
    pub log_history: Vec<LogEntry>,
    /// Steps between logs.
    pub logging_steps: usize,
    /// Total optimizer steps planned.
    pub max_steps: usize,
    /// Not tracked (transformers' `include_num_input_tokens_seen="no"`).
    pub num_input_tokens_seen: u64,
    /// Epochs the loop runs (rounded up).
    pub num_train_epochs: usize,
    /// Steps between checkpoints.
    pub save_steps: usize,
    /// Saved state of callbacks (`TrainerControl`, `EarlyStoppingCallback`).
    pub stateful_callbacks: BTreeMap<String, Value>,
    /// Floating-point operations so far (6 × non-embedding parameters × tokens).
    pub total_flos: f64,
    /// Rows per training batch.
    pub train_batch_size: Option<usize>,
    /// Always null here.
    pub trial_name: Option<String>,
    /// Always null here.
    pub trial_params: Option<Value>,
}

impl Default for TrainerState {
    fn default() -> Self {
        Self {
            best_global_step: None,
            best_metric: None,
            best_model_checkpoint: None,
            epoch: 0.0,
            eval_steps: 500,
            global_step: 0,
            is_hyper_param_search: false,
            is_local_process_zero: true,
            is_world_process_zero: true,
            log_history: Vec::new(),
            logging_steps: 500,
            max_steps: 0,
            num_input_tokens_seen: 0,
            num_train_epochs: 0,
            save_steps: 500,
            stateful_callbacks: BTreeMap::new(),
            total_flos: 0.0,
            train_batch_size: None,
            trial_name: None,
            trial_params: None,
        }
    }
}

impl TrainerState {
    /// `trainer_state.json` as transformers writes it: sorted keys, two-space indent.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self).map(|text| text + "\n")
    }

    /// Reads a `trainer_state.json`.
    pub fn load(path: &Path) -> Result<Self, TrainerError> {
        let text = std::fs::read_to_string(path).map_err(|e| TrainerError::io(path, e))?;
        serde_json::from_str(&text).map_err(|e| TrainerError::load(path, e))
    }
}

/// One optimizer step, recorded at every step for plots. It is kept apart from
/// `log_history`, which holds the logged steps alone, as transformers writes it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// The step, from 1.
    pub step: usize,
    /// Epochs done after it, with the fraction of the current one.
    pub epoch: f64,
    /// The step's training loss (the mean over its micro-batches).
    pub loss: f64,
    /// The learning rate the step was taken with.
    pub learning_rate: f64,
    /// The gradient norm before clipping.
    pub grad_norm: f64,
}

/// What the loop should do next; callbacks set these flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainerControl {
    /// Stop the epoch.
    pub should_epoch_stop: bool,
    /// Evaluate now.
    pub should_evaluate: bool,
    /// Log now.
    pub should_log: bool,
    /// Save a checkpoint now.
    pub should_save: bool,
    /// Stop training.
    pub should_training_stop: bool,
}

impl TrainerControl {
    /// As transformers' `ExportableState`: `{"args": {...flags}, "attributes": {}}`.
    pub fn to_state(self) -> Value {
        serde_json::json!({ "args": self, "attributes": {} })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_keys_are_sorted_as_transformers_writes_them() {
        let mut state = TrainerState::default();
        let mut entry = LogEntry::new();
        entry.insert("loss".into(), 0.5.into());
        entry.insert("epoch".into(), 1.0.into());
        entry.insert("step".into(), 3.into());
        state.log_history.push(entry);
        let text = state.to_json().unwrap();
        let keys: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("  \""))
            .map(|l| l.trim().split('"').nth(1).unwrap())
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert!(text.contains("\"epoch\": 1.0,\n      \"loss\": 0.5,\n      \"step\": 3"));
        let back: TrainerState = serde_json::from_str(&text).unwrap();
        assert_eq!(back, state);
    }
}
