//! Replays the hand-made seeds (`fuzz/seeds/<target>/`) and every committed fuzz corpus
//! (`fuzz/corpus/<target>/`) through their reader: no input may panic or take long, the valid
//! seeds must load, and the hostile seeds must be refused with a message (and, for pickles,
//! without running their code).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The files of `fuzz/<kind>/<target>/`, by name.
fn files(kind: &str, target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz")
        .join(kind)
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect()
}

/// Runs the seeds, then the corpus, of `target`; returns each seed's outcome by name.
fn replay(target: &str) -> Vec<(String, Result<(), String>)> {
    let seeds = files("seeds", target);
    let corpus = files("corpus", target);
    assert!(seeds.len() >= 5, "{target}: only {} seeds", seeds.len());
    assert!(!corpus.is_empty(), "{target}: no corpus");
    let seed_count = seeds.len();
    let inputs = seeds.into_iter().chain(corpus);
    let mut failures = Vec::new();
    let mut outcomes = Vec::new();
    for (name, data) in inputs {
        let start = Instant::now();
        match catch_unwind(AssertUnwindSafe(|| fuzz_harness::run(target, &data))) {
            Ok(outcome) => {
                if let Err(message) = &outcome {
                    assert!(!message.trim().is_empty(), "{target}/{name}: empty error");
                }
                outcomes.push((name.clone(), outcome));
            }
            Err(_) => failures.push(format!("{target}/{name} panicked")),
        }
        let elapsed = start.elapsed();
        assert!(
            elapsed < Duration::from_secs(20),
            "{target}/{name} took {elapsed:?}"
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    outcomes.truncate(seed_count);
    assert!(
        peak_rss_mb() < 2048.0,
        "{target}: peak memory {} MB",
        peak_rss_mb()
    );
    outcomes
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))?
                .to_string();
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn outcome<'a>(outcomes: &'a [(String, Result<(), String>)], name: &str) -> &'a Result<(), String> {
    &outcomes
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("seed {name} is missing"))
        .1
}

fn refused_with(outcomes: &[(String, Result<(), String>)], name: &str, needle: &str) {
    match outcome(outcomes, name) {
        Err(message) => assert!(
            message.to_lowercase().contains(&needle.to_lowercase()),
            "{name}: `{message}` does not mention `{needle}`"
        ),
        Ok(()) => panic!("{name} was accepted"),
    }
}

#[test]
fn glue_tsv_corpus() {
    let outcomes = replay("glue_tsv");
    for name in [
        "mrpc-train",
        "mrpc-test",
        "cola-train",
        "stsb-dev",
        "mrpc-crlf",
    ] {
        assert!(
            outcome(&outcomes, name).is_ok(),
            "{name}: {:?}",
            outcome(&outcomes, name)
        );
    }
    refused_with(&outcomes, "mrpc-missing-column", "fuzz.tsv:2");
    refused_with(&outcomes, "mrpc-bad-label", "fuzz.tsv:2");
    refused_with(&outcomes, "mrpc-invalid-utf8", "fuzz.tsv:2");
    refused_with(&outcomes, "stsb-nan-score", "fuzz.tsv:2");
    refused_with(&outcomes, "bom-only", "fuzz.tsv");
}

#[test]
fn glue_parquet_corpus() {
    let outcomes = replay("glue_parquet");
    for name in ["mrpc", "stsb", "cola"] {
        assert!(
            outcome(&outcomes, name).is_ok(),
            "{name}: {:?}",
            outcome(&outcomes, name)
        );
    }
    refused_with(&outcomes, "mrpc-wrong-types", "label");
    refused_with(&outcomes, "mrpc-truncated", "fuzz.parquet");
    // Found by `cargo xtask fuzz`: the parquet crate panics on it.
    refused_with(
        &outcomes,
        "dictionary-page-missing",
        "malformed parquet data",
    );
    // Found by `cargo xtask fuzz`: a page header with an unknown field, a list declaring more
    // elements than the page has bytes, which kept the parquet crate's decoder busy for 74 s.
    refused_with(
        &outcomes,
        "page-header-bool-list",
        "column 0: page header at byte 48: declares 101 elements",
    );
    // Found by the next run (33 s): a known page-header field claiming another type, which
    // the crate reads by its schema while a walk by the claimed type read something else.
    refused_with(&outcomes, "page-header-bool-list-offset", "claims type");
}

#[test]
fn bert_config_corpus() {
    let outcomes = replay("bert_config");
    assert!(outcome(&outcomes, "minilm").is_ok());
    assert!(outcome(&outcomes, "labels").is_ok());
    refused_with(&outcomes, "heads-mismatch", "num_attention_heads");
    refused_with(&outcomes, "huge-vocab", "config.json");
    refused_with(&outcomes, "not-json", "config.json");
}

#[test]
fn tokenizer_config_corpus() {
    let outcomes = replay("tokenizer_config");
    assert!(outcome(&outcomes, "minilm").is_ok());
    assert!(outcome(&outcomes, "short").is_ok());
    refused_with(&outcomes, "too-short", "leaves no room");
    refused_with(&outcomes, "negative", "leaves no room");
    // transformers' "no limit" loads, as transformers loads it, and truncates nothing.
    assert!(outcome(&outcomes, "unbounded").is_ok());
}

#[test]
fn safetensors_corpus() {
    let outcomes = replay("safetensors");
    assert!(outcome(&outcomes, "tiny-bert").is_ok());
    assert!(outcome(&outcomes, "tiny-bert-bare").is_ok());
    refused_with(&outcomes, "truncated", "model.safetensors");
    refused_with(&outcomes, "huge-header-length", "model.safetensors");
    refused_with(&outcomes, "huge-shape", "model.safetensors");
}

#[test]
fn pytorch_corpus_loads_tensors_and_never_runs_pickled_code() {
    let marker = std::path::Path::new("/tmp/bert-ft-fuzz-pwned");
    let _ = std::fs::remove_file(marker);
    let outcomes = replay("pytorch");
    assert!(
        outcome(&outcomes, "tiny-bert").is_ok(),
        "{:?}",
        outcome(&outcomes, "tiny-bert")
    );
    assert!(outcome(&outcomes, "tiny-bert-bare").is_ok());
    refused_with(&outcomes, "truncated", "pytorch_model.bin");
    refused_with(&outcomes, "runs-code", "pytorch_model.bin");
    refused_with(&outcomes, "raw-pickle-runs-code", "pytorch_model.bin");
    assert!(!marker.exists(), "a pickle ran code");
}
