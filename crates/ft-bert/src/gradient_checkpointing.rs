//! Gradient checkpointing, transformers' `gradient_checkpointing=True`: during the forward
//! pass each encoder layer keeps only its input, and during the backward pass it runs again,
//! with autodiff, to give its gradients.
//!
//! burn has no node that recomputes a whole module, so the step is taken in segments: the
//! layers run first without a graph (their parameters frozen, their inputs detached); the head
//! runs with autodiff on the last layer's output, and its backward pass gives that output's
//! gradient; then, from the top, each layer runs again on its saved input and is
//! back-propagated from the gradient of its output (`sum(output · upstream)`), which gives the
//! gradient of its input for the layer below; the embeddings, whose graph was kept, come last.
//! Peak memory holds one layer's activations instead of all of them.
//!
//! Dropout must draw the same masks in both runs of a layer: each layer's run starts from a
//! seed of its own, as torch's checkpoint restores the RNG state. The seeds derive from one
//! key drawn from the device's stream per pass ([`layer_seeds`]): one read from the device,
//! not one per layer.

use burn::module::Module;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::{Device, Tensor};

use crate::attention::AttentionMask;
use crate::error::BertError;
use crate::input::ModelInput;
use crate::model::BertModel;
use crate::pretrained::{PreTrainedModel, SequenceClassifierOutput};
use crate::random::{GOLDEN_GAMMA, mix64, random_key};

/// transformers' `gradient_checkpointing_enable()`, as a pass of its own: every
/// [`PreTrainedModel`] has it.
pub trait GradientCheckpointing: PreTrainedModel {
    /// One training micro-batch's forward and backward pass with the encoder layers'
    /// activations recomputed in the backward pass rather than kept. `loss` turns the
    /// logits into the loss to minimise (the input's labels are not read), whose backward
    /// pass is scaled by `loss_scale`. Returns the logits and the unscaled loss, detached,
    /// and the gradient of every parameter.
    ///
    /// # Shapes
    /// - `input`: `[batch, seq]`; the logits given to `loss`: `[batch, num_labels]`
    fn forward_backward_checkpointed<E: From<BertError>>(
        &self,
        input: &ModelInput,
        loss: impl FnOnce(Tensor<2>) -> Result<Tensor<1>, E>,
        loss_scale: f64,
    ) -> Result<(SequenceClassifierOutput, GradientsParams), E> {
        forward_backward(self, input, loss, loss_scale)
    }
}

impl<M: PreTrainedModel> GradientCheckpointing for M {}

/// A layer's input and the seed its dropout starts from, kept for its second run.
struct SavedLayer {
    input: Tensor<2>,
    seed: u64,
}

/// [`GradientCheckpointing::forward_backward_checkpointed`].
fn forward_backward<M: PreTrainedModel, E: From<BertError>>(
    model: &M,
    input: &ModelInput,
    loss: impl FnOnce(Tensor<2>) -> Result<Tensor<1>, E>,
    loss_scale: f64,
) -> Result<(SequenceClassifierOutput, GradientsParams), E> {
    let rows = input.dropout_rows;
    let base = model.base_model();
    let (embedded, mask) = base.embed(input)?;
    let device = embedded.device();
    let seeds = layer_seeds(&device, base.encoder.layer.len())?;
    let (top, saved) = encode_without_graph(base, embedded.clone().detach(), &mask, seeds);

    let top = top.require_grad();
    let logits = model.classify(base.pool(top.clone(), &mask), rows);
    let loss = loss(logits.clone())?;
    let mut accumulator = GradientsAccumulator::<M>::new();
    let mut upstream = backward_segment(
        model,
        scaled(loss.clone(), loss_scale),
        &top,
        &mut accumulator,
    )?;
    for (layer, saved) in base.encoder.layer.iter().zip(saved).rev() {
        device.seed(saved.seed);
        let input = saved.input.require_grad();
        let output = layer.forward(input.clone(), &mask);
        upstream = backward_segment(model, (output * upstream).sum(), &input, &mut accumulator)?;
    }
    let grads = GradientsParams::from_grads((embedded * upstream).sum().backward(), model);
    accumulator.accumulate(model, grads);
    let output = SequenceClassifierOutput {
        logits: logits.detach(),
        loss: Some(loss.detach()),
    };
    Ok((output, accumulator.grads()))
}

