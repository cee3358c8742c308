//! Self-attention under autodiff on libtorch as one node: torch's
//! `scaled_dot_product_attention`, dropout on the probabilities included, as transformers'
//! default `sdpa` attention runs it. On a GPU that is one memory-efficient attention kernel
//! each way, where the explicit path records two batched matmuls, the scaling, the bias, the
//! softmax and the dropout, and as many backward.
//!
//! torch chooses the kernel per device and shape, and each has its own backward, which tch
//! does not expose: so the node runs torch's own autograd inside it. Forward, the query, key
//! and value enter as fresh leaves that require a gradient, and the output leaves detached, so
//! that nothing burn does with it is recorded by torch; backward, torch differentiates
//! `Σ output · upstream` for the leaves autodiff asks about. The dropout mask lives in torch's
//! saved state (its generator's seed and offset), drawn from the generator `Device::seed`
//! seeds.

use burn::backend::LibTorch;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::libtorch::TchTensor;
use burn::tensor::Tensor;

use super::tensor::{self, TrackedTch};
use crate::autodiff_node::{self, WithStrategy};

/// The query, key and value handed back where the node does not apply.
pub(crate) type Qkv = (Tensor<4>, Tensor<4>, Tensor<4>);

/// `dropout(softmax(query · keyᵀ · scale + bias)) · value`, recorded as one node, with
/// dropout probability `dropout_p` on the probabilities; `Err` with the inputs unless they
/// and `bias` are `f32` libtorch tensors on an autodiff device.
///
/// # Shapes
/// - `query`, `key`, `value`: `[batch, heads, seq, head_dim]`
/// - `bias`: `[batch, 1, 1, seq]`, added to every head's scores
/// - output: `[batch, heads, seq, head_dim]`
#[allow(
    clippy::result_large_err,
    reason = "the error hands the input tensors back; `Ok` holds a tensor of the same size"
)]
pub(crate) fn attention(
    (query, key, value): Qkv,
    bias: &Tensor<4>,
    dropout_p: f64,
    scale: f64,
) -> Result<Tensor<4>, Qkv> {
    let Ok((bias, _)) = tensor::as_tracked(bias.clone()) else {
        return Err((query, key, value));
    };
    let tracked = (
        tensor::as_tracked(query),
        tensor::as_tracked(key),
        tensor::as_tracked(value),
    );
    let (Ok((query, strategy)), Ok((key, key_strategy)), Ok((value, value_strategy))) = tracked
    else {
        let back = |t: Result<(TrackedTch, _), Tensor<4>>| match t {
            Ok((t, strategy)) => tensor::wrap(t, strategy),
            Err(t) => t,
        };
        return Err((back(tracked.0), back(tracked.1), back(tracked.2)));
    };
    if key_strategy != strategy || value_strategy != strategy {
        return Err((
            tensor::wrap(query, strategy),
            tensor::wrap(key, key_strategy),
            tensor::wrap(value, value_strategy),
        ));
    }
    let (bias, _) = bias.into_parts();
    let op = Tracked {
        qkv: [query, key, value],
        bias,
        dropout_p,
        scale,
    };
    Ok(tensor::wrap(
        autodiff_node::with_strategy(strategy, op),
        strategy,
    ))
}

/// What the backward pass needs: torch's graph behind `output`, its leaves, and burn's handles
/// on the same storage, which keep burn from writing into them in place meanwhile.
///
/// burn's node state must be `Clone`, which tch's tensors are not; burn-tch's wrapper clones
/// the handle, which keeps torch's graph and the leaves' identity.
#[derive(Clone, Debug)]
struct Saved {
    output: TchTensor,
    leaves: [TchTensor; 3],
    _storage: [TchTensor; 4],
}

/// The autodiff node: query, key, value.
#[derive(Debug)]
struct AttentionBackward;

