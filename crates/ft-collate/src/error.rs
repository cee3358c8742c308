//! The one error type of this crate.

use std::path::PathBuf;

/// Why tokenization or batching failed.
#[derive(Debug, thiserror::Error)]
pub enum CollateError {
    /// No tokenizer files were found.
    #[error("{location}: no tokenizer found (expected tokenizer.json or vocab.txt)")]
    NoTokenizer {
        /// The folder or Hub id searched.
        location: String,
    },

    /// A tokenizer file could not be read or parsed.
    #[error("{path}: {reason}")]
    InvalidFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// `tokenizer_config.json` gives no usable `model_max_length`.
    #[error(
        "{location}: tokenizer_config.json has no model_max_length, so `truncation=True` has no \
         length to truncate to; add it (512 for BERT) or pass a max length explicitly"
    )]
    NoModelMaxLength {
        /// The folder or Hub id.
        location: String,
    },

    /// A special token is not in the vocabulary.
    #[error("{location}: special token `{token}` is not in the vocabulary")]
    MissingSpecialToken {
        /// The folder or Hub id.
        location: String,
        /// The token.
        token: String,
    },

    /// The tokenizer failed on an input.
    #[error("tokenizing row {row} of `{split}`: {reason}")]
    Encode {
        /// The split.
        split: String,
        /// The row.
        row: usize,
        /// The tokenizer's reason.
        reason: String,
    },

    /// A file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },

    /// A batch mixes rows with and without labels.
    #[error("batch mixes labelled and unlabelled rows (row idx {idx} has no label)")]
    MixedLabels {
        /// The `idx` of a row without a label.
        idx: u32,
    },

    /// An invalid setting.
    #[error("{0}")]
    InvalidArgument(String),

    /// Reading data from the Hub failed.
    #[error(transparent)]
    Hub(#[from] glue_data::hub::HubError),
}

impl CollateError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CollateError::Io {
            path: path.into(),
            source,
        }
    }
}
