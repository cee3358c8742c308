//! all-MiniLM-L6-v2 with a fixed head gives transformers' logits (eval, fp32) within 1e-4 on
//! 64 MRPC dev pairs in padded batches, on every compiled backend, by the explicit attention path
//! and by the backend's fused kernel.
//! Fixtures: fixtures/make_logits_fixture.py.

use crate::common;

use burn::module::Module;
use burn::tensor::Device;
use ft_bert::prelude::*;
use ft_bert::{AttentionImpl, BertForSequenceClassification, PretrainedOptions};
use ft_collate::{AutoTokenizer, DataCollatorWithPadding, EncodedDataset};
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    batch_size: usize,
    padded_lengths: Vec<usize>,
    logits: Vec<Vec<f32>>,
    mixed_batch: MixedBatch,
}

#[derive(Deserialize)]
struct MixedBatch {
    rows: Vec<usize>,
    logits: Vec<Vec<f32>>,
}

const TOLERANCE: f32 = 1e-4;

#[test]
fn minilm_logits_match_transformers_on_every_backend() {
    let fixture: Fixture =
        serde_json::from_str(include_str!("fixtures/logits_parity.json")).unwrap();
    let minilm = test_support::minilm_dir();
    let tokenizer = AutoTokenizer::from_pretrained(minilm.to_str().unwrap()).unwrap();
    let mut raw =
        glue_data::load_dataset(test_support::glue_dir().to_str().unwrap(), "mrpc").unwrap();
    let dev = EncodedDataset::map(&raw.take("validation").unwrap(), &tokenizer).unwrap();
    let collator = DataCollatorWithPadding::new(&tokenizer);

    for (name, device) in common::devices() {
        let options = PretrainedOptions {
            num_labels: Some(2),
            ..PretrainedOptions::default()
        };
        let (mut model, info) = BertForSequenceClassification::from_pretrained_with_info(
            minilm.to_str().unwrap(),
            &options,
            &device,
        )
        .unwrap();
        assert_eq!(info.missing_keys, ["classifier.bias", "classifier.weight"]);
        assert!(
            info.unexpected_keys.is_empty(),
            "{:?}",
            info.unexpected_keys
        );
        let head = model
            .load_weights(&common::fixture("head.safetensors"))
            .unwrap();
        assert!(head.unexpected_keys.is_empty());
        let model = model.valid();
        for implementation in [AttentionImpl::Explicit, AttentionImpl::Fused] {
            let mut model = model.clone();
            model.set_attention_impl(implementation);
            let name = format!("{name}, {implementation:?} attention");
            assert_logits_match(&model, &fixture, &dev, &collator, &device, &name);
        }
    }
}

/// `model`'s logits on the fixture's batches and on its mixed-length batch, against
/// transformers'.
fn assert_logits_match(
    model: &BertForSequenceClassification,
    fixture: &Fixture,
    dev: &EncodedDataset,
    collator: &DataCollatorWithPadding,
    device: &Device,
    name: &str,
) {
    let mut ours = Vec::new();
    for (batch_index, start) in (0..64).step_by(fixture.batch_size).enumerate() {
        let rows: Vec<_> = (start..start + fixture.batch_size)
            .filter_map(|i| dev.row(i))
            .collect();
        let batch = collator.collate(&rows, device).unwrap();
        assert_eq!(
            batch.input_ids.dims()[1],
            fixture.padded_lengths[batch_index]
        );
        ours.extend(common::values(
            model.forward(&common::input(&batch)).unwrap().logits,
        ));
    }
    let theirs: Vec<f32> = fixture.logits.iter().flatten().copied().collect();
    let diff = common::max_abs_diff(&ours, &theirs);
    assert!(
        diff <= TOLERANCE,
        "{name}: max |logit diff| {diff} over 64 pairs"
    );

    let rows: Vec<_> = fixture
        .mixed_batch
        .rows
        .iter()
        .filter_map(|&i| dev.row(i))
        .collect();
    let batch = collator.collate(&rows, device).unwrap();
    let ours = common::values(model.forward(&common::input(&batch)).unwrap().logits);
    let theirs: Vec<f32> = fixture
        .mixed_batch
        .logits
        .iter()
        .flatten()
        .copied()
        .collect();
    let diff = common::max_abs_diff(&ours, &theirs);
    assert!(
        diff <= TOLERANCE,
        "{name}: mixed-length batch differs by {diff}"
    );
}
