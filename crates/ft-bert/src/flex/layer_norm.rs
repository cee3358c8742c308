//! LayerNorm under autodiff on flex: one pass forward, one pass backward.
//!
//! Outside autodiff flex already runs LayerNorm as one fused, parallel kernel, so only training
//! comes here: burn's autodiff has no LayerNorm node and records it as nine element-wise
//! operations, each a single-threaded pass that allocates, with about twice as many backward.

use std::sync::Arc;

use burn::backend::Flex;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::flex::FlexTensor;
use burn::tensor::{Shape, Tensor};
use rayon::prelude::*;

use super::tensor::{self, FlexFloat, TrackedFlex, WithStrategy};

/// Rows per rayon task. Fixed, so that the parameter gradients, summed over rows per task and
/// then across tasks in order, come out bit for bit the same on every run.
const ROWS: usize = 64;

/// `LayerNorm(x) = (x − mean) / √(var + eps) · gamma + beta` over the last axis, recorded on
/// the autodiff graph; `Err(x)` unless `x`, `gamma` and `beta` are tracked `f32` flex tensors.
#[allow(
    clippy::result_large_err,
    reason = "the error hands the input tensor back; `Ok` holds a tensor of the same size"
)]
pub(crate) fn layer_norm<const D: usize>(
    x: Tensor<D>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f64,
) -> Result<Tensor<D>, Tensor<D>> {
    let d_model = x.dims()[D - 1];
    if gamma.dims() != [d_model] || beta.dims() != [d_model] {
        return Err(x);
    }
    let (Ok(FlexFloat::Tracked(gamma, strategy)), Ok(FlexFloat::Tracked(beta, beta_strategy))) =
        (tensor::as_flex(gamma), tensor::as_flex(beta))
    else {
        return Err(x);
    };
    if beta_strategy != strategy {
        return Err(x);
    }
    match tensor::as_flex(x)? {
        FlexFloat::Tracked(x, x_strategy) if x_strategy == strategy => {
            let op = Tracked {
                x,
                gamma,
                beta,
                epsilon: epsilon as f32,
            };
            Ok(tensor::wrap(FlexFloat::Tracked(
                tensor::with_strategy(strategy, op),
                strategy,
            )))
        }
        other => Err(tensor::wrap(other)),
    }
}

/// What the backward pass needs: the normalised input, each row's `1/σ`, and `gamma`.
#[derive(Clone, Debug)]
struct Saved {
    normalized: Arc<Vec<f32>>,
    inv_std: Arc<Vec<f32>>,
    gamma: Arc<Vec<f32>>,
    shape: Shape,
}

/// The output, and what the backward pass needs.
fn forward(x: &FlexTensor, gamma: &[f32], beta: &[f32], epsilon: f32) -> (FlexTensor, Saved) {
    let input = tensor::values(x);
    let d = gamma.len();
    let mut out = vec![0.0f32; input.len()];
    let mut normalized = vec![0.0f32; input.len()];
    let mut inv_std = vec![0.0f32; input.len() / d];
    out.par_chunks_mut(ROWS * d)
        .zip(normalized.par_chunks_mut(ROWS * d))
        .zip(inv_std.par_chunks_mut(ROWS))
        .zip(input.par_chunks(ROWS * d))
        .for_each(|(((out, normalized), inv_std), input)| {
            normalize_rows(input, gamma, beta, epsilon, out, normalized, inv_std)
        });
    let saved = Saved {
        normalized: Arc::new(normalized),
        inv_std: Arc::new(inv_std),
        gamma: Arc::new(gamma.to_vec()),
        shape: tensor::shape(x),
    };
    (tensor::from_vec(out, saved.shape.clone()), saved)
}

