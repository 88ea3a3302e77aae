//! This crate's custom operations (`conv`, `channel` through batch-norm, `maxpool` through
//! `pool::max_pool2x2`) on flex (and the last two on libtorch with the `tch` feature): the
//! same values and gradients as burn's operations, and
//! gradient and gradient of gradient (nested autodiff, as the MAML inner loop uses it) against
//! the reference and against f64 central finite differences.

use burn::backend::{Autodiff, Flex};
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Distribution, Int, Tensor, TensorData};
use meta_backbones::conv::{ConvGeom, burn_conv2d, conv2d};
use meta_backbones::pool::{composed_max_pool2x2, max_pool2x2};
use meta_backbones::{
    Backbone, BnConfig, Conv4, Conv4Config, GradOrder, InnerLoop, adapt, cross_entropy,
};

type A1 = Autodiff<Flex>;
type A2 = Autodiff<A1>;
/// A convolution on backend `B`, `conv2d` or `burn_conv2d`.
type ConvFn<B> = fn(Tensor<B, 4>, Tensor<B, 4>, Option<Tensor<B, 1>>, ConvGeom) -> Tensor<B, 4>;
/// `K` under two autodiff levels, as the MAML inner loop runs it.
type Nested<K> = Autodiff<Autodiff<K>>;
/// A one-input op on a backend `K` and on `K` under one and two autodiff levels.
type Unary<K> = (
    fn(Tensor<K, 4>) -> Tensor<K, 4>,
    fn(Tensor<Autodiff<K>, 4>) -> Tensor<Autodiff<K>, 4>,
    fn(Tensor<Nested<K>, 4>) -> Tensor<Nested<K>, 4>,
);

/// `(x shape, weight shape, geometry)` covering stride 1 and 2, padding 0–2, 1×1 and 3×3
/// kernels, odd sizes and a single input channel.
fn cases() -> Vec<([usize; 4], [usize; 4], ConvGeom)> {
    let g = |s: usize, p: usize| ConvGeom {
        stride: [s, s],
        padding: [p, p],
    };
    vec![
        ([3, 2, 7, 6], [4, 2, 3, 3], g(1, 1)),
        ([2, 1, 9, 9], [3, 1, 3, 3], g(2, 1)),
        ([2, 3, 5, 8], [2, 3, 3, 3], g(1, 0)),
        ([2, 3, 6, 5], [4, 3, 1, 1], g(1, 0)),
        ([1, 2, 4, 4], [2, 2, 3, 3], g(2, 2)),
        (
            [2, 2, 7, 5],
            [3, 2, 3, 2],
            ConvGeom {
                stride: [2, 1],
                padding: [1, 0],
            },
        ),
    ]
}

fn random<B: Backend, const D: usize>(shape: [usize; D], dtype: DType) -> Tensor<B, D> {
    meta_backbones::rng::random::<B, D>(shape, Distribution::Normal(0.0, 1.0), &Default::default())
        .cast(dtype)
}

fn values<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f64> {
    t.cast(DType::F64).into_data().to_vec::<f64>().unwrap()
}

fn max_rel(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
    a.iter()
        .zip(b)
        .fold(0.0, |m, (x, y)| m.max((x - y).abs() / scale))
}

#[test]
fn forward_equals_burns_convolution() {
    for (xs, ws, geom) in cases() {
        let x = random::<Flex, 4>(xs, DType::F32);
        let w = random::<Flex, 4>(ws, DType::F32);
        let b = random::<Flex, 1>([ws[0]], DType::F32);
        let ours = conv2d(x.clone(), w.clone(), Some(b.clone()), geom);
        let theirs = burn_conv2d(x, w, Some(b), geom);
        assert_eq!(ours.dims(), theirs.dims(), "{xs:?} {ws:?} {geom:?}");
        let err = max_rel(&values(ours), &values(theirs));
        assert!(err < 1e-5, "{xs:?} {ws:?} {geom:?}: {err}");
    }
}

