//! One split of a task, stored by column.

use burn_dataset::{Dataset, DatasetError};

use crate::error::GlueError;
use crate::features::{Features, Label, LabelFeature};

/// The labels of a split, one per row; `None` where the split has no labels (GLUE's test
/// splits, which the Hub stores as -1).
#[derive(Debug, Clone, PartialEq)]
pub enum LabelColumn {
    /// Class ids.
    Class(Vec<Option<u32>>),
    /// Regression scores.
    Score(Vec<Option<f32>>),
}

impl LabelColumn {
    /// An empty column for the given feature.
    pub fn empty(feature: &LabelFeature) -> Self {
        match feature {
            LabelFeature::ClassLabel { .. } => LabelColumn::Class(Vec::new()),
            LabelFeature::Regression => LabelColumn::Score(Vec::new()),
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            LabelColumn::Class(values) => values.len(),
            LabelColumn::Score(values) => values.len(),
        }
    }

    /// Whether the column has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The label of row `index`, `None` if it has none or the row does not exist.
    pub fn get(&self, index: usize) -> Option<Label> {
        match self {
            LabelColumn::Class(values) => values.get(index).copied().flatten().map(Label::Class),
            LabelColumn::Score(values) => values.get(index).copied().flatten().map(Label::Score),
        }
    }

    /// Whether every row has a label.
    pub fn is_complete(&self) -> bool {
        match self {
            LabelColumn::Class(values) => values.iter().all(Option::is_some),
            LabelColumn::Score(values) => values.iter().all(Option::is_some),
        }
    }

    /// Appends one label, which must match the column's kind.
    fn push(&mut self, label: Option<Label>) -> Result<(), &'static str> {
        match (self, label) {
            (LabelColumn::Class(values), Some(Label::Class(class))) => values.push(Some(class)),
            (LabelColumn::Score(values), Some(Label::Score(score))) => values.push(Some(score)),
            (LabelColumn::Class(values), None) => values.push(None),
            (LabelColumn::Score(values), None) => values.push(None),
            (LabelColumn::Class(_), Some(Label::Score(_))) => {
                return Err("a float score in a class-label column");
            }
            (LabelColumn::Score(_), Some(Label::Class(_))) => {
                return Err("a class id in a regression column");
            }
        }
        Ok(())
    }
}

/// One row, owned: what [`Dataset::get`] returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// The row's `idx` column.
    pub idx: u32,
    /// The first text column (`sentence1`, `sentence`, `question1`, ...).
    pub text_a: String,
    /// The second text column, for pair tasks.
    pub text_b: Option<String>,
    /// The label, `None` in unlabelled test splits.
    pub label: Option<Label>,
}

/// One row, borrowed from its split.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row<'a> {
    /// The row's `idx` column.
    pub idx: u32,
    /// The first text column.
    pub text_a: &'a str,
    /// The second text column, for pair tasks.
    pub text_b: Option<&'a str>,
    /// The label, `None` in unlabelled test splits.
    pub label: Option<Label>,
}

impl Row<'_> {
    /// An owned copy.
    pub fn to_example(&self) -> Example {
        Example {
            idx: self.idx,
            text_a: self.text_a.to_string(),
            text_b: self.text_b.map(str::to_string),
            label: self.label,
        }
    }
}

/// One split of a GLUE task, like a `datasets.Dataset`: columns `text_a` (and `text_b`),
/// `label` and `idx`, named by its [`Features`].
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    name: String,
    features: Features,
    text_a: Vec<String>,
    text_b: Option<Vec<String>>,
    labels: LabelColumn,
    idx: Vec<u32>,
}

impl Split {
    /// An empty split with the given features; fill it with [`Split::push`].
    pub fn new(name: impl Into<String>, features: Features) -> Self {
        let pair = features.text_columns.len() > 1;
        Self {
            name: name.into(),
            labels: LabelColumn::empty(&features.label),
            features,
            text_a: Vec::new(),
            text_b: pair.then(Vec::new),
            idx: Vec::new(),
        }
    }

    /// Builds a split from rows, checking each against the features.
    pub fn from_examples(
        name: impl Into<String>,
        features: Features,
        examples: impl IntoIterator<Item = Example>,
    ) -> Result<Self, GlueError> {
        let mut split = Self::new(name, features);
        for example in examples {
            split.push(example)?;
        }
        Ok(split)
    }

