//! One op at a time, at the shapes of a Conv4-64 task on 80 Omniglot images (5-way 1-shot,
//! 15 queries per class) and of Mini-ImageNet's first layer, on `Autodiff<Flex>`: forward,
//! and forward + backward of `Σ op(x) ⊙ r`. Each op is timed twice, this crate's custom
//! operation and the composition of burn operations it replaced (burn's `conv2d`; batch-norm
//! and max-pool from reductions, `repeat_dim` and `max_dim`), so their ratio is measured in one
//! run.

use std::time::Duration;

use burn::backend::{Autodiff, Flex};
use burn::tensor::activation::relu;
use burn::tensor::{Distribution, Tensor};
use criterion::{Criterion, criterion_group, criterion_main};
use meta_backbones::conv::{ConvGeom, burn_conv2d, conv2d};
use meta_backbones::pool::{composed_max_pool2x2, max_pool2x2};
use meta_backbones::{BatchNorm, BnConfig};

type B = Autodiff<Flex>;
type Conv = fn(Tensor<B, 4>, Tensor<B, 4>, Option<Tensor<B, 1>>, ConvGeom) -> Tensor<B, 4>;

fn random<const D: usize>(shape: [usize; D]) -> Tensor<B, D> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), &Default::default())
}

/// Times `op` forward only and forward + backward (gradient for `x` and, if given, `w`).
fn time_op(
    c: &mut Criterion,
    name: &str,
    x: Tensor<B, 4>,
    op: impl Fn(Tensor<B, 4>) -> Tensor<B, 4>,
) {
    let y = op(x.clone());
    let r = random(y.dims());
    c.bench_function(&format!("{name}/fwd"), |b| {
        b.iter(|| op(x.clone().detach()))
    });
    c.bench_function(&format!("{name}/fwd_bwd"), |b| {
        b.iter(|| {
            let x = x.clone().detach().require_grad();
            (op(x) * r.clone()).sum().backward()
        })
    });
}

/// Batch-norm (batch statistics, γ = 1, β = 0) as this crate wrote it before its channel
/// operations: reductions and `repeat_dim`-materialised per-channel vectors.
fn composed_bn(x: Tensor<B, 4>) -> Tensor<B, 4> {
    let [n, c, h, w] = x.dims();
    let x = x.reshape([n, c, h * w]);
    let mean = x.clone().mean_dim(2).mean_dim(0);
    let var = (x.clone() * x.clone()).mean_dim(2).mean_dim(0) - mean.clone() * mean.clone();
    let scale = var.add_scalar(1e-5).sqrt().recip();
    let shift = mean.neg() * scale.clone();
    let full = |t: Tensor<B, 3>| t.repeat_dim(0, n).repeat_dim(2, h * w);
    (x * full(scale) + full(shift)).reshape([n, c, h, w])
}

fn benches(c: &mut Criterion) {
    let same = ConvGeom {
        stride: [1, 1],
        padding: [1, 1],
    };
    // (label, input, output channels): the four Conv4-64 layers on 80 images, and
    // Mini-ImageNet's first Conv4-32 layer on 80 images.
    let layers = [
        ("conv_1to64_28x28", [80, 1, 28, 28], 64),
        ("conv_64to64_14x14", [80, 64, 14, 14], 64),
        ("conv_64to64_7x7", [80, 64, 7, 7], 64),
        ("conv_64to64_3x3", [80, 64, 3, 3], 64),
        ("conv_3to32_84x84", [80, 3, 84, 84], 32),
    ];
    for (label, shape, c_out) in layers {
        let w = random([c_out, shape[1], 3, 3]).require_grad();
        let b = random([c_out]).require_grad();
        for (impl_name, conv) in [("ours", conv2d as Conv), ("burn", burn_conv2d as Conv)] {
            let (w, b) = (w.clone(), b.clone());
            time_op(
                c,
                &format!("{label}/{impl_name}"),
                random(shape),
                move |x| conv(x, w.clone(), Some(b.clone()), same),
            );
        }
    }
    let bn: BatchNorm<B> = BnConfig::default().init(64, &Default::default());
    for shape in [[80, 64, 28, 28], [80, 64, 14, 14]] {
        let size = format!("64_{}x{}", shape[2], shape[3]);
        time_op(c, &format!("batchnorm_{size}/ours"), random(shape), |x| {
            bn.forward4(x)
        });
        time_op(
            c,
            &format!("batchnorm_{size}/composed"),
            random(shape),
            composed_bn,
        );
        time_op(
            c,
            &format!("maxpool2x2_{size}/ours"),
            random(shape),
            max_pool2x2,
        );
        time_op(
            c,
            &format!("maxpool2x2_{size}/composed"),
            random(shape),
            composed_max_pool2x2,
        );
        time_op(c, &format!("relu_{size}"), random(shape), relu);
    }
}

criterion_group! {
    name = group;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    targets = benches
}
criterion_main!(group);
