//! Linear layers, LayerNorm, softmax, dropout and attention under autodiff on libtorch, each
//! one node with libtorch's own kernels, where burn's autodiff records them as a composition
//! of primitive operations.
//!
//! Outside autodiff burn-tch already calls torch's fused `layer_norm` and `softmax`; under
//! autodiff burn decomposes both: LayerNorm into about nine element-wise operations forward
//! and twice as many backward, softmax into five forward and about eight backward. On a GPU
//! each is a kernel launch, and at batch 8 a bert-base step is bound by launches, not by
//! arithmetic. Here LayerNorm is one `native_layer_norm` forward and about a dozen ATen calls
//! backward (tch 0.22 has no `native_layer_norm_backward`); softmax is one `softmax` forward
//! and one `_softmax_backward_data` backward; a linear layer is one `addmm` forward and three
//! operations backward; dropout is one `native_dropout` forward (one kernel on a GPU, where
//! burn draws a float mask, multiplies and scales) and one `native_dropout_backward`; and
//! self-attention is torch's `scaled_dot_product_attention` with its own backward.
//!
//! Each function takes the model's `Tensor` and hands it back untouched (`Err`) unless it is
//! a tracked `f32` libtorch tensor, so callers fall back to burn's own operation everywhere
//! else. Results agree with burn's to float rounding, and dropout's masks keep the elements
//! in the proportion and with the scale burn's do (tests here, on libtorch's CPU device).

mod attention;
mod dropout;
mod layer_norm;
mod linear;
mod softmax;
mod tensor;

pub(crate) use attention::attention;
pub(crate) use dropout::dropout;
pub(crate) use layer_norm::layer_norm;
pub(crate) use linear::linear;
pub(crate) use softmax::softmax_last;
