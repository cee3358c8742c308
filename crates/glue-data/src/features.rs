//! Column types of a split, as in `datasets.Features`.

use serde::{Deserialize, Serialize};

/// The features of a GLUE split: its text columns and its label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Features {
    /// Names of the text columns, one or two, in order (`["sentence1", "sentence2"]`).
    pub text_columns: Vec<String>,
    /// The `label` column's type.
    pub label: LabelFeature,
}

/// The type of the `label` column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum LabelFeature {
    /// `datasets.ClassLabel`: integer classes with names.
    ClassLabel {
        /// Class names, indexed by class id.
        names: Vec<String>,
    },
    /// `datasets.Value("float32")`: a regression score.
    Regression,
}

impl LabelFeature {
    /// Number of model outputs this label needs (1 for regression).
    pub fn num_labels(&self) -> usize {
        match self {
            LabelFeature::ClassLabel { names } => names.len(),
            LabelFeature::Regression => 1,
        }
    }

    /// The class names, empty for regression.
    pub fn names(&self) -> &[String] {
        match self {
            LabelFeature::ClassLabel { names } => names,
            LabelFeature::Regression => &[],
        }
    }
}

/// One example's label.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Label {
    /// A class id, an index into [`LabelFeature::ClassLabel::names`].
    Class(u32),
    /// A regression target.
    Score(f32),
}

impl Label {
    /// The label as a number: the class id, or the score.
    pub fn as_f32(self) -> f32 {
        match self {
            Label::Class(class) => class as f32,
            Label::Score(score) => score,
        }
    }
}