/// Gradients of `Σ tanh(conv(x, w, b)) ⊙ r` for x, w and b, from `f`.
fn grads(
    f: ConvFn<A1>,
    inputs: (
        &Tensor<Flex, 4>,
        &Tensor<Flex, 4>,
        &Tensor<Flex, 1>,
        &Tensor<Flex, 4>,
    ),
    geom: ConvGeom,
) -> [Vec<f64>; 3] {
    let (x, w, b, r) = inputs;
    let x = Tensor::<A1, 4>::from_inner(x.clone()).require_grad();
    let w = Tensor::<A1, 4>::from_inner(w.clone()).require_grad();
    let b = Tensor::<A1, 1>::from_inner(b.clone()).require_grad();
    let y = f(x.clone(), w.clone(), Some(b.clone()), geom);
    let loss = (y.tanh() * Tensor::from_inner(r.clone())).sum();
    let g = loss.backward();
    [
        values(x.grad(&g).unwrap()),
        values(w.grad(&g).unwrap()),
        values(b.grad(&g).unwrap()),
    ]
}

#[test]
fn gradients_equal_burns_convolution() {
    for (xs, ws, geom) in cases() {
        let x = random::<Flex, 4>(xs, DType::F32);
        let w = random::<Flex, 4>(ws, DType::F32);
        let b = random::<Flex, 1>([ws[0]], DType::F32);
        let r = random::<Flex, 4>(
            burn_conv2d(x.clone(), w.clone(), None, geom).dims(),
            DType::F32,
        );
        let ours = grads(conv2d, (&x, &w, &b, &r), geom);
        let theirs = grads(burn_conv2d, (&x, &w, &b, &r), geom);
        for (name, (o, t)) in ["x", "w", "b"].iter().zip(ours.iter().zip(&theirs)) {
            let err = max_rel(o, t);
            assert!(err < 1e-5, "{name} {xs:?} {ws:?} {geom:?}: {err}");
        }
    }
}

/// `Σ tanh(conv(x, w, b)) ⊙ r` in f64 on plain flex (no tape), for finite differences.
fn loss_value(
    x: &[f64],
    w: &[f64],
    b: &[f64],
    shapes: ([usize; 4], [usize; 4]),
    r: &Tensor<Flex, 4>,
    geom: ConvGeom,
) -> f64 {
    let dev = Default::default();
    let x = Tensor::<Flex, 4>::from_data(TensorData::new(x.to_vec(), shapes.0), (&dev, DType::F64));
    let w = Tensor::<Flex, 4>::from_data(TensorData::new(w.to_vec(), shapes.1), (&dev, DType::F64));
    let b = Tensor::<Flex, 1>::from_data(
        TensorData::new(b.to_vec(), [shapes.1[0]]),
        (&dev, DType::F64),
    );
    values((conv2d(x, w, Some(b), geom).tanh() * r.clone()).sum())[0]
}

/// Central differences of `f` at `p` for every coordinate.
fn finite_differences(p: &[f64], f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    let h = 1e-6;
    (0..p.len())
        .map(|i| {
            let mut q = p.to_vec();
            q[i] = p[i] + h;
            let up = f(&q);
            q[i] = p[i] - h;
            (up - f(&q)) / (2.0 * h)
        })
        .collect()
}

#[test]
fn f64_gradients_match_finite_differences() {
    for (xs, ws, geom) in cases() {
        let x = random::<Flex, 4>(xs, DType::F64);
        let w = random::<Flex, 4>(ws, DType::F64).mul_scalar(0.5);
        let b = random::<Flex, 1>([ws[0]], DType::F64);
        let r = random::<Flex, 4>(
            burn_conv2d(x.clone(), w.clone(), None, geom).dims(),
            DType::F64,
        );
        let [gx, gw, gb] = grads(conv2d, (&x, &w, &b, &r), geom);
        let (xv, wv, bv) = (values(x), values(w), values(b));
        let shapes = (xs, ws);
        let fx = finite_differences(&xv, |p| loss_value(p, &wv, &bv, shapes, &r, geom));
        let fw = finite_differences(&wv, |p| loss_value(&xv, p, &bv, shapes, &r, geom));
        let fb = finite_differences(&bv, |p| loss_value(&xv, &wv, p, shapes, &r, geom));
        for (name, (g, f)) in [("x", (&gx, &fx)), ("w", (&gw, &fw)), ("b", (&gb, &fb))] {
            let err = max_rel(g, f);
            assert!(err < 1e-7, "{name} {xs:?} {ws:?} {geom:?}: {err}");
        }
    }
}

