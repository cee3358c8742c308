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
    /// Invalid `TrainingArguments` (the message is transformers').
    #[error("{0}")]
    Arguments(String),

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
    #[error("{0}")]
    Setup(String),

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

    /// Training was interrupted (Ctrl-C) after a checkpoint was written.
    #[error("interrupted at step {step}; resume with --resume-from-checkpoint {checkpoint}")]
    Interrupted {
        /// The last step completed.
        step: usize,
        /// The checkpoint written.
        checkpoint: PathBuf,
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

    /// Arguments valid as JSON that transformers' checks refuse.
    #[error("{0}")]
    Invalid(String),
}

/// A problem found inside a checkpoint by our own checks (a missing count, a moment of the
/// wrong length), as opposed to one a library reported.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CheckpointProblem(pub String);

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
    pub(crate) fn invalid_checkpoint(path: impl Into<PathBuf>, problem: impl Into<String>) -> Self {
        Self::load(path, CheckpointProblem(problem.into()))
    }
}
