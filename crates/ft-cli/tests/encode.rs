//! `bert-ft encode` on the real MRPC dev split and MiniLM tokenizer.

use std::process::Command;

#[test]
fn writes_one_json_line_per_row_in_dataset_order() {
    let out = tempfile::tempdir().unwrap();
    let output = out.path().join("dev.jsonl");
    let status = Command::new(env!("CARGO_BIN_EXE_bert-ft"))
        .args(["encode", "--model"])
        .arg(test_support::minilm_dir())
        .arg("--dataset")
        .arg(test_support::glue_dir().join("MRPC"))
        .args(["--task", "mrpc", "--split", "validation", "--output"])
        .arg(&output)
        .status()
        .unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(&output).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 408);
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["idx"], i);
        let ids = line["input_ids"].as_array().unwrap();
        assert_eq!(ids.first().unwrap(), 101, "[CLS] first");
        assert_eq!(ids.last().unwrap(), 102, "[SEP] last");
        assert_eq!(line["attention_mask"].as_array().unwrap().len(), ids.len());
        assert_eq!(line["token_type_ids"].as_array().unwrap().len(), ids.len());
    }
}

#[test]
fn a_bad_split_fails_with_a_message_and_no_panic() {
    let out = tempfile::tempdir().unwrap();
    let result = Command::new(env!("CARGO_BIN_EXE_bert-ft"))
        .args(["encode", "--model"])
        .arg(test_support::minilm_dir())
        .arg("--dataset")
        .arg(test_support::glue_dir())
        .args(["--task", "mrpc", "--split", "dev", "--output"])
        .arg(out.path().join("x.jsonl"))
        .output()
        .unwrap();
    assert!(!result.status.success());
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains("no split `dev`"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
