//! The original GLUE TSV files.
//!
//! Their quirks, which this reader follows exactly as the `datasets` GLUE script did:
//! - MRPC's files start with a UTF-8 byte-order mark;
//! - there is no quoting, so `"` is literal text (Python's `csv.QUOTE_NONE`);
//! - CoLA's train and dev files have no header row (source, label, original label, sentence);
//! - labels are class ids, class names (RTE, QNLI, MNLI) or float scores (STS-B);
//! - test files have no label column.

use std::path::{Path, PathBuf};

use crate::dict::DatasetDict;
use crate::error::GlueError;
use crate::features::{Label, LabelFeature};
use crate::split::{Example, Split};
use crate::task::Task;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// CoLA's headerless layout: source, label, original label, sentence.
const COLA_FIELDS: usize = 4;
const COLA_LABEL: usize = 1;
const COLA_SENTENCE: usize = 3;

/// Loads every split of `task` from a folder in the GLUE layout: either the task's own folder
/// (`glue/MRPC`, holding `train.tsv`, `dev.tsv`, `test.tsv`) or the GLUE root above it.
pub fn load_tsv_dir(dir: &Path, task: Task) -> Result<DatasetDict, GlueError> {
    let task_dir = task_dir(dir, task)?;
    let mut splits = Vec::new();
    for spec in task.splits() {
        let path = spec
            .tsv_files
            .iter()
            .map(|file| task_dir.join(file))
            .find(|path| path.is_file())
            .ok_or_else(|| GlueError::MissingFile {
                path: task_dir.join(spec.tsv_files[0]),
            })?;
        splits.push(read_tsv_split(&path, task, spec.name)?);
    }
    Ok(DatasetDict::new(task, splits))
}

/// Finds the folder holding the task's TSV files under `dir`.
fn task_dir(dir: &Path, task: Task) -> Result<PathBuf, GlueError> {
    if !dir.is_dir() {
        return Err(GlueError::MissingFile {
            path: dir.to_path_buf(),
        });
    }
    let holds_task_files = |candidate: &Path| {
        task.splits()
            .iter()
            .flat_map(|spec| spec.tsv_files)
            .any(|file| candidate.join(file).is_file())
    };
    task.glue_dirs()
        .iter()
        .map(|name| dir.join(name))
        .find(|candidate| candidate.is_dir())
        .or_else(|| holds_task_files(dir).then(|| dir.to_path_buf()))
        .ok_or_else(|| GlueError::MissingFile {
            path: dir.join(task.glue_dirs()[0]),
        })
}

/// Reads one GLUE TSV file as split `split_name` of `task`. A file without the task's label
/// column (a test file) gives a split whose labels are all `None`.
pub fn read_tsv_split(path: &Path, task: Task, split_name: &str) -> Result<Split, GlueError> {
    let bytes = std::fs::read(path).map_err(|e| GlueError::io(path, e))?;
    parse_tsv_split(path, &bytes, task, split_name)
}

/// Parses the bytes of a GLUE TSV file as [`read_tsv_split`] does; `path` only names the
/// file in errors.
pub fn parse_tsv_split(
    path: &Path,
    bytes: &[u8],
    task: Task,
    split_name: &str,
) -> Result<Split, GlueError> {
    let body = bytes.strip_prefix(BOM).unwrap_or(bytes);
    let mut lines = Lines::new(path, body);
    let first = lines
        .next()
        .transpose()?
        .ok_or_else(|| GlueError::EmptyFile {
            path: path.to_path_buf(),
        })?;

    let layout = if task == Task::Cola && first.1.split('\t').next() != Some("index") {
        Layout::cola_headerless()
    } else {
        Layout::from_header(path, task, first.1)?
    };
    let mut split = Split::new(split_name, task.features());
    // A headerless file's first line is data.
    let data_lines = (!layout.has_header).then_some(Ok(first));
    for line in data_lines.into_iter().chain(&mut lines) {
        let (number, text) = line?;
        let fields: Vec<&str> = text.split('\t').collect();
        if fields.len() != layout.field_count {
            return Err(GlueError::ColumnCount {
                path: path.to_path_buf(),
                line: number,
                expected: layout.field_count,
                found: fields.len(),
            });
        }
        let label = match layout.label {
            Some(column) => Some(parse_label(
                path,
                number,
                fields[column],
                &split.features().label,
            )?),
            None => None,
        };
        let example = Example {
            // The `datasets` GLUE script numbers rows in file order from 0.
            idx: split.len() as u32,
            text_a: fields[layout.text[0]].to_string(),
            text_b: layout.text.get(1).map(|&column| fields[column].to_string()),
            label,
        };
        split.push(example)?;
    }
    if split.is_empty() {
        return Err(GlueError::NoRows {
            path: path.to_path_buf(),
        });
    }
    Ok(split)
}

