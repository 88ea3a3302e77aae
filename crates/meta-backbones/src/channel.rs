//! Per-channel operations on `[N, C, L]` activations, the heavy parts of batch-norm, as
//! custom autodiff operations with kernels on flex and (with the `tch` feature) libtorch;
//! burn's tensor operations elsewhere.
//!
//! * [`affine`]: `y[n, c, l] = x[n, c, l]·s[c] + t[c]`;
//! * [`dot`]: `d[c] = Σ_{n,l} a[n, c, l]·b[n, c, l]`;
//! * [`sum`]: `d[c] = Σ_{n,l} a[n, c, l]`;
//! * `broadcast` (crate-internal): `y[n, c, l] = v[c]`.
//!
//! The four are closed under differentiation (`affine`'s gradients are an `affine`, a `dot` and
//! a `sum`; `dot`'s are two `affine`s; `sum` and `broadcast` are each other's adjoint), and
//! [`ChannelKernels`] for `Autodiff<B>` writes each backward pass with `B`'s kernels, so nested
//! autodiff (the exact MAML inner loop) stays exact. Tested against burn's composed operations
//! and f64 finite differences, gradient and gradient of gradient (`tests/kernels.rs`).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{Shape, Tensor, TensorMetadata};

use crate::dispatch::{float, on_kernels, wrap};

/// The per-channel kernels a backend provides; shapes as in the module docs.
pub trait ChannelKernels: Backend {
    /// `x·s + t` per channel.
    fn channel_affine(
        x: FloatTensor<Self>,
        s: FloatTensor<Self>,
        t: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
    /// `Σ_{n,l} a·b` per channel.
    fn channel_dot(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self>;
    /// `Σ_{n,l} a` per channel.
    fn channel_sum(a: FloatTensor<Self>) -> FloatTensor<Self>;
    /// `v` repeated to `shape` (`[N, C, L]`).
    fn channel_broadcast(v: FloatTensor<Self>, shape: Shape) -> FloatTensor<Self>;
}

fn column<B: Backend>(v: Tensor<B, 1>) -> Tensor<B, 3> {
    let [c] = v.dims();
    v.reshape([1, c, 1])
}

/// `y[n, c, l] = x[n, c, l]·s[c] + t[c]`.
pub fn affine<B: Backend>(x: Tensor<B, 3>, s: Tensor<B, 1>, t: Tensor<B, 1>) -> Tensor<B, 3> {
    let dtype = x.dtype();
    let (x, s, t) = on_kernels!(tch; B, dtype, (x, s, t), |K,
                                                   a: (
        Tensor<K, 3>,
        Tensor<K, 1>,
        Tensor<K, 1>
    )| {
        wrap::<K, 3>(K::channel_affine(float(a.0), float(a.1), float(a.2)))
    });
    x * column(s) + column(t)
}

/// `d[c] = Σ_{n,l} a[n, c, l]·b[n, c, l]`.
pub fn dot<B: Backend>(a: Tensor<B, 3>, b: Tensor<B, 3>) -> Tensor<B, 1> {
    let dtype = a.dtype();
    let (a, b) = on_kernels!(tch; B, dtype, (a, b), |K, p: (Tensor<K, 3>, Tensor<K, 3>)| {
        wrap::<K, 1>(K::channel_dot(float(p.0), float(p.1)))
    });
    sum(a * b)
}

/// `d[c] = Σ_{n,l} a[n, c, l]`.
pub fn sum<B: Backend>(a: Tensor<B, 3>) -> Tensor<B, 1> {
    let dtype = a.dtype();
    let a = on_kernels!(tch; B, dtype, a, |K, p: Tensor<K, 3>| wrap::<K, 1>(
        K::channel_sum(float(p))
    ));
    a.sum_dim(2).sum_dim(0).flatten(0, 2)
}

#[derive(Debug)]
struct AffineBackward;
#[derive(Debug)]
struct DotBackward;
#[derive(Debug)]
struct SumBackward;
#[derive(Debug)]
struct BroadcastBackward;

fn zeros_like_channels<B: Backend>(s: &FloatTensor<B>) -> FloatTensor<B> {
    B::float_zeros(s.shape(), &B::float_device(s), s.dtype().into())
}

impl<B: ChannelKernels> Backward<B, 3> for AffineBackward {
    type State = (NodeId, NodeId);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, cp: &mut Checkpointer) {
        let g = grads.consume::<B>(&ops.node);
        let [node_x, node_s, node_t] = ops.parents;
        let x = cp.retrieve_node_output::<FloatTensor<B>>(ops.state.0);
        let s = cp.retrieve_node_output::<FloatTensor<B>>(ops.state.1);
        if let Some(node) = node_t {
            grads.register::<B>(node.id, B::channel_sum(g.clone()));
        }
        if let Some(node) = node_s {
            grads.register::<B>(node.id, B::channel_dot(g.clone(), x));
        }
        if let Some(node) = node_x {
            let zeros = zeros_like_channels::<B>(&s);
            grads.register::<B>(node.id, B::channel_affine(g, s, zeros));
        }
    }
}

impl<B: ChannelKernels> Backward<B, 2> for DotBackward {
    type State = (NodeId, NodeId);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, cp: &mut Checkpointer) {
        let g = grads.consume::<B>(&ops.node);
        let [node_a, node_b] = ops.parents;
        let a = cp.retrieve_node_output::<FloatTensor<B>>(ops.state.0);
        let b = cp.retrieve_node_output::<FloatTensor<B>>(ops.state.1);
        let zeros = zeros_like_channels::<B>(&g);
        if let Some(node) = node_a {
            let grad = B::channel_affine(b, g.clone(), zeros.clone());
            grads.register::<B>(node.id, grad);
        }
        if let Some(node) = node_b {
            grads.register::<B>(node.id, B::channel_affine(a, g, zeros));
        }
    }
}

