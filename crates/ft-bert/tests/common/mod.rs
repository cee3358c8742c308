//! Helpers shared by ft-bert's integration tests.

#![allow(dead_code)]

use std::path::PathBuf;

use burn::tensor::{Device, Int, Tensor, TensorData};

/// Every backend this test build has, each with a name for messages.
pub fn devices() -> Vec<(&'static str, Device)> {
    test_support::devices!()
}

/// A fixture file of this crate.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A `[rows, cols]` Int tensor from nested rows.
pub fn int_tensor(rows: &[Vec<i64>], device: &Device) -> Tensor<2, Int> {
    let cols = rows.first().map_or(0, Vec::len);
    let flat: Vec<i64> = rows.iter().flatten().copied().collect();
    Tensor::from_data(TensorData::new(flat, [rows.len(), cols]), device)
}

/// A float tensor's values.
pub fn values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor.into_data().try_into_vec_as::<f32>().unwrap()
}

/// The largest absolute difference.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// A collated batch as the model's input (the Trainer's `model_input`, which this crate's
/// tests cannot reach: the model sits below the Trainer).
pub fn input(batch: &ft_collate::Batch) -> ft_bert::ModelInput {
    let layout = ft_bert::TokenLayout::from_row_lengths(batch.seq_len, &batch.lengths).unwrap();
    let labels = batch.labels.as_ref().map(|labels| match labels {
        ft_collate::Labels::Class(classes) => ft_bert::Labels::Class(classes.clone()),
        ft_collate::Labels::Score(scores) => ft_bert::Labels::Score(scores.clone()),
    });
    ft_bert::ModelInput::new(
        batch.input_ids.clone(),
        batch.token_type_ids.clone(),
        batch.attention_mask.clone(),
        layout,
    )
    .unwrap()
    .with_labels(labels)
}
