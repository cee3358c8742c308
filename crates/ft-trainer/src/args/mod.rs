//! `TrainingArguments`, with transformers 5.24's names, defaults and validation.

mod json;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{ArgumentsError, ArgumentsFileError, TrainerError};

/// When to log, evaluate or save (`IntervalStrategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum IntervalStrategy {
    /// Never.
    No,
    /// Every `*_steps` optimizer steps.
    #[default]
    Steps,
    /// At the end of every epoch.
    Epoch,
}

/// When to save checkpoints (`SaveStrategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SaveStrategy {
    /// Never.
    No,
    /// Every `save_steps` optimizer steps.
    #[default]
    Steps,
    /// At the end of every epoch.
    Epoch,
    /// Whenever `metric_for_best_model` reaches a new best.
    Best,
}

/// The learning-rate schedule (`SchedulerType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SchedulerType {
    /// Linear warm-up, then linear decay to 0.
    #[default]
    Linear,
    /// Linear warm-up, then half a cosine down to 0.
    Cosine,
    /// The same rate throughout (no warm-up).
    Constant,
    /// Linear warm-up, then constant.
    ConstantWithWarmup,
}

/// The order of training rows (`train_sampling_strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TrainSamplingStrategy {
    /// A new random permutation every epoch.
    #[default]
    Random,
    /// Dataset order.
    Sequential,
    /// Rows of similar length batched together (`LengthGroupedSampler`).
    GroupByLength,
}

/// The optimizer (`optim`). bert-ft implements PyTorch's AdamW; transformers' two names for
/// it (fused or not) compute the same update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerNames {
    /// `torch.optim.AdamW(fused=True)`, transformers 5's default.
    #[default]
    AdamwTorchFused,
    /// `torch.optim.AdamW`.
    AdamwTorch,
}

/// An integration that results can be reported to (`report_to`). Names bert-ft does not
/// implement (`wandb`, `mlflow`, …) are refused rather than ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Integration {
    /// TensorBoard event files under `output_dir/runs/<date>_<host>` (or
    /// `$TENSORBOARD_LOGGING_DIR`).
    Tensorboard,
}

impl Integration {
    /// Every integration bert-ft implements (what `"all"` means).
    pub const ALL: [Integration; 1] = [Integration::Tensorboard];
}

/// `report_to` as transformers takes it: a list of names, or one name, where `"none"` is no
/// integration and `"all"` every one available.
fn deserialize_report_to<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<Integration>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Names {
        One(String),
        Many(Vec<String>),
    }
    let names = match Names::deserialize(deserializer)? {
        Names::One(name) => vec![name],
        Names::Many(names) => names,
    };
    let mut integrations: Vec<Integration> = Vec::new();
    let mut add = |integration| {
        // `["tensorboard", "all"]` reports to TensorBoard once.
        if !integrations.contains(&integration) {
            integrations.push(integration);
        }
    };
    for name in names {
        match name.as_str() {
            "none" => {}
            "all" => Integration::ALL.into_iter().for_each(&mut add),
            other => {
                let parsed =
                    serde_json::from_value(serde_json::Value::from(other)).map_err(|_| {
                        serde::de::Error::custom(format!(
                            "`{other}` is not an integration bert-ft implements; use \
                             \"tensorboard\" or \"none\""
                        ))
                    })?;
                add(parsed);
            }
        }
    }
    Ok(integrations)
}

/// A boolean that transformers may write as `null` for "off".
fn null_as_false<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(deserializer)?.unwrap_or(false))
}

macro_rules! display_as_serde {
    ($($ty:ty),*) => {$(
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match serde_json::to_value(self) {
                    Ok(serde_json::Value::String(name)) => f.write_str(&name),
                    _ => write!(f, "{self:?}"),
                }
            }
        }
        impl std::str::FromStr for $ty {
            type Err = String;
            fn from_str(text: &str) -> Result<Self, String> {
                serde_json::from_value(serde_json::Value::String(text.to_string()))
                    .map_err(|_| format!("invalid value `{text}`"))
            }
        }
    )*};
}
display_as_serde!(
    IntervalStrategy,
    SaveStrategy,
    SchedulerType,
    TrainSamplingStrategy,
    OptimizerNames
);

