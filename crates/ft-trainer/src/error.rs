//! The one error type of this crate.

use std::path::PathBuf;

/// A boxed cause, for errors that come from several libraries (I/O, JSON, safetensors, the
/// model's own error type).
pub type BoxedError = Box<dyn std::error::Error + Send + Sync>;

/// Why training, evaluation or a checkpoint failed.
///
/// Each message says what was being done and to what; the cause is the error's `source()`,
/// not repeated in its message, so that a chain printed whole (`{:#}` with anyhow) reads once.
#[derive(Debug, thiserror::Error)]
pub enum TrainerError {
    /// Invalid `TrainingArguments`.
    #[error(transparent)]
    Arguments(#[from] ArgumentsError),

    /// A `TrainingArguments` JSON file could not be read as arguments.
    #[error("reading TrainingArguments from {path}")]
    ArgumentsFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: ArgumentsFileError,
    },

    /// The Trainer was set up with parts that do not fit together.
    #[error(transparent)]
    Setup(#[from] SetupError),

    /// An invariant of the Trainer did not hold: a bug, not a fault of the input.
    #[error("internal error at {context}: {what}; please report it")]
    Internal {
        /// Where (`training step 12`, `evaluation`).
        context: String,
        /// What went wrong.
        what: &'static str,
    },

    /// A callback refused to start training.
    #[error("{callback} refused to start training")]
    Callback {
        /// The callback's name.
        callback: String,
        /// Why it refused.
        #[source]
        source: BoxedError,
    },

    /// The loss or the gradients became NaN or infinite; nothing from this step was applied.
    #[error(
        "non-finite {what} ({value}) at optimizer step {step} (epoch {epoch:.2}); the step was \
         not applied and no checkpoint was written after it"
    )]
    NonFinite {
        /// `loss` or `gradient norm`.
        what: &'static str,
        /// The value.
        value: f64,
        /// The optimizer step (1-based) that produced it.
        step: usize,
        /// The epoch position.
        epoch: f64,
    },

    /// Values could not be read back from the device.
    #[error("reading {what} from the device")]
    DeviceRead {
        /// What was read (`the loss and gradient norm of step 12`).
        what: String,
        /// burn's reason.
        #[source]
        source: burn::tensor::TensorReadError,
    },

    /// The model failed on a batch.
    #[error("model, at {context}")]
    Model {
        /// Where (`training step 12`, `evaluation batch 3`).
        context: String,
        /// The model's error.
        #[source]
        source: BoxedError,
    },

    /// Batching failed.
    #[error(transparent)]
    Collate(#[from] ft_collate::CollateError),

    /// A metric could not be computed.
    #[error("computing metrics")]
    Metric(#[from] ft_metrics::MetricError),

    /// A checkpoint could not be written whole; the previous checkpoints are untouched and
    /// no part of this one looks like a checkpoint.
    #[error("writing checkpoint {path}")]
    Checkpoint {
        /// The checkpoint folder it would have been.
        path: PathBuf,
        /// What failed.
        #[source]
        source: Box<TrainerError>,
    },

    /// A file could not be written.
    #[error("writing {path}")]
    Save {
        /// The checkpoint folder or file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: BoxedError,
    },

    /// A checkpoint, or a file the Trainer wrote earlier, could not be read or is not what it
    /// should be.
    #[error("reading {path}")]
    Load {
        /// The checkpoint folder or file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: BoxedError,
    },

    /// `resume_from_checkpoint` found nothing to resume.
    #[error("No valid checkpoint found in output directory ({0})")]
    NoCheckpoint(PathBuf),

    /// `output_dir` is a file, or a folder cannot be made there.
    #[error("output_dir {path} cannot be a folder")]
    OutputDir {
        /// The path.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },

    /// A file could not be read.
    #[error("reading {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },

    /// The processes of a data-parallel run hold different weights, which the gradient
    /// all-reduce should make impossible: the model was built differently on some rank.
    #[error(
        "the processes hold different weights {when} (digest per rank: {digests:016x?}); every \
         process must build the same model from the same seed"
    )]
    RanksDisagree {
        /// `at the start of training` or `at the end of training`.
        when: &'static str,
        /// Each rank's digest of its weights.
        digests: Vec<u64>,
    },

    /// Training was interrupted (Ctrl-C, or SIGTERM under `enable_jit_checkpoint`) after a
    /// checkpoint was written.
    #[error("interrupted at step {step}; resume with --resume-from-checkpoint {checkpoint}")]
    Interrupted {
        /// The last step completed.
        step: usize,
        /// The checkpoint written.
        checkpoint: PathBuf,
    },
}

