//! Moving between the model's `Tensor` and flex's buffers, with or without autodiff.

use std::borrow::Cow;

use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, NodeGuard, Ops, OpsKind};
use burn::backend::flex::{FlexTensor, Layout};
use burn::backend::tensor::FloatTensor;
use burn::backend::{
    Autodiff, BackendTensor, DispatchAutodiffContext, DispatchTensor, DispatchTensorKind, Flex,
};
use burn::tensor::{Bytes, DType, GradientCheckpointingStrategy, Shape, Tensor};
use rayon::prelude::*;

use crate::autodiff_node;
pub(super) use crate::autodiff_node::{WithStrategy, with_strategy};

/// A float tensor of `Autodiff<Flex>`: flex's buffer plus its autodiff node.
pub(super) type TrackedFlex = FloatTensor<Autodiff<Flex>>;

/// A flex float tensor as the model holds it.
pub(super) enum FlexFloat {
    /// Outside autodiff (evaluation, prediction).
    Plain(FlexTensor),
    /// Recorded by autodiff, with its checkpointing strategy.
    Tracked(TrackedFlex, GradientCheckpointingStrategy),
}

/// The flex `f32` tensor inside `tensor`, or `tensor` back when it is anything else.
#[allow(
    clippy::result_large_err,
    reason = "the error hands the input tensor back; `Ok` holds a tensor of the same size"
)]
pub(super) fn as_flex<const D: usize>(tensor: Tensor<D>) -> Result<FlexFloat, Tensor<D>> {
    if tensor.dtype() != DType::F32 {
        return Err(tensor);
    }
    match tensor.into_dispatch() {
        DispatchTensor {
            kind: DispatchTensorKind::Flex(BackendTensor::Float(t)),
            autodiff: DispatchAutodiffContext::Disabled,
        } => Ok(FlexFloat::Plain(t)),
        DispatchTensor {
            kind: DispatchTensorKind::Autodiff(inner),
            autodiff: DispatchAutodiffContext::Enabled(strategy),
        } => match *inner {
            DispatchTensorKind::Flex(BackendTensor::Autodiff(t)) => {
                Ok(FlexFloat::Tracked(t, strategy))
            }
            other => Err(Tensor::from_dispatch(DispatchTensor {
                kind: DispatchTensorKind::Autodiff(Box::new(other)),
                autodiff: DispatchAutodiffContext::Enabled(strategy),
            })),
        },
        other => Err(Tensor::from_dispatch(other)),
    }
}

/// Wraps a result back into the model's `Tensor`, in the input's autodiff context.
pub(super) fn wrap<const D: usize>(tensor: FlexFloat) -> Tensor<D> {
    Tensor::from_dispatch(match tensor {
        FlexFloat::Plain(t) => DispatchTensor {
            kind: DispatchTensorKind::Flex(BackendTensor::Float(t)),
            autodiff: DispatchAutodiffContext::Disabled,
        },
        FlexFloat::Tracked(t, strategy) => DispatchTensor {
            kind: DispatchTensorKind::Autodiff(Box::new(DispatchTensorKind::Flex(
                BackendTensor::Autodiff(t),
            ))),
            autodiff: DispatchAutodiffContext::Enabled(strategy),
        },
    })
}

/// Runs the element-wise or row-wise `forward` on `x`, the flex `f32` tensor inside it, and
/// under autodiff records it as one compute-bound node, `backward`, whose state `save` builds
/// from the input and the output. `Err(x)` when `x` is not an `f32` flex tensor.
#[allow(
    clippy::result_large_err,
    reason = "the error hands the input tensor back; `Ok` holds a tensor of the same size"
)]
pub(super) fn unary<const D: usize, B, F, S>(
    x: Tensor<D>,
    backward: B,
    forward: F,
    save: S,
) -> Result<Tensor<D>, Tensor<D>>
where
    B: Backward<Flex, 1>,
    F: Fn(&FlexTensor) -> FlexTensor,
    S: FnOnce(FlexTensor, &FlexTensor) -> B::State,
{
    Ok(wrap(match as_flex(x)? {
        FlexFloat::Plain(x) => FlexFloat::Plain(forward(&x)),
        FlexFloat::Tracked(x, strategy) => {
            let op = Unary {
                x,
                backward,
                forward,
                save,
            };
            FlexFloat::Tracked(with_strategy(strategy, op), strategy)
        }
    }))
}

