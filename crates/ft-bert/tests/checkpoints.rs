//! Loading and saving Hugging Face checkpoints: both file formats, both naming forms, the load
//! report, bad checkpoints, the Hub, and a round trip. Fixtures: fixtures/make_tiny_bert.py.

use crate::common;
use std::collections::BTreeMap;
use std::path::Path;

use burn::module::Module;
use burn::store::{ModuleStore, SafetensorsStore};
use burn::tensor::Device;
use ft_bert::prelude::*;
use ft_bert::{BertConfig, BertError, BertForSequenceClassification, PretrainedOptions};
use ft_hub::HubOptions;
use serde::Deserialize;
use test_support::{FakeHub, FakeRepo, RepoKind};

#[derive(Deserialize)]
struct Expected {
    input_ids: Vec<Vec<i64>>,
    token_type_ids: Vec<Vec<i64>>,
    attention_mask: Vec<Vec<i64>>,
    pooler_output: Vec<Vec<f32>>,
}

fn expected() -> Expected {
    serde_json::from_str(include_str!("fixtures/tiny-bert/expected.json")).unwrap()
}

fn options(num_labels: usize) -> PretrainedOptions {
    PretrainedOptions {
        num_labels: Some(num_labels),
        ..PretrainedOptions::default()
    }
}

fn load(
    dir: &Path,
    num_labels: usize,
    device: &Device,
) -> Result<BertForSequenceClassification, BertError> {
    BertForSequenceClassification::from_pretrained_with_info(
        dir.to_str().unwrap(),
        &options(num_labels),
        device,
    )
    .map(|(model, _)| model)
}

fn pooler_output(model: &BertForSequenceClassification, device: &Device) -> Vec<f32> {
    let e = expected();
    let out = model
        .valid()
        .bert
        .forward(
            &ModelInput::from_tensors(
                common::int_tensor(&e.input_ids, device),
                Some(common::int_tensor(&e.token_type_ids, device)),
                common::int_tensor(&e.attention_mask, device),
            )
            .unwrap(),
        )
        .unwrap();
    common::values(out.pooler_output.expect("BERT has a pooler"))
}

/// A copy of the tiny checkpoint with only the given weights file.
fn tiny_copy(weights: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let tiny = common::fixture("tiny-bert");
    std::fs::copy(tiny.join("config.json"), dir.path().join("config.json")).unwrap();
    std::fs::copy(tiny.join(weights), dir.path().join(weights)).unwrap();
    dir
}

#[test]
fn both_formats_give_transformers_outputs_and_the_load_report() {
    let expected: Vec<f32> = expected().pooler_output.into_iter().flatten().collect();
    for weights in ["model.safetensors", "pytorch_model.bin"] {
        let dir = tiny_copy(weights);
        for (name, device) in common::devices() {
            let (model, info) = BertForSequenceClassification::from_pretrained_with_info(
                dir.path().to_str().unwrap(),
                &options(3),
                &device,
            )
            .unwrap();
            let diff = common::max_abs_diff(&pooler_output(&model, &device), &expected);
            assert!(
                diff < 1e-5,
                "{weights} on {name}: pooler output differs by {diff}"
            );
            assert_eq!(info.missing_keys, ["classifier.bias", "classifier.weight"]);
            assert!(
                info.unexpected_keys
                    .contains(&"cls.predictions.bias".to_string())
            );
            assert!(
                info.unexpected_keys
                    .contains(&"cls.seq_relationship.weight".to_string())
            );
            assert!(
                info.unexpected_keys
                    .contains(&"cls.predictions.transform.LayerNorm.weight".to_string())
            );
            assert!(
                info.unexpected_keys.iter().all(|k| k.starts_with("cls.")),
                "{:?}",
                info.unexpected_keys
            );
            let report = info.to_string();
            assert!(report.starts_with("BertForSequenceClassification LOAD REPORT from: "));
            assert!(report.contains("| UNEXPECTED |") && report.contains("| MISSING "));
            assert_eq!(model.num_labels(), 3);
        }
    }
}

#[test]
fn the_new_head_is_reproducible_from_the_seed() {
    let dir = tiny_copy("model.safetensors");
    let device = Device::flex();
    let head = |seed| {
        let options = PretrainedOptions { seed, ..options(2) };
        let (model, _) = BertForSequenceClassification::from_pretrained_with_info(
            dir.path().to_str().unwrap(),
            &options,
            &device,
        )
        .unwrap();
        (
            common::values(model.classifier.weight.val()),
            common::values(model.classifier.bias.unwrap().val()),
        )
    };
    let (w42, b42) = head(42);
    assert_eq!(head(42).0, w42);
    assert_ne!(head(7).0, w42);
    assert!(
        b42.iter().all(|&b| b == 0.0),
        "transformers zeroes the new bias"
    );
    let std = (w42.iter().map(|w| w * w).sum::<f32>() / w42.len() as f32).sqrt();
    assert!((0.01..0.03).contains(&std), "N(0, 0.02), got std {std}");
}

