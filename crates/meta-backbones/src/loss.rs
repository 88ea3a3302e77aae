//! Cross-entropy and accuracy written from double-backward-safe operations.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor, backend::Backend};

/// Mean cross-entropy of `logits` `[N, K]` against class indices `targets` `[N]`.
///
/// Composed of `log_softmax` (max-shift, exp, sum, log) and a one-hot product, all of which
/// support a second backward pass, so it can sit inside a differentiated inner loop.
pub fn cross_entropy<B: Backend>(logits: Tensor<B, 2>, targets: Tensor<B, 1, Int>) -> Tensor<B, 1> {
    let [n, k] = logits.dims();
    let one_hot = targets.one_hot(k).float().cast(logits.dtype());
    let picked = (log_softmax(logits, 1) * one_hot).sum();
    picked.neg().div_scalar(n as f64)
}

/// Fraction of rows of `logits` `[N, K]` whose arg-max equals `targets` `[N]`, in `[0, 1]`.
pub fn accuracy<B: Backend>(logits: Tensor<B, 2>, targets: Tensor<B, 1, Int>) -> f64 {
    let [n, _] = logits.dims();
    if n == 0 {
        return 0.0;
    }
    let predicted = logits.argmax(1).squeeze_dim::<1>(1);
    let correct = predicted.equal(targets).int().sum().into_scalar();
    let correct: i64 = burn::tensor::ElementConversion::elem(correct);
    correct as f64 / n as f64
}
