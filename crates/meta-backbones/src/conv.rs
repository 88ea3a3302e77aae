//! 2-d convolution as a custom autodiff operation, with fast CPU kernels on flex.
//!
//! [`conv2d`] computes what `burn::tensor::module::conv2d` computes (dilation 1, one group).
//! On `Flex`, `Autodiff<Flex>` and `Autodiff<Autodiff<Flex>>` (f32 and f64) it runs this
//! crate's kernels (`flex_conv`): im2col per image and one matrix product, rayon across
//! images. Every other backend gets burn's own convolution, so libtorch and the GPU backends
//! keep their native kernels.
//!
//! The operation is closed under differentiation, which is what keeps the exact second-order
//! inner loop exact: with `y = conv(x, w)` and upstream gradient `g`,
//!
//! * `conv_dx(g, w)` (the input gradient) has gradients `conv(G, w)` for `g` and
//!   `conv_dw(G, g)` for `w`;
//! * `conv_dw(x, g)` (the weight gradient) has gradients `conv_dx(g, G)` for `x` and
//!   `conv(x, G)` for `g`.
//!
//! [`ConvKernels`] is implemented for `Autodiff<B>` with exactly these backward passes, built
//! from `B`'s own kernels, so `Autodiff<Autodiff<Flex>>` records the second level on
//! `Autodiff<Flex>`'s tape. Tested against burn's convolution and against f64 central
//! finite differences, gradient and gradient of gradient (`tests/conv.rs`).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::backend::Backend;
use burn::tensor::ops::{ConvOptions, FloatTensor};
use burn::tensor::{Shape, Tensor, TensorMetadata};

use crate::dispatch::{float, on_kernels, wrap};

/// Stride and zero padding of a convolution (dilation 1, one group).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeom {
    /// Stride along height and width.
    pub stride: [usize; 2],
    /// Zero padding on each side, along height and width.
    pub padding: [usize; 2],
}

impl ConvGeom {
    /// Output height and width for an input of `in_hw` and a kernel of `kernel`.
    pub fn output_hw(&self, in_hw: [usize; 2], kernel: [usize; 2]) -> [usize; 2] {
        [0, 1].map(|d| (in_hw[d] + 2 * self.padding[d] - kernel[d]) / self.stride[d] + 1)
    }
}

/// The three kernels a backend provides so that [`conv2d`] and all its derivatives run on it.
///
/// Shapes: `x` `[N, C_in, H, W]`, `w` `[C_out, C_in, kh, kw]`, `dy` `[N, C_out, H', W']`.
pub trait ConvKernels: Backend {
    /// `y = conv(x, w) + b`, `[N, C_out, H', W']`.
    fn conv_fwd(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: Option<FloatTensor<Self>>,
        geom: ConvGeom,
    ) -> FloatTensor<Self>;

    /// Gradient of `⟨conv(x, w), dy⟩` with respect to `x`, for an input of height and width
    /// `in_hw`: `[N, C_in, in_hw]`.
    fn conv_dx(
        dy: FloatTensor<Self>,
        w: FloatTensor<Self>,
        geom: ConvGeom,
        in_hw: [usize; 2],
    ) -> FloatTensor<Self>;

    /// Gradient of `⟨conv(x, w), dy⟩` with respect to `w`, for a kernel of `kernel`:
    /// `[C_out, C_in, kernel]`.
    fn conv_dw(
        x: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        geom: ConvGeom,
        kernel: [usize; 2],
    ) -> FloatTensor<Self>;
}

/// `conv2d(x, weight, bias)` with stride and zero padding, dilation 1 and one group: the same
/// result as `burn::tensor::module::conv2d`, faster on flex (see the module docs).
pub fn conv2d<B: Backend>(
    x: Tensor<B, 4>,
    weight: Tensor<B, 4>,
    bias: Option<Tensor<B, 1>>,
    geom: ConvGeom,
) -> Tensor<B, 4> {
    let dtype = x.dtype();
    let (x, weight, bias) = on_kernels!(B, dtype, (x, weight, bias), |K, a: ConvArgs<K>| {
        wrap::<K, 4>(K::conv_fwd(float(a.0), float(a.1), a.2.map(float), geom))
    });
    burn_conv2d(x, weight, bias, geom)
}

