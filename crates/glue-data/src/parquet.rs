//! The Hub's parquet files (`mrpc/train-00000-of-00001.parquet`), local or cached.
//!
//! Columns are read by their Hub names; a label of -1 is the Hub's mark for "no label".

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};

use crate::dict::DatasetDict;
use crate::error::GlueError;
use crate::features::{Label, LabelFeature};
use crate::parquet_guard;
use crate::split::{Example, Split};
use crate::task::Task;

/// The Hub's mark for a row without a label.
const NO_LABEL: i64 = -1;

/// Loads every split of `task` from a local folder of the Hub's parquet files, laid out as in
/// the repository (`dir/mrpc/train-*.parquet`) or flat (`dir/train-*.parquet`).
pub fn load_parquet_dir(dir: &Path, task: Task) -> Result<DatasetDict, GlueError> {
    if !dir.is_dir() {
        return Err(GlueError::MissingFile {
            path: dir.to_path_buf(),
        });
    }
    let nested = dir.join(task.name());
    let root = if nested.is_dir() {
        nested
    } else {
        dir.to_path_buf()
    };
    let names = list_dir(&root)?;
    let mut splits = Vec::new();
    for spec in task.splits() {
        let files = split_files(&names, "", spec.name);
        if files.is_empty() {
            return Err(GlueError::NoParquetFiles {
                task: task.name().to_string(),
                split: spec.name.to_string(),
                location: root.display().to_string(),
            });
        }
        let paths: Vec<PathBuf> = files.iter().map(|name| root.join(name)).collect();
        splits.push(read_parquet_split(&paths, task, spec.name)?);
    }
    Ok(DatasetDict::new(task, splits))
}

fn list_dir(dir: &Path) -> Result<Vec<String>, GlueError> {
    let entries = std::fs::read_dir(dir).map_err(|e| GlueError::io(dir, e))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| GlueError::io(dir, e))?;
        if let Some(name) = entry.file_name().to_str() {
            names.push(name.to_string());
        }
    }
    Ok(names)
}

/// The shards of `split` among `names` (paths relative to a repository root, with `prefix`
/// before the file name), in shard order. `validation-…` does not match
/// `validation_matched-…`.
pub(crate) fn split_files<'a>(names: &'a [String], prefix: &str, split: &str) -> Vec<&'a String> {
    let mut files: Vec<&String> = names
        .iter()
        .filter(|name| {
            name.strip_prefix(prefix)
                .and_then(|file| file.strip_suffix(".parquet"))
                .is_some_and(|stem| {
                    stem == split
                        || stem
                            .strip_prefix(split)
                            .is_some_and(|rest| rest.starts_with('-'))
                })
        })
        .collect();
    files.sort();
    files
}

/// Reads the shards of one split, in the order given.
pub fn read_parquet_split(
    paths: &[PathBuf],
    task: Task,
    split_name: &str,
) -> Result<Split, GlueError> {
    let mut split = Split::new(split_name, task.features());
    for path in paths {
        read_file(path, &mut split)?;
    }
    match paths {
        [first, ..] if split.is_empty() => Err(GlueError::NoRows {
            path: first.clone(),
        }),
        _ => Ok(split),
    }
}

fn read_file(path: &Path, split: &mut Split) -> Result<(), GlueError> {
    let file = File::open(path).map_err(|e| GlueError::io(path, e))?;
    read_chunks(path, file, split)
}

/// Parses the bytes of one parquet file as split `split_name` of `task`; `path` only names
/// the file in errors.
pub fn parse_parquet_split(
    path: &Path,
    bytes: Vec<u8>,
    task: Task,
    split_name: &str,
) -> Result<Split, GlueError> {
    let mut split = Split::new(split_name, task.features());
    read_chunks(path, bytes::Bytes::from(bytes), &mut split)?;
    if split.is_empty() {
        return Err(GlueError::NoRows {
            path: path.to_path_buf(),
        });
    }
    Ok(split)
}

