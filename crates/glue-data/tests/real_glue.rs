//! glue-data on the original GLUE files in `../shared/data/glue`.

mod common;

use glue_data::{DataSource, Dataset, Label, LabelColumn, Task, load_dataset};

#[test]
fn mrpc_matches_the_hub_dataset() {
    let dir = common::glue_dir();
    let raw = load_dataset(dir.to_str().unwrap(), "mrpc").unwrap();
    assert_eq!(
        raw.split_names().collect::<Vec<_>>(),
        ["train", "validation", "test"]
    );
    let lengths: Vec<usize> = raw.splits().iter().map(|s| s.len()).collect();
    assert_eq!(lengths, [3668, 408, 1725]);

    let train = raw.split("train").unwrap();
    let row = train.row(0).unwrap();
    assert_eq!(
        row.text_a,
        "Amrozi accused his brother , whom he called \" the witness \" , of deliberately distorting his evidence ."
    );
    assert_eq!(row.label, Some(Label::Class(1)));
    assert_eq!(row.idx, 0);
    assert_eq!(
        train.features().label.names(),
        ["not_equivalent", "equivalent"]
    );
    assert_eq!(train.text("sentence1").unwrap().len(), 3668);

    let validation = raw.split("validation").unwrap();
    let LabelColumn::Class(labels) = validation.labels() else {
        panic!("mrpc labels are classes");
    };
    assert_eq!(labels.iter().filter(|l| **l == Some(1)).count(), 279);

    let test = raw.split("test").unwrap();
    assert!(test.rows().all(|r| r.label.is_none()));
    assert_eq!(test.idx()[1724], 1724);
    // The burn-dataset view gives the same rows.
    assert_eq!(
        Dataset::get(test, 3).unwrap(),
        test.row(3).unwrap().to_example()
    );
}

#[test]
fn a_task_folder_and_the_glue_root_load_the_same() {
    let root = common::glue_dir();
    let from_root = load_dataset(root.to_str().unwrap(), "mrpc").unwrap();
    let from_task = DataSource::GlueTsv(root.join("MRPC"))
        .load(Task::Mrpc)
        .unwrap();
    assert_eq!(from_root, from_task);
}

#[test]
fn every_shared_task_has_its_documented_rows() {
    let root = common::glue_dir();
    let expected = [
        ("cola", [8551, 1043, 1063]),
        ("sst2", [67349, 872, 1821]),
        ("mrpc", [3668, 408, 1725]),
        ("stsb", [5749, 1500, 1379]),
        ("rte", [2490, 277, 3000]),
        ("wnli", [635, 71, 146]),
    ];
    for (task, lengths) in expected {
        let raw = load_dataset(root.to_str().unwrap(), task).unwrap();
        let found: Vec<usize> = raw.splits().iter().map(|s| s.len()).collect();
        assert_eq!(found, lengths, "{task}");
        let train = raw.split("train").unwrap();
        assert!(train.has_labels(), "{task} train is labelled");
        assert!(raw.split("validation").unwrap().has_labels(), "{task}");
        assert!(raw.split("test").unwrap().rows().all(|r| r.label.is_none()));
    }
}

#[test]
fn task_specific_columns_and_labels() {
    let root = common::glue_dir();
    let stsb = load_dataset(root.to_str().unwrap(), "stsb").unwrap();
    let row = stsb.split("train").unwrap().row(0).unwrap();
    assert_eq!(row.text_a, "A plane is taking off.");
    assert_eq!(row.text_b, Some("An air plane is taking off."));
    assert_eq!(row.label, Some(Label::Score(5.0)));

    let cola = load_dataset(root.to_str().unwrap(), "cola").unwrap();
    let row = cola.split("train").unwrap().row(0).unwrap();
    assert_eq!(
        row.text_a,
        "Our friends won't buy this analysis, let alone the next one we propose."
    );
    assert_eq!(row.text_b, None);
    assert_eq!(row.label, Some(Label::Class(1)));

    let rte = load_dataset(root.to_str().unwrap(), "rte").unwrap();
    let row = rte.split("train").unwrap().row(0).unwrap();
    // "not_entailment" is class 1 of ["entailment", "not_entailment"].
    assert_eq!(row.label, Some(Label::Class(1)));

    let sst2 = load_dataset(root.to_str().unwrap(), "sst2").unwrap();
    // GLUE's SST-2 sentences keep their trailing space, as the Hub's do.
    assert_eq!(
        sst2.split("train").unwrap().row(0).unwrap().text_a,
        "hide new secretions from the parental units "
    );
}

#[test]
fn a_missing_task_folder_is_a_typed_error() {
    let root = common::glue_dir();
    let err = load_dataset(root.to_str().unwrap(), "qqp").unwrap_err();
    assert!(
        matches!(&err, glue_data::GlueError::MissingFile { path } if path.ends_with("QQP")),
        "{err:?}"
    );
    assert!(load_dataset(root.to_str().unwrap(), "squad").is_err());
}