#[test]
fn saved_models_use_transformers_names_and_reload_identically() {
    let device = Device::flex();
    let model = load(&common::fixture("tiny-bert"), 3, &device).unwrap();
    let saved = tempfile::tempdir().unwrap();
    model.save_pretrained(saved.path()).unwrap();

    let mut store = SafetensorsStore::from_file(saved.path().join("model.safetensors"));
    let tensors: BTreeMap<String, Vec<usize>> = store
        .get_all_tensors()
        .unwrap()
        .iter()
        .map(|(name, t)| (name.clone(), t.shape.to_vec()))
        .collect();
    assert_eq!(tensors["bert.embeddings.LayerNorm.weight"], [32]);
    assert_eq!(
        tensors["bert.encoder.layer.1.attention.self.query.weight"],
        [32, 32]
    );
    assert_eq!(
        tensors["bert.encoder.layer.0.intermediate.dense.weight"],
        [37, 32],
        "PyTorch's [out, in]"
    );
    assert_eq!(tensors["classifier.weight"], [3, 32]);
    assert!(
        tensors
            .keys()
            .all(|k| k.starts_with("bert.") || k.starts_with("classifier."))
    );

    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(saved.path().join("config.json")).unwrap())
            .unwrap();
    assert_eq!(config["architectures"][0], "BertForSequenceClassification");
    assert_eq!(config["id2label"].as_object().unwrap().len(), 3);
    assert_eq!(config["hidden_size"], 32);

    let (reloaded, info) = BertForSequenceClassification::from_pretrained_with_info(
        saved.path().to_str().unwrap(),
        &PretrainedOptions::default(),
        &device,
    )
    .unwrap();
    assert!(
        info.missing_keys.is_empty() && info.unexpected_keys.is_empty(),
        "{info}"
    );
    assert_eq!(reloaded.num_labels(), 3);
    let e = expected();
    let logits = |m: &BertForSequenceClassification| {
        common::values(
            m.valid()
                .forward(
                    &ModelInput::from_tensors(
                        common::int_tensor(&e.input_ids, &device),
                        Some(common::int_tensor(&e.token_type_ids, &device)),
                        common::int_tensor(&e.attention_mask, &device),
                    )
                    .unwrap(),
                )
                .unwrap()
                .logits,
        )
    };
    assert_eq!(logits(&model), logits(&reloaded));
}

#[test]
fn bad_checkpoints_are_clear_errors() {
    let device = Device::flex();

    // A config whose sizes disagree with the weights.
    let dir = tiny_copy("model.safetensors");
    let config = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        config.replace("\"intermediate_size\": 37", "\"intermediate_size\": 40"),
    )
    .unwrap();
    let err = load(dir.path(), 2, &device).unwrap_err();
    assert!(matches!(err, BertError::ShapeMismatch { .. }), "{err:?}");
    assert!(
        err.to_string().contains(
            "bert.encoder.layer.0.intermediate.dense.weight: checkpoint [37, 32] vs model [40, 32]"
        ),
        "shapes are reported in PyTorch's layout: {err}"
    );

    // An encoder tensor missing from the file.
    let incomplete = tempfile::tempdir().unwrap();
    std::fs::copy(
        common::fixture("tiny-bert/config.json"),
        incomplete.path().join("config.json"),
    )
    .unwrap();
    std::fs::copy(
        common::fixture("tiny-bert-missing-tensor.safetensors"),
        incomplete.path().join("model.safetensors"),
    )
    .unwrap();
    let err = load(incomplete.path(), 2, &device).unwrap_err();
    assert!(
        matches!(&err, BertError::MissingWeights { missing, .. } if missing == "bert.encoder.layer.1.output.dense.weight"),
        "{err:?}"
    );

    // A classifier with another label count than asked for.
    let saved = tempfile::tempdir().unwrap();
    load(&common::fixture("tiny-bert"), 3, &device)
        .unwrap()
        .save_pretrained(saved.path())
        .unwrap();
    let err = load(saved.path(), 2, &device).unwrap_err();
    assert!(
        matches!(
            err,
            BertError::NumLabels {
                expected: 2,
                found: 3,
                ..
            }
        ),
        "{err:?}"
    );

    // No weights, a corrupt weights file, a corrupt config.
    let empty = tempfile::tempdir().unwrap();
    std::fs::copy(
        common::fixture("tiny-bert/config.json"),
        empty.path().join("config.json"),
    )
    .unwrap();
    assert!(matches!(
        load(empty.path(), 2, &device),
        Err(BertError::NoWeights { .. })
    ));
    std::fs::write(
        empty.path().join("model.safetensors"),
        b"\x08\x00\x00\x00\x00\x00\x00\x00{}",
    )
    .unwrap();
    let err = load(empty.path(), 2, &device).unwrap_err();
    assert!(matches!(err, BertError::Weights { .. }), "{err:?}");
    assert!(
        err.to_string().contains("model.safetensors"),
        "the message names the file: {err}"
    );
    assert!(
        std::error::Error::source(&err).is_some_and(|s| s
            .downcast_ref::<burn::store::SafetensorsStoreError>()
            .is_some()),
        "the reader's error is kept as the source: {err:?}"
    );
    std::fs::write(
        empty.path().join("config.json"),
        b"{\"hidden_size\": \"big\"}",
    )
    .unwrap();
    let err = load(empty.path(), 2, &device).unwrap_err();
    assert!(
        matches!(&err, BertError::Config { path, .. } if path.ends_with("config.json")),
        "{err:?}"
    );
    assert!(
        std::error::Error::source(&err)
            .is_some_and(|s| s.downcast_ref::<serde_json::Error>().is_some()),
        "the JSON error is kept as the source: {err:?}"
    );
    assert!(load(Path::new("/nonexistent/model"), 2, &device).is_err());
}