/// burn's own convolution with the same arguments as [`conv2d`] (the reference it is tested
/// and benchmarked against).
pub fn burn_conv2d<B: Backend>(
    x: Tensor<B, 4>,
    weight: Tensor<B, 4>,
    bias: Option<Tensor<B, 1>>,
    geom: ConvGeom,
) -> Tensor<B, 4> {
    let options = ConvOptions::new(geom.stride, geom.padding, [1, 1], 1);
    burn::tensor::module::conv2d(x, weight, bias, options)
}

/// `conv.forward(x)` through [`conv2d`] when the layer is one it covers (dilation 1, one group,
/// symmetric explicit or no padding), through burn's module otherwise.
pub fn forward_module<B: Backend>(conv: &Conv2d<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    let padding = match conv.padding {
        PaddingConfig2d::Valid => Some([0, 0]),
        PaddingConfig2d::Explicit(top, left, bottom, right) if top == bottom && left == right => {
            Some([top, left])
        }
        _ => None,
    };
    match padding {
        Some(padding) if conv.dilation == [1, 1] && conv.groups == 1 => {
            let geom = ConvGeom {
                stride: conv.stride,
                padding,
            };
            conv2d(
                x,
                conv.weight.val(),
                conv.bias.as_ref().map(|b| b.val()),
                geom,
            )
        }
        _ => conv.forward(x),
    }
}

type ConvArgs<B> = (Tensor<B, 4>, Tensor<B, 4>, Option<Tensor<B, 1>>);

fn hw(shape: &Shape) -> [usize; 2] {
    let [_, _, h, w] = shape.dims();
    [h, w]
}

/// Sum of `dy` over batch and space: the bias gradient, `[C_out]`.
fn bias_grad<B: Backend>(dy: FloatTensor<B>) -> FloatTensor<B> {
    let [n, c, h, w] = dy.shape().dims();
    let t = B::float_reshape(dy, Shape::new([n, c, h * w]));
    let t = B::float_sum_dim(B::float_sum_dim(t, 2), 0);
    B::float_reshape(t, Shape::new([c]))
}

#[derive(Debug)]
struct FwdBackward;
#[derive(Debug)]
struct FwdBiasBackward;
#[derive(Debug)]
struct DxBackward;
#[derive(Debug)]
struct DwBackward;

/// `x`, `w` and the geometry: what `conv_fwd` and `conv_dx` need backwards.
type PairState = (NodeId, NodeId, ConvGeom);

fn fwd_grads<B: ConvKernels>(
    [node_x, node_w]: [Option<NodeId>; 2],
    (x, w, geom): (FloatTensor<B>, FloatTensor<B>, ConvGeom),
    g: FloatTensor<B>,
    grads: &mut Gradients,
) {
    if let Some(id) = node_x {
        let in_hw = hw(&x.shape());
        grads.register::<B>(id, B::conv_dx(g.clone(), w.clone(), geom, in_hw));
    }
    if let Some(id) = node_w {
        let kernel = hw(&w.shape());
        grads.register::<B>(id, B::conv_dw(x, g, geom, kernel));
    }
}

impl<B: ConvKernels> Backward<B, 2> for FwdBackward {
    type State = PairState;

    fn backward(self, ops: Ops<PairState, 2>, grads: &mut Gradients, cp: &mut Checkpointer) {
        let g = grads.consume::<B>(&ops.node);
        let (x, w, geom) = ops.state;
        let x = cp.retrieve_node_output::<FloatTensor<B>>(x);
        let w = cp.retrieve_node_output::<FloatTensor<B>>(w);
        let ids = ops.parents.map(|node| node.map(|node| node.id));
        fwd_grads::<B>(ids, (x, w, geom), g, grads);
    }
}

impl<B: ConvKernels> Backward<B, 3> for FwdBiasBackward {
    type State = PairState;

    fn backward(self, ops: Ops<PairState, 3>, grads: &mut Gradients, cp: &mut Checkpointer) {
        let g = grads.consume::<B>(&ops.node);
        let [node_x, node_w, node_b] = ops.parents;
        let (x, w, geom) = ops.state;
        let x = cp.retrieve_node_output::<FloatTensor<B>>(x);
        let w = cp.retrieve_node_output::<FloatTensor<B>>(w);
        if let Some(node) = node_b {
            grads.register::<B>(node.id, bias_grad::<B>(g.clone()));
        }
        let ids = [node_x, node_w].map(|node| node.map(|node| node.id));
        fwd_grads::<B>(ids, (x, w, geom), g, grads);
    }
}