/// Which fields of a line hold what.
struct Layout {
    has_header: bool,
    field_count: usize,
    text: Vec<usize>,
    label: Option<usize>,
}

impl Layout {
    fn cola_headerless() -> Self {
        Self {
            has_header: false,
            field_count: COLA_FIELDS,
            text: vec![COLA_SENTENCE],
            label: Some(COLA_LABEL),
        }
    }

    fn from_header(path: &Path, task: Task, header: &str) -> Result<Self, GlueError> {
        let names: Vec<&str> = header.split('\t').collect();
        let columns = task.tsv_columns();
        let position = |column: &str| names.iter().position(|name| *name == column);
        let text = columns
            .text
            .iter()
            .map(|&column| {
                position(column).ok_or_else(|| GlueError::MissingColumn {
                    path: path.to_path_buf(),
                    column: column.to_string(),
                    present: names.join(", "),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            has_header: true,
            field_count: names.len(),
            text,
            label: position(columns.label),
        })
    }
}

fn parse_label(
    path: &Path,
    line: usize,
    value: &str,
    feature: &LabelFeature,
) -> Result<Label, GlueError> {
    let invalid = |reason: String| GlueError::InvalidLabel {
        path: path.to_path_buf(),
        line,
        value: value.to_string(),
        reason,
    };
    match feature {
        LabelFeature::ClassLabel { names } => {
            if let Some(class) = names.iter().position(|name| name == value) {
                return Ok(Label::Class(class as u32));
            }
            match value.parse::<u32>() {
                Ok(class) if (class as usize) < names.len() => Ok(Label::Class(class)),
                _ => Err(invalid(format!(
                    "expected a class id below {} or one of: {}",
                    names.len(),
                    names.join(", ")
                ))),
            }
        }
        LabelFeature::Regression => match value.parse::<f32>() {
            Ok(score) if score.is_finite() => Ok(Label::Score(score)),
            _ => Err(invalid("expected a finite number".to_string())),
        },
    }
}

/// Lines of a file with their 1-based numbers, checked for UTF-8; a final newline does not
/// make an empty last line, and a `\r` before it is dropped.
struct Lines<'a> {
    path: &'a Path,
    rest: Option<&'a [u8]>,
    number: usize,
}

impl<'a> Lines<'a> {
    fn new(path: &'a Path, body: &'a [u8]) -> Self {
        Self {
            path,
            rest: (!body.is_empty()).then_some(body),
            number: 0,
        }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = Result<(usize, &'a str), GlueError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.rest?;
        let (line, tail) = match rest.iter().position(|&b| b == b'\n') {
            Some(end) => (&rest[..end], &rest[end + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        self.rest = (!tail.is_empty()).then_some(tail);
        self.number += 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        Some(
            std::str::from_utf8(line)
                .map(|text| (self.number, text))
                .map_err(|e| GlueError::InvalidUtf8 {
                    path: self.path.to_path_buf(),
                    line: self.number,
                    byte: e.valid_up_to(),
                }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::File::create(&path)
            .unwrap()
            .write_all(bytes)
            .unwrap();
        path
    }

    const MRPC_HEADER: &str = "\u{feff}Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n";

    #[test]
    fn quotes_are_literal_and_the_bom_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!("{MRPC_HEADER}1\t1\t2\tHe said \" hi\t\"x\" y\n0\t3\t4\tc\td\r\n");
        let path = write(&dir, "train.tsv", text.as_bytes());
        let split = read_tsv_split(&path, Task::Mrpc, "train").unwrap();
        assert_eq!(split.len(), 2);
        let row = split.row(0).unwrap();
        assert_eq!(row.text_a, "He said \" hi");
        assert_eq!(row.text_b, Some("\"x\" y"));
        assert_eq!(row.label, Some(Label::Class(1)));
        assert_eq!(split.row(1).unwrap().text_b, Some("d"));
        assert_eq!(split.idx(), &[0, 1]);
    }

    #[test]
    fn wrong_column_count_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!("{MRPC_HEADER}1\t1\t2\ta\tb\n1\t1\t2\ta\n");
        let path = write(&dir, "train.tsv", text.as_bytes());
        let err = read_tsv_split(&path, Task::Mrpc, "train").unwrap_err();
        assert!(
            matches!(
                err,
                GlueError::ColumnCount {
                    line: 3,
                    expected: 5,
                    found: 4,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("train.tsv:3"), "{err}");
    }

    #[test]
    fn non_numeric_label_names_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!("{MRPC_HEADER}yes\t1\t2\ta\tb\n");
        let path = write(&dir, "dev.tsv", text.as_bytes());
        let err = read_tsv_split(&path, Task::Mrpc, "validation").unwrap_err();
        assert!(
            matches!(&err, GlueError::InvalidLabel { line: 2, value, .. } if value == "yes"),
            "{err:?}"
        );
        let text = format!("{MRPC_HEADER}2\t1\t2\ta\tb\n");
        let path = write(&dir, "dev.tsv", text.as_bytes());
        assert!(matches!(
            read_tsv_split(&path, Task::Mrpc, "validation"),
            Err(GlueError::InvalidLabel { .. })
        ));
    }

    #[test]
    fn invalid_utf8_names_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = MRPC_HEADER.as_bytes().to_vec();
        bytes.extend_from_slice(b"1\t1\t2\tok\tok\n1\t1\t2\tbad \xff\tb\n");
        let path = write(&dir, "train.tsv", &bytes);
        let err = read_tsv_split(&path, Task::Mrpc, "train").unwrap_err();
        assert!(
            matches!(
                err,
                GlueError::InvalidUtf8 {
                    line: 3,
                    byte: 10,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn empty_and_missing_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "train.tsv", b"");
        assert!(matches!(
            read_tsv_split(&path, Task::Mrpc, "train"),
            Err(GlueError::EmptyFile { .. })
        ));
        let path = write(&dir, "bom.tsv", BOM);
        assert!(matches!(
            read_tsv_split(&path, Task::Mrpc, "train"),
            Err(GlueError::EmptyFile { .. })
        ));
        let header_only = write(
            &dir,
            "header.tsv",
            "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n".as_bytes(),
        );
        let err = read_tsv_split(&header_only, Task::Mrpc, "train").unwrap_err();
        assert!(matches!(&err, GlueError::NoRows { path } if path == &header_only));
        assert_eq!(
            err.to_string(),
            format!("{}: the file has no rows", header_only.display())
        );
        let missing = dir.path().join("nope.tsv");
        let err = read_tsv_split(&missing, Task::Mrpc, "train").unwrap_err();
        assert!(matches!(&err, GlueError::MissingFile { path } if path == &missing));
    }

    #[test]
    fn missing_text_column_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "train.tsv", b"Quality\t#1 String\n1\ta\n");
        let err = read_tsv_split(&path, Task::Mrpc, "train").unwrap_err();
        assert!(
            matches!(&err, GlueError::MissingColumn { column, .. } if column == "#2 String"),
            "{err:?}"
        );
    }

    #[test]
    fn cola_without_header_and_stsb_scores() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "train.tsv", b"gj04\t1\t\tThe book \"x\".\n");
        let split = read_tsv_split(&path, Task::Cola, "train").unwrap();
        assert_eq!(split.row(0).unwrap().text_a, "The book \"x\".");
        assert_eq!(split.row(0).unwrap().label, Some(Label::Class(1)));

        let header = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n";
        let text = format!("{header}0\tg\tf\ty\t0\tn\tn\ta\tb\t3.800\n");
        let path = write(&dir, "dev.tsv", text.as_bytes());
        let split = read_tsv_split(&path, Task::Stsb, "validation").unwrap();
        assert_eq!(split.row(0).unwrap().label, Some(Label::Score(3.8)));
        let text = format!("{header}0\tg\tf\ty\t0\tn\tn\ta\tb\tNaN\n");
        let path = write(&dir, "dev.tsv", text.as_bytes());
        assert!(matches!(
            read_tsv_split(&path, Task::Stsb, "validation"),
            Err(GlueError::InvalidLabel { line: 2, .. })
        ));
    }

    #[test]
    fn class_names_become_ids() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            &dir,
            "dev.tsv",
            b"index\tsentence1\tsentence2\tlabel\n0\ta\tb\tnot_entailment\n1\tc\td\tentailment\n",
        );
        let split = read_tsv_split(&path, Task::Rte, "validation").unwrap();
        assert_eq!(split.row(0).unwrap().label, Some(Label::Class(1)));
        assert_eq!(split.row(1).unwrap().label, Some(Label::Class(0)));
    }
}
