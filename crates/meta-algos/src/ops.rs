//! Small differentiable building blocks shared by the metric algorithms: cross-entropy, accuracy,
//! one-hot encodings, class means and distances.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor, backend::Backend};

/// Mean cross-entropy of `logits` `[N, C]` against labels `[N]` in `0..C`.
pub fn cross_entropy<B: Backend>(logits: Tensor<B, 2>, labels: Tensor<B, 1, Int>) -> Tensor<B, 1> {
    nll_from_log_probs(log_softmax(logits, 1), labels)
}

/// Mean negative log-likelihood of log-probabilities `[N, C]` against labels `[N]`.
pub fn nll_from_log_probs<B: Backend>(
    log_probs: Tensor<B, 2>,
    labels: Tensor<B, 1, Int>,
) -> Tensor<B, 1> {
    let n = labels.dims()[0];
    let picked = log_probs.gather(1, labels.reshape([n, 1]));
    picked.mean().neg()
}

/// Number of rows of `logits` `[N, C]` whose arg-max equals the label, as a device scalar.
pub fn correct<B: Backend>(logits: Tensor<B, 2>, labels: Tensor<B, 1, Int>) -> Tensor<B, 1, Int> {
    let n = labels.dims()[0];
    logits.argmax(1).reshape([n]).equal(labels).int().sum()
}

/// Fraction of rows of `logits` whose arg-max equals the label (synchronises with the device).
pub fn accuracy<B: Backend>(logits: Tensor<B, 2>, labels: Tensor<B, 1, Int>) -> f64 {
    let n = labels.dims()[0].max(1);
    let c: i64 = correct(logits, labels).into_scalar().elem();
    c as f64 / n as f64
}

/// One-hot float matrix `[N, ways]` of labels `[N]`.
pub fn one_hot<B: Backend>(labels: Tensor<B, 1, Int>, ways: usize) -> Tensor<B, 2> {
    labels.one_hot::<2>(ways).float()
}

/// Per-class mean of `features` `[N, D]` over rows labelled `c`: `[ways, D]`. Works for any
/// label order; a class without examples gets a zero row.
pub fn class_means<B: Backend>(
    features: Tensor<B, 2>,
    labels: Tensor<B, 1, Int>,
    ways: usize,
) -> Tensor<B, 2> {
    let onehot = one_hot(labels, ways); // [N, ways]
    let counts = onehot.clone().sum_dim(0).clamp_min(1.0); // [1, ways]
    let sums = onehot.transpose().matmul(features); // [ways, D]
    sums / counts.transpose()
}

/// Squared Euclidean distances `[Nq, Np]` between rows of `a` `[Nq, D]` and rows of `b` `[Np, D]`.
pub fn squared_euclidean<B: Backend>(a: Tensor<B, 2>, b: Tensor<B, 2>) -> Tensor<B, 2> {
    // ‖a‖² + ‖b‖² − 2 a·b: two matmul-shaped ops instead of an [Nq, Np, D] broadcast.
    let aa = a.clone().powi_scalar(2).sum_dim(1); // [Nq, 1]
    let bb = b.clone().powi_scalar(2).sum_dim(1).transpose(); // [1, Np]
    let ab = a.matmul(b.transpose()); // [Nq, Np]
    (aa + bb - ab.mul_scalar(2.0)).clamp_min(0.0)
}

/// Rows of `x` `[N, D]` scaled to unit L2 norm (with a small epsilon).
pub fn l2_normalize<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    let norm = x.clone().powi_scalar(2).sum_dim(1).add_scalar(1e-8).sqrt();
    x / norm
}

use burn::tensor::ElementConversion as _;
