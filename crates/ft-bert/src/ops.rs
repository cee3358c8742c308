//! Linear layers, GELU, LayerNorm, softmax and dropout, routed to the hand-written flex kernels where they apply
//! and to burn's own operations everywhere else.

use burn::nn::{Dropout, LayerNorm, Linear};
use burn::tensor::Tensor;

use crate::positions::ElementKeys;

/// `linear.forward(x)`.
pub(crate) fn linear<const D: usize>(linear: &Linear, x: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "flex")]
    let x = match &linear.bias {
        Some(bias) => match crate::flex::linear(x, linear.weight.val(), bias.val()) {
            Ok(y) => return y,
            Err(x) => x,
        },
        None => x,
    };
    linear.forward(x)
}

/// Exact (erf) GELU, transformers' `"gelu"`.
pub(crate) fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "flex")]
    let x = match crate::flex::gelu(x) {
        Ok(y) => return y,
        Err(x) => x,
    };
    burn::tensor::activation::gelu(x)
}

/// `norm(x)`. burn keeps a `LayerNorm`'s epsilon private, so the caller passes the one it was
/// built with (`layer_norm_eps`).
pub(crate) fn layer_norm<const D: usize>(
    norm: &LayerNorm,
    epsilon: f64,
    x: Tensor<D>,
) -> Tensor<D> {
    #[cfg(feature = "flex")]
    let x = match &norm.beta {
        Some(beta) => match crate::flex::layer_norm(x, norm.gamma.val(), beta.val(), epsilon) {
            Ok(y) => return y,
            Err(x) => x,
        },
        None => x,
    };
    #[cfg(not(feature = "flex"))]
    let _ = epsilon;
    norm.forward(x)
}

/// Softmax over `dim`.
pub(crate) fn softmax<const D: usize>(x: Tensor<D>, dim: usize) -> Tensor<D> {
    #[cfg(feature = "flex")]
    let x = if dim == D - 1 {
        match crate::flex::softmax_last(x) {
            Ok(y) => return y,
            Err(x) => x,
        }
    } else {
        x
    };
    burn::tensor::activation::softmax(x, dim)
}

/// Attention probabilities `softmax(scores · scale + bias)` over the keys, with the padding
/// bias `[batch, 1, 1, keys]` broadcast over heads and queries.
pub(crate) fn attention_softmax(scores: Tensor<4>, scale: f64, bias: &Tensor<4>) -> Tensor<4> {
    #[cfg(feature = "flex")]
    let scores = match crate::flex::scaled_masked_softmax(scores, scale, bias) {
        Ok(probs) => return probs,
        Err(scores) => scores,
    };
    softmax(scores.mul_scalar(scale) + bias.clone(), 3)
}

/// `dropout.forward(x)`: the identity outside training (the layer's flag off, or a device
/// without autodiff), else inverted dropout with the layer's probability. On flex each
/// element's decision is keyed by its counter from `keys` (see `positions.rs`); burn's
/// dropout, elsewhere, draws in tensor order.
pub(crate) fn dropout<const D: usize>(
    dropout: &Dropout,
    x: Tensor<D>,
    keys: impl FnOnce() -> ElementKeys,
) -> Tensor<D> {
    // burn's own test for whether dropout applies.
    if !dropout.training.is_enabled() || !x.device().is_autodiff() || dropout.prob == 0.0 {
        return x;
    }
    #[cfg(feature = "flex")]
    let x = match crate::flex::dropout(x, dropout.prob, keys()) {
        Ok(y) => return y,
        Err(x) => x,
    };
    #[cfg(not(feature = "flex"))]
    let _ = keys;
    dropout.forward(x)
}
