//! What a step of AdamW on a device takes, whichever kernels run it (the composed update over
//! flat buffers, `flat.rs`, or libtorch's fused kernels, `fused.rs`).

use burn::tensor::{Bool, Tensor};

/// What the gradients are multiplied by on their way into the moments.
#[allow(
    clippy::large_enum_variant,
    reason = "one is made a step and passed by reference"
)]
pub(super) enum GradScale {
    /// A host constant: the clipping coefficient, from a norm read beforehand.
    Constant(f64),
    /// A device scalar (shape `[1]`), applied only where `apply` (shape `[1]`) holds:
    /// otherwise the step leaves every value and moment as it was.
    Guarded {
        /// The coefficient.
        scale: Tensor<1>,
        /// Whether the step applies.
        apply: Tensor<1, Bool>,
    },
}

/// A parameter updated on the device: its path, its weight decay, and its value and gradient
/// flattened, in f32.
pub(super) struct FlatInput {
    pub(super) path: String,
    pub(super) weight_decay: f64,
    pub(super) value: Tensor<1>,
    pub(super) grad: Tensor<1>,
}
