//! AdamW on libtorch through its own fused kernels (`csrc/fused_adamw.cpp`): the gradients'
//! global norm by `_foreach_norm`, as `clip_grad_norm_` computes it, and each weight-decay
//! group's update by `_fused_adamw_`, the kernel of the HF Trainer's `adamw_torch_fused`. On a
//! GPU that is a handful of launches a step where the composed update
//! ([`super::flat`]) takes about fifteen per group and a concatenation of every gradient; on
//! the CPU it is one pass over memory instead of about sixteen.
//!
//! The clipping coefficient and the non-finite guard reach the kernel as device scalars
//! (`grad_scale`, `found_inf`), as `torch.amp.GradScaler` passes them: nothing is read.

use std::ffi::{CStr, c_char};

use burn::backend::DispatchDevice;
use burn::backend::libtorch::TchTensor;
use burn::tensor::{Device, Tensor};
use tch::Kind;
use torch_sys::C_tensor;

use super::StepConstants;
use super::device_update::{FlatInput, GradScale};
use super::libtorch::{as_libtorch, wrap};

unsafe extern "C" {
    fn ft_total_norm(grads: *const *mut C_tensor, n: usize, out: *mut *mut C_tensor)
    -> *mut c_char;
    #[allow(clippy::too_many_arguments, reason = "the kernel's own arguments")]
    fn ft_fused_adamw(
        values: *const *mut C_tensor,
        grads: *const *mut C_tensor,
        n: usize,
        exp_avg: *mut C_tensor,
        exp_avg_sq: *mut C_tensor,
        step: *mut C_tensor,
        lr: f64,
        beta1: f64,
        beta2: f64,
        weight_decay: f64,
        eps: f64,
        grad_scale: *const C_tensor,
        found_inf: *const C_tensor,
        out: *mut *mut C_tensor,
    ) -> *mut c_char;
    fn ft_free_error(error: *mut c_char);
}

/// Whether `device` is libtorch's, where the fused kernels run.
pub(super) fn is_libtorch(device: &Device) -> bool {
    matches!(device.as_dispatch(), DispatchDevice::LibTorch(_))
}

/// One weight-decay group's parameters as libtorch tensors, flattened.
pub(super) struct Members {
    values: Vec<tch::Tensor>,
    grads: Vec<tch::Tensor>,
}

impl Members {
    /// The handles of `inputs`, all on a libtorch device ([`is_libtorch`]).
    pub(super) fn new(inputs: Vec<FlatInput>) -> Self {
        let (values, grads) = inputs
            .into_iter()
            .map(|input| (handle(input.value), handle(input.grad)))
            .unzip();
        Self { values, grads }
    }

    /// The libtorch device of the group's tensors.
    pub(super) fn device(&self) -> tch::Device {
        self.values
            .first()
            .map_or(tch::Device::Cpu, tch::Tensor::device)
    }
}

/// The libtorch tensor behind `tensor`.
fn handle(tensor: Tensor<1>) -> tch::Tensor {
    match as_libtorch(tensor) {
        Ok((tensor, _)) => tensor.tensor.shallow_clone(),
        Err(_) => unreachable!("a tensor on a libtorch device is libtorch's"),
    }
}

/// A libtorch tensor that nothing else shares, to be written in place: `tensor`'s own, or a
/// copy.
fn unshared(tensor: Tensor<1>) -> tch::Tensor {
    match as_libtorch(tensor) {
        Ok((tensor, _)) if tensor.can_mut() && tensor.tensor.is_contiguous() => {
            tensor.tensor.shallow_clone()
        }
        Ok((tensor, _)) => tensor.tensor.contiguous().copy(),
        Err(_) => unreachable!("moments live on their parameters' libtorch device"),
    }
}

fn to_burn(tensor: tch::Tensor) -> Tensor<1> {
    wrap(TchTensor::new(tensor), Default::default())
}