/// The training hyper-parameters, as transformers' `TrainingArguments`: the same field
/// names, the same defaults, and the same refusals of inconsistent combinations.
///
/// ```
/// use ft_trainer::{IntervalStrategy, TrainingArguments};
///
/// // TrainingArguments("test-trainer", eval_strategy="epoch")
/// let args = TrainingArguments::new("test-trainer")
///     .with_eval_strategy(IntervalStrategy::Epoch)
///     .validated()?;
/// assert_eq!(args.learning_rate, 5e-5);
/// assert_eq!(args.per_device_train_batch_size, 8);
/// # Ok::<(), ft_trainer::TrainerError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainingArguments {
    /// Where checkpoints and results go.
    pub output_dir: PathBuf,
    /// When to evaluate.
    pub eval_strategy: IntervalStrategy,
    /// Steps between evaluations; `None` means `logging_steps`. Below 1, a fraction of the
    /// total steps.
    pub eval_steps: Option<f64>,
    /// When to log.
    pub logging_strategy: IntervalStrategy,
    /// Steps between logs; below 1, a fraction of the total steps.
    pub logging_steps: f64,
    /// Also log after the first step.
    pub logging_first_step: bool,
    /// When to save checkpoints.
    pub save_strategy: SaveStrategy,
    /// Steps between checkpoints; below 1, a fraction of the total steps.
    pub save_steps: f64,
    /// Keep at most this many checkpoints (the best is always kept).
    pub save_total_limit: Option<usize>,
    /// Epochs to train; fractions allowed.
    pub num_train_epochs: f64,
    /// If positive, the number of optimizer steps, overriding `num_train_epochs`.
    pub max_steps: i64,
    /// Training batch size.
    pub per_device_train_batch_size: usize,
    /// Evaluation batch size.
    pub per_device_eval_batch_size: usize,
    /// Peak learning rate.
    pub learning_rate: f64,
    /// Decoupled weight decay, applied to every weight but biases and LayerNorm parameters.
    pub weight_decay: f64,
    /// AdamW's beta1.
    pub adam_beta1: f64,
    /// AdamW's beta2.
    pub adam_beta2: f64,
    /// AdamW's epsilon.
    pub adam_epsilon: f64,
    /// Clip the global gradient norm to this (0 disables clipping; the norm is still logged).
    pub max_grad_norm: f64,
    /// Label smoothing for class labels: the loss is `(1 - ε)` times the cross-entropy with
    /// the label plus `ε` times the mean cross-entropy over all classes (0 disables it).
    pub label_smoothing_factor: f64,
    /// The learning-rate schedule.
    pub lr_scheduler_type: SchedulerType,
    /// Warm-up steps; below 1, a fraction of the total steps.
    pub warmup_steps: f64,
    /// Micro-batches per optimizer step.
    pub gradient_accumulation_steps: usize,
    /// Recompute each encoder layer's activations in the backward pass instead of keeping
    /// them: less memory, about one more forward pass of time. transformers' dataclass
    /// default is `null`, which means off. A file's `gradient_checkpointing`, the name before
    /// transformers 5.24, is read as this when this is absent or null.
    #[serde(deserialize_with = "null_as_false")]
    pub activation_checkpointing: bool,
    /// Seed of the head initialisation, the data order and dropout.
    pub seed: u64,
    /// Seed of the data order alone; `None` uses `seed`.
    pub data_seed: Option<u64>,
    /// Reload the best checkpoint when training ends.
    pub load_best_model_at_end: bool,
    /// Evaluate once before the first step, as a sanity check of the evaluation.
    pub eval_on_start: bool,
    /// On SIGTERM, finish the current step, write a checkpoint and stop (for preemptible
    /// machines; give the orchestrator a grace period longer than a step and a save).
    pub enable_jit_checkpoint: bool,
    /// Metric that decides the best checkpoint (`"loss"` when `load_best_model_at_end`).
    pub metric_for_best_model: Option<String>,
    /// Whether a larger metric is better (derived from the metric's name if unset).
    pub greater_is_better: Option<bool>,
    /// Drop the last incomplete batch.
    pub dataloader_drop_last: bool,
    /// The order of training rows. Replaces `group_by_length`, which JSON files may still
    /// hold (deprecated).
    pub train_sampling_strategy: TrainSamplingStrategy,
    /// The optimizer.
    pub optim: OptimizerNames,
    /// Hide progress bars.
    pub disable_tqdm: bool,
    /// Integrations to report to (see [`Integration`]).
    #[serde(deserialize_with = "deserialize_report_to")]
    pub report_to: Vec<Integration>,
    /// Train with bfloat16 compute (fp32 master weights).
    pub bf16: bool,
    /// Train with float16 compute and dynamic loss scaling (fp32 master weights).
    pub fp16: bool,
}

