//! Entry points that feed untrusted bytes to each reader of user files, as a user's broken or
//! hostile file would reach it.
//!
//! Each function returns `Ok` when the input was accepted and `Err` with the reader's message,
//! its causes included, when it was refused. What must never happen, whatever the bytes, is a panic, a hang, an
//! unbounded allocation or code execution. The cargo-fuzz targets in `fuzz/` call these
//! functions (`cargo xtask fuzz`), and `tests/corpora.rs` replays the committed corpora
//! through them in CI.

#![warn(missing_docs)]

use std::hint::black_box;
use std::path::Path;

use ft_bert::prelude::*;
use ft_bert::{BertConfig, BertForSequenceClassification};
use ft_collate::AutoTokenizer;
use glue_data::Task;

/// Runs target `name` (a binary of `fuzz/`, listed in `xtask/src/fuzz.rs`) on `data`.
pub fn run(name: &str, data: &[u8]) -> Result<(), String> {
    match name {
        "glue_tsv" => glue_tsv(data),
        "glue_parquet" => glue_parquet(data),
        "bert_config" => bert_config(data),
        "tokenizer_config" => tokenizer_config(data),
        "safetensors" => safetensors(data),
        "pytorch" => pytorch(data),
        other => Err(format!("no fuzz target `{other}`")),
    }
}

/// An error and its causes, as anyhow's `{:#}` prints them: `outer: inner: innermost`.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut cause = error.source();
    while let Some(error) = cause {
        message.push_str(": ");
        message.push_str(&error.to_string());
        cause = error.source();
    }
    message
}

/// The task a leading selector byte picks, so that one corpus covers every GLUE layout
/// (CoLA without a header, STS-B's float scores, MRPC's quality column, …).
fn task(selector: u8) -> Task {
    Task::ALL[selector as usize % Task::ALL.len()]
}

/// A GLUE TSV file: the first byte picks the task, the rest is the file.
pub fn glue_tsv(data: &[u8]) -> Result<(), String> {
    let Some((&selector, body)) = data.split_first() else {
        return Ok(());
    };
    let split = glue_data::parse_tsv_split(Path::new("fuzz.tsv"), body, task(selector), "train")
        .map_err(|e| chain(&e))?;
    for row in split.rows() {
        black_box(row);
    }
    Ok(())
}

/// A Hub parquet file: the first byte picks the task, the rest is the file.
pub fn glue_parquet(data: &[u8]) -> Result<(), String> {
    let Some((&selector, body)) = data.split_first() else {
        return Ok(());
    };
    let split = glue_data::parse_parquet_split(
        Path::new("fuzz.parquet"),
        body.to_vec(),
        task(selector),
        "train",
    )
    .map_err(|e| chain(&e))?;
    for row in split.rows() {
        black_box(row);
    }
    Ok(())
}

/// A model's `config.json`.
pub fn bert_config(data: &[u8]) -> Result<(), String> {
    let config =
        BertConfig::from_json_bytes(Path::new("config.json"), data).map_err(|e| chain(&e))?;
    black_box(config.parameter_count());
    Ok(())
}

/// A fixed, tiny WordPiece vocabulary with BERT's special tokens.
const VOCAB: &str = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\ncat\nsat\non\nmat\n##s\n.\n";

/// A model folder's `tokenizer_config.json`, beside a fixed `vocab.txt`; an accepted file must
/// then encode a pair, truncated to the length it sets.
pub fn tokenizer_config(data: &[u8]) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| chain(&e))?;
    std::fs::write(dir.path().join("vocab.txt"), VOCAB).map_err(|e| chain(&e))?;
    std::fs::write(dir.path().join("tokenizer_config.json"), data).map_err(|e| chain(&e))?;
    let path = dir.path().to_string_lossy();
    let tokenizer = AutoTokenizer::from_pretrained(&path).map_err(|e| chain(&e))?;
    let long = "the cats sat on the mat . ".repeat(64);
    let encoding = tokenizer
        .encode(&long, Some(&long))
        .map_err(|e| chain(e.as_ref()))?;
    // Without a limit in the config nothing is truncated, as in transformers.
    if let Some(max_length) = tokenizer.model_max_length()
        && encoding.get_ids().len() > max_length
    {
        return Err(format!(
            "truncation gave {} tokens, above model_max_length {max_length}",
            encoding.get_ids().len(),
        ));
    }
    Ok(())
}

/// The config of a tiny BERT: the shapes of the `safetensors` and `pytorch` seed checkpoints.
const TINY_CONFIG: &str = r#"{"vocab_size": 16, "hidden_size": 8, "num_hidden_layers": 1,
    "num_attention_heads": 2, "intermediate_size": 16, "max_position_embeddings": 16,
    "type_vocab_size": 2}"#;

/// A model folder with the tiny config and `data` as its weights file, loaded as
/// `from_pretrained` loads a user's checkpoint: every encoder tensor must be there.
fn from_pretrained(file_name: &str, data: &[u8]) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| chain(&e))?;
    std::fs::write(dir.path().join("config.json"), TINY_CONFIG).map_err(|e| chain(&e))?;
    std::fs::write(dir.path().join(file_name), data).map_err(|e| chain(&e))?;
    let model = BertForSequenceClassification::from_pretrained(
        &dir.path().to_string_lossy(),
        2,
        &burn::tensor::Device::flex(),
    )
    .map_err(|e| chain(&e))?;
    black_box(model);
    Ok(())
}

/// A `model.safetensors`, loaded into a tiny BERT.
pub fn safetensors(data: &[u8]) -> Result<(), String> {
    from_pretrained("model.safetensors", data)
}

/// A `pytorch_model.bin` (a zip of pickle and tensor data), loaded into a tiny BERT. The
/// reader must never run pickled code.
pub fn pytorch(data: &[u8]) -> Result<(), String> {
    from_pretrained("pytorch_model.bin", data)
}
