//! The layer-augmented Meta Networks CNN against hand-written references: the augmented
//! forward in f64 loops, per-example weights against one example at a time, zero fast weights
//! against the slow network.

use burn::backend::{Autodiff, Flex};
use burn::tensor::{DType, Distribution, Tensor};
use meta_backbones::{Backbone, MetaNetCnn, MetaNetCnnConfig, rng};

type B = Autodiff<Flex>;

fn dev() -> burn::backend::flex::FlexDevice {
    Default::default()
}

fn host<const D: usize>(t: Tensor<B, D>) -> Vec<f64> {
    t.inner()
        .cast(DType::F64)
        .into_data()
        .to_vec::<f64>()
        .unwrap()
}

fn max_abs(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

fn random(shape: [usize; 2]) -> Tensor<B, 2> {
    rng::random(shape, Distribution::Normal(0.0, 0.5), &dev())
}

/// `[C, H, W]` maps, row-major.
struct Maps {
    c: usize,
    h: usize,
    w: usize,
    v: Vec<f64>,
}

impl Maps {
    fn at(&self, c: usize, i: isize, j: isize) -> f64 {
        if i < 0 || j < 0 || i >= self.h as isize || j >= self.w as isize {
            return 0.0;
        }
        self.v[(c * self.h + i as usize) * self.w + j as usize]
    }
}

/// ReLU of a 3×3 pad-1 convolution with weights `w` `[F, C, 3, 3]` (row-major).
fn relu_conv(x: &Maps, w: &[f64], f: usize) -> Vec<f64> {
    let mut out = vec![0.0; f * x.h * x.w];
    for o in 0..f {
        for i in 0..x.h {
            for j in 0..x.w {
                let mut s = 0.0;
                for c in 0..x.c {
                    for di in 0..3 {
                        for dj in 0..3 {
                            let wv = w[((o * x.c + c) * 3 + di) * 3 + dj];
                            s += wv
                                * x.at(
                                    c,
                                    i as isize + di as isize - 1,
                                    j as isize + dj as isize - 1,
                                );
                        }
                    }
                }
                out[(o * x.h + i) * x.w + j] = s.max(0.0);
            }
        }
    }
    out
}

/// 2×2 max-pool keeping a last odd row / column (the window then covers what exists).
fn pool_ceil(x: &Maps) -> Maps {
    let (h, w) = (x.h.div_ceil(2), x.w.div_ceil(2));
    let mut v = vec![0.0; x.c * h * w];
    for c in 0..x.c {
        for i in 0..h {
            for j in 0..w {
                let mut m = f64::NEG_INFINITY;
                for (di, dj) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                    let (a, b) = (2 * i + di, 2 * j + dj);
                    if a < x.h && b < x.w {
                        m = m.max(x.at(c, a as isize, b as isize));
                    }
                }
                v[(c * h + i) * w + j] = m;
            }
        }
    }
    Maps { c: x.c, h, w, v }
}

/// `x W` for `W` `[d_in, d_out]` row-major.
fn matvec(x: &[f64], w: &[f64], d_out: usize) -> Vec<f64> {
    (0..d_out)
        .map(|o| {
            x.iter()
                .enumerate()
                .map(|(i, xi)| xi * w[i * d_out + o])
                .sum()
        })
        .collect()
}

/// The augmented network on one image, from the paper's equations, in f64.
fn reference(
    cfg: &MetaNetCnnConfig,
    image: &[f64],
    slow: &[Vec<f64>],
    fast: &[Vec<f64>],
) -> (Vec<f64>, Vec<f64>) {
    let mut h = Maps {
        c: cfg.in_channels,
        h: cfg.image_size,
        w: cfg.image_size,
        v: image.to_vec(),
    };
    for l in 0..cfg.conv_layers {
        let a = relu_conv(&h, &slow[l], cfg.filters);
        let b = relu_conv(&h, &fast[l], cfg.filters);
        let sum = a.iter().zip(&b).map(|(x, y)| x + y).collect();
        h = pool_ceil(&Maps {
            c: cfg.filters,
            h: h.h,
            w: h.w,
            v: sum,
        });
    }
    let l = cfg.conv_layers;
    let s1 = matvec(&h.v, &slow[l], cfg.fc_hidden);
    let f1 = matvec(&h.v, &fast[l], cfg.fc_hidden);
    let key: Vec<f64> = s1.iter().zip(&f1).map(|(a, b)| a + b).collect();
    let hidden: Vec<f64> = s1
        .iter()
        .zip(&f1)
        .map(|(a, b)| a.max(0.0) + b.max(0.0))
        .collect();
    let s2 = matvec(&hidden, &slow[l + 1], cfg.num_classes);
    let f2 = matvec(&hidden, &fast[l + 1], cfg.num_classes);
    (key, s2.iter().zip(&f2).map(|(a, b)| a + b).collect())
}

