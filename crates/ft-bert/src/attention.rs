//! `BertAttention`: multi-head self-attention over the padding mask, then its output block.

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, LayerNorm, Linear};
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, DType, Tensor};

use crate::config::BertConfig;
use crate::init::Init;
use crate::input::ModelInput;
use crate::ops::{attention_softmax, dropout, layer_norm, linear};
use crate::packing::Packing;
use crate::positions::DropoutPositions;

/// How self-attention is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AttentionImpl {
    /// The backend's fused attention where it is faster and can apply the attention dropout
    /// (libtorch's, always) or none applies (evaluation, or a dropout of 0); the explicit path
    /// elsewhere.
    #[default]
    Auto,
    /// Always the explicit matmul-softmax-matmul path.
    Explicit,
    /// The backend's fused kernel wherever it can apply the attention dropout, even where
    /// `Auto` avoids it (for measuring one against the other).
    Fused,
}

/// The padding mask of a batch, prepared once for every layer.
#[derive(Debug, Clone)]
pub struct AttentionMask {
    /// `[batch, 1, 1, seq]`, true on padding.
    pub padding: Tensor<4, Bool>,
    /// `[batch, 1, 1, seq]`, 0 on tokens and the dtype's lowest value on padding, added to the
    /// scores as transformers does.
    pub bias: Tensor<4>,
    /// Where the real tokens sit: the layers run on them only.
    pub(crate) packing: Packing,
    /// Where the rows and tokens sit in the step's batch, which keys dropout.
    pub(crate) positions: DropoutPositions,
}

impl AttentionMask {
    /// transformers' extended attention mask of `input` for scores of `dtype` (padding keys
    /// get the dtype's lowest value), with the packing and dropout keys of its tokens, for a
    /// model whose position embeddings cover `max_positions`.
    ///
    /// # Shapes
    /// - `input.attention_mask`: `[batch, seq]`
    /// - `padding`, `bias`: `[batch, 1, 1, seq]`
    pub fn new(input: &ModelInput, dtype: DType, max_positions: usize) -> Self {
        let attention_mask = &input.attention_mask;
        let [batch, seq] = attention_mask.dims();
        let device = attention_mask.device();
        let packing = Packing::new(&input.layout, &device);
        let positions = DropoutPositions::new(input.dropout_rows, &input.layout, max_positions);
        let padding = attention_mask
            .clone()
            .equal_elem(0)
            .reshape([batch, 1, 1, seq]);
        let lowest = match dtype {
            DType::F16 => -65504.0,
            DType::BF16 => -3.389_531_4e38,
            _ => f32::MIN,
        };
        let bias = Tensor::<4>::zeros([batch, 1, 1, seq], (&device, dtype))
            .mask_fill(padding.clone(), lowest);
        Self {
            padding,
            bias,
            packing,
            positions,
        }
    }
}

/// `attention.self`: the query, key and value projections and the scaled dot product.
#[derive(Module, Debug)]
pub struct BertSelfAttention {
    /// `query`.
    pub query: Linear,
    /// `key`.
    pub key: Linear,
    /// `value`.
    pub value: Linear,
    /// Dropout on attention probabilities.
    pub dropout: Dropout,
    num_heads: usize,
    head_dim: usize,
    #[module(skip)]
    implementation: AttentionImpl,
}

impl BertSelfAttention {
    fn new(config: &BertConfig, init: &Init, path: &str) -> Self {
        let h = config.hidden_size;
        Self {
            query: init.linear(&format!("{path}.query"), h, h),
            key: init.linear(&format!("{path}.key"), h, h),
            value: init.linear(&format!("{path}.value"), h, h),
            dropout: DropoutConfig::new(config.attention_probs_dropout_prob).init(),
            num_heads: config.num_attention_heads,
            head_dim: config.head_dim(),
            implementation: AttentionImpl::Auto,
        }
    }

    /// Chooses how attention is computed (for measuring one path against the other).
    pub fn set_implementation(&mut self, implementation: AttentionImpl) {
        self.implementation = implementation;
    }