/// Why `TrainingArguments` are refused: transformers' `__post_init__` checks, with its
/// messages, and the ranges outside which a number means nothing.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ArgumentsError {
    /// NaN or an infinity.
    #[error("--{name} must be a finite number, got {value}")]
    NotFinite {
        /// The field.
        name: &'static str,
        /// Its value.
        value: f64,
    },

    /// The `steps` eval strategy with neither `eval_steps` nor `logging_steps`.
    #[error("evaluation strategy steps requires either non-zero --eval_steps or --logging_steps")]
    EvalStepsNeeded,

    /// The `steps` logging strategy without `logging_steps`.
    #[error("logging strategy steps requires non-zero --logging_steps")]
    LoggingStepsNeeded,

    /// A negative step interval.
    #[error("--{name} must be non-negative, got {value}")]
    NegativeSteps {
        /// The field.
        name: &'static str,
        /// Its value.
        value: f64,
    },

    /// A step interval above 1 that is not a whole number.
    #[error("--{name} must be an integer if bigger than 1: {value}")]
    FractionalSteps {
        /// The field.
        name: &'static str,
        /// Its value.
        value: f64,
    },

    /// `load_best_model_at_end` with an eval and a save strategy that differ.
    #[error(
        "--load_best_model_at_end requires the save and eval strategy to match, except when \
         --save_strategy=\"best\", but found\n- Evaluation strategy: {eval}\n- Save strategy: \
         {save}"
    )]
    BestModelStrategiesDiffer {
        /// The eval strategy.
        eval: crate::IntervalStrategy,
        /// The save strategy.
        save: crate::SaveStrategy,
    },

    /// `load_best_model_at_end` with one step interval a ratio and the other absolute.
    #[error(
        "--load_best_model_at_end requires the saving steps to be a multiple of the evaluation \
         steps, which cannot get guaranteed when mixing ratio and absolute steps for save_steps \
         {save} and eval_steps {eval}."
    )]
    BestModelStepsMixRatios {
        /// `save_steps`.
        save: f64,
        /// `eval_steps`.
        eval: f64,
    },

    /// `load_best_model_at_end` with saves that do not fall on evaluations.
    #[error(
        "--load_best_model_at_end requires the saving steps to be a round multiple of the \
         evaluation steps, but found {save}, which is not a round multiple of {eval}."
    )]
    BestModelStepsNotMultiple {
        /// `save_steps`.
        save: f64,
        /// `eval_steps`.
        eval: f64,
    },

    /// The `best` save strategy without a metric.
    #[error(
        "`args.metric_for_best_model` must be provided when using 'best' save_strategy or if \
         `args.load_best_model_at_end` is set to `True`."
    )]
    BestMetricNeeded,

    /// Both half precisions.
    #[error("At most one of fp16 and bf16 can be True, but not both")]
    Fp16AndBf16,

    /// Negative warm-up.
    #[error("Got warmup_steps = {value}, Expected value warmup_steps >= 0")]
    NegativeWarmup {
        /// `warmup_steps`.
        value: f64,
    },

    /// Label smoothing outside [0, 1].
    #[error("--label_smoothing_factor must be between 0 and 1, got {value}")]
    LabelSmoothingRange {
        /// `label_smoothing_factor`.
        value: f64,
    },

    /// A batch size of zero.
    #[error("batch sizes must be at least 1")]
    ZeroBatchSize,

    /// Zero accumulation steps.
    #[error("gradient_accumulation_steps must be at least 1")]
    ZeroAccumulation,

    /// A negative learning rate.
    #[error("learning_rate must be non-negative, got {value}")]
    NegativeLearningRate {
        /// `learning_rate`.
        value: f64,
    },

    /// Adam's betas outside [0, 1).
    #[error("adam_beta1 and adam_beta2 must be in [0, 1)")]
    AdamBetas,

    /// No epochs and no `max_steps`.
    #[error("num_train_epochs must be positive when max_steps is not set, got {value}")]
    NoEpochs {
        /// `num_train_epochs`.
        value: f64,
    },
}