impl<B: ConvKernels> Backward<B, 2> for DxBackward {
    type State = PairState;

    /// Parents `(dy, w)`; `G` has the input's shape.
    fn backward(self, ops: Ops<PairState, 2>, grads: &mut Gradients, cp: &mut Checkpointer) {
        let g = grads.consume::<B>(&ops.node);
        let [node_dy, node_w] = ops.parents;
        let (dy, w, geom) = ops.state;
        let dy = cp.retrieve_node_output::<FloatTensor<B>>(dy);
        let w = cp.retrieve_node_output::<FloatTensor<B>>(w);
        if let Some(node) = node_w {
            let kernel = hw(&w.shape());
            grads.register::<B>(node.id, B::conv_dw(g.clone(), dy, geom, kernel));
        }
        if let Some(node) = node_dy {
            grads.register::<B>(node.id, B::conv_fwd(g, w, None, geom));
        }
    }
}

impl<B: ConvKernels> Backward<B, 2> for DwBackward {
    type State = PairState;

    /// Parents `(x, dy)`; `G` has the weight's shape.
    fn backward(self, ops: Ops<PairState, 2>, grads: &mut Gradients, cp: &mut Checkpointer) {
        let g = grads.consume::<B>(&ops.node);
        let [node_x, node_dy] = ops.parents;
        let (x, dy, geom) = ops.state;
        let x = cp.retrieve_node_output::<FloatTensor<B>>(x);
        let dy = cp.retrieve_node_output::<FloatTensor<B>>(dy);
        if let Some(node) = node_x {
            let in_hw = hw(&x.shape());
            grads.register::<B>(node.id, B::conv_dx(dy, g.clone(), geom, in_hw));
        }
        if let Some(node) = node_dy {
            grads.register::<B>(node.id, B::conv_fwd(x, g, None, geom));
        }
    }
}

impl<B: ConvKernels, C: CheckpointStrategy> ConvKernels for Autodiff<B, C> {
    fn conv_fwd(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: Option<FloatTensor<Self>>,
        geom: ConvGeom,
    ) -> FloatTensor<Self> {
        match b {
            None => match FwdBackward
                .prepare::<C>([x.node.clone(), w.node.clone()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(mut prep) => {
                    let state = (prep.checkpoint(&x), prep.checkpoint(&w), geom);
                    prep.finish(state, B::conv_fwd(x.primitive, w.primitive, None, geom))
                }
                OpsKind::UnTracked(prep) => {
                    prep.finish(B::conv_fwd(x.primitive, w.primitive, None, geom))
                }
            },
            Some(b) => match FwdBiasBackward
                .prepare::<C>([x.node.clone(), w.node.clone(), b.node.clone()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(mut prep) => {
                    let state = (prep.checkpoint(&x), prep.checkpoint(&w), geom);
                    let y = B::conv_fwd(x.primitive, w.primitive, Some(b.primitive), geom);
                    prep.finish(state, y)
                }
                OpsKind::UnTracked(prep) => prep.finish(B::conv_fwd(
                    x.primitive,
                    w.primitive,
                    Some(b.primitive),
                    geom,
                )),
            },
        }
    }

    fn conv_dx(
        dy: FloatTensor<Self>,
        w: FloatTensor<Self>,
        geom: ConvGeom,
        in_hw: [usize; 2],
    ) -> FloatTensor<Self> {
        match DxBackward
            .prepare::<C>([dy.node.clone(), w.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&dy), prep.checkpoint(&w), geom);
                prep.finish(state, B::conv_dx(dy.primitive, w.primitive, geom, in_hw))
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::conv_dx(dy.primitive, w.primitive, geom, in_hw))
            }
        }
    }

    fn conv_dw(
        x: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        geom: ConvGeom,
        kernel: [usize; 2],
    ) -> FloatTensor<Self> {
        match DwBackward
            .prepare::<C>([x.node.clone(), dy.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&x), prep.checkpoint(&dy), geom);
                prep.finish(state, B::conv_dw(x.primitive, dy.primitive, geom, kernel))
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::conv_dw(x.primitive, dy.primitive, geom, kernel))
            }
        }
    }
}