impl Default for TrainingArguments {
    fn default() -> Self {
        Self {
            output_dir: PathBuf::from("trainer_output"),
            eval_strategy: IntervalStrategy::No,
            eval_steps: None,
            logging_strategy: IntervalStrategy::Steps,
            logging_steps: 500.0,
            logging_first_step: false,
            save_strategy: SaveStrategy::Steps,
            save_steps: 500.0,
            save_total_limit: None,
            num_train_epochs: 3.0,
            max_steps: -1,
            per_device_train_batch_size: 8,
            per_device_eval_batch_size: 8,
            learning_rate: 5e-5,
            weight_decay: 0.0,
            adam_beta1: 0.9,
            adam_beta2: 0.999,
            adam_epsilon: 1e-8,
            max_grad_norm: 1.0,
            label_smoothing_factor: 0.0,
            lr_scheduler_type: SchedulerType::Linear,
            warmup_steps: 0.0,
            gradient_accumulation_steps: 1,
            activation_checkpointing: false,
            seed: 42,
            data_seed: None,
            load_best_model_at_end: false,
            eval_on_start: false,
            enable_jit_checkpoint: false,
            metric_for_best_model: None,
            greater_is_better: None,
            dataloader_drop_last: false,
            train_sampling_strategy: TrainSamplingStrategy::Random,
            optim: OptimizerNames::AdamwTorchFused,
            disable_tqdm: false,
            report_to: Vec::new(),
            bf16: false,
            fp16: false,
        }
    }
}

