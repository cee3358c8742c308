//! Where a dataset comes from, and `load_dataset`, which reads any of them.

use std::path::{Path, PathBuf};

use crate::dict::DatasetDict;
use crate::error::GlueError;
use crate::parquet::{load_parquet_dir, read_parquet_split, split_files};
use crate::task::Task;
use crate::tsv::load_tsv_dir;
use ft_hub::{HubOptions, HubRepo};

/// The Hub dataset this crate reads by default.
pub const GLUE_HUB_ID: &str = "nyu-mll/glue";

/// A source of GLUE data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataSource {
    /// A folder in the original GLUE TSV layout (the GLUE root, or one task's folder).
    GlueTsv(PathBuf),
    /// A folder of the Hub's parquet files.
    Parquet(PathBuf),
    /// A Hub dataset repository.
    Hub {
        /// Repository id, `nyu-mll/glue`.
        repo_id: String,
        /// Branch, tag or commit.
        revision: String,
    },
}

impl DataSource {
    /// The default: `nyu-mll/glue` on the Hub.
    pub fn glue_hub() -> Self {
        DataSource::Hub {
            repo_id: GLUE_HUB_ID.to_string(),
            revision: "main".to_string(),
        }
    }

    /// Reads a `--dataset` argument as `load_dataset` reads its path: an existing folder is
    /// local (GLUE TSV when it holds `.tsv` files, parquet otherwise); anything else is a Hub
    /// id, where the retired bare id `glue` means `nyu-mll/glue`.
    pub fn from_arg(arg: &str) -> Self {
        let path = Path::new(arg);
        if path.is_dir() {
            if has_files_with_extension(path, "tsv") {
                DataSource::GlueTsv(path.to_path_buf())
            } else {
                DataSource::Parquet(path.to_path_buf())
            }
        } else {
            let repo_id = if arg == "glue" { GLUE_HUB_ID } else { arg };
            DataSource::Hub {
                repo_id: repo_id.to_string(),
                revision: "main".to_string(),
            }
        }
    }

    /// Loads every split of `task` from this source.
    pub fn load(&self, task: Task) -> Result<DatasetDict, GlueError> {
        match self {
            DataSource::GlueTsv(dir) => load_tsv_dir(dir, task),
            DataSource::Parquet(dir) => load_parquet_dir(dir, task),
            DataSource::Hub { repo_id, revision } => {
                load_hub(repo_id, revision, task, &HubOptions::from_env())
            }
        }
    }
}

/// Whether `dir` or a folder directly inside it holds a file ending in `.{extension}`.
fn has_files_with_extension(dir: &Path, extension: &str) -> bool {
    let matches = |dir: &Path| {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .any(|entry| entry.path().extension().is_some_and(|e| e == extension))
    };
    matches(dir)
        || std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .any(|entry| entry.path().is_dir() && matches(&entry.path()))
}

/// `datasets.load_dataset(path_or_id, task)`: loads every split of a GLUE task from a local
/// folder (GLUE TSV or parquet) or from the Hub (`nyu-mll/glue`, or its old alias `glue`).
///
/// ```no_run
/// let raw_datasets = glue_data::load_dataset("../shared/data/glue", "mrpc")?;
/// assert_eq!(raw_datasets.split("train")?.len(), 3668);
/// # Ok::<(), glue_data::GlueError>(())
/// ```
pub fn load_dataset(path_or_id: &str, task: &str) -> Result<DatasetDict, GlueError> {
    DataSource::from_arg(path_or_id).load(task.parse()?)
}

/// Loads `task` from a Hub dataset repository laid out like `nyu-mll/glue`
/// (`{task}/{split}-00000-of-00001.parquet`).
pub fn load_hub(
    repo_id: &str,
    revision: &str,
    task: Task,
    options: &HubOptions,
) -> Result<DatasetDict, GlueError> {
    let repo = HubRepo::dataset(repo_id, revision, options)?;
    let files = repo.list_files()?;
    let prefix = format!("{}/", task.name());
    let mut splits = Vec::new();
    for spec in task.splits() {
        let names = split_files(&files, &prefix, spec.name);
        if names.is_empty() {
            return Err(GlueError::NoParquetFiles {
                task: task.name().to_string(),
                split: spec.name.to_string(),
                location: format!("{repo_id}@{revision}"),
            });
        }
        let paths = names
            .into_iter()
            .map(|name| repo.get(name))
            .collect::<Result<Vec<_>, _>>()?;
        splits.push(read_parquet_split(&paths, task, spec.name)?);
    }
    Ok(DatasetDict::new(task, splits))
}
