//! This crate's batch-norm and max-pool kernels on libtorch (burn's `tch` backend), each one
//! libtorch call or two, so that `Autodiff<LibTorch>` and `Autodiff<Autodiff<LibTorch>>` run
//! [`crate::channel`] and [`crate::maxpool`] as single custom operations instead of burn's
//! composed forms (a `max_dim` pair and its scatter, per-channel sums and their `ones` masks).
//!
//! The convolution stays burn's: its gradients already go to libtorch's own convolution and
//! transposed convolution, and libtorch's weight-gradient kernel measured no faster than burn's
//! formulation on this CPU (docs/benchmarks.md).

use burn::backend::libtorch::{LibTorch, TchElement, TchTensor};
use burn::tensor::Shape;

use crate::channel::ChannelKernels;
use crate::maxpool::PoolKernels;

/// 2×2 windows, stride 2, no padding, dilation 1: `(kernel, stride, padding, dilation)`.
const WINDOW: ([i64; 2], [i64; 2], [i64; 2], [i64; 2]) = ([2, 2], [2, 2], [0, 0], [1, 1]);

fn wrap(tensor: tch::Tensor) -> TchTensor {
    TchTensor::new(tensor)
}

/// `v` (`[C]`) as `[1, C, 1]`, to broadcast against `[N, C, L]`.
fn column(v: &TchTensor) -> tch::Tensor {
    v.tensor.view([1, -1, 1])
}

/// Where each 2×2 window's maximum sits: its flat position in the `H·W` plane of the pooled
/// input, `[N, C, H/2, W/2]` (int64), and that input's shape.
#[derive(Debug, Clone)]
pub struct PoolArgmax {
    indices: TchTensor,
    input: [i64; 4],
}

impl<E: TchElement> PoolKernels for LibTorch<E> {
    type Argmax = PoolArgmax;

    fn pool_max(x: TchTensor) -> TchTensor {
        let (k, s, p, d) = WINDOW;
        wrap(x.tensor.max_pool2d(k, s, p, d, false))
    }

    fn pool_max_argmax(x: TchTensor) -> (TchTensor, PoolArgmax) {
        let (k, s, p, d) = WINDOW;
        let (y, indices) = x.tensor.max_pool2d_with_indices(k, s, p, d, false);
        let size = x.tensor.size();
        let input = [size[0], size[1], size[2], size[3]];
        let indices = wrap(indices);
        (wrap(y), PoolArgmax { indices, input })
    }

    fn pool_scatter(dy: TchTensor, at: PoolArgmax) -> TchTensor {
        let [n, c, h, w] = at.input;
        let mut plane = tch::Tensor::zeros([n, c, h * w], (dy.tensor.kind(), dy.tensor.device()));
        let _ = plane.scatter_(
            2,
            &at.indices.tensor.flatten(2, 3),
            &dy.tensor.flatten(2, 3),
        );
        wrap(plane.view([n, c, h, w]))
    }

    fn pool_gather(g: TchTensor, at: PoolArgmax) -> TchTensor {
        let pooled = at.indices.tensor.size();
        let read = g
            .tensor
            .flatten(2, 3)
            .gather(2, &at.indices.tensor.flatten(2, 3), false);
        wrap(read.view(pooled.as_slice()))
    }
}

impl<E: TchElement> ChannelKernels for LibTorch<E> {
    fn channel_affine(x: TchTensor, s: TchTensor, t: TchTensor) -> TchTensor {
        wrap(column(&t).addcmul(&x.tensor, &column(&s)))
    }

    fn channel_dot(a: TchTensor, b: TchTensor) -> TchTensor {
        let product = &a.tensor * &b.tensor;
        wrap(product.sum_dim_intlist([0i64, 2].as_slice(), false, None))
    }

    fn channel_sum(a: TchTensor) -> TchTensor {
        wrap(a.tensor.sum_dim_intlist([0i64, 2].as_slice(), false, None))
    }

    fn channel_broadcast(v: TchTensor, shape: Shape) -> TchTensor {
        let [n, c, l] = shape.dims().map(|d: usize| d as i64);
        // Materialised: burn-tch may write in place into a tensor it owns alone, which an
        // expanded view (one element at many positions) does not allow.
        wrap(column(&v).expand([n, c, l], false).contiguous())
    }
}
