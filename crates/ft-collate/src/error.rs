//! The one error type of this crate.
//!
//! Each message says what was being done and to what (the file, the row); where an
//! underlying error caused it, that error is the `source()`, not repeated in the message, so
//! that a chain printed whole (`{:#}` with anyhow) reads once.

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
    #[error("reading tokenizer file {path}")]
    InvalidFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it: the I/O, JSON or `tokenizers` error, or our own check's
        /// message.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
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
    #[error("tokenizing row {row} of `{split}`")]
    Encode {
        /// The split.
        split: String,
        /// The row.
        row: usize,
        /// The tokenizer's error.
        #[source]
        source: tokenizers::Error,
    },

    /// The tokenizer refused the truncation length.
    #[error(
        "{location}: setting the tokenizer's truncation to {}",
        max_length.map_or_else(|| "none".to_string(), |length| format!("{length} tokens"))
    )]
    Truncation {
        /// The folder or Hub id.
        location: String,
        /// The length asked for; `None` for no truncation.
        max_length: Option<usize>,
        /// The tokenizer's error.
        #[source]
        source: tokenizers::Error,
    },

    /// A file could not be written.
    #[error("{action} {path}")]
    Io {
        /// What was being done: `creating`, `copying to`.
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// The data loader's background thread could not be started.
    #[error("starting the data loader thread")]
    LoaderThread(#[source] std::io::Error),

    /// A batch mixes rows with and without labels.
    #[error("batch mixes labelled and unlabelled rows (row idx {idx} has no label)")]
    MixedLabels {
        /// The `idx` of a row without a label.
        idx: u32,
    },

    /// A rank that is not below the world size.
    #[error("rank {rank} is not below the world size {world_size}")]
    RankOutOfRange {
        /// The rank.
        rank: usize,
        /// The world size.
        world_size: usize,
    },

    /// A batch size or `pad_to_multiple_of` of zero.
    #[error("{what} must be at least 1")]
    Zero {
        /// `batch size` or `pad_to_multiple_of`.
        what: &'static str,
    },

    /// A tokenizer whose longest input holds nothing but its special tokens.
    #[error(
        "{name_or_path}: model_max_length {model_max_length} leaves no room for text beside \
         {special_tokens} special tokens"
    )]
    NoRoomForText {
        /// The tokenizer.
        name_or_path: String,
        /// Its `model_max_length`.
        model_max_length: usize,
        /// The special tokens of a pair.
        special_tokens: usize,
    },

    /// A split the dataset does not have.
    #[error("no split `{name}`; present: {}", present.join(", "))]
    NoSuchSplit {
        /// The split asked for.
        name: String,
        /// The splits there are.
        present: Vec<String>,
    },

    /// Reading data from the Hub failed.
    #[error(transparent)]
    Hub(#[from] ft_hub::HubError),
}

impl CollateError {
    /// An I/O error while `action` (`creating`, `copying to`) `path`.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        CollateError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