/// `φ = ⟨∂L/∂x, u⟩ + ⟨∂L/∂w, v⟩` for `L = Σ tanh(conv(x, w, b)) ⊙ r`, with the inner gradient
/// taken one autodiff level up (as the MAML inner loop does) and `φ`'s own gradient with
/// respect to x, w and b on the level below: the gradient of a gradient.
fn second_order(
    f: ConvFn<A2>,
    (x, w, b): (&[f64], &[f64], &[f64]),
    (xs, ws): ([usize; 4], [usize; 4]),
    (r, u, v): (&Tensor<Flex, 4>, &Tensor<Flex, 4>, &Tensor<Flex, 4>),
    geom: ConvGeom,
) -> (f64, [Vec<f64>; 3]) {
    let dev = Default::default();
    let x = Tensor::<A1, 4>::from_data(TensorData::new(x.to_vec(), xs), (&dev, DType::F64))
        .require_grad();
    let w = Tensor::<A1, 4>::from_data(TensorData::new(w.to_vec(), ws), (&dev, DType::F64))
        .require_grad();
    let b = Tensor::<A1, 1>::from_data(TensorData::new(b.to_vec(), [ws[0]]), (&dev, DType::F64))
        .require_grad();
    let (x2, w2) = (
        Tensor::<A2, 4>::from_inner(x.clone()).require_grad(),
        Tensor::<A2, 4>::from_inner(w.clone()).require_grad(),
    );
    let b2 = Tensor::<A2, 1>::from_inner(b.clone());
    let y = f(x2.clone(), w2.clone(), Some(b2), geom);
    let r2 = Tensor::<A2, 4>::from_inner(Tensor::from_inner(r.clone()));
    let inner = (y.tanh() * r2).sum().backward();
    let (gx, gw) = (x2.grad(&inner).unwrap(), w2.grad(&inner).unwrap());
    let phi =
        (gx * Tensor::from_inner(u.clone())).sum() + (gw * Tensor::from_inner(v.clone())).sum();
    let value = values(phi.clone())[0];
    let g = phi.backward();
    let grad = |t: &Tensor<A1, 4>| t.grad(&g).map(values).unwrap_or_default();
    (
        value,
        [
            grad(&x),
            grad(&w),
            b.grad(&g).map(values).unwrap_or_default(),
        ],
    )
}

#[test]
fn f64_gradient_of_gradient_matches_finite_differences_and_burn() {
    for (xs, ws, geom) in cases() {
        let x = values(random::<Flex, 4>(xs, DType::F64));
        let w = values(random::<Flex, 4>(ws, DType::F64).mul_scalar(0.5));
        let b = values(random::<Flex, 1>([ws[0]], DType::F64));
        let y_dims = burn_conv2d(
            random::<Flex, 4>(xs, DType::F64),
            random::<Flex, 4>(ws, DType::F64),
            None,
            geom,
        )
        .dims();
        let r = random::<Flex, 4>(y_dims, DType::F64);
        let u = random::<Flex, 4>(xs, DType::F64);
        let v = random::<Flex, 4>(ws, DType::F64);
        let dirs = (&r, &u, &v);
        let shapes = (xs, ws);
        let (_, ours) = second_order(conv2d, (&x, &w, &b), shapes, dirs, geom);
        let (_, theirs) = second_order(burn_conv2d, (&x, &w, &b), shapes, dirs, geom);
        let phi =
            |x: &[f64], w: &[f64], b: &[f64]| second_order(conv2d, (x, w, b), shapes, dirs, geom).0;
        let fd = [
            finite_differences(&x, |p| phi(p, &w, &b)),
            finite_differences(&w, |p| phi(&x, p, &b)),
            finite_differences(&b, |p| phi(&x, &w, p)),
        ];
        for (i, name) in ["x", "w", "b"].iter().enumerate() {
            let err_burn = max_rel(&ours[i], &theirs[i]);
            assert!(
                err_burn < 1e-10,
                "{name} vs burn {xs:?} {ws:?} {geom:?}: {err_burn}"
            );
            let err_fd = max_rel(&ours[i], &fd[i]);
            assert!(
                err_fd < 1e-6,
                "{name} vs FD {xs:?} {ws:?} {geom:?}: {err_fd}"
            );
        }
    }
}

