//! Helpers shared by glue-data's integration tests.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray};
use parquet::arrow::ArrowWriter;

/// The GLUE TSV folder shared with the project.
#[allow(dead_code)]
pub fn glue_dir() -> PathBuf {
    test_support::glue_dir()
}

/// Writes an MRPC-shaped parquet file as the Hub stores it: `sentence1`, `sentence2`,
/// `label` (int64, -1 for none) and `idx` (int32).
#[allow(dead_code)]
pub fn write_mrpc_parquet(path: &Path, rows: &[(&str, &str, i64)]) {
    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "sentence1",
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
        ),
        (
            "sentence2",
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
        ),
        (
            "label",
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.2))),
        ),
        (
            "idx",
            Arc::new(Int32Array::from_iter_values(0..rows.len() as i32)),
        ),
    ];
    write_batch(path, columns);
}

/// Writes one record batch with the given columns.
pub fn write_batch(path: &Path, columns: Vec<(&str, ArrayRef)>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut writer = ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

/// One MRPC row as the Hub stores it: sentence1, sentence2, label.
pub type MrpcRow = (&'static str, &'static str, i64);

/// Three splits of a small MRPC, as (split, rows).
#[allow(dead_code)]
pub fn mrpc_rows() -> Vec<(&'static str, Vec<MrpcRow>)> {
    vec![
        (
            "train",
            vec![
                ("Amrozi accused his brother .", "Referring to him .", 1),
                (
                    "Yucaipa owned Dominick 's .",
                    "Yucaipa bought Dominick 's .",
                    0,
                ),
                ("They had \" quotes \" .", "Tab-free text .", 1),
            ],
        ),
        ("validation", vec![("He said .", "\" He said .", 1)]),
        (
            "test",
            vec![("PCCW 's chief .", "Current chief .", -1), ("a", "b", -1)],
        ),
    ]
}
