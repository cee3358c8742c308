//! Every `hidden_act` a BERT-family config may name gives transformers' logits (eval, fp32)
//! within 1e-4 on every compiled backend, read from a `config.json` that names it; a name
//! outside that list is refused with the list.
//! Fixtures: fixtures/make_activation_fixture.py.

use crate::common;
use std::collections::BTreeMap;
use std::path::Path;

use burn::module::Module;
use burn::tensor::Device;
use ft_bert::prelude::*;
use ft_bert::{BertError, BertForSequenceClassification, HiddenAct, PretrainedOptions};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
struct Fixture {
    checkpoint: String,
    weights: String,
    input_ids: Vec<Vec<i64>>,
    token_type_ids: Vec<Vec<i64>>,
    attention_mask: Vec<Vec<i64>>,
    logits: BTreeMap<String, Vec<Vec<f32>>>,
}

const TOLERANCE: f32 = 1e-4;

fn fixture() -> Fixture {
    serde_json::from_str(include_str!("fixtures/activation_parity.json")).unwrap()
}

/// A copy of the checkpoint folder whose `config.json` names `hidden_act`.
fn checkpoint_with(checkpoint: &Path, hidden_act: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(checkpoint.join("config.json")).unwrap();
    let mut config: Value = serde_json::from_str(&text).unwrap();
    config["hidden_act"] = Value::from(hidden_act);
    std::fs::write(
        dir.path().join("config.json"),
        serde_json::to_string_pretty(&config).unwrap(),
    )
    .unwrap();
    std::fs::copy(
        checkpoint.join("model.safetensors"),
        dir.path().join("model.safetensors"),
    )
    .unwrap();
    dir
}

fn load(dir: &Path, device: &Device) -> Result<BertForSequenceClassification, BertError> {
    let options = PretrainedOptions {
        num_labels: Some(2),
        ..PretrainedOptions::default()
    };
    BertForSequenceClassification::from_pretrained_with_info(
        dir.to_str().unwrap(),
        &options,
        device,
    )
    .map(|(model, _)| model)
}

#[test]
fn every_activation_gives_transformers_logits_on_every_backend() {
    let fixture = fixture();
    let names: Vec<&str> = HiddenAct::ALL.iter().map(|act| act.name()).collect();
    assert_eq!(
        fixture
            .logits
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        {
            let mut sorted = names.clone();
            sorted.sort_unstable();
            sorted
        },
        "the fixture covers exactly the supported activations"
    );
    let checkpoint = common::fixture(&fixture.checkpoint);
    for (name, device) in common::devices() {
        let input_ids = common::int_tensor(&fixture.input_ids, &device);
        let token_type_ids = common::int_tensor(&fixture.token_type_ids, &device);
        let attention_mask = common::int_tensor(&fixture.attention_mask, &device);
        let mut worst = (0.0_f32, "");
        for act in HiddenAct::ALL {
            let dir = checkpoint_with(&checkpoint, act.name());
            let mut model = load(dir.path(), &device).unwrap();
            assert_eq!(model.config().hidden_act, act);
            let info = model
                .load_weights(&common::fixture(&fixture.weights))
                .unwrap();
            assert!(
                info.unexpected_keys.is_empty(),
                "{:?}",
                info.unexpected_keys
            );
            let logits = model
                .valid()
                .forward(
                    &ModelInput::from_tensors(
                        input_ids.clone(),
                        Some(token_type_ids.clone()),
                        attention_mask.clone(),
                    )
                    .unwrap(),
                )
                .unwrap()
                .logits;
            let ours = common::values(logits);
            let theirs: Vec<f32> = fixture.logits[act.name()]
                .iter()
                .flatten()
                .copied()
                .collect();
            let diff = common::max_abs_diff(&ours, &theirs);
            assert!(
                diff <= TOLERANCE,
                "{name}, hidden_act {act}: max |logit diff| {diff}\nours   {ours:?}\ntheirs {theirs:?}"
            );
            if diff >= worst.0 {
                worst = (diff, act.name());
            }
        }
        eprintln!(
            "{name}: largest difference {:.1e}, with {}",
            worst.0, worst.1
        );
    }
}

#[test]
fn an_unknown_activation_is_refused_with_the_supported_names() {
    use std::error::Error as _;

    let checkpoint = common::fixture("tiny-bert");
    for unknown in ["gelu_10", "prelu", "Gelu"] {
        let dir = checkpoint_with(&checkpoint, unknown);
        let err = load(dir.path(), &Device::flex()).unwrap_err();
        assert!(
            matches!(&err, BertError::Config { path, .. } if path.ends_with("config.json")),
            "{err:?}"
        );
        let cause = err
            .source()
            .expect("the parser's error is kept")
            .to_string();
        assert!(
            cause.contains(&format!("unknown variant `{unknown}`")),
            "{cause}"
        );
        for act in HiddenAct::ALL {
            assert!(
                cause.contains(&format!("`{act}`")),
                "{act} missing: {cause}"
            );
        }
    }
}