/// Batch-norm (batch statistics, γ = 1, β = 0) composed from plain tensor operations: the
/// reference for the layer built on `meta_backbones::channel`.
fn composed_batch_norm<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    let [n, c, h, w] = x.dims();
    let x3 = x.reshape([n, c, h * w]);
    let mean = x3.clone().mean_dim(2).mean_dim(0);
    let centred = x3 - mean;
    let var = (centred.clone() * centred.clone()).mean_dim(2).mean_dim(0);
    (centred / var.add_scalar(1e-5).sqrt()).reshape([n, c, h, w])
}

fn batch_norm<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    let (channels, dtype) = (x.dims()[1], x.dtype());
    let mut bn = BnConfig::default().init::<B>(channels, &x.device());
    bn.gamma = Param::from_tensor(bn.gamma.val().cast(dtype).detach());
    bn.beta = Param::from_tensor(bn.beta.val().cast(dtype).detach());
    bn.forward4(x)
}

/// Gradient of `Σ tanh(f(x)) ⊙ r` for `x`, on one autodiff level.
fn unary_grad<K: Backend>(
    f: fn(Tensor<Autodiff<K>, 4>) -> Tensor<Autodiff<K>, 4>,
    x: &Tensor<K, 4>,
    r: &Tensor<K, 4>,
) -> Vec<f64> {
    let x = Tensor::<Autodiff<K>, 4>::from_inner(x.clone()).require_grad();
    let g = (f(x.clone()).tanh() * Tensor::from_inner(r.clone()))
        .sum()
        .backward();
    values(x.grad(&g).unwrap())
}

/// `φ(x) = ⟨∂/∂x Σ tanh(f(x)) ⊙ r, u⟩` with the inner gradient one autodiff level up, and φ's
/// gradient for `x` on the level below.
fn unary_second_order<K: Backend>(
    f: fn(Tensor<Nested<K>, 4>) -> Tensor<Nested<K>, 4>,
    x: &[f64],
    shape: [usize; 4],
    (r, u): (&Tensor<K, 4>, &Tensor<K, 4>),
) -> (f64, Vec<f64>) {
    let dev = Default::default();
    let x =
        Tensor::<Autodiff<K>, 4>::from_data(TensorData::new(x.to_vec(), shape), (&dev, DType::F64))
            .require_grad();
    let x2 = Tensor::<Nested<K>, 4>::from_inner(x.clone()).require_grad();
    let r2 = Tensor::<Nested<K>, 4>::from_inner(Tensor::from_inner(r.clone()));
    let inner = (f(x2.clone()).tanh() * r2).sum().backward();
    let phi = (x2.grad(&inner).unwrap() * Tensor::from_inner(u.clone())).sum();
    let value = values(phi.clone())[0];
    let g = phi.backward();
    (value, values(x.grad(&g).unwrap()))
}

/// `ours` against `reference` in f32 (values, gradient) and f64 (gradient of gradient, also
/// against finite differences), on the shapes given.
fn check_unary<K: Backend>(name: &str, shapes: &[[usize; 4]], ours: Unary<K>, reference: Unary<K>) {
    for &shape in shapes {
        let x = random::<K, 4>(shape, DType::F32);
        let y = ours.0(x.clone());
        let err = max_rel(&values(y.clone()), &values(reference.0(x.clone())));
        assert!(err < 1e-5, "{name} value {shape:?}: {err}");
        let r = random::<K, 4>(y.dims(), DType::F32);
        let err = max_rel(
            &unary_grad(ours.1, &x, &r),
            &unary_grad(reference.1, &x, &r),
        );
        assert!(err < 1e-4, "{name} gradient {shape:?}: {err}");

        let x64 = random::<K, 4>(shape, DType::F64);
        let r = random::<K, 4>(y.dims(), DType::F64);
        let x = values(x64.clone());
        let loss = |p: &[f64]| {
            let dev = Default::default();
            let t =
                Tensor::<K, 4>::from_data(TensorData::new(p.to_vec(), shape), (&dev, DType::F64));
            values((ours.0(t).tanh() * r.clone()).sum())[0]
        };
        let err = max_rel(&unary_grad(ours.1, &x64, &r), &finite_differences(&x, loss));
        assert!(err < 1e-7, "{name} f64 gradient vs FD {shape:?}: {err}");
        let u = random::<K, 4>(shape, DType::F64);
        let (_, g_ours) = unary_second_order(ours.2, &x, shape, (&r, &u));
        let (_, g_ref) = unary_second_order(reference.2, &x, shape, (&r, &u));
        // Not to rounding: batch-norm's variance is E[x²] − E[x]² here, centred in the reference.
        let err = max_rel(&g_ours, &g_ref);
        assert!(
            err < 1e-7,
            "{name} gradient of gradient vs reference {shape:?}: {err}"
        );
        let fd = finite_differences(&x, |p| unary_second_order(ours.2, p, shape, (&r, &u)).0);
        let err = max_rel(&g_ours, &fd);
        assert!(
            err < 1e-6,
            "{name} gradient of gradient vs FD {shape:?}: {err}"
        );
    }
}