/// One dropout seed per layer, SplitMix64's outputs from one key drawn from `device`'s
/// stream (so that seeding the device fixes them).
fn layer_seeds(device: &Device, layers: usize) -> Result<Vec<u64>, BertError> {
    let key = random_key(device).map_err(|source| BertError::DeviceRead {
        what: "the dropout key of the recomputed layers",
        source,
    })?;
    Ok((1..=layers as u64)
        .map(|n| mix64(key.wrapping_add(n.wrapping_mul(GOLDEN_GAMMA))))
        .collect())
}

/// Every layer on `hidden` with no graph recorded, each from its dropout seed; the last
/// layer's output and what each layer's second run needs.
fn encode_without_graph(
    base: &BertModel,
    mut hidden: Tensor<2>,
    mask: &AttentionMask,
    seeds: Vec<u64>,
) -> (Tensor<2>, Vec<SavedLayer>) {
    let device = hidden.device();
    let mut saved = Vec::with_capacity(base.encoder.layer.len());
    for (layer, seed) in base.encoder.layer.iter().zip(seeds) {
        device.seed(seed);
        saved.push(SavedLayer {
            input: hidden.clone(),
            seed,
        });
        // Frozen parameters and a detached input: autodiff records nothing, yet dropout
        // stays on, since the device still has autodiff.
        hidden = layer.clone().no_grad().forward(hidden, mask);
    }
    (hidden, saved)
}

/// Back-propagates `target` into the parameters' gradients and returns the gradient of
/// `input`, the segment's input.
fn backward_segment<M: PreTrainedModel>(
    model: &M,
    target: Tensor<1>,
    input: &Tensor<2>,
    accumulator: &mut GradientsAccumulator<M>,
) -> Result<Tensor<2>, BertError> {
    let mut grads = target.backward();
    let upstream = input.grad_remove(&mut grads).ok_or(BertError::Internal {
        what: "gradient checkpointing: a layer's input got no gradient",
    })?;
    accumulator.accumulate(model, GradientsParams::from_grads(grads, model));
    Ok(upstream)
}

fn scaled(loss: Tensor<1>, scale: f64) -> Tensor<1> {
    if scale == 1.0 {
        loss
    } else {
        loss.mul_scalar(scale)
    }
}

#[cfg(test)]
mod tests {
    use burn::module::{ModuleVisitor, Param};
    use burn::tensor::{Int, TensorData};
    use rusty_fork::rusty_fork_test;

    use super::*;
    use crate::classification::BertForSequenceClassification;
    use crate::config::BertConfig;
    use crate::input::{Labels, TokenLayout};

    fn config(dropout: f64) -> BertConfig {
        serde_json::from_value(serde_json::json!({
            "vocab_size": 64, "hidden_size": 16, "num_hidden_layers": 3,
            "num_attention_heads": 2, "intermediate_size": 32, "max_position_embeddings": 16,
            "hidden_dropout_prob": dropout, "attention_probs_dropout_prob": dropout,
        }))
        .unwrap()
    }

    /// Two rows of 6 tokens, the second padded after 4.
    fn batch(device: &Device) -> ModelInput {
        let ids = Tensor::<2, Int>::from_data(
            TensorData::new(vec![2i64, 7, 9, 11, 5, 3, 2, 8, 13, 3, 0, 0], [2, 6]),
            device,
        );
        let mask = Tensor::<2, Int>::from_data(
            TensorData::new(vec![1i64, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0], [2, 6]),
            device,
        );
        let labels = Tensor::<1, Int>::from_data(TensorData::new(vec![1i64, 0], [2]), device);
        let layout = TokenLayout::from_row_lengths(6, &[6, 4]).unwrap();
        ModelInput::new(ids.clone(), Some(ids.zeros_like()), mask, layout)
            .unwrap()
            .with_labels(Some(Labels::Class(labels)))
    }