    /// The packed tokens' states to their attended context: queries, keys and values are
    /// projected on the tokens, then laid out padded for the scores.
    ///
    /// # Shapes
    /// - `hidden`: `[tokens, hidden]`, the real tokens of `mask`'s batch in
    ///   [`TokenLayout::token_positions`](crate::TokenLayout::token_positions) order
    /// - output: `[tokens, hidden]`
    pub fn forward(&self, hidden: Tensor<2>, mask: &AttentionMask) -> Tensor<2> {
        let [_, width] = hidden.dims();
        let [batch, _, _, seq] = mask.padding.dims();
        let heads = |projected: Tensor<2>| {
            mask.packing
                .unpack(projected)
                .reshape([batch, seq, self.num_heads, self.head_dim])
                .swap_dims(1, 2)
        };
        let query = heads(linear(&self.query, hidden.clone()));
        let key = heads(linear(&self.key, hidden.clone()));
        let value = heads(linear(&self.value, hidden));
        let scale = 1.0 / (self.head_dim as f64).sqrt();

        let context = self.attend(query, key, value, mask, scale);
        mask.packing
            .pack(context.swap_dims(1, 2).reshape([batch, seq, width]))
    }

    /// The attended values of the heads, by the path [`AttentionImpl`] and the backend choose.
    ///
    /// # Shapes
    /// - `query`, `key`, `value`, output: `[batch, heads, seq, head_dim]`
    fn attend(
        &self,
        query: Tensor<4>,
        key: Tensor<4>,
        value: Tensor<4>,
        mask: &AttentionMask,
        scale: f64,
    ) -> Tensor<4> {
        let device = query.device();
        // burn's own test for whether dropout applies (`ops::dropout`).
        let dropout_p = if self.dropout.training.is_enabled() && device.is_autodiff() {
            self.dropout.prob
        } else {
            0.0
        };
        let fused = match self.implementation {
            AttentionImpl::Auto => backend_fused_attention_fits(&device, dropout_p),
            AttentionImpl::Explicit => false,
            AttentionImpl::Fused => true,
        };
        #[cfg(feature = "tch")]
        let (query, key, value) = if fused {
            match crate::libtorch::attention((query, key, value), &mask.bias, dropout_p, scale) {
                Ok(context) => return context,
                Err(qkv) => qkv,
            }
        } else {
            (query, key, value)
        };
        // burn's fused kernel has no dropout on the probabilities: compose it.
        if !fused || dropout_p > 0.0 {
            let [_, _, _, seq] = mask.padding.dims();
            let scores = query.matmul(key.swap_dims(2, 3));
            let probs = dropout(
                &self.dropout,
                attention_softmax(scores, scale, &mask.bias),
                || mask.positions.attention(self.num_heads, seq),
            );
            return probs.matmul(value);
        }
        let padding = if mask_true_attends(&device) {
            mask.padding.clone().bool_not()
        } else {
            mask.padding.clone()
        };
        let [batch, heads, seq, _] = query.dims();
        attention(
            query,
            key,
            value,
            Some(padding.expand([batch, heads, seq, seq])),
            None,
            AttentionModuleOptions::default(),
        )
    }
}

/// Whether the backend's fused attention kernel is worth it here, with attention dropout
/// `dropout_p`.
///
/// - On libtorch it is torch's `scaled_dot_product_attention`, dropout included: in
///   evaluation one call for the explicit path's half dozen, and in training one node whose
///   backward is torch's (`libtorch::attention`), as transformers' default `sdpa` attention
///   runs; on a GPU one memory-efficient attention kernel each way. On the CPU torch has no
///   fused kernel with dropout and composes the explicit path's operations, at the same speed
///   (docs/benchmarks-analysis.md); it runs there too, so that the tests exercise the GPU's path.
/// - burn's kernel elsewhere has no dropout, and under autodiff burn decomposes it into the
///   explicit path's operations.
/// - burn-flex 0.22.1's kernel for short sequences runs each head's two GEMMs on one thread
///   and its softmax through scalar libm `exp`; the explicit path, with batched GEMMs and the
///   vectorised [`attention_softmax`], evaluates MiniLM faster on every CPU measured
///   (docs/BENCHMARKS.md).
fn backend_fused_attention_fits(device: &burn::tensor::Device, dropout_p: f64) -> bool {
    #[cfg(feature = "tch")]
    if is_libtorch(device) {
        return true;
    }
    #[cfg(feature = "flex")]
    if device.clone().without_autodiff() == burn::tensor::Device::flex() {
        return false;
    }
    dropout_p == 0.0
}

