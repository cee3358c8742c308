//! The one error type of this crate.

use std::path::PathBuf;

/// Why training, evaluation or a checkpoint failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainerError {
    /// Invalid `TrainingArguments` (the message is transformers').
    #[error("{0}")]
    Arguments(String),

    /// The Trainer was set up with parts that do not fit together.
    #[error("{0}")]
    Setup(String),

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

    /// The model failed on a batch.
    #[error("model, at {context}: {source}")]
    Model {
        /// Where (`training step 12`, `evaluation batch 3`).
        context: String,
        /// The model's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// Batching failed.
    #[error(transparent)]
    Collate(#[from] ft_collate::CollateError),

    /// A metric could not be computed.
    #[error("computing metrics: {0}")]
    Metric(#[from] ft_metrics::MetricError),

    /// A checkpoint could not be written; the previous checkpoints are untouched.
    #[error("writing checkpoint {path}: {reason}")]
    Save {
        /// The checkpoint folder.
        path: PathBuf,
        /// What failed.
        reason: String,
    },

    /// A checkpoint could not be read.
    #[error("reading checkpoint {path}: {reason}")]
    Load {
        /// The checkpoint folder or file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },

    /// `resume_from_checkpoint` found nothing to resume.
    #[error("No valid checkpoint found in output directory ({0})")]
    NoCheckpoint(PathBuf),

    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
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
}
