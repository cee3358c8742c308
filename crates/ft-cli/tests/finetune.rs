//! `bert-ft finetune-mrpc` and `bert-ft predict` end to end, on a small MRPC sample and the
//! real MiniLM checkpoint.

use std::path::Path;
use std::process::{Command, Output};

/// The first `train` and `dev` rows of the real MRPC files, in the GLUE layout.
fn small_mrpc(dir: &Path, train: usize, dev: usize) {
    let source = test_support::glue_dir().join("MRPC");
    for (file, rows) in [("train.tsv", train), ("dev.tsv", dev), ("test.tsv", dev)] {
        let text = std::fs::read_to_string(source.join(file)).unwrap();
        let head: Vec<&str> = text.lines().take(rows + 1).collect();
        std::fs::write(dir.join(file), head.join("\n") + "\n").unwrap();
    }
}

fn bert_ft(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bert-ft"))
        .args(args)
        // Nothing here may reach the network: Hub ids fail fast from an empty cache.
        .env("HF_HUB_OFFLINE", "1")
        .env(
            "HF_HOME",
            std::env::temp_dir().join("bert-ft-test-empty-hf-home"),
        )
        .output()
        .unwrap()
}

#[test]
fn finetune_mrpc_runs_the_notebook_and_writes_run_glue_outputs() {
    let data = tempfile::tempdir().unwrap();
    small_mrpc(data.path(), 24, 16);
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
    small_mrpc(data.path(), 8, 8);
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
            "/nonexistent/model",
        ),
        (
            vec![
                "finetune-mrpc",
                "--model",
                model.to_str().unwrap(),
                "--dataset",
                "/nonexistent/glue",
            ],
            "/nonexistent/glue",
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