/// Batch-norm (this crate's `channel` operations) on backend `K` against the composed reference.
fn check_batch_norm<K: Backend>(name: &str) {
    check_unary::<K>(
        name,
        &[[3, 2, 4, 5], [4, 3, 1, 1], [2, 1, 3, 3]],
        (batch_norm, batch_norm, batch_norm),
        (
            composed_batch_norm,
            composed_batch_norm,
            composed_batch_norm,
        ),
    );
}

/// `max_pool2x2` (this crate's `maxpool` operation) on backend `K` against the composed reference.
fn check_max_pool<K: Backend>(name: &str) {
    check_unary::<K>(
        name,
        &[[2, 3, 4, 6], [1, 2, 5, 7], [3, 1, 2, 2]],
        (max_pool2x2, max_pool2x2, max_pool2x2),
        (
            composed_max_pool2x2,
            composed_max_pool2x2,
            composed_max_pool2x2,
        ),
    );
}

#[test]
fn batch_norm_matches_composed_reference_and_finite_differences() {
    check_batch_norm::<Flex>("batch-norm");
}

#[test]
fn max_pool_matches_composed_reference_and_finite_differences() {
    check_max_pool::<Flex>("max-pool");
}

/// Batch-norm and max-pool on libtorch (this crate's libtorch kernels) against the same composed
/// references, to the same tolerances.
#[cfg(feature = "tch")]
#[test]
fn libtorch_batch_norm_and_max_pool_match_composed_references_and_finite_differences() {
    check_batch_norm::<burn::backend::LibTorch>("libtorch batch-norm");
    check_max_pool::<burn::backend::LibTorch>("libtorch max-pool");
}

/// Exact MAML meta-gradient of a small Conv4 on 24 images, computed inside a rayon pool of
/// `threads` threads.
fn meta_gradient_with_threads(threads: usize, model: &Conv4<A1>, x: &Tensor<A1, 4>) -> Vec<f32> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let labels: Vec<i64> = (0..24).map(|i| i % 4).collect();
        let y = Tensor::<A1, 1, Int>::from_data(TensorData::new(labels, [24]), &Default::default());
        let cfg = InnerLoop {
            steps: 1,
            lr: 0.4,
            order: GradOrder::Second,
            ..Default::default()
        };
        let adapted = adapt(
            model,
            x.clone().narrow(0, 0, 8),
            y.clone().narrow(0, 0, 8),
            &cfg,
        );
        let grads = GradientsParams::from_grads(
            cross_entropy(adapted.forward(x.clone()), y).backward(),
            model,
        );
        let mut all = Vec::new();
        model.visit(&mut Collect(&grads, &mut all));
        all
    })
}

struct Collect<'a>(&'a GradientsParams, &'a mut Vec<f32>);
impl ModuleVisitor<A1> for Collect<'_> {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<A1, D>>) {
        if let Some(g) = self.0.get::<Flex, D>(p.id) {
            self.1.extend(g.into_data().to_vec::<f32>().unwrap());
        }
    }
}

#[test]
fn meta_gradient_does_not_depend_on_the_thread_count() {
    let dev = Default::default();
    let model: Conv4<A1> = Conv4Config {
        hidden: 16,
        num_classes: 4,
        ..Default::default()
    }
    .init(&dev);
    let x =
        meta_backbones::rng::random::<A1, 4>([24, 1, 28, 28], Distribution::Normal(0.0, 1.0), &dev);
    let one = meta_gradient_with_threads(1, &model, &x);
    assert!(one.iter().any(|v| *v != 0.0) && one.iter().all(|v| v.is_finite()));
    for threads in [2, 3] {
        assert_eq!(
            one,
            meta_gradient_with_threads(threads, &model, &x),
            "{threads} threads"
        );
    }
}
