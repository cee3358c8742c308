//! What `TrainingArguments::to_json()` writes constructs as it is in Python transformers
//! (`TrainingArguments(**json)`), and every value reads back the same. Runs
//! python/check_training_args.py with the project's Python environment (`.venv`, or
//! `$FT_PYTHON`), which CI installs.

use std::path::Path;
use std::process::{Command, Output};

use ft_trainer::{IntervalStrategy, SaveStrategy, TrainingArguments};

/// Runs python/check_training_args.py on `json`; returns its output and its stdout and
/// stderr as text.
fn check(json: &Path) -> (Output, String, String) {
    let script = test_support::python_script("check_training_args.py");
    let output = Command::new(test_support::python())
        .arg(script)
        .arg(json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output, stdout, stderr)
}

#[test]
fn transformers_constructs_our_arguments_with_the_same_values() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = TrainingArguments::new(dir.path().join("test-trainer"));
    args.eval_strategy = IntervalStrategy::Epoch;
    args.save_strategy = SaveStrategy::Epoch;
    args.learning_rate = 2e-5;
    args.warmup_steps = 0.1;
    args.save_total_limit = Some(2);
    args.metric_for_best_model = Some("f1".into());
    args.load_best_model_at_end = true;
    args.seed = 7;
    let args = args.validated().expect("valid arguments");
    let json = args.to_json().expect("serialises");
    let path = dir.path().join("training_args.json");
    std::fs::write(&path, json).unwrap();

    let (output, stdout, stderr) = check(&path);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("every value as written"), "{stdout}");
}

#[test]
fn the_check_fails_on_a_key_transformers_does_not_know() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("training_args.json");
    std::fs::write(&path, r#"{"output_dir": "x", "group_by_length": true}"#).unwrap();

    let (output, stdout, stderr) = check(&path);
    assert!(!output.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("group_by_length"), "{stdout}\n{stderr}");
}
