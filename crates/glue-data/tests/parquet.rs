//! glue-data on parquet files laid out like the Hub's `nyu-mll/glue`.

mod common;

use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int32Array, Int64Array, StringArray};
use glue_data::{DataSource, GlueError, Label, Task, load_parquet_dir, read_parquet_split};

#[test]
fn a_hub_layout_folder_loads_every_split() {
    let dir = tempfile::tempdir().unwrap();
    for (split, rows) in common::mrpc_rows() {
        let path = dir
            .path()
            .join(format!("mrpc/{split}-00000-of-00001.parquet"));
        common::write_mrpc_parquet(&path, &rows);
    }
    let source = DataSource::from_arg(dir.path().to_str().unwrap());
    assert_eq!(source, DataSource::Parquet(dir.path().to_path_buf()));
    let raw = source.load(Task::Mrpc).unwrap();
    let train = raw.split("train").unwrap();
    assert_eq!(train.len(), 3);
    assert_eq!(train.row(2).unwrap().text_a, "They had \" quotes \" .");
    assert_eq!(train.row(1).unwrap().label, Some(Label::Class(0)));
    let test = raw.split("test").unwrap();
    assert_eq!(test.len(), 2);
    assert!(test.rows().all(|r| r.label.is_none()), "-1 means no label");
}

#[test]
fn shards_are_read_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("train-00000-of-00002.parquet");
    let second = dir.path().join("train-00001-of-00002.parquet");
    common::write_mrpc_parquet(&second, &[("third", "x", 0)]);
    common::write_mrpc_parquet(&first, &[("first", "x", 1), ("second", "x", 0)]);
    for split in ["validation", "test"] {
        common::write_mrpc_parquet(
            &dir.path().join(format!("{split}.parquet")),
            &[("v", "w", 1)],
        );
    }
    let raw = load_parquet_dir(dir.path(), Task::Mrpc).unwrap();
    let texts = raw.split("train").unwrap().text_a().to_vec();
    assert_eq!(texts, ["first", "second", "third"]);
}

#[test]
fn a_missing_column_names_the_file_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("train.parquet");
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("sentence1", Arc::new(StringArray::from(vec!["a"]))),
        ("label", Arc::new(Int64Array::from(vec![1]))),
        ("idx", Arc::new(Int32Array::from(vec![0]))),
    ];
    common::write_batch(&path, columns);
    let err = read_parquet_split(std::slice::from_ref(&path), Task::Mrpc, "train").unwrap_err();
    assert!(
        matches!(&err, GlueError::MissingColumn { path: p, column, .. } if p == &path && column == "sentence2"),
        "{err:?}"
    );
}

#[test]
fn bad_cells_name_the_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("train.parquet");
    common::write_mrpc_parquet(&path, &[("a", "b", 1), ("c", "d", 7)]);
    let err = read_parquet_split(std::slice::from_ref(&path), Task::Mrpc, "train").unwrap_err();
    assert!(
        matches!(err, GlueError::InvalidLabel { line: 1, .. }),
        "{err:?}"
    );

    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "sentence1",
            Arc::new(StringArray::from(vec![Some("a"), None])),
        ),
        ("sentence2", Arc::new(StringArray::from(vec!["b", "c"]))),
        ("label", Arc::new(Int64Array::from(vec![1, 0]))),
        ("idx", Arc::new(Int32Array::from(vec![0, 1]))),
    ];
    common::write_batch(&path, columns);
    let err = read_parquet_split(std::slice::from_ref(&path), Task::Mrpc, "train").unwrap_err();
    assert!(
        matches!(&err, GlueError::InvalidCell { row: 1, column, .. } if column == "sentence1"),
        "{err:?}"
    );

    let columns: Vec<(&str, ArrayRef)> = vec![
        ("sentence1", Arc::new(StringArray::from(vec!["a"]))),
        ("sentence2", Arc::new(StringArray::from(vec!["b"]))),
        ("label", Arc::new(StringArray::from(vec!["equivalent"]))),
        ("idx", Arc::new(Int32Array::from(vec![0]))),
    ];
    common::write_batch(&path, columns);
    let err = read_parquet_split(&[path], Task::Mrpc, "train").unwrap_err();
    assert!(matches!(err, GlueError::ColumnType { .. }), "{err:?}");
}

#[test]
fn stsb_scores_are_floats_and_minus_one_is_no_label() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test.parquet");
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("sentence1", Arc::new(StringArray::from(vec!["a", "b"]))),
        ("sentence2", Arc::new(StringArray::from(vec!["c", "d"]))),
        ("label", Arc::new(Float64Array::from(vec![3.25, -1.0]))),
        ("idx", Arc::new(Int32Array::from(vec![0, 1]))),
    ];
    common::write_batch(&path, columns);
    let split = read_parquet_split(&[path], Task::Stsb, "test").unwrap();
    assert_eq!(split.row(0).unwrap().label, Some(Label::Score(3.25)));
    assert_eq!(split.row(1).unwrap().label, None);
}

#[test]
fn not_a_parquet_file_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("train.parquet");
    std::fs::write(&path, b"PAR1 this is not parquet").unwrap();
    let err = read_parquet_split(std::slice::from_ref(&path), Task::Mrpc, "train").unwrap_err();
    assert!(
        matches!(&err, GlueError::Parquet { path: p, .. } if p == &path),
        "{err:?}"
    );
    let err = load_parquet_dir(dir.path(), Task::Mrpc).unwrap_err();
    assert!(matches!(
        err,
        GlueError::NoParquetFiles { .. } | GlueError::Parquet { .. }
    ));
}
