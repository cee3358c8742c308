//! DistilBERT and RoBERTa against transformers 5.24, on the small random checkpoints and
//! GLUE-trained tokenizers that fixtures/make_family_fixtures.py made with it: the same
//! token ids on every MRPC train and dev pair (RoBERTa's from `tokenizer.json` and from
//! `vocab.json` with `merges.txt`), the same logits on MRPC dev on every backend,
//! both weight formats with transformers' load report, and `save_pretrained` folders that
//! transformers loads as they are.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use burn::module::Module;
use burn::tensor::Device;
use ft_bert::prelude::*;
use ft_bert::{
    Architecture, AutoModelForSequenceClassification, BertError, BertForSequenceClassification,
    PretrainedOptions,
};
use ft_collate::{AutoTokenizer, DataCollatorWithPadding, EncodedDataset, EncodedRow};
use serde::Deserialize;

use crate::common;

/// The two architectures' fixture folders.
const FAMILY: [(&str, Architecture); 2] = [
    ("tiny-roberta", Architecture::Roberta),
    ("tiny-distilbert", Architecture::DistilBert),
];

#[derive(Deserialize)]
struct Fixture {
    model_input_names: Vec<String>,
    splits: BTreeMap<String, SplitHashes>,
    full_rows: Vec<FullRow>,
    padded_lengths: Vec<usize>,
    logits: Vec<Vec<f32>>,
}

#[derive(Deserialize)]
struct SplitHashes {
    rows: usize,
    input_ids: Vec<String>,
    tokens: usize,
}

#[derive(Deserialize)]
struct FullRow {
    split: String,
    row: usize,
    input_ids: Vec<u32>,
}

fn fixture(name: &str) -> Fixture {
    let all: BTreeMap<String, serde_json::Value> =
        serde_json::from_str(include_str!("fixtures/family_parity.json")).unwrap();
    serde_json::from_value(all[name].clone()).unwrap()
}

fn dir(name: &str) -> PathBuf {
    common::fixture(name)
}

fn tokenizer(name: &str) -> AutoTokenizer {
    AutoTokenizer::from_pretrained(dir(name).to_str().unwrap()).unwrap()
}

fn mrpc(split: &str, tokenizer: &AutoTokenizer) -> EncodedDataset {
    let raw = glue_data::load_dataset(test_support::glue_dir().to_str().unwrap(), "mrpc").unwrap();
    EncodedDataset::map(raw.split(split).unwrap(), tokenizer).unwrap()
}

#[test]
fn every_mrpc_pair_tokenizes_as_transformers_does() {
    // RoBERTa's tokenizer also as `vocab.json` and `merges.txt` alone, without tokenizer.json.
    let folders = [
        ("tiny-roberta", "tiny-roberta"),
        ("tiny-roberta-bpe", "tiny-roberta"),
        ("tiny-distilbert", "tiny-distilbert"),
    ];
    for (name, fixture_name) in folders {
        let fixture = fixture(fixture_name);
        let tokenizer = tokenizer(name);
        assert_eq!(
            tokenizer.model_input_names(),
            fixture.model_input_names,
            "{name}"
        );
        assert!(!tokenizer.returns_token_type_ids(), "{name}");
        for (split, fixture_split) in [("train", "train"), ("validation", "dev")] {
            let expected = &fixture.splits[fixture_split];
            let encoded = mrpc(split, &tokenizer);
            assert!(!encoded.has_token_type_ids(), "{name}");
            assert_eq!(encoded.len(), expected.rows, "{name} {split}");
            assert_eq!(encoded.num_tokens(), expected.tokens, "{name} {split}");
            let mismatches: Vec<usize> = encoded
                .rows()
                .enumerate()
                .filter(|(i, row)| {
                    test_support::fnv1a64(row.input_ids.iter().copied()) != expected.input_ids[*i]
                })
                .map(|(i, _)| i)
                .collect();
            assert!(
                mismatches.is_empty(),
                "{name} {split}: rows differ: {mismatches:?}"
            );
            for full in fixture
                .full_rows
                .iter()
                .filter(|r| r.split == fixture_split)
            {
                let row = encoded.row(full.row).unwrap();
                assert_eq!(row.input_ids, full.input_ids.as_slice(), "{name}");
                assert!(row.token_type_ids.is_none());
            }
        }
    }
    // RoBERTa's pairs are `<s> a </s></s> b </s>`.
    let roberta = tokenizer("tiny-roberta");
    let ids = roberta.encode("a b", Some("c")).unwrap().get_ids().to_vec();
    let (bos, eos) = (0, 2);
    assert_eq!((ids[0], ids[ids.len() - 1]), (bos, eos), "{ids:?}");
    assert_eq!(ids.iter().filter(|&&id| id == eos).count(), 3, "{ids:?}");
    assert!(ids.windows(2).any(|w| w == [eos, eos]), "{ids:?}");
}

/// The first 32 MRPC dev pairs, in padded batches of 8, and the model's logits on them.
fn dev_logits(
    model: &AutoModelForSequenceClassification,
    tokenizer: &AutoTokenizer,
    device: &Device,
) -> (Vec<usize>, Vec<f32>) {
    let encoded = mrpc("validation", tokenizer);
    let rows: Vec<EncodedRow<'_>> = encoded.rows().take(32).collect();
    let collator = DataCollatorWithPadding::new(tokenizer);
    let mut lengths = Vec::new();
    let mut logits = Vec::new();
    for chunk in rows.chunks(8) {
        let batch = collator.collate(chunk, device).unwrap();
        assert!(batch.token_type_ids.is_none());
        lengths.push(batch.input_ids.dims()[1]);
        logits.extend(common::values(
            model.forward(&common::input(&batch)).unwrap().logits,
        ));
    }
    (lengths, logits)
}

