//! Seeded random numbers for initial weights, dropout masks and test inputs, drawn from a
//! generator that belongs to the calling thread.
//!
//! burn's own `B::seed` / `Tensor::random` share one generator per backend across the whole
//! process, so two threads that seed it and build models (two tests, two runs in one program)
//! interleave their draws and neither is reproducible. Every random value this workspace's
//! modules draw comes from here instead: [`seed`] fixes the calling thread's sequence, other
//! threads are unaffected, and values are generated on the host, so the same seed gives the same
//! initial weights and masks on every backend. A thread that never calls [`seed`] starts from
//! seed 0.
//!
//! ```
//! use burn::backend::Flex;
//! use burn::tensor::Distribution;
//! use meta_backbones::rng;
//!
//! let device = Default::default();
//! rng::seed(7);
//! let a = rng::random::<Flex, 2>([2, 3], Distribution::Normal(0.0, 1.0), &device);
//! rng::seed(7);
//! let b = rng::random::<Flex, 2>([2, 3], Distribution::Normal(0.0, 1.0), &device);
//! assert_eq!(a.into_data(), b.into_data());
//! ```

use std::cell::RefCell;

use burn::module::Param;
use burn::nn::Initializer;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::{Distribution, Tensor, TensorData, backend::Backend};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution as _, StandardNormal};

thread_local! {
    static RNG: RefCell<ChaCha8Rng> = RefCell::new(ChaCha8Rng::seed_from_u64(0));
}

/// Restarts the calling thread's generator from `seed`.
pub fn seed(seed: u64) {
    RNG.with(|rng| *rng.borrow_mut() = ChaCha8Rng::seed_from_u64(seed));
}

/// A tensor of `shape` whose values are drawn from `distribution` with the calling thread's
/// generator (`Distribution::Default` is `Uniform(0, 1)`, as in burn).
pub fn random<B: Backend, const D: usize>(
    shape: [usize; D],
    distribution: Distribution,
    device: &B::Device,
) -> Tensor<B, D> {
    let n = shape.iter().product();
    let values = values(n, distribution);
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// `n` values drawn from `distribution` with the calling thread's generator.
pub fn values(n: usize, distribution: Distribution) -> Vec<f64> {
    RNG.with(|rng| {
        let rng = &mut *rng.borrow_mut();
        (0..n)
            .map(|_| match distribution {
                Distribution::Default => rng.random::<f64>(),
                Distribution::Uniform(low, high) => low + (high - low) * rng.random::<f64>(),
                Distribution::Bernoulli(p) => f64::from(u8::from(rng.random::<f64>() < p)),
                Distribution::Normal(mean, std) => {
                    let z: f64 = StandardNormal.sample(rng);
                    mean + std * z
                }
            })
            .collect()
    })
}

/// `U(±1/√fan_in)`, PyTorch's default for the weights and biases of `Linear` and `Conv2d`
/// (Kaiming-uniform with gain `1/√3`).
pub fn fan_in_uniform<B: Backend, const D: usize>(
    shape: [usize; D],
    fan_in: usize,
    device: &B::Device,
) -> Tensor<B, D> {
    let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
    random(shape, Distribution::Uniform(-bound, bound), device)
}

/// The convolution `config` describes, with PyTorch's default initial weights and bias
/// ([`fan_in_uniform`]) from the calling thread's generator (the config's own initializer is
/// not used).
pub fn conv2d<B: Backend>(config: &Conv2dConfig, device: &B::Device) -> Conv2d<B> {
    let mut conv = config
        .clone()
        .with_initializer(Initializer::Zeros)
        .init(device);
    let [c_out, c_in_per_group, kh, kw] = conv.weight.shape().dims();
    let fan_in = c_in_per_group * kh * kw;
    conv.weight = Param::from_tensor(fan_in_uniform(
        [c_out, c_in_per_group, kh, kw],
        fan_in,
        device,
    ));
    if conv.bias.is_some() {
        conv.bias = Some(Param::from_tensor(fan_in_uniform([c_out], fan_in, device)));
    }
    conv
}

/// Inverted dropout of `input` with drop probability `prob`, masks from the calling thread's
/// generator; the identity when `prob` is 0 or the backend records no gradients (as burn's
/// `Dropout`).
pub fn dropout<B: Backend, const D: usize>(input: Tensor<B, D>, prob: f64) -> Tensor<B, D> {
    let device = input.device();
    if prob == 0.0 || !B::ad_enabled(&device) {
        return input;
    }
    let keep = 1.0 - prob;
    let mask = random::<B, D>(input.dims(), Distribution::Bernoulli(keep), &device);
    input * mask.div_scalar(keep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    #[test]
    fn a_seed_fixes_the_sequence_and_other_threads_do_not_disturb_it() {
        let draw = || {
            seed(3);
            let first = values(4, Distribution::Default);
            // Another thread seeding and drawing meanwhile must not change what comes next here.
            std::thread::spawn(|| {
                seed(3);
                values(1000, Distribution::Default)
            })
            .join()
            .unwrap();
            [first, values(4, Distribution::Default)].concat()
        };
        let (a, b) = (draw(), draw());
        assert_eq!(a, b);
        assert_ne!(a[..4], a[4..], "the sequence moves on between draws");
        seed(4);
        assert_ne!(values(4, Distribution::Default), a[..4]);
    }

    #[test]
    fn distributions_have_their_moments() {
        seed(11);
        let n = 20_000;
        let moments = |v: Vec<f64>| {
            let mean = v.iter().sum::<f64>() / n as f64;
            let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
            (mean, var)
        };
        let (m, v) = moments(values(n, Distribution::Normal(2.0, 3.0)));
        assert!(
            (m - 2.0).abs() < 0.1 && (v - 9.0).abs() < 0.4,
            "normal {m} {v}"
        );
        let u = values(n, Distribution::Uniform(-1.0, 3.0));
        assert!(u.iter().all(|x| (-1.0..3.0).contains(x)));
        let (m, v) = moments(u);
        assert!(
            (m - 1.0).abs() < 0.05 && (v - 16.0 / 12.0).abs() < 0.05,
            "uniform {m} {v}"
        );
        let b = values(n, Distribution::Bernoulli(0.3));
        assert!(b.iter().all(|x| *x == 0.0 || *x == 1.0));
        let (m, _) = moments(b);
        assert!((m - 0.3).abs() < 0.02, "bernoulli {m}");
    }

    #[test]
    fn tensors_have_the_shape_and_the_bound() {
        seed(5);
        let t = fan_in_uniform::<Flex, 4>([8, 3, 3, 3], 27, &Default::default());
        assert_eq!(t.dims(), [8, 3, 3, 3]);
        let v: Vec<f32> = t.into_data().to_vec().unwrap();
        let bound = 1.0 / 27f32.sqrt();
        assert!(v.iter().all(|x| x.abs() <= bound));
        assert!(v.iter().any(|x| x.abs() > bound * 0.9), "the range is used");
    }
}
