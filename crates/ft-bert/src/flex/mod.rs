//! Hand-written kernels for the hottest blocks on the flex backend: the element-wise ones, and
//! the linear layers' GEMMs (`linear` on `gemm`'s tiles), whose threading we choose and which
//! run in bf16 under autocast.
//!
//! Flex runs every element-wise operation on one thread with scalar libm calls, and burn's
//! autodiff records each step of a composed block as its own node. For GELU, LayerNorm, softmax
//! and dropout that was the largest cost of a MiniLM training step after the GEMMs
//! (docs/BENCHMARKS.md); these kernels run each as one pass across rayon's threads, with a
//! backward pass written by hand.
//!
//! Each kernel takes the model's `Tensor` and hands it back untouched (`Err`) when it is not an
//! `f32` flex tensor, so callers fall back to burn's own operation on every other backend and
//! dtype. Results agree with burn's to float rounding (tests here), and every reduction runs in
//! a fixed order, so a run is reproducible bit for bit as before.

mod dropout;
mod gelu;
mod gemm;
mod layer_norm;
mod linear;
mod math;
mod softmax;
mod tensor;

pub(crate) use dropout::dropout;
pub(crate) use gelu::gelu;
pub use gemm::{Bf16Kernel, FORCE_VARIABLE};
pub(crate) use layer_norm::layer_norm;
pub(crate) use linear::linear;
pub(crate) use softmax::{scaled_masked_softmax, softmax_last};
