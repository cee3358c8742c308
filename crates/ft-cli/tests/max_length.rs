//! A tokenizer that gives no `model_max_length`, as older tools saved them: `finetune`,
//! `predict` and `encode --model` load it and truncate to the model's positions, with one
//! warning, where transformers would truncate nothing and its model would fail.

use std::path::Path;
use std::process::{Command, Output};

use crate::common;

/// The model's positions: below MRPC's longest pairs (about 100 tokens), so that some rows
/// are longer than the model takes.
const POSITIONS: usize = 48;

const WARNING: &str = "the tokenizer gives no model_max_length; truncating to the model's 48 \
                       positions";

/// MiniLM's tokenizer with a `tokenizer_config.json` that gives no limit, and the tiny
/// config (`POSITIONS` positions) as `config.json`.
fn old_checkpoint(dir: &Path) {
    for name in ["tokenizer.json", "vocab.txt"] {
        std::fs::copy(test_support::minilm_dir().join(name), dir.join(name)).unwrap();
    }
    std::fs::write(
        dir.join("tokenizer_config.json"),
        r#"{"do_lower_case": true, "tokenizer_class": "BertTokenizer"}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("config.json"),
        format!(
            r#"{{"model_type": "bert", "vocab_size": 30522, "hidden_size": 32,
                "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
                "max_position_embeddings": {POSITIONS}}}"#
        ),
    )
    .unwrap();
}

fn run(command: &mut Command) -> Output {
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{}\n{stderr}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert_eq!(stderr.matches(WARNING).count(), 1, "warned once: {stderr}");
    output
}

fn encode(model: &Path, data: &Path, output: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bert-ft"));
    command
        .args(["encode", "--model"])
        .arg(model)
        .arg("--dataset")
        .arg(data)
        .args(["--task", "mrpc", "--split", "validation", "--output"])
        .arg(output);
    command
}

fn input_ids(jsonl: &Path) -> Vec<Vec<u64>> {
    let text = std::fs::read_to_string(jsonl).unwrap();
    text.lines()
        .map(|line| {
            let line: serde_json::Value = serde_json::from_str(line).unwrap();
            let ids = line["input_ids"].as_array().unwrap();
            ids.iter().map(|id| id.as_u64().unwrap()).collect()
        })
        .collect()
}

#[test]
fn a_tokenizer_without_a_limit_is_truncated_to_the_models_positions() {
    let dir = tempfile::tempdir().unwrap();
    let (model, data, output_dir) = (
        dir.path().join("old"),
        dir.path().join("data"),
        dir.path().join("out"),
    );
    for folder in [&model, &data] {
        std::fs::create_dir(folder).unwrap();
    }
    old_checkpoint(&model);
    common::small_mrpc(&data, 16, 64);

    // encode: rows within the model's positions are the tokenizer's own; longer ones are cut.
    run(&mut encode(&model, &data, &dir.path().join("old.jsonl")));
    let ours = input_ids(&dir.path().join("old.jsonl"));
    let status = encode(
        &test_support::minilm_dir(),
        &data,
        &dir.path().join("minilm.jsonl"),
    )
    .status()
    .unwrap();
    assert!(status.success());
    let minilm = input_ids(&dir.path().join("minilm.jsonl"));
    assert_eq!(ours.len(), minilm.len());
    let mut cut = 0;
    for (ours, full) in ours.iter().zip(&minilm) {
        if full.len() <= POSITIONS {
            assert_eq!(ours, full);
        } else {
            assert_eq!(ours.len(), POSITIONS);
            cut += 1;
        }
    }
    assert!(
        cut > 0,
        "some MRPC dev rows are longer than {POSITIONS} tokens"
    );

    // finetune: the Trainer would refuse a row longer than the positions.
    run(Command::new(env!("CARGO_BIN_EXE_bert-ft"))
        .arg("finetune-mrpc")
        .arg("--init-from-config")
        .arg(model.join("config.json"))
        .arg("--model")
        .arg(&model)
        .arg("--dataset")
        .arg(&data)
        .arg("--output-dir")
        .arg(&output_dir)
        .args([
            "--max-steps",
            "2",
            "--eval-strategy",
            "no",
            "--save-strategy",
            "no",
        ]));

    // predict, with the fine-tuned folder, whose tokenizer files are the old ones.
    let predictions = dir.path().join("predictions.tsv");
    let output = run(Command::new(env!("CARGO_BIN_EXE_bert-ft"))
        .args(["predict", "--model"])
        .arg(&output_dir)
        .arg("--input")
        .arg(data.join("dev.tsv"))
        .arg("--output")
        .arg(&predictions));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("wrote 64 predictions"), "{stdout}");
}
