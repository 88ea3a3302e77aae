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

/// Each 2×2 window's maximum of `x` and, per window, its flat position in `x`'s `H·W` plane.
fn pool_with_indices(x: &tch::Tensor) -> (tch::Tensor, tch::Tensor) {
    let (k, s, p, d) = WINDOW;
    x.max_pool2d_with_indices(k, s, p, d, false)
}

impl<E: TchElement> PoolKernels for LibTorch<E> {
    fn pool_max(x: TchTensor) -> TchTensor {
        let (k, s, p, d) = WINDOW;
        wrap(x.tensor.max_pool2d(k, s, p, d, false))
    }

    fn pool_scatter(dy: TchTensor, x: TchTensor) -> TchTensor {
        let (k, s, p, d) = WINDOW;
        let (_, indices) = pool_with_indices(&x.tensor);
        wrap(
            x.tensor
                .max_pool2d_with_indices_backward(&dy.tensor, k, s, p, d, false, &indices),
        )
    }

    fn pool_gather(g: TchTensor, x: TchTensor) -> TchTensor {
        let (_, indices) = pool_with_indices(&x.tensor);
        let pooled = indices.size();
        let read = g
            .tensor
            .flatten(2, 3)
            .gather(2, &indices.flatten(2, 3), false);
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