/// Why the Trainer's parts do not fit together; found before any step runs, or where a call
/// needs a part it was not given.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// `train()` without a train dataset.
    #[error("`train()` needs a train_dataset")]
    NoTrainDataset,

    /// `evaluate()` without an eval dataset.
    #[error("`evaluate()` needs an eval_dataset")]
    NoEvalDataset,

    /// An eval strategy without an eval dataset (transformers' message).
    #[error(
        "You have set `args.eval_strategy` to {strategy} but you didn't pass an `eval_dataset` \
         to `Trainer`. Either set `args.eval_strategy` to `no` or pass an `eval_dataset`. "
    )]
    EvalStrategyWithoutDataset {
        /// The eval strategy.
        strategy: String,
    },

    /// Training rows without labels.
    #[error("the train_dataset has rows without labels; a model cannot learn from them")]
    UnlabelledTrainRows,

    /// A train dataset that gives no batch.
    #[error(
        "the train_dataset gives no batch (empty, or smaller than one batch with \
         dataloader_drop_last)"
    )]
    NoTrainBatches,

    /// Neither a tokenizer nor a data collator.
    #[error("no data collator: pass `tokenizer` or `data_collator` to the Trainer")]
    NoDataCollator,

    /// A token id past the model's vocabulary.
    #[error(
        "{role} dataset row idx {idx} has a token id beyond the model's vocabulary of \
         {vocab_size}: is the tokenizer the model's?"
    )]
    TokenBeyondVocabulary {
        /// `train`, `eval` or `test`.
        role: &'static str,
        /// The row's `idx`.
        idx: u32,
        /// The model's vocabulary.
        vocab_size: usize,
    },

    /// A token type past the model's token types.
    #[error(
        "{role} dataset row idx {idx} has token type {token_type}, but the model has \
         type_vocab_size={type_vocab_size}: is the tokenizer the model's?"
    )]
    TokenTypeBeyondVocabulary {
        /// `train`, `eval` or `test`.
        role: &'static str,
        /// The row's `idx`.
        idx: u32,
        /// The token type.
        token_type: u32,
        /// The model's token types.
        type_vocab_size: usize,
    },

    /// A row longer than the model's position embeddings.
    #[error(
        "{role} dataset row idx {idx} has {tokens} tokens, more than the model's \
         {max_length} positions"
    )]
    RowTooLong {
        /// `train`, `eval` or `test`.
        role: &'static str,
        /// The row's `idx`.
        idx: u32,
        /// Its tokens.
        tokens: usize,
        /// The model's longest input.
        max_length: usize,
    },

    /// Class labels for a regression model.
    #[error("{role} dataset has class labels but the model has num_labels=1 (regression)")]
    ClassLabelsForRegression {
        /// `train`, `eval` or `test`.
        role: &'static str,
    },

    /// A class label the model has no output for.
    #[error("{role} dataset has label {label}, but the model has num_labels={num_labels}")]
    LabelBeyondClasses {
        /// `train`, `eval` or `test`.
        role: &'static str,
        /// The label.
        label: u32,
        /// The model's outputs.
        num_labels: usize,
    },

    /// Regression scores for a classifier.
    #[error(
        "{role} dataset has regression scores but the model has num_labels={num_labels}; use \
         num_labels=1"
    )]
    ScoresForClassifier {
        /// `train`, `eval` or `test`.
        role: &'static str,
        /// The model's outputs.
        num_labels: usize,
    },

    /// `metric_for_best_model` names no metric of the evaluation (transformers' message).
    #[error(
        "The `metric_for_best_model` training argument is set to '{key}', which is not found \
         in the evaluation metrics. The available evaluation metrics are: {available:?}."
    )]
    MetricNotFound {
        /// The metric asked for.
        key: String,
        /// The evaluation's metrics.
        available: Vec<String>,
    },

    /// Label smoothing asked for on regression scores.
    #[error(
        "{context}: label_smoothing_factor applies to class labels, and this task's labels \
         are scores (regression)"
    )]
    LabelSmoothingOnScores {
        /// Where (`training step 12`).
        context: String,
    },

    /// Mixed precision on a device without the dtype.
    #[error(
        "{precision} was asked for, but the device {device} cannot compute in {precision}; \
         drop the flag or pick another backend (tch-cpu and flex have bf16)"
    )]
    PrecisionUnsupported {
        /// `bf16` or `fp16`.
        precision: &'static str,
        /// The device.
        device: String,
    },
}

/// What is wrong with a `TrainingArguments` JSON file.
#[derive(Debug, thiserror::Error)]
pub enum ArgumentsFileError {
    /// Not JSON, or a value of the wrong type.
    #[error(transparent)]
    Json(#[from] serde_json::Error),

    /// A field's value has the wrong type, or is not one of the values it takes.
    #[error("`{key}` has an invalid value")]
    Field {
        /// The field.
        key: String,
        /// serde's reason.
        #[source]
        source: serde_json::Error,
    },

    /// The top level is not an object.
    #[error("expected a JSON object of TrainingArguments fields")]
    NotAnObject,

    /// A key that no version of `TrainingArguments` we know has.
    #[error("unknown TrainingArguments field `{key}`{}", suggestion.as_ref().map(|s| format!("; did you mean `{s}`?")).unwrap_or_default())]
    UnknownField {
        /// The key.
        key: String,
        /// The nearest known field name, if one is close.
        suggestion: Option<String>,
    },

    /// A transformers field that bert-ft does not implement, set to something other than
    /// transformers' default.
    #[error(
        "`{key}` is set to {value}, but bert-ft does not implement it; remove it or set it to \
         transformers' default ({default})"
    )]
    Unsupported {
        /// The field.
        key: String,
        /// The value in the file.
        value: serde_json::Value,
        /// transformers' default.
        default: serde_json::Value,
    },

    /// transformers 4's `group_by_length` with a value that is not a boolean.
    #[error("`group_by_length` must be true or false, got {value}")]
    GroupByLengthNotBool {
        /// The value in the file.
        value: serde_json::Value,
    },

    /// `group_by_length` and a `train_sampling_strategy` that says otherwise.
    #[error("`group_by_length: {on}` contradicts `train_sampling_strategy: {strategy}`")]
    GroupByLengthContradicts {
        /// `group_by_length`.
        on: bool,
        /// `train_sampling_strategy`.
        strategy: serde_json::Value,
    },
}

