//! libtorch's tensors under burn's: the handle behind a burn tensor, for the host loop's
//! in-place update and for libtorch's fused AdamW.

use burn::backend::DispatchDevice;
use burn::backend::libtorch::{LibTorchDevice, TchTensor};
use burn::backend::{BackendTensor, DispatchAutodiffContext, DispatchTensor, DispatchTensorKind};
use burn::tensor::{Device, Tensor};

/// Whether `device` is libtorch's CPU.
pub(super) fn is_cpu(device: &Device) -> bool {
    matches!(
        device.as_dispatch(),
        DispatchDevice::LibTorch(LibTorchDevice::Cpu)
    )
}

/// A libtorch float tensor's handle and autodiff context, or the tensor back.
#[allow(clippy::result_large_err, reason = "the error hands the tensor back")]
pub(super) fn as_libtorch<const D: usize>(
    tensor: Tensor<D>,
) -> Result<(TchTensor, DispatchAutodiffContext), Tensor<D>> {
    match tensor.into_dispatch() {
        DispatchTensor {
            kind: DispatchTensorKind::LibTorch(BackendTensor::Float(t)),
            autodiff,
        } => Ok((t, autodiff)),
        other => Err(Tensor::from_dispatch(other)),
    }
}

pub(super) fn wrap<const D: usize>(
    tensor: TchTensor,
    autodiff: DispatchAutodiffContext,
) -> Tensor<D> {
    Tensor::from_dispatch(DispatchTensor {
        kind: DispatchTensorKind::LibTorch(BackendTensor::Float(tensor)),
        autodiff,
    })
}

/// The update on libtorch's own CPU buffers: the parameter's, written in place when
/// nothing else shares it (else in a contiguous copy), and the gradient's, read.
#[allow(
    clippy::result_large_err,
    reason = "the error hands both tensors back untouched"
)]
pub(super) fn update_in_place<const D: usize>(
    value: Tensor<D>,
    grad: Tensor<D>,
    update: &mut impl FnMut(&mut [f32], &[f32]),
) -> Result<Tensor<D>, (Tensor<D>, Tensor<D>)> {
    let (mut param, autodiff) = match as_libtorch(value) {
        Ok(parts) => parts,
        Err(value) => return Err((value, grad)),
    };
    let grad = match as_libtorch(grad) {
        Ok((grad, _)) => grad.tensor.contiguous(),
        Err(grad) => return Err((wrap(param, autodiff), grad)),
    };
    if !(param.can_mut() && param.tensor.is_contiguous()) {
        param = TchTensor::new(param.tensor.contiguous().copy());
    }
    let numel = param.tensor.numel();
    assert_eq!(grad.numel(), numel, "a gradient has its parameter's shape");
    // SAFETY: both tensors are contiguous `f32` CPU tensors of `numel` elements (the
    // caller checked dtype and device); `param` shares its storage with nothing (checked,
    // or a fresh copy), and `grad` is only read while `param` is written.
    let (p, g) = unsafe {
        (
            std::slice::from_raw_parts_mut(param.tensor.data_ptr().cast::<f32>(), numel),
            std::slice::from_raw_parts(grad.data_ptr().cast::<f32>(), numel),
        )
    };
    update(p, g);
    Ok(wrap(param, autodiff))
}
