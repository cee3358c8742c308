//! The one error type of this crate.

use std::path::PathBuf;

/// Why a model could not be built, loaded, run or saved.
#[derive(Debug, thiserror::Error)]
pub enum BertError {
    /// `config.json` is missing a usable value or is not valid JSON.
    #[error("{path}: invalid BERT config: {reason}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// The model folder or Hub repository has no weights file.
    #[error("{location}: no weights found (expected model.safetensors or pytorch_model.bin)")]
    NoWeights {
        /// The folder or Hub id.
        location: String,
    },

    /// The weights file could not be read.
    #[error("{path}: {reason}")]
    Weights {
        /// The file.
        path: PathBuf,
        /// The reader's reason.
        reason: String,
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

    /// The inputs do not fit the model.
    #[error("invalid input: {0}")]
    Input(String),

    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },

    /// Downloading from the Hub failed.
    #[error(transparent)]
    Hub(#[from] glue_data::hub::HubError),
}

impl BertError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        BertError::Io {
            path: path.into(),
            source,
        }
    }
}