impl Backward<LibTorch, 3> for AttentionBackward {
    type State = Saved;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<LibTorch>(&ops.node);
        let wanted: Vec<usize> = (0..3).filter(|&i| ops.parents[i].is_some()).collect();
        let saved = &ops.state;
        let inputs: Vec<&tch::Tensor> = wanted.iter().map(|&i| &saved.leaves[i].tensor).collect();
        let output = &saved.output.tensor;
        let computed = tch::with_grad(|| {
            let root = (output * &grad.tensor).sum(output.kind());
            tch::Tensor::run_backward(&[root], &inputs, false, false)
        });
        let mut gradients = [None, None, None];
        for (i, gradient) in wanted.into_iter().zip(computed) {
            gradients[i] = Some(TchTensor::new(gradient));
        }
        autodiff_node::register_gradients::<LibTorch, _, 3>(grads, ops, gradients);
    }
}

/// Attention recorded on the autodiff graph.
struct Tracked {
    qkv: [TrackedTch; 3],
    bias: TchTensor,
    dropout_p: f64,
    scale: f64,
}

impl WithStrategy for Tracked {
    type Output = TrackedTch;

    fn run<C: CheckpointStrategy>(self) -> TrackedTch {
        let [(query, q_node), (key, k_node), (value, v_node)] = self.qkv.map(|t| t.into_parts());
        // The same call whether or not a gradient is wanted, so that a layer run twice under
        // gradient checkpointing gets the same kernel, and so the same dropout mask.
        let leaves = [&query, &key, &value].map(|t| t.tensor.detach().set_requires_grad(true));
        let output = tch::with_grad(|| {
            tch::Tensor::scaled_dot_product_attention(
                &leaves[0],
                &leaves[1],
                &leaves[2],
                Some(&self.bias.tensor),
                self.dropout_p,
                false,
                self.scale,
                false,
            )
        });
        let result = TchTensor::new(output.detach());
        match AttentionBackward
            .prepare::<C>([q_node, k_node, v_node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let saved = Saved {
                    output: TchTensor::new(output),
                    leaves: leaves.map(TchTensor::new),
                    _storage: [query, key, value, result.clone()],
                };
                prep.finish(saved, result)
            }
            OpsKind::UnTracked(prep) => prep.finish(result),
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Tensor, TensorData};
    use rusty_fork::rusty_fork_test;

    use crate::kernel_tests::{grid, max_diff, to_vec};

    const SHAPE: [usize; 4] = [3, 4, 11, 16];

    /// The explicit path: the model's with its dropout off.
    fn explicit(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>, bias: &Tensor<4>) -> Tensor<4> {
        let scale = 0.25;
        let scores = q.matmul(k.swap_dims(2, 3)).mul_scalar(scale) + bias.clone();
        burn::tensor::activation::softmax(scores, 3).matmul(v)
    }

    /// The query, key and value, tracked, with `nudge` (input, element, amount) added.
    fn inputs(device: &Device, nudge: Option<(usize, usize, f32)>) -> [Tensor<4>; 3] {
        let n = SHAPE.iter().product();
        let spreads = [(2.0, 0.1), (1.5, -0.2), (1.0, 0.3)];
        std::array::from_fn(|which| {
            let (scale, shift) = spreads[which];
            let mut values = grid(n, scale, shift);
            if let Some((_, at, amount)) = nudge.filter(|nudge| nudge.0 == which) {
                values[at] += amount;
            }
            Tensor::<4>::from_data(TensorData::new(values, SHAPE), device).require_grad()
        })
    }

    /// The padding bias: the last three keys of the second row are padding.
    fn run_bias(device: &Device) -> Tensor<4> {
        let mut bias = vec![0.0; 3 * 11];
        bias[11 + 8..2 * 11].fill(f32::MIN);
        Tensor::<4>::from_data(TensorData::new(bias, [3, 1, 1, 11]), device)
    }

    /// `attend`'s output, the upstream gradient, and `Σ output · upstream`'s gradients for the
    /// query, key and value, over [`run_bias`]'s padding.
    fn run_nudged(
        device: &Device,
        attend: &dyn Fn(Tensor<4>, Tensor<4>, Tensor<4>, &Tensor<4>) -> Tensor<4>,
        nudge: Option<(usize, usize, f32)>,
    ) -> [Vec<f32>; 5] {
        let n = SHAPE.iter().product();
        let [q, k, v] = inputs(device, nudge);
        let bias = run_bias(device);
        let upstream = Tensor::<4>::from_data(TensorData::new(grid(n, 1.0, 0.0), SHAPE), device);
        let y = attend(q.clone(), k.clone(), v.clone(), &bias);
        let grads = (y.clone() * upstream.clone()).sum().backward();
        let grad = |t: &Tensor<4>| to_vec(t.grad(&grads).expect("tracked"));
        [to_vec(y), to_vec(upstream), grad(&q), grad(&k), grad(&v)]
    }

    /// Output and the query's, key's and value's gradients through `attend`.
    fn run(
        device: &Device,
        attend: &dyn Fn(Tensor<4>, Tensor<4>, Tensor<4>, &Tensor<4>) -> Tensor<4>,
    ) -> [Vec<f32>; 4] {
        let [y, _, dq, dk, dv] = run_nudged(device, attend, None);
        [y, dq, dk, dv]
    }

    fn ours(dropout_p: f64) -> impl Fn(Tensor<4>, Tensor<4>, Tensor<4>, &Tensor<4>) -> Tensor<4> {
        move |q, k, v, bias| {
            super::attention((q, k, v), bias, dropout_p, 0.25)
                .unwrap_or_else(|_| panic!("tracked libtorch tensors"))
        }
    }

    #[test]
    fn output_and_gradients_match_the_explicit_path_without_dropout() {
        let device = Device::libtorch().autodiff();
        let ours = run(&device, &ours(0.0));
        let reference = run(&device, &explicit);
        for (what, (ours, reference)) in ["output", "query", "key", "value"]
            .into_iter()
            .zip(ours.iter().zip(&reference))
        {
            let worst = max_diff(ours, reference);
            assert!(
                worst < 1e-5,
                "{what} differs from the explicit path by {worst}"
            );
        }
        let checkpointed = Device::libtorch().autodiff().gradient_checkpointing();
        assert_eq!(run(&checkpointed, &super::tests::ours(0.0)), ours);
    }

    // In a process of its own: it compares draws from libtorch's process-wide generator.
    rusty_fork_test! {
        #[test]
        fn dropout_is_drawn_from_the_seeded_generator_and_differentiated_with_its_mask() {
            let device = Device::libtorch().autodiff();
            let seeded = |seed| {
                device.seed(seed);
                run(&device, &ours(0.3))
            };
            let first = seeded(7);
            assert_eq!(seeded(7), first, "the seed fixes the mask");
            assert_ne!(seeded(8)[0], first[0], "another seed, another mask");
            // Gradient checkpointing runs a layer first with nothing tracked, then again
            // tracked, from the same seed: both runs must draw the same mask.
            device.seed(7);
            let [q, k, v] = inputs(&device, None).map(|t| t.detach());
            let bias = run_bias(&device);
            let untracked = to_vec(ours(0.3)(q, k, v, &bias));
            assert_eq!(untracked, first[0], "the untracked run drew another mask");
            let without = run(&device, &ours(0.0));
            assert!(max_diff(&first[0], &without[0]) > 1e-3, "dropout applied");
            // The gradients belong to the mask the forward pass drew: against central differences
            // of Σ output · upstream, the same seed (so the same mask) on each side.
            let objective = |nudge| {
                device.seed(7);
                let [y, upstream, ..] = run_nudged(&device, &ours(0.3), Some(nudge));
                y.iter().zip(&upstream).map(|(y, g)| f64::from(y * g)).sum::<f64>()
            };
            let h = 1e-2;
            for (which, at) in [(0, 5), (0, 700), (1, 13), (1, 1500), (2, 40), (2, 2000)] {
                let numeric = (objective((which, at, h)) - objective((which, at, -h))) / (2.0 * h as f64);
                let analytic = f64::from(first[1 + which][at]);
                assert!(
                    (numeric - analytic).abs() < 2e-3 + 1e-2 * analytic.abs(),
                    "input {which}, element {at}: {analytic} against {numeric}"
                );
            }
        }
    }

    #[test]
    fn tensors_outside_autodiff_are_handed_back() {
        let device = Device::libtorch();
        let t = || Tensor::<4>::ones([1, 2, 3, 4], &device);
        let bias = Tensor::<4>::zeros([1, 1, 1, 3], &device);
        let (q, _, _) = super::attention((t(), t(), t()), &bias, 0.0, 0.5)
            .expect_err("evaluation takes burn-tch's attention");
        assert_eq!(q.dims(), [1, 2, 3, 4]);
    }
}
