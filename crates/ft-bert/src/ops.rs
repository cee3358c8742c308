//! Linear layers, activations, LayerNorm, softmax and dropout, routed to the hand-written flex
//! kernels or, under autodiff on libtorch, to one node of libtorch's kernels where they apply,
//! and to burn's own operations everywhere else.

use burn::nn::{Dropout, LayerNorm, Linear};
use burn::tensor::Tensor;
use burn::tensor::activation::{gelu_approximate, mish, relu, sigmoid, silu};

use crate::config::HiddenAct;
use crate::positions::ElementKeys;

/// `linear.forward(x)`, on flex in [`crate::flex`]'s tiles (bf16 under
/// [`crate::autocast::autocast_bf16`]).
///
/// # Shapes
/// - `x`: `[..., d_input]`
/// - output: `[..., d_output]`
pub fn linear<const D: usize>(linear: &Linear, x: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "flex")]
    let x = match &linear.bias {
        Some(bias) => match crate::flex::linear(x, linear.weight.val(), bias.val()) {
            Ok(y) => return y,
            Err(x) => x,
        },
        None => x,
    };
    #[cfg(feature = "tch")]
    let x = match &linear.bias {
        Some(bias) => match crate::libtorch::linear(x, linear.weight.val(), bias.val()) {
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

/// `ACT2FN[name](x)`: the feed-forward activation a config names, element-wise. Exact GELU
/// takes the flex kernel where it applies; the others are burn's activations or compositions
/// of its tensor operations.
pub(crate) fn activation<const D: usize>(act: HiddenAct, x: Tensor<D>) -> Tensor<D> {
    match act {
        HiddenAct::Gelu => gelu(x),
        HiddenAct::GeluNew | HiddenAct::GeluPytorchTanh => gelu_approximate(x),
        HiddenAct::GeluFast => gelu_fast(x),
        HiddenAct::QuickGelu => quick_gelu(x),
        HiddenAct::Relu => relu(x),
        HiddenAct::Silu | HiddenAct::Swish => silu(x),
        HiddenAct::Mish => mish(x),
        HiddenAct::Tanh => x.tanh(),
        HiddenAct::Linear => x,
        HiddenAct::Sigmoid => sigmoid(x),
    }
}

/// transformers' `FastGELUActivation` (`"gelu_fast"`), with its constants:
/// `0.5·x·(1 + tanh(0.7978845608·x·(1 + 0.044715·x²)))`.
fn gelu_fast<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let square = x.clone() * x.clone();
    let inner = (x.clone() * (square.mul_scalar(0.044715) + 1.0)).mul_scalar(0.7978845608);
    (x * (inner.tanh() + 1.0)).mul_scalar(0.5)
}

/// transformers' `QuickGELUActivation` (`"quick_gelu"`): `x·σ(1.702·x)`.
fn quick_gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    x.clone() * sigmoid(x.mul_scalar(1.702))
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
    #[cfg(feature = "tch")]
    let x = match &norm.beta {
        Some(beta) => match crate::libtorch::layer_norm(x, norm.gamma.val(), beta.val(), epsilon) {
            Ok(y) => return y,
            Err(x) => x,
        },
        None => x,
    };
    #[cfg(not(any(feature = "flex", feature = "tch")))]
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
    #[cfg(feature = "tch")]
    let x = if dim == D - 1 {
        match crate::libtorch::softmax_last(x) {
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
/// element's decision is keyed by its counter from `keys` (see `positions.rs`); on libtorch
/// one node draws from libtorch's generator; burn's dropout, elsewhere, draws in tensor order.
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
    #[cfg(feature = "tch")]
    let x = match crate::libtorch::dropout(x, dropout.prob) {
        Ok(y) => return y,
        Err(x) => x,
    };
    dropout.forward(x)
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Tensor, TensorData};

    use super::activation;
    use crate::config::HiddenAct;

    /// transformers' formulas (activations.py) in f64.
    fn reference(act: HiddenAct, x: f64) -> f64 {
        let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
        let tanh_gelu = |c: f64| 0.5 * x * (1.0 + (c * (x + 0.044715 * x * x * x)).tanh());
        match act {
            HiddenAct::Gelu => {
                // std has no erf: Φ(x) is the normal density integrated from -12 to x
                // (Simpson's rule, fine enough for 1e-10).
                let n = 20_000;
                let (a, b) = (-12.0_f64, x);
                let h = (b - a) / n as f64;
                let pdf = |t: f64| (-0.5 * t * t).exp() / (2.0 * std::f64::consts::PI).sqrt();
                let sum: f64 = (0..=n)
                    .map(|i| {
                        let w = if i == 0 || i == n {
                            1.0
                        } else if i % 2 == 1 {
                            4.0
                        } else {
                            2.0
                        };
                        w * pdf(a + i as f64 * h)
                    })
                    .sum();
                x * sum * h / 3.0
            }
            HiddenAct::GeluNew | HiddenAct::GeluPytorchTanh => {
                tanh_gelu((2.0 / std::f64::consts::PI).sqrt())
            }
            HiddenAct::GeluFast => tanh_gelu(0.7978845608),
            HiddenAct::QuickGelu => x * sigmoid(1.702 * x),
            HiddenAct::Relu => x.max(0.0),
            HiddenAct::Silu | HiddenAct::Swish => x * sigmoid(x),
            HiddenAct::Mish => x * x.exp().ln_1p().tanh(),
            HiddenAct::Tanh => x.tanh(),
            HiddenAct::Linear => x,
            HiddenAct::Sigmoid => sigmoid(x),
        }
    }

    #[test]
    fn activations_follow_transformers_formulas_on_every_backend() {
        // -30 to 30: both saturated tails (and mish's softplus past its threshold) and the
        // curved middle, where the variants differ.
        let xs: Vec<f32> = (-600..=600).map(|i| i as f32 * 0.05).collect();
        let expected: Vec<Vec<f64>> = HiddenAct::ALL
            .iter()
            .map(|&act| xs.iter().map(|&x| reference(act, f64::from(x))).collect())
            .collect();
        for (name, device) in test_support::devices!() {
            for (act, expected) in HiddenAct::ALL.into_iter().zip(&expected) {
                let input =
                    Tensor::<2>::from_data(TensorData::new(xs.clone(), [1, xs.len()]), &device);
                let ys = activation(act, input)
                    .into_data()
                    .try_into_vec_as::<f32>()
                    .unwrap();
                for ((&x, &y), &expected) in xs.iter().zip(&ys).zip(expected) {
                    let error = (f64::from(y) - expected).abs();
                    assert!(
                        error <= 1e-5 * expected.abs().max(1.0),
                        "{name}, {act}({x}) = {y}, expected {expected}"
                    );
                }
            }
        }
    }
}
