//! A million pairs: tokenized, then batched for one epoch as tensors, with the memory held
//! beyond the encoded ids measured and bounded. Alone in its test binary, so that no other test
//! moves the process's memory while it measures.

use std::sync::Arc;
use std::time::Instant;

use burn::tensor::Device;
use ft_collate::{AutoTokenizer, DataCollatorWithPadding, DataLoader, EncodedDataset, Sampler};
use glue_data::{Example, Label, Split, Task};

const PAIRS: usize = 1_000_000;

/// Resident and peak resident memory of this process, in MiB.
fn memory_mb() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap();
        line.split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<f64>()
            .unwrap()
            / 1024.0
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Starts a new peak-memory measurement from the current resident size (Linux ≥ 4.0).
fn reset_peak() {
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
}

fn synthetic_pairs() -> Split {
    const WORDS: [&str; 16] = [
        "the", "company", "said", "shares", "rose", "percent", "on", "monday", "after", "analysts",
        "expected", "profit", "would", "fall", "quarter", "revenue",
    ];
    let sentence = |seed: usize, len: usize| {
        (0..len)
            .map(|k| WORDS[(seed * 7 + k * 13 + k * k) % WORDS.len()])
            .collect::<Vec<_>>()
            .join(" ")
    };
    let examples = (0..PAIRS).map(|i| Example {
        idx: i as u32,
        text_a: sentence(i, 6 + i % 11),
        text_b: Some(sentence(i + 3, 5 + i % 13)),
        label: Some(Label::Class((i % 2) as u32)),
    });
    Split::from_examples("train", Task::Mrpc.features(), examples).unwrap()
}

#[test]
fn a_million_pairs_tokenize_and_batch_in_bounded_memory() {
    let tokenizer =
        AutoTokenizer::from_pretrained(test_support::minilm_dir().to_str().unwrap()).unwrap();
    let start = Instant::now();
    let split = synthetic_pairs();
    let (raw_rss, _) = memory_mb();

    let map_start = Instant::now();
    let encoded = EncodedDataset::map(&split, &tokenizer).unwrap();
    let map_seconds = map_start.elapsed().as_secs_f64();
    assert_eq!(encoded.len(), PAIRS, "no row dropped");
    drop(split);

    let tokens = encoded.num_tokens();
    // Ids as u32, token types as u8, a usize offset and a u32 idx per row, the labels.
    let encoded_mb = (tokens * 5 + PAIRS * (8 + 4 + 8)) as f64 / (1 << 20) as f64;
    let dataset = Arc::new(encoded);
    let loader = DataLoader::new(
        dataset,
        DataCollatorWithPadding::new(&tokenizer),
        Sampler::Random { seed: 42 },
        8,
        false,
    )
    .unwrap();

    let (before_epoch, _) = memory_mb();
    reset_peak();
    let epoch_start = Instant::now();
    let device = Device::flex();
    let (mut batches, mut rows) = (0usize, 0usize);
    for batch in loader.iter(0, 0, &device) {
        let batch = batch.unwrap();
        let [size, len] = batch.input_ids.dims();
        assert!(size <= 8 && len >= 3);
        rows += size;
        batches += 1;
    }
    let epoch_seconds = epoch_start.elapsed().as_secs_f64();
    let (_, epoch_peak) = memory_mb();
    assert_eq!(rows, PAIRS, "every row batched once");
    assert_eq!(batches, PAIRS.div_ceil(8));

    let beyond = epoch_peak - before_epoch;
    println!(
        "large input: {PAIRS} pairs, {tokens} tokens; raw split resident {raw_rss:.0} MB; \
         map {map_seconds:.1} s ({:.0} pairs/s); encoded ids {encoded_mb:.0} MB; one epoch of \
         {batches} batches in {epoch_seconds:.1} s; peak memory during the epoch {beyond:.1} MB \
         above the {before_epoch:.0} MB held before it; total {:.1} s",
        PAIRS as f64 / map_seconds,
        start.elapsed().as_secs_f64()
    );
    // The epoch holds the batch order (a few index vectors per row) and a handful of
    // prefetched batches, never a copy of the dataset.
    assert!(
        beyond < 96.0,
        "the epoch held {beyond:.1} MB beyond the encoded dataset ({encoded_mb:.0} MB)"
    );
}