/// The gradients of the input, `gamma` and `beta` for the output's gradient `grad`:
///
/// `dx = (g·γ − mean(g·γ) − x̂ · mean(g·γ·x̂)) / σ`, `dγ = Σ g·x̂`, `dβ = Σ g` (sums over rows).
fn backward(saved: &Saved, grad: &FlexTensor) -> (FlexTensor, FlexTensor, FlexTensor) {
    let grad = tensor::values(grad);
    let gamma = saved.gamma.as_slice();
    let d = gamma.len();
    let mut dx = vec![0.0f32; grad.len()];
    let partials: Vec<(Vec<f32>, Vec<f32>)> = dx
        .par_chunks_mut(ROWS * d)
        .zip(grad.par_chunks(ROWS * d))
        .zip(saved.normalized.par_chunks(ROWS * d))
        .zip(saved.inv_std.par_chunks(ROWS))
        .map(|(((dx, grad), normalized), inv_std)| {
            let (mut d_gamma, mut d_beta) = (vec![0.0f32; d], vec![0.0f32; d]);
            backward_rows(
                grad,
                normalized,
                inv_std,
                gamma,
                dx,
                &mut d_gamma,
                &mut d_beta,
            );
            (d_gamma, d_beta)
        })
        .collect();
    let (mut d_gamma, mut d_beta) = (vec![0.0f32; d], vec![0.0f32; d]);
    for (pg, pb) in &partials {
        for (((dg, db), &g), &b) in d_gamma.iter_mut().zip(&mut d_beta).zip(pg).zip(pb) {
            *dg += g;
            *db += b;
        }
    }
    let param = Shape::new([d]);
    (
        tensor::from_vec(dx, saved.shape.clone()),
        tensor::from_vec(d_gamma, param.clone()),
        tensor::from_vec(d_beta, param),
    )
}

crate::simd_kernel! {
    /// LayerNorm of each row of `input` into `out`, keeping `x̂` and `1/σ`; compiled for each SIMD
    /// level and picked at run time.
    fn normalize_rows(
        input: &[f32],
        gamma: &[f32],
        beta: &[f32],
        epsilon: f32,
        out: &mut [f32],
        normalized: &mut [f32],
        inv_std: &mut [f32],
    ) {
        let d = gamma.len();
        let rows = out
            .chunks_mut(d)
            .zip(normalized.chunks_mut(d))
            .zip(inv_std.iter_mut())
            .zip(input.chunks(d));
        for (((out, normalized), inv_std), row) in rows {
            // Two passes over the row, as torch does, so that the variance does not cancel.
            let mean = row.iter().sum::<f32>() / d as f32;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / d as f32;
            let rstd = 1.0 / (var + epsilon).sqrt();
            *inv_std = rstd;
            let columns = out.iter_mut().zip(normalized.iter_mut()).zip(row);
            for (((o, n), &v), (&g, &b)) in columns.zip(gamma.iter().zip(beta)) {
                *n = (v - mean) * rstd;
                *o = *n * g + b;
            }
        }
    }
}

crate::simd_kernel! {
    /// The backward pass over whole rows: `dx`, and this task's sums for `dγ` and `dβ`; compiled
    /// for each SIMD level and picked at run time.
    fn backward_rows(
        grad: &[f32],
        normalized: &[f32],
        inv_std: &[f32],
        gamma: &[f32],
        dx: &mut [f32],
        d_gamma: &mut [f32],
        d_beta: &mut [f32],
    ) {
        let d = gamma.len();
        let rows = dx
            .chunks_mut(d)
            .zip(grad.chunks(d))
            .zip(normalized.chunks(d))
            .zip(inv_std);
        for (((dx, g), n), &rstd) in rows {
            let (mut sum_gg, mut sum_ggn) = (0.0f32, 0.0f32);
            for ((&g, &n), &gm) in g.iter().zip(n).zip(gamma) {
                sum_gg += g * gm;
                sum_ggn += g * gm * n;
            }
            let (mean_gg, mean_ggn) = (sum_gg / d as f32, sum_ggn / d as f32);
            for ((dx, (&g, &n)), &gm) in dx.iter_mut().zip(g.iter().zip(n)).zip(gamma) {
                *dx = (g * gm - mean_gg - n * mean_ggn) * rstd;
            }
            for (((dg, db), &g), &n) in d_gamma.iter_mut().zip(d_beta.iter_mut()).zip(g).zip(n) {
                *dg += g * n;
                *db += g;
            }
        }
    }
}

/// The autodiff node: input, `gamma`, `beta`.
#[derive(Debug)]
struct LayerNormBackward;

impl Backward<Flex, 3> for LayerNormBackward {
    type State = Saved;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<Flex>(&ops.node);
        let (dx, d_gamma, d_beta) = backward(&ops.state, &grad);
        tensor::register_gradients(grads, ops, [Some(dx), Some(d_gamma), Some(d_beta)]);
    }
}

/// LayerNorm recorded on the autodiff graph.
struct Tracked {
    x: TrackedFlex,
    gamma: TrackedFlex,
    beta: TrackedFlex,
    epsilon: f32,
}

impl WithStrategy for Tracked {
    type Output = TrackedFlex;

