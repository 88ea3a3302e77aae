//! Pooling written from reshapes and reductions, so that it supports a second backward pass
//! (burn 0.21's `max_pool2d` / `avg_pool2d` do not; docs/architecture.md §3).

use burn::tensor::{Tensor, backend::Backend};

use crate::dispatch::{float, on_kernels, wrap};
use crate::maxpool::PoolKernels;

/// 2×2 max-pool with stride 2 on `[N, C, H, W]`, giving `[N, C, H/2, W/2]` (an odd last row or
/// column is dropped, as PyTorch's `MaxPool2d(2)` does). On flex (and libtorch, with the `tch`
/// feature) this is the custom operation of [`crate::maxpool`]; elsewhere
/// [`composed_max_pool2x2`].
pub fn max_pool2x2<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    let dtype = x.dtype();
    let x = on_kernels!(tch; B, dtype, x, |K, x: Tensor<K, 4>| {
        wrap::<K, 4>(K::pool_max(float(x)))
    });
    composed_max_pool2x2(x)
}

/// [`max_pool2x2`] composed from `reshape` and `max_dim`, which support a second backward pass
/// on every backend.
pub fn composed_max_pool2x2<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    let [n, c, h, w] = x.dims();
    let (h2, w2) = (h / 2, w / 2);
    let x = if h % 2 == 1 || w % 2 == 1 {
        x.slice([0..n, 0..c, 0..2 * h2, 0..2 * w2])
    } else {
        x
    };
    x.reshape([n * c * h2, 2, w2, 2])
        .max_dim(3)
        .max_dim(1)
        .reshape([n, c, h2, w2])
}

/// Mean over the spatial dimensions: `[N, C, H, W]` to `[N, C]`.
pub fn global_mean_pool<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 2> {
    let [n, c, h, w] = x.dims();
    x.reshape([n, c, h * w]).mean_dim(2).reshape([n, c])
}

/// `[N, C, H, W]` to `[N, C·H·W]`.
pub fn flatten<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 2> {
    let [n, c, h, w] = x.dims();
    x.reshape([n, c * h * w])
}