#[test]
fn logits_on_mrpc_dev_match_transformers_on_every_backend() {
    for (name, architecture) in FAMILY {
        let fixture = fixture(name);
        let tokenizer = tokenizer(name);
        let expected: Vec<f32> = fixture.logits.iter().flatten().copied().collect();
        for (backend, device) in common::devices() {
            let (model, info) = AutoModelForSequenceClassification::from_pretrained_with_info(
                dir(name).to_str().unwrap(),
                &PretrainedOptions::default(),
                &device,
            )
            .unwrap();
            assert_eq!(model.architecture(), architecture);
            assert!(
                info.missing_keys.is_empty() && info.unexpected_keys.is_empty(),
                "{info}"
            );
            let (lengths, logits) = dev_logits(&model, &tokenizer, &device);
            assert_eq!(lengths, fixture.padded_lengths, "{name} on {backend}");
            let diff = common::max_abs_diff(&logits, &expected);
            assert!(diff < 1e-4, "{name} on {backend}: logits differ by {diff}");
        }
    }
}

#[test]
fn a_bare_pytorch_checkpoint_loads_with_a_new_head_and_the_report() {
    let device = Device::flex();
    for (name, architecture) in FAMILY {
        // The bare `...Model` state dict in PyTorch's format, as the Hub's base checkpoints.
        let folder = tempfile::tempdir().unwrap();
        std::fs::copy(
            dir(name).join("config.json"),
            folder.path().join("config.json"),
        )
        .unwrap();
        std::fs::copy(
            common::fixture(&format!("{name}-base.bin")),
            folder.path().join("pytorch_model.bin"),
        )
        .unwrap();
        let (mut model, info) = AutoModelForSequenceClassification::from_pretrained_with_info(
            folder.path().to_str().unwrap(),
            &PretrainedOptions::default(),
            &device,
        )
        .unwrap();
        let head: &[&str] = match architecture {
            Architecture::Roberta => &[
                "classifier.dense.bias",
                "classifier.dense.weight",
                "classifier.out_proj.bias",
                "classifier.out_proj.weight",
            ],
            _ => &[
                "classifier.bias",
                "classifier.weight",
                "pre_classifier.bias",
                "pre_classifier.weight",
            ],
        };
        assert_eq!(info.missing_keys, head, "{name}");
        assert!(info.unexpected_keys.is_empty(), "{info}");
        let report = info.to_string();
        let header = format!("{} LOAD REPORT", architecture.class_name());
        assert!(report.starts_with(&header), "{report}");
        assert!(report.contains("MISSING"), "{report}");

        // With the classifier's head on top, every encoder weight read from the pickle gives
        // transformers' logits.
        let loaded = model
            .load_weights(&dir(name).join("model.safetensors"))
            .unwrap();
        assert!(loaded.missing_keys.is_empty(), "{loaded}");
        let expected: Vec<f32> = fixture(name).logits.iter().flatten().copied().collect();
        let (_, logits) = dev_logits(&model, &tokenizer(name), &device);
        let diff = common::max_abs_diff(&logits, &expected);
        assert!(diff < 1e-4, "{name}: logits differ by {diff}");
    }
}

#[test]
fn a_classifier_of_another_architecture_refuses_the_checkpoint_by_name() {
    let err = BertForSequenceClassification::from_pretrained(
        dir("tiny-roberta").to_str().unwrap(),
        2,
        &Device::flex(),
    )
    .unwrap_err();
    assert!(matches!(err, BertError::InvalidConfig { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("RobertaForSequenceClassification"),
        "{message}"
    );
    assert!(message.contains("config.json"), "{message}");
}

#[test]
fn saved_models_load_in_transformers_and_here_with_the_same_logits() {
    let device = Device::flex();
    for (name, architecture) in FAMILY {
        let model = AutoModelForSequenceClassification::from_pretrained(
            dir(name).to_str().unwrap(),
            2,
            &device,
        )
        .unwrap()
        .valid();
        let tokenizer = tokenizer(name);
        let saved = tempfile::tempdir().unwrap();
        model.save_pretrained(saved.path()).unwrap();
        tokenizer.save_pretrained(saved.path()).unwrap();

        let reloaded = AutoModelForSequenceClassification::from_pretrained(
            saved.path().to_str().unwrap(),
            2,
            &device,
        )
        .unwrap();
        assert_eq!(reloaded.architecture(), architecture);
        let (_, logits) = dev_logits(&model, &tokenizer, &device);
        let (_, again) = dev_logits(&reloaded, &tokenizer, &device);
        assert_eq!(logits, again, "{name}");

        let encoded = mrpc("validation", &tokenizer);
        let raw =
            glue_data::load_dataset(test_support::glue_dir().to_str().unwrap(), "mrpc").unwrap();
        let dev = raw.split("validation").unwrap();
        assert_eq!(encoded.len(), dev.len());
        let n = 8;
        let expected = serde_json::json!({
            "architecture": architecture.class_name(),
            "text_a": dev.text_a()[..n].to_vec(),
            "text_b": dev.text_b().unwrap()[..n].to_vec(),
            "logits": logits[..2 * n].chunks(2).map(<[f32]>::to_vec).collect::<Vec<_>>(),
            "tolerance": 1e-4,
        });
        let expected_path = saved.path().join("expected.json");
        std::fs::write(&expected_path, expected.to_string()).unwrap();
        let output = Command::new(test_support::python())
            .arg(test_support::python_script("check_transformers_load.py"))
            .arg(saved.path())
            .arg(&expected_path)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{name}: {stdout}\n{stderr}");
        assert!(stdout.contains("logits match"), "{name}: {stdout}");
    }
}