/// A one-input operation recorded on the autodiff graph (see [`unary`]).
struct Unary<B, F, S> {
    x: TrackedFlex,
    backward: B,
    forward: F,
    save: S,
}

impl<B, F, S> WithStrategy for Unary<B, F, S>
where
    B: Backward<Flex, 1>,
    F: Fn(&FlexTensor) -> FlexTensor,
    S: FnOnce(FlexTensor, &FlexTensor) -> B::State,
{
    type Output = TrackedFlex;

    fn run<C: CheckpointStrategy>(self) -> TrackedFlex {
        let (x, node) = self.x.into_parts();
        // Compute-bound: under balanced checkpointing the state is kept rather than the
        // forward pass being replayed, as burn does for its own activations.
        match self
            .backward
            .prepare::<C>([node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = (self.forward)(&x);
                let state = (self.save)(x, &y);
                prep.finish(state, y)
            }
            OpsKind::UnTracked(prep) => prep.finish((self.forward)(&x)),
        }
    }
}

/// `output` recorded on the autodiff graph (see [`autodiff_node::record`]).
pub(super) fn record<B, C, const N: usize>(
    backward: B,
    nodes: [NodeGuard; N],
    output: FlexTensor,
    state: B::State,
) -> TrackedFlex
where
    B: Backward<Flex, N>,
    C: CheckpointStrategy,
{
    autodiff_node::record::<Flex, B, C, N>(backward, nodes, output, state)
}

/// Hands each input gradient to its input (see [`autodiff_node::register_gradients`]).
pub(super) fn register_gradients<S, const N: usize>(
    grads: &mut Gradients,
    ops: Ops<S, N>,
    gradients: [Option<FlexTensor>; N],
) {
    autodiff_node::register_gradients::<Flex, S, N>(grads, ops, gradients);
}

/// A new tensor of `input`'s shape whose elements `f(start, input_chunk, output_chunk)` writes,
/// chunk by chunk across rayon's threads; `start` is the chunk's first row-major position.
pub(super) fn map_chunks<F>(input: &FlexTensor, chunk: usize, f: F) -> FlexTensor
where
    F: Fn(usize, &[f32], &mut [f32]) + Sync,
{
    let input_values = values(input);
    let mut out = vec![0.0f32; input_values.len()];
    out.par_chunks_mut(chunk)
        .zip(input_values.par_chunks(chunk))
        .enumerate()
        .for_each(|(k, (out, input))| f(k * chunk, input, out));
    from_vec(out, shape(input))
}

/// `tensor` with `f(start, chunk)` applied to its elements chunk by chunk across rayon's
/// threads, in its own buffer when that is contiguous and nothing else holds it (as for a
/// gradient flowing backward), else in a copy. `start` is the chunk's first row-major position.
pub(super) fn update_chunks<F>(mut tensor: FlexTensor, chunk: usize, f: F) -> FlexTensor
where
    F: Fn(usize, &mut [f32]) + Sync,
{
    let len = tensor.layout().num_elements();
    let whole = tensor.layout().contiguous_offsets() == Some((0, len))
        && tensor.bytes().len() == len * size_of::<f32>();
    if whole && let Some(values) = tensor.try_storage_mut::<f32>() {
        values
            .par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(k, values)| f(k * chunk, values));
        return tensor;
    }
    map_chunks(&tensor, chunk, |start, input, out| {
        out.copy_from_slice(input);
        f(start, out);
    })
}

/// The row-major `f32` elements of `tensor`, copying only when its layout is a view.
pub(super) fn values(tensor: &FlexTensor) -> Cow<'_, [f32]> {
    match tensor.as_slice::<f32>() {
        Some(slice) => Cow::Borrowed(slice),
        None => {
            let len = tensor.layout().num_elements();
            Cow::Owned(tensor.to_contiguous().storage::<f32>()[..len].to_vec())
        }
    }
}

/// A row-major flex tensor of `shape` holding `values`.
pub(super) fn from_vec(values: Vec<f32>, shape: Shape) -> FlexTensor {
    debug_assert_eq!(values.len(), shape.num_elements());
    FlexTensor::new(
        Bytes::from_elems(values),
        Layout::contiguous(shape),
        DType::F32,
    )
}

/// The shape of `tensor`.
pub(super) fn shape(tensor: &FlexTensor) -> Shape {
    tensor.layout().shape().clone()
}
