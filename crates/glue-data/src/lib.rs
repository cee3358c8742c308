//! The GLUE benchmark's tasks, as `datasets.load_dataset("nyu-mll/glue", task)` gives them:
//! the same splits, column names, label names and row order, read from the original GLUE TSV
//! files, from the Hub's parquet files on disk, or from the Hub itself.
//!
//! ```no_run
//! use glue_data::{load_dataset, Label};
//!
//! let raw_datasets = load_dataset("../shared/data/glue/MRPC", "mrpc")?;
//! let train = raw_datasets.split("train")?;
//! let row = train.row(0).expect("train has rows");
//! assert_eq!(row.label, Some(Label::Class(1)));
//! println!("{raw_datasets}");
//! # Ok::<(), glue_data::GlueError>(())
//! ```
//!
//! This crate holds no tensors: tokenization and batching live in `ft-collate`.

#![warn(missing_docs)]

mod dict;
mod error;
mod features;
mod parquet;
mod parquet_guard;
mod source;
mod split;
mod task;
mod tsv;

pub use dict::DatasetDict;
pub use error::GlueError;
pub use features::{Features, Label, LabelFeature};
pub use parquet::{load_parquet_dir, parse_parquet_split, read_parquet_split};
pub use source::{DataSource, GLUE_HUB_ID, load_dataset, load_hub};
pub use split::{Example, LabelColumn, Row, Split};
pub use task::{SplitSpec, Task};
pub use tsv::{load_tsv_dir, parse_tsv_split, read_tsv_split};

/// Re-exported so that users need not depend on burn-dataset to index splits.
pub use burn_dataset::Dataset;