fn small() -> MetaNetCnnConfig {
    MetaNetCnnConfig {
        in_channels: 2,
        image_size: 5,
        filters: 3,
        conv_layers: 2,
        fc_hidden: 4,
        num_classes: 3,
    }
}

fn net(cfg: &MetaNetCnnConfig) -> MetaNetCnn<B> {
    cfg.init::<B>(&dev())
}

#[test]
fn augmented_forward_matches_the_equations_with_per_example_fast_weights() {
    rng::seed(31);
    let cfg = small();
    let net = net(&cfg);
    let n = 3;
    let x: Tensor<B, 4> = rng::random([n, 2, 5, 5], Distribution::Normal(0.0, 1.0), &dev());
    let slow = net.weights();
    let fast: Vec<Tensor<B, 2>> = slow.iter().map(|w| random([n, w.dims()[1]])).collect();
    let out = net.run(x.clone(), &slow, Some(&fast));
    let (keys, logits) = (host(out.key), host(out.logits));
    let images = host(x);
    let slow_host: Vec<Vec<f64>> = slow.iter().map(|w| host(w.clone())).collect();
    let per = 2 * 25;
    let mut worst = 0.0f64;
    for i in 0..n {
        let fast_i: Vec<Vec<f64>> = fast
            .iter()
            .map(|w| host(w.clone().narrow(0, i, 1)))
            .collect();
        let (key, logit) = reference(&cfg, &images[i * per..(i + 1) * per], &slow_host, &fast_i);
        worst = worst.max(max_abs(&key, &keys[i * 4..(i + 1) * 4]));
        worst = worst.max(max_abs(&logit, &logits[i * 3..(i + 1) * 3]));
    }
    println!("augmented forward vs f64 equations: max |Δ| = {worst:.2e}");
    assert!(worst < 1e-4, "max |Δ| {worst}");
    // A control: the slow network alone gives other logits.
    let plain = host(
        net.run(
            rng::random([n, 2, 5, 5], Distribution::Normal(0.0, 1.0), &dev()),
            &slow,
            None,
        )
        .logits,
    );
    assert!(max_abs(&plain, &logits) > 1e-3);
}

#[test]
fn per_example_weights_equal_one_example_at_a_time() {
    rng::seed(32);
    let cfg = small();
    let net = net(&cfg);
    let n = 4;
    let x: Tensor<B, 4> = rng::random([n, 2, 5, 5], Distribution::Normal(0.0, 1.0), &dev());
    let slow: Vec<Tensor<B, 2>> = net
        .weights()
        .iter()
        .map(|w| random([n, w.dims()[1]]))
        .collect();
    let fast: Vec<Tensor<B, 2>> = slow.iter().map(|w| random([n, w.dims()[1]])).collect();
    let batched = host(net.run(x.clone(), &slow, Some(&fast)).logits);
    let mut worst = 0.0f64;
    for i in 0..n {
        let row = |w: &Tensor<B, 2>| w.clone().narrow(0, i, 1);
        let slow_i: Vec<_> = slow.iter().map(row).collect();
        let fast_i: Vec<_> = fast.iter().map(row).collect();
        let alone = host(
            net.run(x.clone().narrow(0, i, 1), &slow_i, Some(&fast_i))
                .logits,
        );
        worst = worst.max(max_abs(&alone, &batched[i * 3..(i + 1) * 3]));
    }
    let scale = batched.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    println!(
        "per-example weights vs one example at a time: max |Δ| = {worst:.2e} (logits up to {scale:.1})"
    );
    assert!(worst < 1e-5 * scale.max(1.0), "max |Δ| {worst}");
}

#[test]
fn zero_fast_weights_and_the_backbone_forward_are_the_slow_network() {
    rng::seed(33);
    let cfg = MetaNetCnnConfig::default();
    let net = net(&cfg);
    assert_eq!(cfg.final_size(), 1, "28 → 14 → 7 → 4 → 2 → 1");
    let x: Tensor<B, 4> = rng::random([2, 1, 28, 28], Distribution::Normal(0.0, 1.0), &dev());
    let slow = net.weights();
    let zeros: Vec<Tensor<B, 2>> = slow
        .iter()
        .map(|w| w.zeros_like().repeat_dim(0, 2))
        .collect();
    let plain = host(net.run(x.clone(), &slow, None).logits);
    let augmented = host(net.run(x.clone(), &slow, Some(&zeros)).logits);
    let module = host(net.forward(x));
    assert_eq!(plain, augmented);
    assert!(max_abs(&plain, &module) < 1e-6);
    assert_eq!(net.feature_dim(), 64);
    assert_eq!(net.num_classes(), 5);
    let shapes = cfg.layer_shapes();
    assert_eq!(shapes[0], vec![64, 1, 3, 3]);
    assert_eq!(shapes[5], vec![64, 64]);
    let bad = MetaNetCnnConfig {
        conv_layers: 0,
        ..cfg
    };
    let err = bad.validate().unwrap_err().to_string();
    assert!(err.contains("conv_layers"), "{err}");
}