    fn run<C: CheckpointStrategy>(self) -> TrackedFlex {
        let (x, x_node) = self.x.into_parts();
        let (gamma, gamma_node) = self.gamma.into_parts();
        let (beta, beta_node) = self.beta.into_parts();
        let (gamma, beta) = (tensor::values(&gamma), tensor::values(&beta));
        let (output, saved) = forward(&x, &gamma, &beta, self.epsilon);
        let nodes = [x_node, gamma_node, beta_node];
        tensor::record::<_, C, 3>(LayerNormBackward, nodes, output, saved)
    }
}

#[cfg(test)]
mod tests {
    use burn::module::Param;
    use burn::nn::{LayerNorm, LayerNormConfig};
    use burn::tensor::{Device, Tensor, TensorData};

    use crate::kernel_tests::{grid as values, max_diff, to_vec};

    const D_MODEL: usize = 384;

    fn norm(device: &Device) -> LayerNorm {
        let mut norm = LayerNormConfig::new(D_MODEL)
            .with_epsilon(1e-12)
            .init(device);
        norm.gamma = Param::from_data(
            TensorData::new(values(D_MODEL, 1.0, 1.0), [D_MODEL]),
            device,
        );
        norm.beta = Some(Param::from_data(
            TensorData::new(values(D_MODEL, 0.2, 0.0), [D_MODEL]),
            device,
        ));
        norm
    }

    fn assert_close(a: Vec<f32>, b: Vec<f32>, tolerance: f32, what: &str) {
        let worst = max_diff(&a, &b);
        assert!(
            worst < tolerance,
            "{what} differs from burn's LayerNorm by {worst}"
        );
    }

    /// Output and every gradient, through `forward`, for `[3, 131, D_MODEL]` inputs (more
    /// rows than one rayon task) with a large offset, where a one-pass variance would cancel.
    fn run(device: &Device, forward: &dyn Fn(&LayerNorm, Tensor<3>) -> Tensor<3>) -> [Vec<f32>; 4] {
        let norm = norm(device);
        let shape = [3, 131, D_MODEL];
        let n = shape.iter().product();
        let x = Tensor::<3>::from_data(TensorData::new(values(n, 4.0, 30.0), shape), device)
            .require_grad();
        let upstream = Tensor::<3>::from_data(TensorData::new(values(n, 2.0, 0.1), shape), device);
        let y = forward(&norm, x.clone());
        let grads = (y.clone() * upstream).sum().backward();
        let beta = norm.beta.as_ref().expect("the norm has a bias");
        [
            to_vec(y),
            to_vec(x.grad(&grads).expect("x is tracked")),
            to_vec(norm.gamma.val().grad(&grads).expect("gamma is tracked")),
            to_vec(beta.val().grad(&grads).expect("beta is tracked")),
        ]
    }

    #[test]
    fn output_and_gradients_match_burn_under_autodiff() {
        let device = Device::flex().autodiff();
        let [y, dx, dgamma, dbeta] = run(&device, &|norm, x| {
            let beta = norm.beta.as_ref().expect("the norm has a bias").val();
            super::layer_norm(x, norm.gamma.val(), beta, 1e-12).expect("tracked flex tensors")
        });
        let [y_ref, dx_ref, dgamma_ref, dbeta_ref] = run(&device, &|norm, x| norm.forward(x));
        assert_close(y, y_ref, 1e-5, "output");
        assert_close(dx, dx_ref, 1e-5, "input gradient");
        assert_close(dgamma, dgamma_ref, 1e-3, "gamma gradient");
        assert_close(dbeta, dbeta_ref, 1e-3, "beta gradient");
    }

    #[test]
    fn gradients_are_the_same_bits_on_every_run() {
        let device = Device::flex().autodiff();
        let ours = |norm: &LayerNorm, x| {
            let beta = norm.beta.as_ref().expect("the norm has a bias").val();
            super::layer_norm(x, norm.gamma.val(), beta, 1e-12).expect("tracked flex tensors")
        };
        let first = run(&device, &ours);
        for _ in 0..3 {
            assert_eq!(run(&device, &ours), first);
        }
    }

    #[test]
    fn untracked_tensors_are_handed_back() {
        let device = Device::flex();
        let norm = norm(&device);
        let x = Tensor::<3>::ones([2, 3, D_MODEL], &device);
        let beta = norm.beta.as_ref().expect("the norm has a bias").val();
        let back = super::layer_norm(x, norm.gamma.val(), beta, 1e-12)
            .expect_err("evaluation uses flex's own fused LayerNorm");
        assert_eq!(back.dims(), [2, 3, D_MODEL]);
    }
}