impl<B: ChannelKernels> Backward<B, 1> for SumBackward {
    type State = Shape;

    fn backward(self, ops: Ops<Shape, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let g = grads.consume::<B>(&ops.node);
        if let [Some(node)] = ops.parents {
            grads.register::<B>(node.id, B::channel_broadcast(g, ops.state));
        }
    }
}

impl<B: ChannelKernels> Backward<B, 1> for BroadcastBackward {
    type State = ();

    fn backward(self, ops: Ops<(), 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let g = grads.consume::<B>(&ops.node);
        if let [Some(node)] = ops.parents {
            grads.register::<B>(node.id, B::channel_sum(g));
        }
    }
}

impl<B: ChannelKernels, C: CheckpointStrategy> ChannelKernels for Autodiff<B, C> {
    fn channel_affine(
        x: FloatTensor<Self>,
        s: FloatTensor<Self>,
        t: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        match AffineBackward
            .prepare::<C>([x.node.clone(), s.node.clone(), t.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&x), prep.checkpoint(&s));
                let y = B::channel_affine(x.primitive, s.primitive, t.primitive);
                prep.finish(state, y)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::channel_affine(x.primitive, s.primitive, t.primitive))
            }
        }
    }

    fn channel_dot(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
        match DotBackward
            .prepare::<C>([a.node.clone(), b.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&a), prep.checkpoint(&b));
                prep.finish(state, B::channel_dot(a.primitive, b.primitive))
            }
            OpsKind::UnTracked(prep) => prep.finish(B::channel_dot(a.primitive, b.primitive)),
        }
    }

    fn channel_sum(a: FloatTensor<Self>) -> FloatTensor<Self> {
        let shape = a.primitive.shape();
        match SumBackward
            .prepare::<C>([a.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(shape, B::channel_sum(a.primitive)),
            OpsKind::UnTracked(prep) => prep.finish(B::channel_sum(a.primitive)),
        }
    }

    fn channel_broadcast(v: FloatTensor<Self>, shape: Shape) -> FloatTensor<Self> {
        match BroadcastBackward
            .prepare::<C>([v.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((), B::channel_broadcast(v.primitive, shape)),
            OpsKind::UnTracked(prep) => prep.finish(B::channel_broadcast(v.primitive, shape)),
        }
    }
}
