//! What the tests of the `bert-ft` binary share: a small task in the GLUE MRPC layout and a
//! tiny BERT to learn it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The first `train` and `dev` rows of the real MRPC files, in the GLUE layout (the dev
/// rows again as `test.tsv`).
pub fn small_mrpc(dir: &Path, train: usize, dev: usize) {
    let source = test_support::glue_dir().join("MRPC");
    for (file, rows) in [("train.tsv", train), ("dev.tsv", dev), ("test.tsv", dev)] {
        let text = std::fs::read_to_string(source.join(file)).unwrap();
        let head: Vec<&str> = text.lines().take(rows + 1).collect();
        std::fs::write(dir.join(file), head.join("\n") + "\n").unwrap();
    }
}

/// A small learnable task in the MRPC layout, `rows` pairs in `train.tsv`, `dev.tsv` and
/// `test.tsv`: the label is the mood word of the second sentence. With `varied_lengths`, the
/// second sentences differ in length, so that every batch pads some of its rows.
pub fn write_mood_task(dir: &Path, rows: [usize; 3], varied_lengths: bool) {
    let nouns = [
        "car", "house", "dog", "tree", "river", "book", "film", "meal",
    ];
    let moods = [("great", 1), ("awful", 0), ("lovely", 1), ("terrible", 0)];
    let splits = ["train.tsv", "dev.tsv", "test.tsv"];
    for ((file, rows), offset) in splits.into_iter().zip(rows).zip([0, 1000, 2000]) {
        let mut text = String::from("\u{feff}Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n");
        for i in 0..rows {
            let k = i + offset;
            let noun = nouns[(k * 7) % nouns.len()];
            let (mood, label) = moods[(k * 3 + k / 5) % moods.len()];
            let filler = if varied_lengths {
                " very".repeat(k % 6)
            } else {
                String::new()
            };
            text.push_str(&format!(
                "{label}\t{k}\t{k}\tthe {noun} is here .\tit was a{filler} {mood} {noun} .\n"
            ));
        }
        std::fs::write(dir.join(file), text).unwrap();
    }
}

/// `tiny-config.json` in `dir`: a BERT of two layers of width 32 (with bert-base-uncased's
/// vocabulary), with transformers' dropout or none.
pub fn write_tiny_config(dir: &Path, dropout: bool) {
    let dropout = if dropout {
        ""
    } else {
        r#", "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0"#
    };
    std::fs::write(
        dir.join("tiny-config.json"),
        format!(
            r#"{{"vocab_size": 30522, "hidden_size": 32, "num_hidden_layers": 2,
                "num_attention_heads": 2, "intermediate_size": 64,
                "max_position_embeddings": 128{dropout}}}"#
        ),
    )
    .unwrap();
}

/// `finetune-mrpc` of the tiny BERT (`tiny-config.json` in `data`, MiniLM's tokenizer) on the
/// task in `data`, into `output_dir`.
pub fn tiny_finetune<'a>(
    command: &'a mut Command,
    data: &Path,
    output_dir: &Path,
) -> &'a mut Command {
    command
        .arg("finetune-mrpc")
        .arg("--init-from-config")
        .arg(data.join("tiny-config.json"))
        .arg("--model")
        .arg(test_support::minilm_dir())
        .arg("--dataset")
        .arg(data)
        .arg("--output-dir")
        .arg(output_dir)
}

/// ft-bert's fixture checkpoints (`tiny-distilbert`, `tiny-roberta`): a small randomly
/// initialised classifier saved by transformers 5.24, with a tokenizer trained on GLUE text.
pub fn fixture_checkpoint(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../ft-bert/tests/fixtures")
        .join(name)
}

/// `<name>-config.json` in `dir`: the config of the fixture checkpoint `name` with every
/// dropout off, under its architecture's own keys, so that runs on different process counts
/// or precisions compare whatever their random streams.
pub fn write_family_config(dir: &Path, name: &str) -> PathBuf {
    let text = std::fs::read_to_string(fixture_checkpoint(name).join("config.json")).unwrap();
    let mut config: serde_json::Value = serde_json::from_str(&text).unwrap();
    let dropouts = [
        "hidden_dropout_prob",
        "attention_probs_dropout_prob",
        "classifier_dropout",
        "dropout",
        "attention_dropout",
        "seq_classif_dropout",
    ];
    let keys = config.as_object_mut().unwrap();
    for key in dropouts {
        if let Some(value) = keys.get_mut(key) {
            *value = serde_json::Value::from(0.0);
        }
    }
    let path = dir.join(format!("{name}-config.json"));
    std::fs::write(&path, config.to_string()).unwrap();
    path
}

/// `finetune-mrpc` of the fixture architecture `name`, at random from its config without
/// dropout (`write_family_config`) and with its own tokenizer, on the task in `data`.
pub fn family_finetune<'a>(
    command: &'a mut Command,
    data: &Path,
    output_dir: &Path,
    name: &str,
) -> &'a mut Command {
    command
        .arg("finetune-mrpc")
        .arg("--init-from-config")
        .arg(write_family_config(data, name))
        .arg("--model")
        .arg(fixture_checkpoint(name))
        .arg("--dataset")
        .arg(data)
        .arg("--output-dir")
        .arg(output_dir)
}
