//! The GLUE tasks, under their Hugging Face config names, with the columns and labels of the
//! Hub dataset `nyu-mll/glue`.

use std::fmt;
use std::str::FromStr;

use crate::error::GlueError;
use crate::features::{Features, LabelFeature};

/// One GLUE task, named as in `load_dataset("nyu-mll/glue", name)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Task {
    /// Corpus of Linguistic Acceptability (Matthews correlation).
    Cola,
    /// Stanford Sentiment Treebank, binary.
    Sst2,
    /// Microsoft Research Paraphrase Corpus.
    Mrpc,
    /// Quora Question Pairs.
    Qqp,
    /// Semantic Textual Similarity Benchmark (regression on [0, 5]).
    Stsb,
    /// Multi-Genre Natural Language Inference.
    Mnli,
    /// Question-answering NLI.
    Qnli,
    /// Recognising Textual Entailment.
    Rte,
    /// Winograd NLI.
    Wnli,
    /// The diagnostic set, test split only, with MNLI's labels.
    Ax,
}

/// Where one split of a task lives in the original GLUE TSV layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitSpec {
    /// The split's Hugging Face name (`train`, `validation`, `validation_matched`, ...).
    pub name: &'static str,
    /// File names tried in the task's GLUE folder, first match wins.
    pub tsv_files: &'static [&'static str],
}

/// How a task's TSV files name their columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TsvColumns {
    /// Header names of the text columns, in feature order.
    pub text: &'static [&'static str],
    /// Header name of the label column.
    pub label: &'static str,
}

const STANDARD_SPLITS: &[SplitSpec] = &[
    SplitSpec {
        name: "train",
        tsv_files: &["train.tsv"],
    },
    SplitSpec {
        name: "validation",
        tsv_files: &["dev.tsv"],
    },
    SplitSpec {
        name: "test",
        tsv_files: &["test.tsv"],
    },
];

const MNLI_SPLITS: &[SplitSpec] = &[
    SplitSpec {
        name: "train",
        tsv_files: &["train.tsv"],
    },
    SplitSpec {
        name: "validation_matched",
        tsv_files: &["dev_matched.tsv"],
    },
    SplitSpec {
        name: "validation_mismatched",
        tsv_files: &["dev_mismatched.tsv"],
    },
    SplitSpec {
        name: "test_matched",
        tsv_files: &["test_matched.tsv"],
    },
    SplitSpec {
        name: "test_mismatched",
        tsv_files: &["test_mismatched.tsv"],
    },
];

const AX_SPLITS: &[SplitSpec] = &[SplitSpec {
    name: "test",
    tsv_files: &["AX.tsv", "diagnostic.tsv", "test.tsv"],
}];

const NLI_LABELS: &[&str] = &["entailment", "neutral", "contradiction"];

impl Task {
    /// Every task, in the order of the GLUE paper's table.
    pub const ALL: [Task; 10] = [
        Task::Cola,
        Task::Sst2,
        Task::Mrpc,
        Task::Qqp,
        Task::Stsb,
        Task::Mnli,
        Task::Qnli,
        Task::Rte,
        Task::Wnli,
        Task::Ax,
    ];

