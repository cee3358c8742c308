//! The one error type of this crate.
//!
//! Each message says what was being done and to what (the file, the tensor); where an
//! underlying error caused it, that error is the `source()`, not repeated in the message, so
//! that a chain printed whole (`{:#}` with anyhow) reads once.

use std::path::PathBuf;

/// Why a model could not be built, loaded, run or saved.
#[derive(Debug, thiserror::Error)]
pub enum BertError {
    /// `config.json` is not valid JSON or a value has the wrong type.
    #[error("parsing the BERT config {path}")]
    Config {
        /// The file.
        path: PathBuf,
        /// The JSON parser's error.
        #[source]
        source: serde_json::Error,
    },

    /// `config.json` parses but its values do not fit together.
    #[error("{path}: invalid BERT config: {reason}")]
    InvalidConfig {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// `config.json` names an architecture (`model_type`) this crate does not build.
    #[error("{path}: model_type {model_type:?} is not supported; supported: {}", crate::SUPPORTED_MODEL_TYPES.join(", "))]
    UnsupportedModelType {
        /// The file.
        path: PathBuf,
        /// The config's `model_type`.
        model_type: String,
    },

    /// The config could not be written as JSON.
    #[error("serialising the BERT config to {path}")]
    SerializeConfig {
        /// The file it was for.
        path: PathBuf,
        /// The serialiser's error.
        #[source]
        source: serde_json::Error,
    },

    /// The model folder or Hub repository has no weights file.
    #[error("{location}: no weights found (expected model.safetensors or pytorch_model.bin)")]
    NoWeights {
        /// The folder or Hub id.
        location: String,
    },

    /// The weights file could not be read.
    #[error("reading weights {path}")]
    Weights {
        /// The file.
        path: PathBuf,
        /// The reader's error (burn-store's safetensors or PyTorch error).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// The weights file could not be written.
    #[error("writing weights {path}")]
    SaveWeights {
        /// The file.
        path: PathBuf,
        /// The writer's error.
        #[source]
        source: burn::store::SafetensorsStoreError,
    },

    /// Checkpoint tensors have other shapes than the config implies.
    #[error("{path}: tensors do not fit the config: {mismatches}")]
    ShapeMismatch {
        /// The weights file.
        path: PathBuf,
        /// Each mismatch, `name: checkpoint [..] vs model [..]`.
        mismatches: String,
    },

    /// Tensors the model needs are not in the checkpoint (and are not a new head).
    #[error("{path}: the checkpoint lacks {missing}; refusing to initialise them at random")]
    MissingWeights {
        /// The weights file.
        path: PathBuf,
        /// The missing tensors, comma-separated.
        missing: String,
    },

    /// A checkpoint's classifier has another number of labels than asked for.
    #[error(
        "{path}: the checkpoint's classifier has {found} labels but num_labels={expected} was asked for"
    )]
    NumLabels {
        /// The weights file.
        path: PathBuf,
        /// What was asked for.
        expected: usize,
        /// What the checkpoint has.
        found: usize,
    },

    /// A config's values do not fit together (a config built in code, with no file).
    #[error("invalid config for {class}: {reason}")]
    InvalidConfigValues {
        /// The class the config was to build.
        class: &'static str,
        /// What is wrong.
        reason: String,
    },

    /// A config of one architecture was given to another's class.
    #[error("a {config} config cannot build a {}", expected.class_name())]
    ArchitectureMismatch {
        /// The config's architecture.
        config: crate::Architecture,
        /// The class's architecture.
        expected: crate::Architecture,
    },

    /// An input tensor's shape differs from `input_ids`'.
    #[error("{what} is {found:?} where input_ids is {expected:?}")]
    InputShape {
        /// The tensor (`attention_mask`, `token_type_ids`, `the token layout`).
        what: &'static str,
        /// `input_ids`' shape.
        expected: Vec<usize>,
        /// Its shape.
        found: Vec<usize>,
    },

    /// A row of a right-padded batch is longer than the batch.
    #[error("row {row} has {length} tokens, more than the batch's {seq} positions")]
    RowLongerThanBatch {
        /// The row.
        row: usize,
        /// Its tokens.
        length: usize,
        /// The batch's padded length.
        seq: usize,
    },

    /// The input is longer than the position embeddings cover.
    #[error("sequence length {seq} exceeds the longest input the position embeddings cover, {max}")]
    SequenceTooLong {
        /// The input's length.
        seq: usize,
        /// The model's longest input.
        max: usize,
    },

    /// A batch without rows or positions.
    #[error("an empty batch ({batch} rows of {seq} positions)")]
    EmptyBatch {
        /// Rows.
        batch: usize,
        /// Positions.
        seq: usize,
    },

    /// Regression labels for a model with more than one output.
    #[error("regression needs num_labels=1, the model has {num_labels}")]
    RegressionNeedsOneLabel {
        /// The model's outputs.
        num_labels: usize,
    },

    /// The config's problem type cannot take the batch's labels.
    #[error("problem_type {problem:?} does not take {labels} labels")]
    LabelsDoNotFit {
        /// The problem type.
        problem: crate::ProblemType,
        /// `class` or `score`.
        labels: &'static str,
    },

    /// An invariant of this crate did not hold: a bug, not a fault of the input.
    #[error("internal error: {what}; please report it")]
    Internal {
        /// What went wrong.
        what: &'static str,
    },

    /// Values could not be read back from the device.
    #[error("reading {what} from the device")]
    DeviceRead {
        /// What was read (`the attention mask`).
        what: &'static str,
        /// burn's error.
        #[source]
        source: burn::tensor::ExecutionError,
    },

    /// A file could not be read or written.
    #[error("{action} {path}")]
    Io {
        /// What was being done: `reading`, `writing`, `creating`.
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// Downloading from the Hub failed.
    #[error(transparent)]
    Hub(#[from] ft_hub::HubError),
}

impl BertError {
    /// An I/O error while `action` (`reading`, `writing`, `creating`) `path`.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        BertError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
