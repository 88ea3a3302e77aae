//! A fully connected layer written as `matmul + add`, which (unlike burn's fused `linear`)
//! supports a second backward pass.

use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::{Tensor, backend::Backend};

/// `y = x W + b` with `W: [d_in, d_out]`, `b: [d_out]`.
#[derive(Module, Debug)]
pub struct Linear<B: Backend> {
    /// Weight `[d_in, d_out]`.
    pub weight: Param<Tensor<B, 2>>,
    /// Bias `[d_out]`.
    pub bias: Param<Tensor<B, 1>>,
}

impl<B: Backend> Linear<B> {
    /// A layer initialised like PyTorch's `nn.Linear` (weight Kaiming-uniform with gain
    /// `1/√3`, i.e. `U(±1/√d_in)`, bias `U(±1/√d_in)`).
    pub fn new(d_in: usize, d_out: usize, device: &B::Device) -> Self {
        let bound = 1.0 / (d_in.max(1) as f64).sqrt();
        let weight = Initializer::Uniform {
            min: -bound,
            max: bound,
        }
        .init_with([d_in, d_out], Some(d_in), Some(d_out), device);
        let bias = Initializer::Uniform {
            min: -bound,
            max: bound,
        }
        .init_with([d_out], Some(d_in), Some(d_out), device);
        Self { weight, bias }
    }

    /// `[N, d_in]` to `[N, d_out]`.
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        x.matmul(self.weight.val()) + self.bias.val().unsqueeze_dim(0)
    }

    /// Output width.
    pub fn d_out(&self) -> usize {
        self.bias.val().dims()[0]
    }
}