fn read_chunks<R: parquet::file::reader::ChunkReader + 'static>(
    path: &Path,
    source: R,
    split: &mut Split,
) -> Result<(), GlueError> {
    let parquet_error = |e: parquet::errors::ParquetError| GlueError::Parquet {
        path: path.to_path_buf(),
        source: Box::new(e),
    };
    let malformed = |reason: String| GlueError::Parquet {
        path: path.to_path_buf(),
        source: format!("malformed parquet data: {reason}").into(),
    };
    // The parquet crate panics on some malformed files (fuzzing found a data page that uses a
    // dictionary the file never defines); a broken file must be an error, not a crash.
    let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // The thrift structures are walked first, in bounded time, because the crate's own
        // decoder can spin for minutes on a few hostile bytes (see `parquet_guard`).
        parquet_guard::check_footer(&source).map_err(malformed)?;
        let metadata = ArrowReaderMetadata::load(&source, ArrowReaderOptions::default())
            .map_err(parquet_error)?;
        parquet_guard::check_page_headers(&source, metadata.metadata()).map_err(malformed)?;
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(source, metadata)
            .build()
            .map_err(parquet_error)?;
        let mut row = 0;
        for batch in reader {
            let batch = batch.map_err(|e| GlueError::Parquet {
                path: path.to_path_buf(),
                source: Box::new(e),
            })?;
            row = read_batch(path, &batch, row, split)?;
        }
        Ok(())
    }));
    decoded.unwrap_or_else(|panic| {
        let reason = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "the decoder failed".to_string());
        Err(malformed(reason))
    })
}

/// Appends a batch's rows; `first_row` numbers them within the file for error messages.
fn read_batch(
    path: &Path,
    batch: &RecordBatch,
    first_row: usize,
    split: &mut Split,
) -> Result<usize, GlueError> {
    let features = split.features().clone();
    let column = |name: &str| {
        batch
            .column_by_name(name)
            .ok_or_else(|| GlueError::MissingColumn {
                path: path.to_path_buf(),
                column: name.to_string(),
                present: batch
                    .schema()
                    .fields()
                    .iter()
                    .map(|field| field.name().as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    };
    let texts = features
        .text_columns
        .iter()
        .map(|name| TextColumn::new(path, name, column(name)?))
        .collect::<Result<Vec<_>, GlueError>>()?;
    let labels = NumberColumn::new(path, "label", column("label")?)?;
    let idx = NumberColumn::new(path, "idx", column("idx")?)?;

    for i in 0..batch.num_rows() {
        let row = first_row + i;
        let text = |column: &TextColumn| column.get(path, i, row);
        let label_value = labels.get(path, i, row)?;
        let label = parse_label(path, row, label_value, &features.label)?;
        let idx_value = idx.get(path, i, row)?;
        let idx = idx_value.as_u32().ok_or_else(|| GlueError::InvalidCell {
            path: path.to_path_buf(),
            row,
            column: "idx".to_string(),
            reason: format!("{idx_value} is not a row index"),
        })?;
        split.push(Example {
            idx,
            text_a: text(&texts[0])?,
            text_b: texts.get(1).map(text).transpose()?,
            label,
        })?;
    }
    Ok(first_row + batch.num_rows())
}

fn parse_label(
    path: &Path,
    row: usize,
    value: Number,
    feature: &LabelFeature,
) -> Result<Option<Label>, GlueError> {
    let invalid = |reason: String| GlueError::InvalidLabel {
        path: path.to_path_buf(),
        line: row,
        value: value.to_string(),
        reason,
    };
    match (feature, value) {
        (_, Number::Int(NO_LABEL)) => Ok(None),
        (LabelFeature::ClassLabel { names }, Number::Int(class)) => match u32::try_from(class) {
            Ok(class) if (class as usize) < names.len() => Ok(Some(Label::Class(class))),
            _ => Err(invalid(format!(
                "expected -1 or a class id below {}",
                names.len()
            ))),
        },
        (LabelFeature::ClassLabel { .. }, Number::Float(_)) => {
            Err(invalid("expected an integer class id".to_string()))
        }
        (LabelFeature::Regression, Number::Float(score)) if score == NO_LABEL as f64 => Ok(None),
        (LabelFeature::Regression, number) => match number.as_f64() {
            Some(score) if score.is_finite() => Ok(Some(Label::Score(score as f32))),
            _ => Err(invalid("expected a finite score".to_string())),
        },
    }
}

/// A string column of any of Arrow's string layouts.
struct TextColumn<'a> {
    name: &'a str,
    array: TextArray<'a>,
}

enum TextArray<'a> {
    Utf8(&'a arrow_array::StringArray),
    LargeUtf8(&'a arrow_array::LargeStringArray),
    Utf8View(&'a arrow_array::StringViewArray),
}

impl<'a> TextColumn<'a> {
    fn new(path: &Path, name: &'a str, array: &'a ArrayRef) -> Result<Self, GlueError> {
        let array = match array.data_type() {
            DataType::Utf8 => TextArray::Utf8(array.as_string::<i32>()),
            DataType::LargeUtf8 => TextArray::LargeUtf8(array.as_string::<i64>()),
            DataType::Utf8View => TextArray::Utf8View(array.as_string_view()),
            other => return Err(wrong_type(path, name, "string", other)),
        };
        Ok(Self { name, array })
    }

    fn get(&self, path: &Path, i: usize, row: usize) -> Result<String, GlueError> {
        let (is_null, value) = match &self.array {
            TextArray::Utf8(a) => (a.is_null(i), a.value(i)),
            TextArray::LargeUtf8(a) => (a.is_null(i), a.value(i)),
            TextArray::Utf8View(a) => (a.is_null(i), a.value(i)),
        };
        if is_null {
            return Err(null_cell(path, row, self.name));
        }
        Ok(value.to_string())
    }
}

/// A numeric cell, integer or float.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Number {
    Int(i64),
    Float(f64),
}

impl Number {
    fn as_f64(self) -> Option<f64> {
        match self {
            Number::Int(value) => Some(value as f64),
            Number::Float(value) => Some(value),
        }
    }

    fn as_u32(self) -> Option<u32> {
        match self {
            Number::Int(value) => u32::try_from(value).ok(),
            Number::Float(_) => None,
        }
    }
}

impl std::fmt::Display for Number {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Number::Int(value) => write!(f, "{value}"),
            Number::Float(value) => write!(f, "{value}"),
        }
    }
}

/// An integer or float column.
struct NumberColumn<'a> {
    name: &'static str,
    array: &'a ArrayRef,
}

