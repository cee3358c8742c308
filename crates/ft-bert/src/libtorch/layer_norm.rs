//! LayerNorm under autodiff on libtorch: `native_layer_norm` forward (which also returns each
//! row's mean and `1/σ`), and the backward pass from a dozen ATen calls.

use burn::backend::LibTorch;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::libtorch::TchTensor;
use burn::tensor::Tensor;

use super::tensor::{self, TrackedTch};
use crate::autodiff_node::{self, WithStrategy};

/// `LayerNorm(x) = (x − mean) / √(var + eps) · gamma + beta` over the last axis, recorded as
/// one node; `Err(x)` unless `x`, `gamma` and `beta` are tracked `f32` libtorch tensors.
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
    let (Ok((gamma, strategy)), Ok((beta, beta_strategy))) =
        (tensor::as_tracked(gamma), tensor::as_tracked(beta))
    else {
        return Err(x);
    };
    let (x, x_strategy) = tensor::as_tracked(x)?;
    if beta_strategy != strategy || x_strategy != strategy {
        return Err(tensor::wrap(x, x_strategy));
    }
    let op = Tracked {
        x,
        gamma,
        beta,
        epsilon,
    };
    Ok(tensor::wrap(
        autodiff_node::with_strategy(strategy, op),
        strategy,
    ))
}

/// What the backward pass needs: the input, `gamma`, and each row's mean and `1/σ`
/// (`[..., 1]`).
#[derive(Clone, Debug)]
struct Saved {
    x: TchTensor,
    gamma: TchTensor,
    mean: TchTensor,
    inv_std: TchTensor,
}

/// The gradients of the input, `gamma` and `beta` for the output's gradient `grad`:
///
/// `dx = (g·γ − mean(g·γ) − x̂ · mean(g·γ·x̂)) / σ`, `dγ = Σ g·x̂`, `dβ = Σ g` (sums over rows).
fn backward(saved: &Saved, grad: &tch::Tensor) -> [tch::Tensor; 3] {
    let d_model = saved.gamma.tensor.size()[0];
    let last = [-1i64].as_slice();
    let normalized = (&saved.x.tensor - &saved.mean.tensor) * &saved.inv_std.tensor;
    let scaled = grad * &saved.gamma.tensor;
    let mean_scaled = scaled.mean_dim(last, true, None);
    let mean_projection = (&scaled * &normalized).mean_dim(last, true, None);
    let dx = (scaled - mean_scaled - &normalized * mean_projection) * &saved.inv_std.tensor;
    let rows = grad.reshape([-1, d_model]);
    let first = [0i64].as_slice();
    let d_gamma = (&rows * normalized.reshape([-1, d_model])).sum_dim_intlist(first, false, None);
    let d_beta = rows.sum_dim_intlist(first, false, None);
    [dx, d_gamma, d_beta]
}

/// The autodiff node: input, `gamma`, `beta`.
#[derive(Debug)]
struct LayerNormBackward;

impl Backward<LibTorch, 3> for LayerNormBackward {
    type State = Saved;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<LibTorch>(&ops.node);
        let gradients = backward(&ops.state, &grad.tensor).map(|t| Some(TchTensor::new(t)));
        autodiff_node::register_gradients::<LibTorch, _, 3>(grads, ops, gradients);
    }
}

/// LayerNorm recorded on the autodiff graph.
struct Tracked {
    x: TrackedTch,
    gamma: TrackedTch,
    beta: TrackedTch,
    epsilon: f64,
}

impl WithStrategy for Tracked {
    type Output = TrackedTch;

    fn run<C: CheckpointStrategy>(self) -> TrackedTch {
        let (x, x_node) = self.x.into_parts();
        let (gamma, gamma_node) = self.gamma.into_parts();
        let (beta, beta_node) = self.beta.into_parts();
        let d_model = gamma.tensor.size()[0];
        let (output, mean, inv_std) = x.tensor.native_layer_norm(
            [d_model],
            Some(&gamma.tensor),
            Some(&beta.tensor),
            self.epsilon,
        );
        let saved = Saved {
            x,
            gamma,
            mean: TchTensor::new(mean),
            inv_std: TchTensor::new(inv_std),
        };
        let nodes = [x_node, gamma_node, beta_node];
        let output = TchTensor::new(output);
        autodiff_node::record::<LibTorch, _, C, 3>(LayerNormBackward, nodes, output, saved)
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

    /// Output and every gradient through `forward`, for `[3, 131, D_MODEL]` inputs with a
    /// large offset, where a one-pass variance would cancel.
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

    fn ours(norm: &LayerNorm, x: Tensor<3>) -> Tensor<3> {
        let beta = norm.beta.as_ref().expect("the norm has a bias").val();
        super::layer_norm(x, norm.gamma.val(), beta, 1e-12).expect("tracked libtorch tensors")
    }

    #[test]
    fn output_and_gradients_match_burn_under_autodiff() {
        let device = Device::libtorch().autodiff();
        let [y, dx, d_gamma, d_beta] = run(&device, &ours);
        let reference = run(&device, &|norm, x| norm.forward(x));
        for (what, ours, burns, tolerance) in [
            ("output", y, &reference[0], 1e-5),
            ("input gradient", dx, &reference[1], 1e-5),
            ("gamma gradient", d_gamma, &reference[2], 1e-3),
            ("beta gradient", d_beta, &reference[3], 1e-3),
        ] {
            let worst = max_diff(&ours, burns);
            assert!(worst < tolerance, "{what} differs from burn's by {worst}");
        }
    }

    #[test]
    fn gradient_checkpointing_keeps_the_gradients() {
        let plain = run(&Device::libtorch().autodiff(), &ours);
        let checkpointed = run(
            &Device::libtorch().autodiff().gradient_checkpointing(),
            &ours,
        );
        assert_eq!(plain, checkpointed);
    }

    #[test]
    fn untracked_tensors_are_handed_back() {
        let device = Device::libtorch();
        let norm = norm(&device);
        let x = Tensor::<3>::ones([2, 3, D_MODEL], &device);
        let beta = norm.beta.as_ref().expect("the norm has a bias").val();
        let back = super::layer_norm(x, norm.gamma.val(), beta, 1e-12)
            .expect_err("evaluation takes burn-tch's own fused layer_norm");
        assert_eq!(back.dims(), [2, 3, D_MODEL]);
    }
}
