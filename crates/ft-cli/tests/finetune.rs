//! `bert-ft finetune-mrpc` and `bert-ft predict` end to end, on a small MRPC sample and the
//! real MiniLM checkpoint.

use crate::common;

use std::path::Path;
use std::process::{Command, Output};

fn bert_ft(args: &[&str]) -> Output {
    bert_ft_with(args, &[])
}

/// `bert-ft args`, with `env` set after the defaults.
fn bert_ft_with(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bert-ft"))
        .args(args)
        // Nothing here may reach the network: Hub ids fail fast from an empty cache.
        .env("HF_HUB_OFFLINE", "1")
        .env(
            "HF_HOME",
            std::env::temp_dir().join("bert-ft-test-empty-hf-home"),
        )
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// `bert-ft finetune-mrpc` with `flags`, expected to stop before loading anything; its stderr.
fn refused(flags: &[&str]) -> String {
    let out = tempfile::tempdir().unwrap();
    let output_dir = out.path().join("run");
    let mut args = vec![
        "finetune-mrpc",
        "--output-dir",
        output_dir.to_str().unwrap(),
    ];
    args.extend_from_slice(flags);
    let result = bert_ft(&args);
    let stderr = String::from_utf8_lossy(&result.stderr).into_owned();
    assert!(!result.status.success(), "{stderr}");
    assert!(!stderr.contains("Using device"), "{stderr}");
    stderr
}

#[test]
fn negative_numbers_are_values_that_our_own_checks_refuse() {
    let stderr = refused(&["--learning-rate", "-1"]);
    assert!(
        stderr.contains("learning_rate must be non-negative, got -1"),
        "{stderr}"
    );
    assert!(!stderr.contains("unexpected argument"), "{stderr}");
}

#[test]
fn a_flag_given_twice_takes_its_last_value_as_argparse_does() {
    let stderr = refused(&["--learning-rate", "2e-5", "--learning-rate", "-2"]);
    assert!(
        stderr.contains("learning_rate must be non-negative, got -2"),
        "{stderr}"
    );
}

#[test]
fn a_missing_checkpoint_folder_is_named_with_its_flag() {
    let stderr = refused(&["--resume-from-checkpoint", "some/missing/path"]);
    assert!(
        stderr.contains("--resume-from-checkpoint some/missing/path: no checkpoint folder"),
        "{stderr}"
    );
}

#[test]
fn finetune_mrpc_runs_the_notebook_and_writes_run_glue_outputs() {
    let data = tempfile::tempdir().unwrap();
    common::small_mrpc(data.path(), 24, 16);
    let out = tempfile::tempdir().unwrap();
    let output_dir = out.path().join("test-trainer");
    let model = test_support::minilm_dir();
    let result = bert_ft(&[
        "finetune-mrpc",
        "--model",
        model.to_str().unwrap(),
        "--dataset",
        data.path().to_str().unwrap(),
        "--output-dir",
        output_dir.to_str().unwrap(),
        "--num-train-epochs",
        "2",
        "--logging-steps",
        "2",
    ]);
    let stdout = String::from_utf8_lossy(&result.stdout);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("Using device: flex"), "{stdout}");
    assert!(
        stdout.contains("BertForSequenceClassification LOAD REPORT"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Epoch | Training Loss | Validation Loss | Accuracy | F1"),
        "{stdout}"
    );
    assert!(stdout.contains("TrainOutput(global_step=6, "), "{stdout}");
    // stderr is a pipe here: its log lines carry no colour codes.
    assert!(stderr.contains(" INFO "), "{stderr}");
    assert!(!stderr.contains('\x1b'), "{stderr}");
    assert!(stdout.contains("(16, 2) (16,)"), "{stdout}");
    assert!(stdout.contains("{'accuracy': "), "{stdout}");

    for file in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "trainer_state.json",
        "train_results.json",
        "eval_results.json",
        "all_results.json",
        "predict_results.tsv",
        "training_curves.svg",
    ] {
        assert!(output_dir.join(file).is_file(), "{file}");
    }
    let all: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(output_dir.join("all_results.json")).unwrap(),
    )
    .unwrap();
    for key in [
        "train_runtime",
        "train_samples_per_second",
        "train_loss",
        "eval_loss",
        "eval_accuracy",
        "eval_f1",
        "epoch",
    ] {
        assert!(all.get(key).is_some(), "{key} in all_results.json");
    }
    let tsv = std::fs::read_to_string(output_dir.join("predict_results.tsv")).unwrap();
    let lines: Vec<&str> = tsv.lines().collect();
    assert_eq!(lines[0], "index\tprediction\tlogit_0\tlogit_1");
    assert_eq!(lines.len(), 17);
    let svg = std::fs::read_to_string(output_dir.join("training_curves.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("learning rate"));
    // 24 rows / batch 8 = 3 steps per epoch: the second epoch starts after step 3, and the
    // loss and learning rate are drawn at all 6 steps, not at the 3 logged ones.
    assert!(svg.contains("epoch 1") && !svg.contains("epoch 2"), "{svg}");
    let labels: Vec<&str> = svg.lines().map(str::trim).collect();
    assert!(labels.contains(&"3e-5"), "scientific ticks: {svg}");
    assert!(!labels.contains(&"0.00003"), "{svg}");
    // A dot per point: 6 train losses and 6 learning rates (3 when only logged steps were
    // drawn), and 3 evaluations (2 epochs and the final one) of the loss, accuracy and F1.
    assert_eq!(svg.matches("<circle").count(), 6 + 6 + 3 * 3, "{svg}");

    // `predict` on the unlabelled test file, then on the labelled dev file.
    let predictions = out.path().join("test_predictions.tsv");
    let result = bert_ft(&[
        "predict",
        "--model",
        output_dir.to_str().unwrap(),
        "--task",
        "mrpc",
        "--input",
        data.path().join("test.tsv").to_str().unwrap(),
        "--output",
        predictions.to_str().unwrap(),
    ]);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&predictions)
            .unwrap()
            .lines()
            .count(),
        17
    );
    assert!(!String::from_utf8_lossy(&result.stdout).contains("'accuracy'"));
    let result = bert_ft(&[
        "predict",
        "--model",
        output_dir.to_str().unwrap(),
        "--input",
        data.path().join("dev.tsv").to_str().unwrap(),
        "--output",
        predictions.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&result.stdout).contains("{'accuracy': "));
}