impl<'a> NumberColumn<'a> {
    fn new(path: &Path, name: &'static str, array: &'a ArrayRef) -> Result<Self, GlueError> {
        match array.data_type() {
            DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::Float32
            | DataType::Float64 => Ok(Self { name, array }),
            other => Err(wrong_type(path, name, "an integer or float", other)),
        }
    }

    fn get(&self, path: &Path, i: usize, row: usize) -> Result<Number, GlueError> {
        if self.array.is_null(i) {
            return Err(null_cell(path, row, self.name));
        }
        let a = self.array;
        Ok(match a.data_type() {
            DataType::Int8 => Number::Int(a.as_primitive::<Int8Type>().value(i).into()),
            DataType::Int16 => Number::Int(a.as_primitive::<Int16Type>().value(i).into()),
            DataType::Int32 => Number::Int(a.as_primitive::<Int32Type>().value(i).into()),
            DataType::Int64 => Number::Int(a.as_primitive::<Int64Type>().value(i)),
            DataType::Float32 => Number::Float(a.as_primitive::<Float32Type>().value(i).into()),
            // `new` admits only the types above.
            _ => Number::Float(a.as_primitive::<Float64Type>().value(i)),
        })
    }
}

fn wrong_type(path: &Path, column: &str, expected: &str, found: &DataType) -> GlueError {
    GlueError::ColumnType {
        path: path.to_path_buf(),
        column: column.to_string(),
        expected: expected.to_string(),
        found: found.to_string(),
    }
}

fn null_cell(path: &Path, row: usize, column: &str) -> GlueError {
    GlueError::InvalidCell {
        path: path.to_path_buf(),
        row,
        column: column.to_string(),
        reason: "null value".to_string(),
    }
}