    /// Appends a row. The text columns and label kind must match the features.
    pub fn push(&mut self, example: Example) -> Result<(), GlueError> {
        let row = self.len();
        let invalid = |reason: String| GlueError::InvalidExample {
            split: self.name.clone(),
            row,
            reason,
        };
        match (&self.text_b, &example.text_b) {
            (Some(_), None) => {
                return Err(invalid("a pair task's row lacks its second text".into()));
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "a single-sentence task's row has a second text".into(),
                ));
            }
            _ => {}
        }
        if let (LabelFeature::ClassLabel { names }, Some(Label::Class(class))) =
            (&self.features.label, example.label)
            && class as usize >= names.len()
        {
            return Err(invalid(format!(
                "class {class} is out of range for {} classes",
                names.len()
            )));
        }
        self.labels
            .push(example.label)
            .map_err(|e| invalid(e.into()))?;
        self.text_a.push(example.text_a);
        if let (Some(column), Some(text)) = (&mut self.text_b, example.text_b) {
            column.push(text);
        }
        self.idx.push(example.idx);
        Ok(())
    }

    /// The split's name (`train`, `validation`, ...).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Column names and label type.
    pub fn features(&self) -> &Features {
        &self.features
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.idx.len()
    }

    /// Whether the split has no rows.
    pub fn is_empty(&self) -> bool {
        self.idx.is_empty()
    }

    /// Row `index`, borrowed.
    pub fn row(&self, index: usize) -> Option<Row<'_>> {
        (index < self.len()).then(|| self.row_unchecked(index))
    }

    /// All rows in order.
    pub fn rows(&self) -> impl ExactSizeIterator<Item = Row<'_>> + '_ {
        (0..self.len()).map(|index| self.row_unchecked(index))
    }

    /// Row `index < len()`: `push` keeps every column `len()` long.
    fn row_unchecked(&self, index: usize) -> Row<'_> {
        Row {
            idx: self.idx[index],
            text_a: &self.text_a[index],
            text_b: self.text_b.as_ref().map(|column| column[index].as_str()),
            label: self.labels.get(index),
        }
    }

    /// The first text column.
    pub fn text_a(&self) -> &[String] {
        &self.text_a
    }

    /// The second text column, for pair tasks.
    pub fn text_b(&self) -> Option<&[String]> {
        self.text_b.as_deref()
    }

    /// A text column by its Hub name (`"sentence1"`).
    pub fn text(&self, column: &str) -> Option<&[String]> {
        match self
            .features
            .text_columns
            .iter()
            .position(|name| name == column)?
        {
            0 => Some(&self.text_a),
            _ => self.text_b(),
        }
    }

    /// The `label` column.
    pub fn labels(&self) -> &LabelColumn {
        &self.labels
    }

    /// The `idx` column.
    pub fn idx(&self) -> &[u32] {
        &self.idx
    }

    /// Whether every row has a label.
    pub fn has_labels(&self) -> bool {
        !self.is_empty() && self.labels.is_complete()
    }
}

impl Dataset<Example> for Split {
    /// Row `index` as an owned [`Example`]; panics past the end, as the trait requires.
    fn get(&self, index: usize) -> Result<Example, DatasetError> {
        match self.row(index) {
            Some(row) => Ok(row.to_example()),
            None => panic!("Index out of bounds for dataset: {index} >= {}", self.len()),
        }
    }

    fn len(&self) -> usize {
        Split::len(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Task;

    fn example(idx: u32, label: Option<Label>) -> Example {
        Example {
            idx,
            text_a: format!("a{idx}"),
            text_b: Some(format!("b{idx}")),
            label,
        }
    }

    #[test]
    fn columns_and_rows_agree() {
        let split = Split::from_examples(
            "train",
            Task::Mrpc.features(),
            [example(0, Some(Label::Class(1))), example(1, None)],
        )
        .unwrap();
        assert_eq!(split.len(), 2);
        assert_eq!(split.text("sentence2").unwrap()[1], "b1");
        assert_eq!(split.row(0).unwrap().label, Some(Label::Class(1)));
        assert_eq!(Dataset::get(&split, 1).unwrap(), example(1, None));
        assert_eq!(split.rows().len(), 2);
        assert!(!split.has_labels());
        assert!(split.row(2).is_none());
    }

    #[test]
    fn rows_that_do_not_fit_the_features_are_refused() {
        let mut split = Split::new("train", Task::Mrpc.features());
        let err = split.push(example(0, Some(Label::Class(2)))).unwrap_err();
        assert!(err.to_string().contains("out of range"), "{err}");
        let err = split.push(example(0, Some(Label::Score(1.0)))).unwrap_err();
        assert!(err.to_string().contains("float score"), "{err}");
        let mut single = example(0, None);
        single.text_b = None;
        assert!(split.push(single).is_err());
        assert!(split.is_empty());
    }
}