#[test]
fn bad_input_fails_with_a_message_and_no_panic() {
    let data = tempfile::tempdir().unwrap();
    common::small_mrpc(data.path(), 8, 8);
    let out = tempfile::tempdir().unwrap();
    let model = test_support::minilm_dir();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "finetune-mrpc",
                "--model",
                "/nonexistent/model",
                "--dataset",
                data.path().to_str().unwrap(),
            ],
            "/nonexistent/model: no such folder",
        ),
        (
            vec![
                "finetune-mrpc",
                "--model",
                "some-org/no-such-model",
                "--dataset",
                data.path().to_str().unwrap(),
            ],
            "`some-org/no-such-model` is neither a local folder nor in the offline cache",
        ),
        (
            vec![
                "finetune-mrpc",
                "--model",
                model.to_str().unwrap(),
                "--dataset",
                "../nonexistent/glue",
            ],
            "../nonexistent/glue: no such folder",
        ),
        (
            vec!["finetune-mrpc", "--learning-rate", "fast"],
            "invalid value 'fast'",
        ),
        (
            vec!["finetune-mrpc", "--backend", "tpu"],
            "unknown backend `tpu`",
        ),
        (
            vec![
                "finetune-mrpc",
                "--eval-strategy",
                "epoch",
                "--load-best-model-at-end",
                "true",
                "--save-strategy",
                "steps",
            ],
            "requires the save and eval strategy to match",
        ),
    ];
    for (args, expected) in cases {
        let mut args = args;
        let output_dir = out.path().join("o");
        args.extend(["--output-dir", output_dir.to_str().unwrap()]);
        let result = bert_ft(&args);
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert!(!result.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn an_unreachable_hub_id_is_said_once() {
    let data = tempfile::tempdir().unwrap();
    common::small_mrpc(data.path(), 8, 8);
    let out = tempfile::tempdir().unwrap();
    // Nothing listens on the discard port: the connection is refused at once.
    let result = bert_ft_with(
        &[
            "finetune-mrpc",
            "--model",
            "some-org/no-such-model",
            "--dataset",
            data.path().to_str().unwrap(),
            "--output-dir",
            out.path().join("o").to_str().unwrap(),
        ],
        &[
            ("HF_HUB_OFFLINE", "0"),
            ("HF_ENDPOINT", "http://127.0.0.1:9"),
        ],
    );
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(!result.status.success());
    let error = stderr
        .lines()
        .find(|line| line.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line: {stderr}"));
    assert!(
        error.contains(
            "`some-org/no-such-model` is neither a local folder nor reachable on the Hub \
             (http://127.0.0.1:9)"
        ),
        "{error}"
    );
    // The reason (connection refused), once: hf-hub's errors repeat their causes.
    let reason = error.rsplit(": ").next().unwrap();
    assert_eq!(error.matches(reason).count(), 1, "{error}");
}

#[test]
fn an_empty_split_and_a_file_as_output_dir_are_refused_before_any_work() {
    let data = tempfile::tempdir().unwrap();
    common::small_mrpc(data.path(), 8, 8);
    let model = test_support::minilm_dir();
    let run = |data: &Path, output_dir: &Path| {
        bert_ft(&[
            "finetune-mrpc",
            "--model",
            model.to_str().unwrap(),
            "--dataset",
            data.to_str().unwrap(),
            "--output-dir",
            output_dir.to_str().unwrap(),
        ])
    };

    let file = data.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let result = run(data.path(), &file);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(!result.status.success());
    assert!(
        stderr.contains(&format!("output_dir {} cannot be a folder", file.display())),
        "{stderr}"
    );
    // Refused before the dataset was even read.
    assert!(!String::from_utf8_lossy(&result.stdout).contains("DatasetDict"));

    let train = data.path().join("train.tsv");
    let header = std::fs::read_to_string(&train).unwrap();
    std::fs::write(&train, header.lines().next().unwrap().to_string() + "\n").unwrap();
    let result = run(data.path(), &data.path().join("out"));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(!result.status.success());
    assert!(
        stderr.contains(&format!("{}: the file has no rows", train.display())),
        "{stderr}"
    );
}

#[test]
fn early_stopping_stops_the_run_and_reports_the_best_checkpoint() {
    let data = tempfile::tempdir().unwrap();
    common::write_mood_task(data.path(), [64, 16, 16], false);
    common::write_tiny_config(data.path(), false);
    let out = tempfile::tempdir().unwrap();
    let output_dir = out.path().join("o");
    let mut command = Command::new(env!("CARGO_BIN_EXE_bert-ft"));
    common::tiny_finetune(&mut command, data.path(), &output_dir);
    // Accuracy cannot improve by more than 1: the second evaluation is the first without
    // improvement, and a patience of 1 stops the run there, at step 4 of 40.
    let flags = [
        "--max-steps 40 --eval-strategy steps --eval-steps 2 --save-strategy steps",
        "--save-steps 2 --metric-for-best-model accuracy --load-best-model-at-end true",
        "--early-stopping-patience 1 --early-stopping-threshold 1.0",
    ];
    let result = command.args(flags.join(" ").split(' ')).output().unwrap();
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(
        result.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(output_dir.join("trainer_state.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(state["global_step"], 4, "{state}");
    assert_eq!(state["max_steps"], 40);
    let counter = &state["stateful_callbacks"]["EarlyStoppingCallback"]["attributes"];
    assert_eq!(counter["early_stopping_patience_counter"], 1, "{state}");
    let best = state["best_model_checkpoint"].as_str().unwrap();
    assert!(
        stdout.contains("Training stopped early at step 4 of 40"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("Best checkpoint: {best} (accuracy = ")),
        "{stdout}"
    );
}

#[test]
fn early_stopping_without_a_metric_or_evaluations_is_refused_up_front() {
    let cases: [(&[&str], &str); 3] = [
        (
            &["--early-stopping-patience", "2"],
            "requires metric_for_best_model to be defined",
        ),
        (
            &[
                "--early-stopping-patience",
                "2",
                "--metric-for-best-model",
                "f1",
                "--eval-strategy",
                "no",
            ],
            "requires IntervalStrategy of steps or epoch",
        ),
        (
            &["--early-stopping-threshold", "0.1"],
            "--early-stopping-patience <EARLY_STOPPING_PATIENCE>",
        ),
    ];
    let out = tempfile::tempdir().unwrap();
    for (flags, expected) in cases {
        let mut args = vec![
            "finetune-mrpc",
            "--output-dir",
            out.path().to_str().unwrap(),
        ];
        args.extend(flags);
        let result = bert_ft(&args);
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert!(!result.status.success(), "{flags:?}");
        assert!(stderr.contains(expected), "{flags:?}: {stderr}");
        // Refused before the dataset (here the default, a Hub id) was asked for.
        assert!(!stderr.contains("nyu-mll/glue"), "{flags:?}: {stderr}");
    }
}
