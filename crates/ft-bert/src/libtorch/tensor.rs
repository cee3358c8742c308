//! Moving between the model's `Tensor` and libtorch's tensors under autodiff.

use burn::backend::tensor::FloatTensor;
use burn::backend::{
    Autodiff, BackendTensor, DispatchAutodiffContext, DispatchTensor, DispatchTensorKind, LibTorch,
};
use burn::tensor::{DType, GradientCheckpointingStrategy, Tensor};

/// A float tensor of `Autodiff<LibTorch>`: libtorch's tensor plus its autodiff node.
pub(super) type TrackedTch = FloatTensor<Autodiff<LibTorch>>;

/// The libtorch `f32` tensor inside `tensor` with its checkpointing strategy, when autodiff
/// records it; `tensor` back otherwise.
#[allow(
    clippy::result_large_err,
    reason = "the error hands the input tensor back; `Ok` holds a tensor of the same size"
)]
pub(super) fn as_tracked<const D: usize>(
    tensor: Tensor<D>,
) -> Result<(TrackedTch, GradientCheckpointingStrategy), Tensor<D>> {
    if tensor.dtype() != DType::F32 {
        return Err(tensor);
    }
    match tensor.into_dispatch() {
        DispatchTensor {
            kind: DispatchTensorKind::Autodiff(inner),
            autodiff: DispatchAutodiffContext::Enabled(strategy),
        } => match *inner {
            DispatchTensorKind::LibTorch(BackendTensor::Autodiff(t)) => Ok((t, strategy)),
            other => Err(Tensor::from_dispatch(DispatchTensor {
                kind: DispatchTensorKind::Autodiff(Box::new(other)),
                autodiff: DispatchAutodiffContext::Enabled(strategy),
            })),
        },
        other => Err(Tensor::from_dispatch(other)),
    }
}

/// Wraps a recorded result back into the model's `Tensor`.
pub(super) fn wrap<const D: usize>(
    tensor: TrackedTch,
    strategy: GradientCheckpointingStrategy,
) -> Tensor<D> {
    Tensor::from_dispatch(DispatchTensor {
        kind: DispatchTensorKind::Autodiff(Box::new(DispatchTensorKind::LibTorch(
            BackendTensor::Autodiff(tensor),
        ))),
        autodiff: DispatchAutodiffContext::Enabled(strategy),
    })
}
