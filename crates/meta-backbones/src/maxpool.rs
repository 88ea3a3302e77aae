//! 2×2 max-pooling with stride 2 as a custom autodiff operation, with kernels on flex and (with
//! the `tch` feature) libtorch; burn's composed `reshape` + `max_dim` elsewhere, see
//! [`crate::pool::max_pool2x2`].
//!
//! With `y = pool(x)`, the input gradient `scatter(dy; x)` routes each `dy` to the position of
//! its window's maximum in `x`; its own gradient is `gather(G; x)`, which reads `G` at those
//! positions, and `gather`'s gradient is `scatter` again. The positions depend on `x` only
//! piecewise-constantly, so `x` is a constant of both (their derivative in `x` is zero almost
//! everywhere, as for any max). [`PoolKernels`] for `Autodiff<B>` writes each backward pass
//! with `B`'s kernels, so nested autodiff stays exact. Ties go to the first position in
//! row-major order within the window.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;

/// The pooling kernels a backend provides. `x` is `[N, C, H, W]`; pooled tensors are
/// `[N, C, H/2, W/2]` (an odd last row or column is dropped).
pub trait PoolKernels: Backend {
    /// The maximum of each 2×2 window.
    fn pool_max(x: FloatTensor<Self>) -> FloatTensor<Self>;
    /// A tensor shaped like `x`, zero except `dy` at each window's maximum.
    fn pool_scatter(dy: FloatTensor<Self>, x: FloatTensor<Self>) -> FloatTensor<Self>;
    /// `g` (shaped like `x`) read at each window's maximum.
    fn pool_gather(g: FloatTensor<Self>, x: FloatTensor<Self>) -> FloatTensor<Self>;
}

#[derive(Debug)]
struct MaxBackward;
#[derive(Debug)]
struct ScatterBackward;
#[derive(Debug)]
struct GatherBackward;

impl<B: PoolKernels> Backward<B, 1> for MaxBackward {
    type State = NodeId;

    fn backward(self, ops: Ops<NodeId, 1>, grads: &mut Gradients, cp: &mut Checkpointer) {
        let g = grads.consume::<B>(&ops.node);
        let x = cp.retrieve_node_output::<FloatTensor<B>>(ops.state);
        if let [Some(node)] = ops.parents {
            grads.register::<B>(node.id, B::pool_scatter(g, x));
        }
    }
}

impl<B: PoolKernels> Backward<B, 1> for ScatterBackward {
    /// The pooled input `x`, a constant of the operation.
    type State = FloatTensor<B>;

    fn backward(self, ops: Ops<FloatTensor<B>, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let g = grads.consume::<B>(&ops.node);
        if let [Some(node)] = ops.parents {
            grads.register::<B>(node.id, B::pool_gather(g, ops.state));
        }
    }
}

impl<B: PoolKernels> Backward<B, 1> for GatherBackward {
    /// The pooled input `x`, a constant of the operation.
    type State = FloatTensor<B>;

    fn backward(self, ops: Ops<FloatTensor<B>, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let g = grads.consume::<B>(&ops.node);
        if let [Some(node)] = ops.parents {
            grads.register::<B>(node.id, B::pool_scatter(g, ops.state));
        }
    }
}

impl<B: PoolKernels, C: CheckpointStrategy> PoolKernels for Autodiff<B, C> {
    fn pool_max(x: FloatTensor<Self>) -> FloatTensor<Self> {
        match MaxBackward
            .prepare::<C>([x.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = prep.checkpoint(&x);
                prep.finish(state, B::pool_max(x.primitive))
            }
            OpsKind::UnTracked(prep) => prep.finish(B::pool_max(x.primitive)),
        }
    }

    fn pool_scatter(dy: FloatTensor<Self>, x: FloatTensor<Self>) -> FloatTensor<Self> {
        match ScatterBackward
            .prepare::<C>([dy.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = B::pool_scatter(dy.primitive, x.primitive.clone());
                prep.finish(x.primitive, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::pool_scatter(dy.primitive, x.primitive)),
        }
    }

    fn pool_gather(g: FloatTensor<Self>, x: FloatTensor<Self>) -> FloatTensor<Self> {
        match GatherBackward
            .prepare::<C>([g.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = B::pool_gather(g.primitive, x.primitive.clone());
                prep.finish(x.primitive, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::pool_gather(g.primitive, x.primitive)),
        }
    }
}
