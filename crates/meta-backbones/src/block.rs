//! The convolutional block shared by Conv4 and the Meta Networks embedding:
//! conv3×3 → batch-norm → ReLU (→ 2×2 max-pool).

use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Tensor, backend::Backend};

use crate::bn::{BatchNorm, BnConfig};
use crate::pool::max_pool2x2;

/// conv3×3 (padding 1, given stride) → BN → ReLU, then a 2×2 max-pool if `pool`.
#[derive(Module, Debug)]
pub struct ConvBlock<B: Backend> {
    /// The convolution (its parameters; run by [`crate::conv::forward_module`]).
    pub conv: Conv2d<B>,
    /// Its batch-norm.
    pub bn: BatchNorm<B>,
    #[module(skip)]
    pool: bool,
}

impl<B: Backend> ConvBlock<B> {
    /// A block `c_in → c_out`; PyTorch's default initialisation.
    pub fn new(
        c_in: usize,
        c_out: usize,
        stride: usize,
        pool: bool,
        bn: &BnConfig,
        device: &B::Device,
    ) -> Self {
        let conv = crate::rng::conv2d(
            &Conv2dConfig::new([c_in, c_out], [3, 3])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)),
            device,
        );
        Self {
            conv,
            bn: bn.init(c_out, device),
            pool,
        }
    }

    /// `[N, c_in, H, W]` to `[N, c_out, H', W']`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let x = relu(self.bn.forward4(crate::conv::forward_module(&self.conv, x)));
        if self.pool { max_pool2x2(x) } else { x }
    }

    /// See [`BatchNorm::fast_copy`].
    pub fn fast_copy(&self, step: usize) -> Self {
        let mut copy = self.clone();
        copy.bn = self.bn.fast_copy(step);
        copy
    }
}