/// A problem found inside a checkpoint by our own checks (a missing count, a moment of the
/// wrong length), as opposed to one a library reported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointProblem {
    /// The checkpoint path is not a folder.
    #[error("not a folder")]
    NotAFolder,

    /// A file of the checkpoint is at another step than `trainer_state.json`.
    #[error("it is at step {step}, but trainer_state.json is at step {state_step}")]
    StepsDisagree {
        /// The file's step.
        step: usize,
        /// `trainer_state.json`'s.
        state_step: usize,
    },

    /// Optimizer moments of a parameter the model does not have.
    #[error("moments for `{name}`, which the model does not have")]
    UnknownParameter {
        /// The parameter.
        name: String,
    },

    /// A parameter with one of its two moments.
    #[error("`{name}` lacks one of its two moments")]
    MissingMoment {
        /// The parameter.
        name: String,
    },

    /// A moment of another size than its parameter.
    #[error("{kind} of `{name}` has {found} values, but the parameter has {expected}")]
    MomentSize {
        /// `exp_avg` or `exp_avg_sq`.
        kind: &'static str,
        /// The parameter.
        name: String,
        /// The moment's values.
        found: usize,
        /// The parameter's.
        expected: usize,
    },

    /// The optimizer file's metadata has no step count.
    #[error("no step count in the metadata")]
    NoStepCount,

    /// A tensor of the optimizer file that is not f32.
    #[error("{name} is {dtype}, expected F32")]
    NotF32 {
        /// The tensor.
        name: String,
        /// Its dtype.
        dtype: String,
    },

    /// A tensor of the optimizer file that is no moment.
    #[error("unexpected tensor `{name}`")]
    UnexpectedTensor {
        /// The tensor.
        name: String,
    },

    /// A torch `optimizer.pt` whose param groups hold other numbers of parameters than
    /// transformers' two groups (decay, no decay) of this model.
    #[error(
        "its param groups hold {found:?} parameters, but this model's groups (weight decay, \
         no weight decay) hold {expected:?}: it was saved for another model"
    )]
    ParamGroups {
        /// Parameters per group in the file.
        found: Vec<usize>,
        /// Parameters per group of this model.
        expected: Vec<usize>,
    },

    /// A moment in a torch `optimizer.pt` of another shape than its parameter.
    #[error(
        "{name} has shape {found:?}, but parameter {index} (`{parameter}`) has {expected:?} in \
         torch's layout"
    )]
    MomentShape {
        /// The tensor (`state.3.exp_avg`).
        name: String,
        /// Our parameter at that index.
        parameter: String,
        /// The torch index.
        index: usize,
        /// The moment's shape.
        found: Vec<usize>,
        /// The parameter's shape in torch.
        expected: Vec<usize>,
    },

    /// A parameter of a torch `optimizer.pt` whose `step` is missing or no whole count.
    #[error("the state of parameter {index} has no step count, or one that is not a whole number")]
    BadStep {
        /// The torch index.
        index: usize,
    },

    /// Parameters of a torch `optimizer.pt` at different steps, which one AdamW step count
    /// cannot hold.
    #[error(
        "parameter {index} is at step {step}, but the parameters before it are at step {first}"
    )]
    StepCountsDisagree {
        /// The torch index.
        index: usize,
        /// Its step.
        step: u64,
        /// The step of the parameters before it.
        first: u64,
    },
}

impl TrainerError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TrainerError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn model(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        TrainerError::Model {
            context: context.into(),
            source: Box::new(source),
        }
    }

    pub(crate) fn save(path: impl Into<PathBuf>, source: impl Into<BoxedError>) -> Self {
        TrainerError::Save {
            path: path.into(),
            source: source.into(),
        }
    }

    pub(crate) fn load(path: impl Into<PathBuf>, source: impl Into<BoxedError>) -> Self {
        TrainerError::Load {
            path: path.into(),
            source: source.into(),
        }
    }

    /// A problem our own checks found in checkpoint `path`.
    pub(crate) fn invalid_checkpoint(path: impl Into<PathBuf>, problem: CheckpointProblem) -> Self {
        Self::load(path, problem)
    }
}