/// Calls one of the shim's functions, which returns a new tensor through its last argument;
/// its error, from libtorch, means a broken invariant of ours (shapes, dtypes, devices).
fn call(shim: impl FnOnce(*mut *mut C_tensor) -> *mut c_char) -> tch::Tensor {
    let mut out = std::ptr::null_mut();
    let error = shim(&mut out);
    if !error.is_null() {
        // SAFETY: the shim returns a NUL-terminated string from `strdup`, freed here once.
        let message = unsafe { CStr::from_ptr(error) }
            .to_string_lossy()
            .into_owned();
        unsafe { ft_free_error(error) };
        panic!("libtorch's fused AdamW: {message}");
    }
    // SAFETY: on success the shim stored a heap `at::Tensor` that the caller now owns.
    unsafe { tch::Tensor::from_ptr(out) }
}

/// The L2 norm of every group's gradients together (shape `[1]`).
pub(super) fn total_norm<'a>(groups: impl Iterator<Item = &'a Members>) -> Tensor<1> {
    let grads: Vec<*mut C_tensor> = groups
        .flat_map(|members| &members.grads)
        .map(|grad| grad.as_ptr().cast_mut())
        .collect();
    // SAFETY: `grads` points at live tensors for the call's duration.
    to_burn(call(|out| unsafe {
        ft_total_norm(grads.as_ptr(), grads.len(), out)
    }))
}

/// A step's device scalars: its count, and how the gradients are scaled and guarded.
pub(super) struct Scalars {
    step: tch::Tensor,
    grad_scale: Option<tch::Tensor>,
    found_inf: Option<tch::Tensor>,
}

impl Scalars {
    /// `scale` as the kernel takes it: a divisor, and 1 in `found_inf` where the step must
    /// not apply. Filled on the device from host values, never copied from the host (on CUDA
    /// such a copy waits for the queue).
    pub(super) fn new(k: &StepConstants, scale: &GradScale, device: &tch::Device) -> Self {
        let full = |value: f64| tch::Tensor::full([1], value, (Kind::Float, *device));
        let (grad_scale, found_inf) = match scale {
            GradScale::Constant(s) if *s == 1.0 => (None, None),
            GradScale::Constant(s) => (Some(full(1.0 / s)), None),
            GradScale::Guarded { scale, apply } => (
                Some(handle(scale.clone().recip())),
                Some(handle(apply.clone().bool_not().float())),
            ),
        };
        Self {
            step: full(k.step as f64),
            grad_scale,
            found_inf,
        }
    }
}

/// One group's update by `_fused_adamw_`: its moments in place (in a copy if shared), and its
/// new values, concatenated, returned.
pub(super) fn step(
    members: Members,
    moments: (Tensor<1>, Tensor<1>),
    k: &StepConstants,
    weight_decay: f64,
    scalars: &Scalars,
) -> (Tensor<1>, (Tensor<1>, Tensor<1>)) {
    let (mut exp_avg, mut exp_avg_sq) = (unshared(moments.0), unshared(moments.1));
    let pointers = |tensors: &[tch::Tensor]| -> Vec<*mut C_tensor> {
        tensors.iter().map(|t| t.as_ptr().cast_mut()).collect()
    };
    let (values, grads) = (pointers(&members.values), pointers(&members.grads));
    let optional = |t: &Option<tch::Tensor>| t.as_ref().map_or(std::ptr::null(), |t| t.as_ptr());
    let c = k.config;
    // SAFETY: every pointer is a live tensor for the call's duration; the moments are written
    // in place and shared with nothing (`unshared`), the gradients are consumed.
    let updated = call(|out| unsafe {
        ft_fused_adamw(
            values.as_ptr(),
            grads.as_ptr(),
            values.len(),
            exp_avg.as_mut_ptr(),
            exp_avg_sq.as_mut_ptr(),
            scalars.step.as_ptr().cast_mut(),
            k.learning_rate,
            c.beta1,
            c.beta2,
            weight_decay,
            c.epsilon,
            optional(&scalars.grad_scale),
            optional(&scalars.found_inf),
            out,
        )
    });
    (to_burn(updated), (to_burn(exp_avg), to_burn(exp_avg_sq)))
}
