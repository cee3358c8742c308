//! The one error type of this crate: each variant names the file and, where there is one,
//! the line or row at fault.

use std::path::PathBuf;

/// Why a GLUE dataset could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum GlueError {
    /// The task name is not a GLUE config.
    #[error(
        "unknown GLUE task `{name}`; expected one of cola, sst2, mrpc, qqp, stsb, mnli, qnli, rte, wnli, ax"
    )]
    UnknownTask {
        /// The name given.
        name: String,
    },

    /// The split is not part of the dataset.
    #[error("no split `{split}` in this dataset; it has: {available}")]
    UnknownSplit {
        /// The split asked for.
        split: String,
        /// The splits present, comma-separated.
        available: String,
    },

    /// A file the task needs does not exist.
    #[error("{path}: file not found")]
    MissingFile {
        /// The missing file.
        path: PathBuf,
    },

    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },

    /// A file has no content where a header or rows were expected.
    #[error("{path}: the file is empty")]
    EmptyFile {
        /// The file.
        path: PathBuf,
    },

    /// A file holds a header, or the parquet schema, but no rows: a split must have rows.
    #[error("{path}: the file has no rows")]
    NoRows {
        /// The file.
        path: PathBuf,
    },

    /// A line is not valid UTF-8.
    #[error("{path}:{line}: invalid UTF-8 (at byte {byte} of the line)")]
    InvalidUtf8 {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// Byte offset of the first invalid byte within the line.
        byte: usize,
    },

    /// A line has the wrong number of tab-separated fields.
    #[error("{path}:{line}: expected {expected} tab-separated columns, found {found}")]
    ColumnCount {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// Columns in the header (or the task's fixed layout).
        expected: usize,
        /// Columns on this line.
        found: usize,
    },

    /// The header lacks a column the task needs.
    #[error("{path}: no column `{column}` (columns present: {present})")]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The column looked for.
        column: String,
        /// The columns the file has, comma-separated.
        present: String,
    },

    /// A label cannot be read as the task's label type.
    #[error("{path}:{line}: invalid label `{value}`: {reason}")]
    InvalidLabel {
        /// The file.
        path: PathBuf,
        /// 1-based line number (TSV) or 0-based row (parquet).
        line: usize,
        /// The label text.
        value: String,
        /// What was expected.
        reason: String,
    },

    /// A parquet file could not be decoded.
    #[error("{path}: parquet: {source}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The decoder's reason.
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// A parquet column has a type the task cannot use.
    #[error("{path}: column `{column}` has type {found}, expected {expected}")]
    ColumnType {
        /// The file.
        path: PathBuf,
        /// The column.
        column: String,
        /// The type wanted.
        expected: String,
        /// The type found.
        found: String,
    },

    /// A parquet cell is null or out of range.
    #[error("{path}: row {row}, column `{column}`: {reason}")]
    InvalidCell {
        /// The file.
        path: PathBuf,
        /// 0-based row within the file.
        row: usize,
        /// The column.
        column: String,
        /// What is wrong.
        reason: String,
    },

    /// No parquet file was found for a split.
    #[error("no parquet file for split `{split}` of `{task}` under {location}")]
    NoParquetFiles {
        /// The task.
        task: String,
        /// The split.
        split: String,
        /// The folder or Hub repository searched.
        location: String,
    },

    /// A Hub download failed.
    #[error(transparent)]
    Hub(#[from] ft_hub::HubError),

    /// A row does not fit the split's features.
    #[error("split `{split}`, row {row}: {reason}")]
    InvalidExample {
        /// The split.
        split: String,
        /// 0-based row.
        row: usize,
        /// What is wrong.
        reason: String,
    },
}

impl GlueError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        let path = path.into();
        if source.kind() == std::io::ErrorKind::NotFound {
            GlueError::MissingFile { path }
        } else {
            GlueError::Io { path, source }
        }
    }
}