macro_rules! with {
    ($($(#[$doc:meta])* $name:ident: $field:ident: $ty:ty;)*) => {$(
        $(#[$doc])*
        pub fn $name(mut self, value: $ty) -> Self {
            self.$field = value;
            self
        }
    )*};
}

impl TrainingArguments {
    /// `TrainingArguments(output_dir)` with every other field at its default.
    pub fn new(output_dir: impl Into<PathBuf>) -> Self {
        Self {
            output_dir: output_dir.into(),
            ..Self::default()
        }
    }

    with! {
        /// Sets `eval_strategy`.
        with_eval_strategy: eval_strategy: IntervalStrategy;
        /// Sets `save_strategy`.
        with_save_strategy: save_strategy: SaveStrategy;
        /// Sets `logging_steps`.
        with_logging_steps: logging_steps: f64;
        /// Sets `num_train_epochs`.
        with_num_train_epochs: num_train_epochs: f64;
        /// Sets `max_steps`.
        with_max_steps: max_steps: i64;
        /// Sets `learning_rate`.
        with_learning_rate: learning_rate: f64;
        /// Sets `per_device_train_batch_size`.
        with_train_batch_size: per_device_train_batch_size: usize;
        /// Sets `seed`.
        with_seed: seed: u64;
        /// Sets `disable_tqdm`.
        with_disable_tqdm: disable_tqdm: bool;
    }

    /// Reads arguments saved as JSON: by [`TrainingArguments::to_json`], by transformers 5.24
    /// (`to_json_string()`), or by hand. Missing fields take transformers' defaults; see
    /// [`TrainingArguments::merge_json_file`] for what a file may hold.
    pub fn from_json_file(path: &Path) -> Result<Self, TrainerError> {
        Self::default().merge_json_file(path)?.validated()
    }

    /// These arguments with the fields a JSON file holds replaced by its values; the fields it
    /// lacks keep theirs. Nothing in the file is ignored: an unknown key is an error that names
    /// it and the nearest field, and a transformers field bert-ft does not implement is
    /// accepted only at transformers' default. Not yet validated.
    pub fn merge_json_file(&self, path: &Path) -> Result<Self, TrainerError> {
        let file_error = |source: ArgumentsFileError| TrainerError::ArgumentsFile {
            path: path.to_path_buf(),
            source,
        };
        let text = std::fs::read_to_string(path).map_err(|e| TrainerError::io(path, e))?;
        let value = serde_json::from_str(&text).map_err(|e| file_error(e.into()))?;
        json::merge(self, value).map_err(file_error)
    }

    /// These arguments with the keys of a JSON object replacing their fields, checked as
    /// [`TrainingArguments::merge_json_file`] checks a file's. Not yet validated.
    pub fn merge_json(&self, json: serde_json::Value) -> Result<Self, ArgumentsFileError> {
        json::merge(self, json)
    }

    /// Creates `output_dir` and its parents. The Trainer calls it before training, and so can
    /// a program before its own work: a path that is a file, or where no folder can be made, is
    /// refused then rather than at the first checkpoint.
    pub fn create_output_dir(&self) -> Result<(), TrainerError> {
        std::fs::create_dir_all(&self.output_dir).map_err(|source| TrainerError::OutputDir {
            path: self.output_dir.clone(),
            source,
        })
    }

    /// The arguments as JSON, which transformers 5.24 loads as `TrainingArguments(**json)`.
    pub fn to_json(&self) -> Result<String, TrainerError> {
        serde_json::to_string_pretty(self)
            .map(|text| text + "\n")
            .map_err(|e| TrainerError::save(self.output_dir.join("training_args.json"), e))
    }

    /// Applies transformers' `__post_init__`: fills derived defaults and refuses invalid
    /// combinations with transformers' messages.
    pub fn validated(mut self) -> Result<Self, TrainerError> {
        self.check_finite()?;
        self.fill_eval_steps()?;
        self.check_steps()?;
        self.fill_best_model_defaults();
        self.check_best_model()?;
        self.check_ranges()?;
        Ok(self)
    }

    /// Refuses NaN and infinities in every number: they would pass the range checks below
    /// unnoticed, and JSON cannot hold them, so a checkpoint's arguments could not be read.
    fn check_finite(&self) -> Result<(), ArgumentsError> {
        let numbers = [
            ("eval_steps", self.eval_steps.unwrap_or(0.0)),
            ("logging_steps", self.logging_steps),
            ("save_steps", self.save_steps),
            ("num_train_epochs", self.num_train_epochs),
            ("learning_rate", self.learning_rate),
            ("weight_decay", self.weight_decay),
            ("adam_beta1", self.adam_beta1),
            ("adam_beta2", self.adam_beta2),
            ("adam_epsilon", self.adam_epsilon),
            ("max_grad_norm", self.max_grad_norm),
            ("label_smoothing_factor", self.label_smoothing_factor),
            ("warmup_steps", self.warmup_steps),
        ];
        match numbers.into_iter().find(|(_, value)| !value.is_finite()) {
            Some((name, value)) => Err(ArgumentsError::NotFinite { name, value }),
            None => Ok(()),
        }
    }

    /// `eval_steps` defaults to `logging_steps` under the `steps` eval strategy.
    fn fill_eval_steps(&mut self) -> Result<(), ArgumentsError> {
        if self.eval_strategy == IntervalStrategy::Steps && self.eval_steps.is_none_or(|s| s == 0.0)
        {
            if self.logging_steps <= 0.0 {
                return Err(ArgumentsError::EvalStepsNeeded);
            }
            self.eval_steps = Some(self.logging_steps);
        }
        Ok(())
    }

    /// Step intervals: positive, and whole numbers above 1 (below, a ratio of the run).
    fn check_steps(&self) -> Result<(), ArgumentsError> {
        if self.logging_strategy == IntervalStrategy::Steps && self.logging_steps == 0.0 {
            return Err(ArgumentsError::LoggingStepsNeeded);
        }
        for (name, value) in [
            ("logging_steps", Some(self.logging_steps)),
            ("eval_steps", self.eval_steps),
            ("save_steps", Some(self.save_steps)),
        ] {
            let Some(value) = value else { continue };
            if value < 0.0 || !value.is_finite() {
                return Err(ArgumentsError::NegativeSteps { name, value });
            }
            if value > 1.0 && value.fract() != 0.0 {
                return Err(ArgumentsError::FractionalSteps { name, value });
            }
        }
        Ok(())
    }

    /// `load_best_model_at_end` defaults the metric to the loss, and the metric's name
    /// whether greater is better.
    fn fill_best_model_defaults(&mut self) {
        if self.load_best_model_at_end && self.metric_for_best_model.is_none() {
            self.metric_for_best_model = Some("loss".into());
        }
        if let (Some(metric), None) = (&self.metric_for_best_model, self.greater_is_better) {
            self.greater_is_better = Some(!metric.ends_with("loss"));
        }
    }

    /// `load_best_model_at_end` needs a checkpoint at every evaluation.
    fn check_best_model(&self) -> Result<(), ArgumentsError> {
        if self.load_best_model_at_end && self.save_strategy != SaveStrategy::Best {
            let matching = matches!(
                (self.eval_strategy, self.save_strategy),
                (IntervalStrategy::No, SaveStrategy::No)
                    | (IntervalStrategy::Steps, SaveStrategy::Steps)
                    | (IntervalStrategy::Epoch, SaveStrategy::Epoch)
            );
            if !matching {
                return Err(ArgumentsError::BestModelStrategiesDiffer {
                    eval: self.eval_strategy,
                    save: self.save_strategy,
                });
            }
            if self.eval_strategy == IntervalStrategy::Steps {
                let save = self.save_steps;
                let eval = self.eval_steps.unwrap_or(self.logging_steps);
                if (save < 1.0) != (eval < 1.0) {
                    return Err(ArgumentsError::BestModelStepsMixRatios { save, eval });
                }
                let (s, e) = ((save * 1e6).round() as u64, (eval * 1e6).round() as u64);
                if e == 0 || s % e != 0 {
                    return Err(ArgumentsError::BestModelStepsNotMultiple { save, eval });
                }
            }
        }
        if self.save_strategy == SaveStrategy::Best && self.metric_for_best_model.is_none() {
            return Err(ArgumentsError::BestMetricNeeded);
        }
        Ok(())
    }

    /// Each number within the range where it means something.
    fn check_ranges(&self) -> Result<(), ArgumentsError> {
        use ArgumentsError as E;
        let checks = [
            (self.fp16 && self.bf16, E::Fp16AndBf16),
            (
                self.warmup_steps < 0.0,
                E::NegativeWarmup {
                    value: self.warmup_steps,
                },
            ),
            // transformers takes any value; outside [0, 1] the "smoothed" target has negative
            // probabilities and the loss has no minimum.
            (
                !(0.0..=1.0).contains(&self.label_smoothing_factor),
                E::LabelSmoothingRange {
                    value: self.label_smoothing_factor,
                },
            ),
            (
                self.per_device_train_batch_size == 0 || self.per_device_eval_batch_size == 0,
                E::ZeroBatchSize,
            ),
            (self.gradient_accumulation_steps == 0, E::ZeroAccumulation),
            (
                self.learning_rate < 0.0,
                E::NegativeLearningRate {
                    value: self.learning_rate,
                },
            ),
            (
                !(0.0..1.0).contains(&self.adam_beta1) || !(0.0..1.0).contains(&self.adam_beta2),
                E::AdamBetas,
            ),
            (
                self.max_steps <= 0 && self.num_train_epochs <= 0.0,
                E::NoEpochs {
                    value: self.num_train_epochs,
                },
            ),
        ];
        match checks.into_iter().find(|(failed, _)| *failed) {
            Some((_, error)) => Err(error),
            None => Ok(()),
        }
    }

    /// The seed of the data order.
    pub fn data_seed(&self) -> u64 {
        self.data_seed.unwrap_or(self.seed)
    }

    /// Warm-up steps for `total` optimizer steps (`get_warmup_steps`).
    pub fn warmup_steps_for(&self, total: usize) -> usize {
        if self.warmup_steps >= 1.0 {
            self.warmup_steps as usize
        } else {
            (total as f64 * self.warmup_steps).ceil() as usize
        }
    }

    /// An interval in steps: a fraction of `total` below 1 (rounded up), else the value.
    pub fn steps_for(value: f64, total: usize) -> usize {
        if value < 1.0 {
            (total as f64 * value).ceil() as usize
        } else {
            value as usize
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_transformers_5() {
        let args = TrainingArguments::new("test-trainer").validated().unwrap();
        assert_eq!(args.logging_steps, 500.0);
        assert_eq!(args.save_steps, 500.0);
        assert_eq!(args.num_train_epochs, 3.0);
        assert_eq!(args.max_steps, -1);
        assert_eq!(args.adam_epsilon, 1e-8);
        assert_eq!(args.weight_decay, 0.0);
        assert_eq!(args.max_grad_norm, 1.0);
        assert_eq!(args.seed, 42);
        assert_eq!(args.eval_strategy, IntervalStrategy::No);
        assert!(args.report_to.is_empty());
        assert_eq!(args.train_sampling_strategy, TrainSamplingStrategy::Random);
    }

    #[test]
    fn json_round_trips_and_fills_defaults() {
        let args: TrainingArguments = serde_json::from_str(
            r#"{"output_dir": "x", "eval_strategy": "epoch", "warmup_steps": 0.1}"#,
        )
        .unwrap();
        assert_eq!(args.eval_strategy, IntervalStrategy::Epoch);
        assert_eq!(args.per_device_eval_batch_size, 8);
        let back: TrainingArguments = serde_json::from_str(&args.to_json().unwrap()).unwrap();
        assert_eq!(back, args);
        assert_eq!(args.warmup_steps_for(1377), 138);
        assert!(
            serde_json::from_str::<TrainingArguments>(r#"{"eval_strategy": "sometimes"}"#).is_err()
        );
    }

    #[test]
    fn report_to_is_a_list_and_refuses_names_it_does_not_implement() {
        for json in [r#"[]"#, r#""none""#, r#"["none"]"#] {
            let args: TrainingArguments =
                serde_json::from_str(&format!(r#"{{"report_to": {json}}}"#)).unwrap();
            assert!(args.report_to.is_empty(), "{json}");
        }
        for json in [r#""all""#, r#""tensorboard""#, r#"["tensorboard", "all"]"#] {
            let args: TrainingArguments =
                serde_json::from_str(&format!(r#"{{"report_to": {json}}}"#)).unwrap();
            assert_eq!(args.report_to, [Integration::Tensorboard], "{json}");
        }
        let written: serde_json::Value =
            serde_json::from_str(&TrainingArguments::default().to_json().unwrap()).unwrap();
        assert_eq!(written["report_to"], serde_json::json!([]));
        let error = serde_json::from_str::<TrainingArguments>(r#"{"report_to": ["wandb"]}"#)
            .unwrap_err()
            .to_string();
        assert!(error.contains("`wandb` is not an integration"), "{error}");
    }

    #[test]
    fn derived_defaults() {
        let args = TrainingArguments::new("x")
            .with_eval_strategy(IntervalStrategy::Steps)
            .validated()
            .unwrap();
        assert_eq!(args.eval_steps, Some(500.0));
        let mut args = TrainingArguments::new("x");
        args.load_best_model_at_end = true;
        args.eval_strategy = IntervalStrategy::Steps;
        let args = args.validated().unwrap();
        assert_eq!(args.metric_for_best_model.as_deref(), Some("loss"));
        assert_eq!(args.greater_is_better, Some(false));
        let mut args = TrainingArguments::new("x");
        args.metric_for_best_model = Some("f1".into());
        assert_eq!(args.validated().unwrap().greater_is_better, Some(true));
    }

    /// Why `args` are refused.
    fn refusal(args: TrainingArguments) -> ArgumentsError {
        match args.validated() {
            Err(TrainerError::Arguments(error)) => error,
            other => panic!("expected an ArgumentsError, got {other:?}"),
        }
    }

    #[test]
    fn invalid_combinations_are_refused_as_transformers_does() {
        use ArgumentsError as E;
        let mut args = TrainingArguments::new("x");
        args.load_best_model_at_end = true;
        args.eval_strategy = IntervalStrategy::Epoch;
        let error = refusal(args.clone());
        assert_eq!(
            error,
            E::BestModelStrategiesDiffer {
                eval: IntervalStrategy::Epoch,
                save: SaveStrategy::Steps
            }
        );
        // transformers' own words, which users search for.
        let message = error.to_string();
        assert!(
            message.contains("requires the save and eval strategy to match")
                && message.contains("Evaluation strategy: epoch")
                && message.contains("Save strategy: steps"),
            "{message}"
        );

        args.eval_strategy = IntervalStrategy::Steps;
        args.eval_steps = Some(30.0);
        args.save_steps = 50.0;
        assert_eq!(
            refusal(args),
            E::BestModelStepsNotMultiple {
                save: 50.0,
                eval: 30.0
            }
        );

        let mut args = TrainingArguments::new("x");
        args.fp16 = true;
        args.bf16 = true;
        assert_eq!(refusal(args), E::Fp16AndBf16);

        let mut args = TrainingArguments::new("x");
        args.logging_steps = 2.5;
        assert_eq!(
            refusal(args),
            E::FractionalSteps {
                name: "logging_steps",
                value: 2.5
            }
        );

        let mut args = TrainingArguments::new("x");
        args.save_strategy = SaveStrategy::Best;
        assert_eq!(refusal(args), E::BestMetricNeeded);

        let mut args = TrainingArguments::new("x");
        args.max_steps = 10;
        args.max_grad_norm = f64::INFINITY;
        assert!(matches!(
            refusal(args),
            E::NotFinite {
                name: "max_grad_norm",
                ..
            }
        ));
        let mut args = TrainingArguments::new("x");
        args.max_steps = 10;
        args.num_train_epochs = f64::NAN;
        assert!(matches!(
            refusal(args),
            E::NotFinite {
                name: "num_train_epochs",
                ..
            }
        ));

        let mut args = TrainingArguments::new("x");
        args.warmup_steps = -1.0;
        assert_eq!(refusal(args), E::NegativeWarmup { value: -1.0 });

        let mut args = TrainingArguments::new("x");
        args.eval_strategy = IntervalStrategy::Steps;
        args.logging_steps = 0.0;
        assert_eq!(refusal(args), E::EvalStepsNeeded);

        for (field, error) in [
            ("per_device_train_batch_size", E::ZeroBatchSize),
            ("gradient_accumulation_steps", E::ZeroAccumulation),
        ] {
            let mut args = TrainingArguments::new("x");
            match field {
                "per_device_train_batch_size" => args.per_device_train_batch_size = 0,
                _ => args.gradient_accumulation_steps = 0,
            }
            assert_eq!(refusal(args), error, "{field}");
        }
    }
}
