//! A fully connected layer written as `matmul + add`, which (unlike burn's fused `linear`)
//! supports a second backward pass.

use burn::module::{Module, Param};
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
    /// `1/√3`, i.e. `U(±1/√d_in)`, bias `U(±1/√d_in)`), drawn from the calling thread's
    /// [`rng`](crate::rng).
    pub fn new(d_in: usize, d_out: usize, device: &B::Device) -> Self {
        let weight = Param::from_tensor(crate::rng::fan_in_uniform([d_in, d_out], d_in, device));
        let bias = Param::from_tensor(crate::rng::fan_in_uniform([d_out], d_in, device));
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
