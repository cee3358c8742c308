//! The splits of one task, like `datasets.DatasetDict`.

use std::fmt;

use crate::error::GlueError;
use crate::split::Split;
use crate::task::Task;

/// Every split of one GLUE task, in the Hub's order.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetDict {
    task: Task,
    splits: Vec<Split>,
}

impl DatasetDict {
    /// Groups splits of `task`.
    pub fn new(task: Task, splits: Vec<Split>) -> Self {
        Self { task, splits }
    }

    /// The task.
    pub fn task(&self) -> Task {
        self.task
    }

    /// A split by name, or an error listing the splits present.
    pub fn split(&self, name: &str) -> Result<&Split, GlueError> {
        self.get(name).ok_or_else(|| self.unknown(name))
    }

    /// A split by name.
    pub fn get(&self, name: &str) -> Option<&Split> {
        self.splits.iter().find(|split| split.name() == name)
    }

    /// Removes and returns a split, so that it can be moved into a pipeline without a copy.
    pub fn take(&mut self, name: &str) -> Result<Split, GlueError> {
        match self.splits.iter().position(|split| split.name() == name) {
            Some(position) => Ok(self.splits.remove(position)),
            None => Err(self.unknown(name)),
        }
    }

    fn unknown(&self, name: &str) -> GlueError {
        GlueError::UnknownSplit {
            split: name.to_string(),
            available: self.split_names().collect::<Vec<_>>().join(", "),
        }
    }

    /// The split names, in order.
    pub fn split_names(&self) -> impl Iterator<Item = &str> {
        self.splits.iter().map(Split::name)
    }

    /// All splits, in order.
    pub fn splits(&self) -> &[Split] {
        &self.splits
    }
}

/// Prints like `datasets.DatasetDict`'s repr: each split with its features and row count.
impl fmt::Display for DatasetDict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "DatasetDict({{")?;
        for split in &self.splits {
            let mut columns = split.features().text_columns.clone();
            columns.extend(["label".to_string(), "idx".to_string()]);
            writeln!(f, "    {}: Dataset({{", split.name())?;
            writeln!(f, "        features: {:?},", columns)?;
            writeln!(f, "        num_rows: {}", split.len())?;
            writeln!(f, "    }})")?;
        }
        write!(f, "}})")
    }
}
