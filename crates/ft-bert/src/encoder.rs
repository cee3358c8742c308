//! `BertEncoder`: the stack of transformer layers.

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, LayerNorm, Linear};
use burn::tensor::Tensor;

use crate::attention::{AttentionMask, BertAttention};
use crate::config::{BertConfig, HiddenAct};
use crate::init::Init;
use crate::ops::{activation, dropout, layer_norm, linear};

/// `intermediate`: the feed-forward expansion and its activation.
#[derive(Module, Debug)]
pub struct BertIntermediate {
    /// `dense`, hidden to intermediate size.
    pub dense: Linear,
    #[module(skip)]
    activation: HiddenAct,
}

impl BertIntermediate {
    fn new(config: &BertConfig, init: &Init, path: &str) -> Self {
        Self {
            dense: init.linear(
                &format!("{path}.dense"),
                config.hidden_size,
                config.intermediate_size,
            ),
            activation: config.hidden_act,
        }
    }

    /// `act(dense(hidden))`, token by token.
    ///
    /// # Shapes
    /// - `hidden`: `[tokens, hidden]`
    /// - output: `[tokens, intermediate_size]`
    pub fn forward(&self, hidden: Tensor<2>) -> Tensor<2> {
        activation(self.activation, linear(&self.dense, hidden))
    }
}

/// `output`: the feed-forward contraction, dropout, and LayerNorm with the residual.
#[derive(Module, Debug)]
pub struct BertOutput {
    /// `dense`, intermediate to hidden size.
    pub dense: Linear,
    /// `LayerNorm`.
    pub layer_norm: LayerNorm,
    /// Dropout with `hidden_dropout_prob`.
    pub dropout: Dropout,
    #[module(skip)]
    layer_norm_eps: f64,
}

impl BertOutput {
    fn new(config: &BertConfig, init: &Init, path: &str) -> Self {
        Self {
            dense: init.linear(
                &format!("{path}.dense"),
                config.intermediate_size,
                config.hidden_size,
            ),
            layer_norm: init.layer_norm(config.hidden_size, config.layer_norm_eps),
            dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
            layer_norm_eps: config.layer_norm_eps,
        }
    }

    /// `LayerNorm(dropout(dense(hidden)) + input)`, token by token.
    ///
    /// # Shapes
    /// - `hidden`: `[tokens, intermediate_size]`; `input`: `[tokens, hidden]`
    /// - output: `[tokens, hidden]`
    pub fn forward(&self, hidden: Tensor<2>, input: Tensor<2>, mask: &AttentionMask) -> Tensor<2> {
        let [_, width] = input.dims();
        let hidden = dropout(&self.dropout, linear(&self.dense, hidden), || {
            mask.positions.tokens(width)
        });
        layer_norm(&self.layer_norm, self.layer_norm_eps, hidden + input)
    }
}

/// `encoder.layer.{i}`: attention, then the feed-forward block.
#[derive(Module, Debug)]
pub struct BertLayer {
    /// `attention`.
    pub attention: BertAttention,
    /// `intermediate`.
    pub intermediate: BertIntermediate,
    /// `output`.
    pub output: BertOutput,
}

impl BertLayer {
    fn new(config: &BertConfig, init: &Init, path: &str) -> Self {
        Self {
            attention: BertAttention::new(config, init, &format!("{path}.attention")),
            intermediate: BertIntermediate::new(config, init, &format!("{path}.intermediate")),
            output: BertOutput::new(config, init, &format!("{path}.output")),
        }
    }

    /// One transformer layer on the packed tokens.
    ///
    /// # Shapes
    /// - `hidden`: `[tokens, hidden]`, the real tokens of `mask`'s batch in
    ///   [`TokenLayout::token_positions`](crate::TokenLayout::token_positions) order
    /// - output: `[tokens, hidden]`
    pub fn forward(&self, hidden: Tensor<2>, mask: &AttentionMask) -> Tensor<2> {
        let attended = self.attention.forward(hidden, mask);
        let expanded = self.intermediate.forward(attended.clone());
        self.output.forward(expanded, attended, mask)
    }
}

/// `encoder`.
#[derive(Module, Debug)]
pub struct BertEncoder {
    /// `layer.{i}`.
    pub layer: Vec<BertLayer>,
}

impl BertEncoder {
    pub(crate) fn new(config: &BertConfig, init: &Init, path: &str) -> Self {
        Self {
            layer: (0..config.num_hidden_layers)
                .map(|i| BertLayer::new(config, init, &format!("{path}.layer.{i}")))
                .collect(),
        }
    }

    /// Every layer in turn, on the packed tokens.
    ///
    /// # Shapes
    /// - `hidden`: `[tokens, hidden]`, the real tokens of `mask`'s batch in
    ///   [`TokenLayout::token_positions`](crate::TokenLayout::token_positions) order
    /// - output: `[tokens, hidden]`
    pub fn forward(&self, hidden: Tensor<2>, mask: &AttentionMask) -> Tensor<2> {
        self.layer
            .iter()
            .fold(hidden, |hidden, layer| layer.forward(hidden, mask))
    }
}