    /// The Hugging Face config name (`"mrpc"`).
    pub fn name(self) -> &'static str {
        match self {
            Task::Cola => "cola",
            Task::Sst2 => "sst2",
            Task::Mrpc => "mrpc",
            Task::Qqp => "qqp",
            Task::Stsb => "stsb",
            Task::Mnli => "mnli",
            Task::Qnli => "qnli",
            Task::Rte => "rte",
            Task::Wnli => "wnli",
            Task::Ax => "ax",
        }
    }

    /// Folder names used for the task by the GLUE download script, first match wins.
    pub fn glue_dirs(self) -> &'static [&'static str] {
        match self {
            Task::Cola => &["CoLA"],
            Task::Sst2 => &["SST-2"],
            Task::Mrpc => &["MRPC"],
            Task::Qqp => &["QQP"],
            Task::Stsb => &["STS-B"],
            Task::Mnli => &["MNLI"],
            Task::Qnli => &["QNLI"],
            Task::Rte => &["RTE"],
            Task::Wnli => &["WNLI"],
            Task::Ax => &["AX", "diagnostic"],
        }
    }

    /// The splits the Hub dataset has for this task.
    pub fn splits(self) -> &'static [SplitSpec] {
        match self {
            Task::Mnli => MNLI_SPLITS,
            Task::Ax => AX_SPLITS,
            _ => STANDARD_SPLITS,
        }
    }

    /// The split the task is validated on (`validation`, or `validation_matched` for MNLI).
    pub fn validation_split(self) -> &'static str {
        match self {
            Task::Mnli => "validation_matched",
            Task::Ax => "test",
            _ => "validation",
        }
    }

    /// The column names and label feature of the Hub dataset.
    pub fn features(self) -> Features {
        let text: &[&str] = match self {
            Task::Cola | Task::Sst2 => &["sentence"],
            Task::Mrpc | Task::Stsb | Task::Rte | Task::Wnli => &["sentence1", "sentence2"],
            Task::Qqp => &["question1", "question2"],
            Task::Mnli | Task::Ax => &["premise", "hypothesis"],
            Task::Qnli => &["question", "sentence"],
        };
        let names: &[&str] = match self {
            Task::Cola => &["unacceptable", "acceptable"],
            Task::Sst2 => &["negative", "positive"],
            Task::Mrpc => &["not_equivalent", "equivalent"],
            Task::Qqp => &["not_duplicate", "duplicate"],
            Task::Stsb => &[],
            Task::Mnli | Task::Ax => NLI_LABELS,
            Task::Qnli | Task::Rte => &["entailment", "not_entailment"],
            Task::Wnli => &["not_entailment", "entailment"],
        };
        let label = if self == Task::Stsb {
            LabelFeature::Regression
        } else {
            LabelFeature::ClassLabel {
                names: names.iter().map(|name| name.to_string()).collect(),
            }
        };
        Features {
            text_columns: text.iter().map(|name| name.to_string()).collect(),
            label,
        }
    }

    /// Number of model outputs: the class count, or 1 for STS-B's regression.
    pub fn num_labels(self) -> usize {
        self.features().label.num_labels()
    }

    /// Whether the label is a float score rather than a class.
    pub fn is_regression(self) -> bool {
        self == Task::Stsb
    }

    /// Column names in the original GLUE TSV files (headers differ from the Hub's names).
    pub(crate) fn tsv_columns(self) -> TsvColumns {
        match self {
            Task::Cola | Task::Sst2 => TsvColumns {
                text: &["sentence"],
                label: "label",
            },
            Task::Mrpc => TsvColumns {
                text: &["#1 String", "#2 String"],
                label: "Quality",
            },
            Task::Qqp => TsvColumns {
                text: &["question1", "question2"],
                label: "is_duplicate",
            },
            Task::Stsb => TsvColumns {
                text: &["sentence1", "sentence2"],
                label: "score",
            },
            Task::Mnli | Task::Ax => TsvColumns {
                text: &["sentence1", "sentence2"],
                label: "gold_label",
            },
            Task::Qnli => TsvColumns {
                text: &["question", "sentence"],
                label: "label",
            },
            Task::Rte | Task::Wnli => TsvColumns {
                text: &["sentence1", "sentence2"],
                label: "label",
            },
        }
    }
}

impl FromStr for Task {
    type Err = GlueError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let lower = name.to_ascii_lowercase();
        // GLUE folder names ("SST-2", "STS-B") are accepted too, since users type them.
        let normalised = lower.replace('-', "");
        Task::ALL
            .into_iter()
            .find(|task| task.name() == normalised)
            .ok_or_else(|| GlueError::UnknownTask {
                name: name.to_string(),
            })
    }
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_folder_names_parse() {
        for task in Task::ALL {
            assert_eq!(task.name().parse::<Task>().unwrap(), task);
        }
        assert_eq!("SST-2".parse::<Task>().unwrap(), Task::Sst2);
        assert_eq!("STS-B".parse::<Task>().unwrap(), Task::Stsb);
        assert!(matches!(
            "squad".parse::<Task>(),
            Err(GlueError::UnknownTask { name }) if name == "squad"
        ));
    }

    #[test]
    fn label_counts_match_the_hub() {
        assert_eq!(Task::Mrpc.num_labels(), 2);
        assert_eq!(Task::Mnli.num_labels(), 3);
        assert_eq!(Task::Stsb.num_labels(), 1);
        assert_eq!(
            Task::Mrpc.features().text_columns,
            vec!["sentence1", "sentence2"]
        );
    }
}
