//! What `TrainingArguments::to_json()` writes constructs as it is in Python transformers
//! (`TrainingArguments(**json)`), and every value reads back the same, in every transformers
//! the project checks against (`test_support::transformers()`: `.venv`'s 5.24 and 5.25 beside
//! it, which `cargo xtask ci` installs, or `$FT_PYTHON`'s alone). Runs
//! python/check_training_args.py.

use std::path::Path;
use std::process::Output;

use ft_trainer::{IntervalStrategy, SaveStrategy, TrainingArguments};
use test_support::Transformers;

/// Runs python/check_training_args.py on `json` with `transformers`; returns its output and
/// its stdout and stderr as text.
fn check(transformers: &Transformers, json: &Path) -> (Output, String, String) {
    let script = test_support::python_script("check_training_args.py");
    let output = transformers
        .command()
        .arg(script)
        .arg(json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output, stdout, stderr)
}

#[test]
fn every_transformers_is_the_version_it_is_named() {
    let all = test_support::transformers();
    for transformers in &all {
        let Some(version) = &transformers.version else {
            continue;
        };
        let output = transformers
            .command()
            .args(["-c", "import transformers; print(transformers.__version__)"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{transformers}: {stderr}");
        assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), version);
    }
    if std::env::var_os("FT_PYTHON").is_none() {
        let versions: Vec<String> = all.iter().map(ToString::to_string).collect();
        assert_eq!(versions, ["transformers 5.24.0", "transformers 5.25.0"]);
    }
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

    for transformers in test_support::transformers() {
        let (output, stdout, stderr) = check(&transformers, &path);
        assert!(
            output.status.success(),
            "{transformers}: {stdout}\n{stderr}"
        );
        assert!(
            stdout.contains("every value as written"),
            "{transformers}: {stdout}"
        );
    }
}

#[test]
fn the_check_fails_on_a_key_transformers_does_not_know() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("training_args.json");
    std::fs::write(&path, r#"{"output_dir": "x", "group_by_length": true}"#).unwrap();

    for transformers in test_support::transformers() {
        let (output, stdout, stderr) = check(&transformers, &path);
        assert!(
            !output.status.success(),
            "{transformers}: {stdout}\n{stderr}"
        );
        assert!(
            stderr.contains("group_by_length"),
            "{transformers}: {stdout}\n{stderr}"
        );
    }
}