    /// The plain forward and backward pass, with each layer's dropout seeded as the
    /// checkpointed pass seeds it: the gradients it must reproduce.
    fn reference(
        model: &BertForSequenceClassification,
        batch: &ModelInput,
    ) -> (Tensor<1>, GradientsParams) {
        let (mut hidden, mask) = model.bert.embed(batch).unwrap();
        let device = hidden.device();
        let seeds = layer_seeds(&device, model.bert.encoder.layer.len()).unwrap();
        for (layer, seed) in model.bert.encoder.layer.iter().zip(seeds) {
            device.seed(seed);
            hidden = layer.forward(hidden, &mask);
        }
        let logits = model.classify(model.bert.pool(hidden, &mask), batch.dropout_rows);
        let loss = model.loss(logits, batch.labels.as_ref().unwrap()).unwrap();
        let grads = GradientsParams::from_grads(loss.backward(), model);
        (loss, grads)
    }

    /// The largest difference between two sets of gradients, over every parameter, and how
    /// many parameters had a gradient in both.
    struct Compare<'a> {
        a: &'a GradientsParams,
        b: &'a GradientsParams,
        largest: f32,
        compared: usize,
    }

    impl ModuleVisitor for Compare<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let (Some(a), Some(b)) = (self.a.get::<D>(param.id), self.b.get::<D>(param.id)) else {
                panic!("a parameter without a gradient");
            };
            let a = a.into_data().try_to_vec::<f32>().unwrap();
            let b = b.into_data().try_to_vec::<f32>().unwrap();
            for (x, y) in a.iter().zip(&b) {
                self.largest = self.largest.max((x - y).abs() / x.abs().max(1e-2));
            }
            self.compared += 1;
        }
    }

    // In a process of its own: on libtorch (and wgpu) dropout draws from a process-wide
    // generator, which a test on another thread could draw from between the two passes.
    rusty_fork_test! {
        #[test]
        fn recomputed_layers_give_the_gradients_of_the_plain_pass_on_every_backend() {
            for dropout in [0.0, 0.1] {
                for (name, device) in test_support::devices!() {
                    let train = device.clone().autodiff();
                    let model = BertForSequenceClassification::from_config(&config(dropout), 3, &train)
                        .unwrap()
                        .train();
                    let batch = batch(&train);
                    train.seed(7);
                    let (loss, expected) = reference(&model, &batch);
                    train.seed(7);
                    let labels = batch.labels.as_ref().unwrap();
                    let (output, grads) = model
                        .forward_backward_checkpointed::<BertError>(
                            &batch,
                            |logits| model.loss(logits, labels),
                            1.0,
                        )
                        .unwrap();
                    let loss = loss.into_scalar::<f32>();
                    let checkpointed = output.loss.unwrap().into_scalar::<f32>();
                    assert!(
                        (loss - checkpointed).abs() < 1e-5,
                        "{name}: {loss} {checkpointed}"
                    );
                    let mut compare = Compare {
                        a: &expected,
                        b: &grads,
                        largest: 0.0,
                        compared: 0,
                    };
                    model.visit(&mut compare);
                    // Embeddings (5), 3 layers of 16, the pooler and the classifier (2 each).
                    assert_eq!(compare.compared, 5 + 3 * 16 + 2 + 2, "{name}");
                    assert!(
                        compare.largest < 1e-4,
                        "{name}, dropout {dropout}: gradients differ by {}",
                        compare.largest
                    );
                }
            }
        }
    }
}
