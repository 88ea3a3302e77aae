//! 2×2 max-pooling with stride 2 as a custom autodiff operation, with kernels on flex and (with
//! the `tch` feature) libtorch; burn's composed `reshape` + `max_dim` elsewhere, see
//! [`crate::pool::max_pool2x2`].
//!
//! With `y = pool(x)`, the input gradient `scatter(dy; x)` routes each `dy` to the position of
//! its window's maximum in `x`; its own gradient is `gather(G; x)`, which reads `G` at those
//! positions, and `gather`'s gradient is `scatter` again. The positions depend on `x` only
//! piecewise-constantly, so `x` is a constant of both (their derivative in `x` is zero almost
//! everywhere, as for any max); the forward pass records them once
//! ([`PoolKernels::Argmax`]) for every backward pass that follows. [`PoolKernels`] for `Autodiff<B>` writes each backward pass
//! with `B`'s kernels, so nested autodiff stays exact. Ties go to the first position in
//! row-major order within the window.

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;

/// The pooling kernels a backend provides. `x` is `[N, C, H, W]`; pooled tensors are
/// `[N, C, H/2, W/2]` (an odd last row or column is dropped).
pub trait PoolKernels: Backend {
    /// What the backward passes read to find each window's maximum, recorded by the forward
    /// pass: the pooled input itself (flex) or the positions of the maxima (libtorch).
    type Argmax: Clone + Send + Sync + core::fmt::Debug + 'static;
    /// The maximum of each 2×2 window.
    fn pool_max(x: FloatTensor<Self>) -> FloatTensor<Self>;
    /// [`pool_max`](Self::pool_max) and the record its backward passes need.
    fn pool_max_argmax(x: FloatTensor<Self>) -> (FloatTensor<Self>, Self::Argmax);
    /// A tensor shaped like the pooled input, zero except `dy` at each window's maximum.
    fn pool_scatter(dy: FloatTensor<Self>, at: Self::Argmax) -> FloatTensor<Self>;
    /// `g` (shaped like the pooled input) read at each window's maximum.
    fn pool_gather(g: FloatTensor<Self>, at: Self::Argmax) -> FloatTensor<Self>;
}

#[derive(Debug)]
struct MaxBackward;
#[derive(Debug)]
struct ScatterBackward;
#[derive(Debug)]
struct GatherBackward;

impl<B: PoolKernels> Backward<B, 1> for MaxBackward {
    type State = B::Argmax;

    fn backward(self, ops: Ops<B::Argmax, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let g = grads.consume::<B>(&ops.node);
        if let [Some(node)] = ops.parents {
            grads.register::<B>(node.id, B::pool_scatter(g, ops.state));
        }
    }
}

impl<B: PoolKernels> Backward<B, 1> for ScatterBackward {
    type State = B::Argmax;

    fn backward(self, ops: Ops<B::Argmax, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let g = grads.consume::<B>(&ops.node);
        if let [Some(node)] = ops.parents {
            grads.register::<B>(node.id, B::pool_gather(g, ops.state));
        }
    }
}

impl<B: PoolKernels> Backward<B, 1> for GatherBackward {
    type State = B::Argmax;

    fn backward(self, ops: Ops<B::Argmax, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let g = grads.consume::<B>(&ops.node);
        if let [Some(node)] = ops.parents {
            grads.register::<B>(node.id, B::pool_scatter(g, ops.state));
        }
    }
}

impl<B: PoolKernels, C: CheckpointStrategy> PoolKernels for Autodiff<B, C> {
    type Argmax = B::Argmax;

    fn pool_max(x: FloatTensor<Self>) -> FloatTensor<Self> {
        match MaxBackward
            .prepare::<C>([x.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (y, at) = B::pool_max_argmax(x.primitive);
                prep.finish(at, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::pool_max(x.primitive)),
        }
    }

    fn pool_max_argmax(x: FloatTensor<Self>) -> (FloatTensor<Self>, B::Argmax) {
        let (y, at) = B::pool_max_argmax(x.primitive);
        let y = match MaxBackward
            .prepare::<C>([x.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(at.clone(), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        };
        (y, at)
    }

    fn pool_scatter(dy: FloatTensor<Self>, at: B::Argmax) -> FloatTensor<Self> {
        match ScatterBackward
            .prepare::<C>([dy.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = B::pool_scatter(dy.primitive, at.clone());
                prep.finish(at, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::pool_scatter(dy.primitive, at)),
        }
    }

    fn pool_gather(g: FloatTensor<Self>, at: B::Argmax) -> FloatTensor<Self> {
        match GatherBackward
            .prepare::<C>([g.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = B::pool_gather(g.primitive, at.clone());
                prep.finish(at, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::pool_gather(g.primitive, at)),
        }
    }
}
