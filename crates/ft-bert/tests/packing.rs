//! The encoder runs on a batch's real tokens only (`TokenLayout`): a padded batch must give
//! each row the outputs and the gradients that the row gives alone, without padding, on every
//! compiled backend.

use crate::common;

use burn::tensor::{Device, Tensor};
use ft_bert::prelude::*;
use ft_bert::{BertConfig, BertForSequenceClassification};

/// One row: input ids, token type ids, attention mask.
type Row = (Vec<i64>, Vec<i64>, Vec<i64>);

fn tiny_config() -> BertConfig {
    let mut config = BertConfig::default();
    config.vocab_size = 100;
    config.hidden_size = 32;
    config.num_hidden_layers = 2;
    config.num_attention_heads = 4;
    config.intermediate_size = 64;
    config.max_position_embeddings = 16;
    // Without dropout the two runs are comparable value for value.
    config.hidden_dropout_prob = 0.0;
    config.attention_probs_dropout_prob = 0.0;
    config
}

/// The logits of `rows` (`ids`, `token types`, `mask`) and the gradients of their sum with
/// respect to a query weight, an output weight and the word embeddings.
fn logits_and_grads(
    model: &BertForSequenceClassification,
    rows: &[Row],
    device: &Device,
) -> (Vec<f32>, [Vec<f32>; 3]) {
    let column = |pick: fn(&Row) -> &Vec<i64>| {
        let rows: Vec<Vec<i64>> = rows.iter().map(|row| pick(row).clone()).collect();
        common::int_tensor(&rows, device)
    };
    let output = model
        .forward(
            &ModelInput::from_tensors(column(|r| &r.0), Some(column(|r| &r.1)), column(|r| &r.2))
                .unwrap(),
        )
        .expect("a valid batch");
    let logits = output.logits;
    let grads = logits.clone().sum().backward();
    let layer = &model.bert.encoder.layer[1];
    let grad = |tensor: Tensor<2>| common::values(tensor.grad(&grads).expect("tracked"));
    (
        common::values(logits),
        [
            grad(layer.attention.self_attention.query.weight.val()),
            grad(layer.output.dense.weight.val()),
            grad(model.bert.embeddings.word_embeddings.weight.val()),
        ],
    )
}

#[test]
fn padded_batch_matches_each_row_alone_forward_and_backward() {
    let long = (vec![2, 17, 33, 5, 3], vec![0, 0, 0, 1, 1], vec![1; 5]);
    let short = (vec![2, 41, 3], vec![0, 0, 1], vec![1; 3]);
    let short_padded = (
        vec![2, 41, 3, 0, 0],
        vec![0, 0, 1, 0, 0],
        vec![1, 1, 1, 0, 0],
    );
    for (name, device) in common::devices() {
        let device = device.autodiff();
        let model = BertForSequenceClassification::from_config(&tiny_config(), 7, &device)
            .expect("a valid config");

        let (batch_logits, batch_grads) =
            logits_and_grads(&model, &[long.clone(), short_padded.clone()], &device);
        let (long_logits, long_grads) =
            logits_and_grads(&model, std::slice::from_ref(&long), &device);
        let (short_logits, short_grads) =
            logits_and_grads(&model, std::slice::from_ref(&short), &device);

        let alone: Vec<f32> = long_logits.into_iter().chain(short_logits).collect();
        let diff = common::max_abs_diff(&batch_logits, &alone);
        assert!(diff < 1e-5, "{name}: logits differ by {diff}");
        for (i, batch) in batch_grads.iter().enumerate() {
            let summed: Vec<f32> = long_grads[i]
                .iter()
                .zip(&short_grads[i])
                .map(|(a, b)| a + b)
                .collect();
            let scale = summed.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            assert!(scale > 0.0, "{name}: gradient {i} is all zero");
            let diff = common::max_abs_diff(batch, &summed);
            assert!(
                diff < 1e-4 * scale.max(1.0),
                "{name}: gradient {i} differs by {diff} (largest {scale})"
            );
        }
    }
}
