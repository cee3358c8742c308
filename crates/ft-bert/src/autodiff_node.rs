//! Recording our own operations on burn's autodiff graph, on any backend: one node per
//! operation, with a backward pass written by hand, where burn's autodiff would record each
//! primitive step of the composed operation as its own node.
//!
//! burn picks the checkpointing strategy at run time (`GradientCheckpointingStrategy`) but
//! takes it as a type parameter; [`with_strategy`] bridges the two.

use burn::backend::autodiff::checkpoint::strategy::{
    BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, NodeGuard, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend};
use burn::tensor::GradientCheckpointingStrategy;

/// An operation to record, generic over the checkpointing strategy type.
pub(crate) trait WithStrategy {
    /// The output of the operation.
    type Output;
    /// The operation, for one strategy type.
    fn run<C: CheckpointStrategy>(self) -> Self::Output;
}

/// Calls `op.run::<C>()` with `C` the type that matches `strategy`.
pub(crate) fn with_strategy<Op: WithStrategy>(
    strategy: GradientCheckpointingStrategy,
    op: Op,
) -> Op::Output {
    match strategy {
        GradientCheckpointingStrategy::Disabled => op.run::<NoCheckpointing>(),
        GradientCheckpointingStrategy::Balanced => op.run::<BalancedCheckpointing>(),
    }
}

/// `output` recorded on the autodiff graph as one compute-bound node of `backward` over the
/// inputs' `nodes`, keeping `state` for the backward pass when any input needs a gradient.
pub(crate) fn record<Bk, B, C, const N: usize>(
    backward: B,
    nodes: [NodeGuard; N],
    output: FloatTensor<Bk>,
    state: B::State,
) -> FloatTensor<Autodiff<Bk>>
where
    Bk: Backend,
    B: Backward<Bk, N>,
    C: CheckpointStrategy,
{
    // Compute-bound: under balanced checkpointing the state is kept rather than the forward
    // pass being replayed, as burn does for its own activations.
    match backward.prepare::<C>(nodes).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish(state, output),
        OpsKind::UnTracked(prep) => prep.finish(output),
    }
}

/// Hands each of a node's input gradients to its input, where autodiff tracks that input
/// (`None` for an input that needs none).
pub(crate) fn register_gradients<Bk: Backend, S, const N: usize>(
    grads: &mut Gradients,
    ops: Ops<S, N>,
    gradients: [Option<FloatTensor<Bk>>; N],
) {
    for (parent, gradient) in ops.parents.into_iter().zip(gradients) {
        if let (Some(parent), Some(gradient)) = (parent, gradient) {
            grads.register::<Bk>(parent.id, gradient);
        }
    }
}