/// Whether `attention` reads its boolean mask as "attend" rather than burn's "masked out":
/// burn-tch 0.22.1 hands burn's mask straight to torch's `scaled_dot_product_attention`,
/// which reads true as "attend". Under autodiff burn's own composition reads it, burn's way.
/// The logits parity test against transformers runs both paths on every backend.
fn mask_true_attends(device: &burn::tensor::Device) -> bool {
    #[cfg(feature = "tch")]
    if is_libtorch(device) {
        return !device.is_autodiff();
    }
    let _ = device;
    false
}

/// Whether `device` is a libtorch device, with or without autodiff.
#[cfg(feature = "tch")]
fn is_libtorch(device: &burn::tensor::Device) -> bool {
    matches!(
        device.clone().without_autodiff().as_dispatch(),
        burn_dispatch::DispatchDevice::LibTorch(_)
    )
}

/// `attention.output`: dense, dropout, then LayerNorm with the residual.
#[derive(Module, Debug)]
pub struct BertSelfOutput {
    /// `dense`.
    pub dense: Linear,
    /// `LayerNorm`.
    pub layer_norm: LayerNorm,
    /// Dropout with `hidden_dropout_prob`.
    pub dropout: Dropout,
    #[module(skip)]
    layer_norm_eps: f64,
}

impl BertSelfOutput {
    fn new(config: &BertConfig, init: &Init, path: &str) -> Self {
        let h = config.hidden_size;
        Self {
            dense: init.linear(&format!("{path}.dense"), h, h),
            layer_norm: init.layer_norm(h, config.layer_norm_eps),
            dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
            layer_norm_eps: config.layer_norm_eps,
        }
    }

    /// `LayerNorm(dropout(dense(hidden)) + input)`, on the packed tokens of `mask`'s batch.
    ///
    /// # Shapes
    /// - `hidden`, `input`: `[tokens, hidden]`, the real tokens of `mask`'s batch in
    ///   [`TokenLayout::token_positions`](crate::TokenLayout::token_positions) order
    /// - output: `[tokens, hidden]`
    pub fn forward(&self, hidden: Tensor<2>, input: Tensor<2>, mask: &AttentionMask) -> Tensor<2> {
        let [_, width] = input.dims();
        let hidden = dropout(&self.dropout, linear(&self.dense, hidden), || {
            mask.positions.tokens(width)
        });
        layer_norm(&self.layer_norm, self.layer_norm_eps, hidden + input)
    }
}

/// `attention`: self-attention and its output block.
#[derive(Module, Debug)]
pub struct BertAttention {
    /// `self` (a Rust keyword, hence the name).
    pub self_attention: BertSelfAttention,
    /// `output`.
    pub output: BertSelfOutput,
}

impl BertAttention {
    pub(crate) fn new(config: &BertConfig, init: &Init, path: &str) -> Self {
        Self {
            self_attention: BertSelfAttention::new(config, init, &format!("{path}.self")),
            output: BertSelfOutput::new(config, init, &format!("{path}.output")),
        }
    }

    /// Self-attention over the packed tokens `hidden`, then the output block with the
    /// residual.
    ///
    /// # Shapes
    /// - `hidden`: `[tokens, hidden]`, the real tokens of `mask`'s batch in
    ///   [`TokenLayout::token_positions`](crate::TokenLayout::token_positions) order
    /// - output: `[tokens, hidden]`
    pub fn forward(&self, hidden: Tensor<2>, mask: &AttentionMask) -> Tensor<2> {
        let context = self.self_attention.forward(hidden.clone(), mask);
        self.output.forward(context, hidden, mask)
    }
}
