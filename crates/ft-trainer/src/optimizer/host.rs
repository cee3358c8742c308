//! AdamW in one fused loop over host memory, where the backend keeps its tensors there.
//!
//! burn has no fused optimizer kernel: on the device, AdamW is about ten tensor operations per
//! parameter, each a pass over memory (and on libtorch each a dispatched ATen call). Where the
//! parameter and its gradient are plain host buffers (flex; libtorch on the CPU), one loop
//! updates parameter and moments together, split across rayon's threads and compiled for each
//! SIMD level, as PyTorch's `_fused_adamw_` does.

use burn::tensor::{Device, Tensor};
use rayon::prelude::*;

#[cfg(feature = "tch")]
use super::libtorch;
use super::{AdamWConfig, StepConstants};

/// Whether tensors on `device` live in host memory that the fused update can write.
pub(super) fn host_memory(device: &Device) -> bool {
    #[cfg(feature = "flex")]
    if *device == Device::flex() {
        return true;
    }
    #[cfg(feature = "tch")]
    if libtorch::is_cpu(device) {
        return true;
    }
    let _ = device;
    false
}

/// The constants of one fused update, rounded to `f32` once.
pub(super) struct HostAdamW {
    grad_scale: f32,
    beta1: f32,
    beta2: f32,
    one_minus_beta1: f32,
    one_minus_beta2: f32,
    decay: f32,
    step_size: f32,
    bias_correction2_sqrt: f32,
    epsilon: f32,
}

impl HostAdamW {
    /// Constants are formed in f64 and rounded once, as PyTorch passes them to its kernel.
    pub(super) fn new(update: &StepConstants, weight_decay: f64) -> Self {
        let c: AdamWConfig = update.config;
        Self {
            grad_scale: update.grad_scale as f32,
            beta1: c.beta1 as f32,
            beta2: c.beta2 as f32,
            one_minus_beta1: (1.0 - c.beta1) as f32,
            one_minus_beta2: (1.0 - c.beta2) as f32,
            decay: (1.0 - update.learning_rate * weight_decay) as f32,
            step_size: (update.learning_rate / update.bias_correction1) as f32,
            bias_correction2_sqrt: update.bias_correction2.sqrt() as f32,
            epsilon: c.epsilon as f32,
        }
    }

    /// Updates `p`, `m` and `v` from `g`, in chunks across rayon's threads.
    pub(super) fn apply(&self, p: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]) {
        const CHUNK: usize = 1 << 14;
        p.par_chunks_mut(CHUNK)
            .zip(m.par_chunks_mut(CHUNK))
            .zip(v.par_chunks_mut(CHUNK))
            .zip(g.par_chunks(CHUNK))
            .for_each(|(((p, m), v), g)| adamw_chunk(self, p, m, v, g));
    }
}

ft_bert::simd_kernel! {
    /// PyTorch's AdamW on one chunk of a parameter, its moments and its gradient.
    ///
    /// Built for baseline x86-64 alone, the square root and division ran four lanes at a time;
    /// picked per CPU at run time they run sixteen where AVX-512 is there.
    fn adamw_chunk(k: &HostAdamW, p: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]) {
        for (((p, m), v), g) in p.iter_mut().zip(m).zip(v).zip(g) {
            let g = g * k.grad_scale;
            *m = k.beta1 * *m + k.one_minus_beta1 * g;
            *v = k.beta2 * *v + k.one_minus_beta2 * g * g;
            let denom = v.sqrt() / k.bias_correction2_sqrt + k.epsilon;
            *p = *p * k.decay - k.step_size * (*m / denom);
        }
    }
}

/// Runs `update` on the `f32` elements of `value` (written in place where the backend allows)
/// and of `grad`, and returns the updated parameter on `device`. The caller checks that both
/// are `f32` tensors on a device for which [`host_memory`] holds.
pub(super) fn update_in_host_memory<const D: usize>(
    value: Tensor<D>,
    grad: Tensor<D>,
    device: &Device,
    mut update: impl FnMut(&mut [f32], &[f32]),
) -> Tensor<D> {
    #[cfg(feature = "tch")]
    let (value, grad) = match libtorch::update_in_place(value, grad, &mut update) {
        Ok(updated) => return updated,
        Err(unchanged) => unchanged,
    };
    // flex: `into_data` hands over the buffer without a copy when nothing else holds it.
    let numel = value.shape().num_elements();
    let mut data = value.into_data();
    let grad = grad.reshape([numel]).into_data();
    match (data.as_mut_slice::<f32>(), grad.as_slice::<f32>()) {
        (Ok(p), Ok(g)) => update(p, g),
        _ => unreachable!("the caller passes fp32 parameters and gradients"),
    }
    Tensor::<D>::from_data(data, device)
}