#[test]
fn a_pickle_that_runs_code_is_not_executed() {
    let marker = Path::new("/tmp/ft-bert-pickle-was-executed");
    let _ = std::fs::remove_file(marker);
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        common::fixture("tiny-bert/config.json"),
        dir.path().join("config.json"),
    )
    .unwrap();
    std::fs::copy(
        common::fixture("malicious_pytorch_model.bin"),
        dir.path().join("pytorch_model.bin"),
    )
    .unwrap();
    let result = load(dir.path(), 2, &Device::flex());
    assert!(
        result.is_err(),
        "a pickle without tensors cannot make a model"
    );
    assert!(!marker.exists(), "the pickle's os.system call ran");
}

#[test]
fn a_hub_model_id_downloads_through_hf_hub() {
    let tiny = common::fixture("tiny-bert");
    let files: BTreeMap<String, Vec<u8>> =
        ["config.json", "model.safetensors", "pytorch_model.bin"]
            .iter()
            .map(|name| (name.to_string(), std::fs::read(tiny.join(name)).unwrap()))
            .collect();
    let hub = FakeHub::start(vec![FakeRepo {
        kind: RepoKind::Model,
        id: "test-org/tiny-bert".into(),
        files,
    }]);
    let cache = tempfile::tempdir().unwrap();
    let options = PretrainedOptions {
        hub: Some(HubOptions {
            endpoint: hub.url().to_string(),
            cache_dir: cache.path().to_path_buf(),
            offline: false,
            progress: false,
        }),
        ..options(2)
    };
    let device = Device::flex();
    let (model, info) = BertForSequenceClassification::from_pretrained_with_info(
        "test-org/tiny-bert",
        &options,
        &device,
    )
    .unwrap();
    assert_eq!(info.source, "test-org/tiny-bert");
    let expected: Vec<f32> = expected().pooler_output.into_iter().flatten().collect();
    assert!(common::max_abs_diff(&pooler_output(&model, &device), &expected) < 1e-5);
    // `AutoConfig.from_pretrained`: the config alone, from the Hub and from the folder.
    let local = BertConfig::from_pretrained(tiny.to_str().unwrap(), None).unwrap();
    let hub_config = BertConfig::from_pretrained("test-org/tiny-bert", options.hub.as_ref());
    assert_eq!(
        hub_config.unwrap().to_json().unwrap(),
        local.to_json().unwrap()
    );
    assert_eq!(local.max_sequence_length(), local.max_position_embeddings);
    let cached = cache.path().join("models--test-org--tiny-bert/snapshots");
    assert!(cached.is_dir());
    let downloaded: Vec<_> = walk(&cached);
    assert!(
        downloaded.iter().any(|p| p.ends_with("model.safetensors")),
        "safetensors preferred"
    );
    assert!(
        !downloaded.iter().any(|p| p.ends_with("pytorch_model.bin")),
        "{downloaded:?}"
    );
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
