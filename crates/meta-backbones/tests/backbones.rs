//! Numerical proofs for the backbones and the differentiable inner loop, on `Autodiff<Flex>`
//! (f64 via flex's per-tensor dtype, f32 where stated).

use burn::backend::{Autodiff, Flex};
use burn::module::{AutodiffModule, Module, ModuleMapper, Param};
use burn::optim::GradientsParams;
use burn::tensor::{DType, Distribution, Int, Tensor, TensorData, TensorPrimitive};
use meta_backbones::params::param_roles;
use meta_backbones::*;

type B = Autodiff<Flex>;
type Inner = Flex;

fn dev() -> burn::backend::flex::FlexDevice {
    Default::default()
}

/// Casts every float tensor (parameters and running statistics) to `dtype`.
struct CastTo(DType);
impl ModuleMapper<B> for CastTo {
    fn map_float<const D: usize>(&mut self, p: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, t, m) = p.consume();
        let rg = t.is_require_grad();
        let t = t.inner().cast(self.0);
        Param::from_mapped_value(id, Tensor::from_inner(t).set_require_grad(rg), m)
    }
}

fn f64_model<M: Module<B>>(m: M) -> M {
    m.map(&mut CastTo(DType::F64))
}

/// A small task: `n` images per class, 2 classes.
fn task(shape: [usize; 3], n: usize, dtype: DType) -> (Tensor<B, 4>, Tensor<B, 1, Int>) {
    let [c, h, w] = shape;
    let x =
        rng::random::<B, 4>([2 * n, c, h, w], Distribution::Normal(0.0, 1.0), &dev()).cast(dtype);
    let y: Vec<i64> = (0..2 * n).map(|i| (i % 2) as i64).collect();
    (x, Tensor::from_data(TensorData::new(y, [2 * n]), &dev()))
}

fn values<M: Module<B>>(m: &M) -> Vec<Vec<f64>> {
    let mut out = Vec::new();
    struct V<'a>(&'a mut Vec<Vec<f64>>);
    impl burn::module::ModuleVisitor<B> for V<'_> {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<B, D>>) {
            let data = p.val().inner().cast(DType::F64).into_data();
            self.0.push(data.to_vec::<f64>().unwrap());
        }
    }
    m.visit(&mut V(&mut out));
    out
}

fn scalar(t: Tensor<B, 1>) -> f64 {
    t.inner()
        .cast(DType::F64)
        .into_data()
        .to_vec::<f64>()
        .unwrap()[0]
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / a.abs().max(b.abs()).max(1e-12)
}

fn max_rel(a: &[f64], b: &[f64]) -> f64 {
    let scale = a
        .iter()
        .chain(b)
        .fold(0.0f64, |m, v| m.max(v.abs()))
        .max(1e-12);
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

/// A random direction (visit order; `None` for running statistics), drawn in f64.
fn direction<M: Backbone<B>>(m: &M) -> Vec<Option<TensorPrimitive<Inner>>> {
    let roles = param_roles(m);
    let mut out = Vec::new();
    struct V<'a>(
        &'a mut Vec<Option<TensorPrimitive<Inner>>>,
        &'a [(burn::module::ParamId, ParamRole)],
    );
    impl burn::module::ModuleVisitor<B> for V<'_> {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<B, D>>) {
            let i = self.0.len();
            let d = (self.1[i].1 != ParamRole::State).then(|| {
                rng::random::<Inner, D>(
                    p.shape().dims(),
                    Distribution::Normal(0.0, 1.0),
                    &p.device(),
                )
                .cast(DType::F64)
                .into_primitive()
            });
            self.0.push(d);
        }
    }
    m.visit(&mut V(&mut out, &roles));
    out
}

/// `θ + h v` (detached leaves that require grad again).
struct Shift<'a> {
    dir: &'a [Option<TensorPrimitive<Inner>>],
    h: f64,
    i: usize,
}
impl ModuleMapper<B> for Shift<'_> {
    fn map_float<const D: usize>(&mut self, p: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let i = self.i;
        self.i += 1;
        let Some(v) = self.dir[i].clone() else {
            return p;
        };
        let (id, t, m) = p.consume();
        let v = Tensor::<Inner, D>::from_primitive(v);
        let t = Tensor::from_inner(t.inner() + v.mul_scalar(self.h)).require_grad();
        Param::from_mapped_value(id, t, m)
    }
}

/// ⟨grads, v⟩ over the parameters of `m`.
fn directional<M: Backbone<B> + AutodiffModule<B>>(
    m: &M,
    grads: &GradientsParams,
    dir: &[Option<TensorPrimitive<Inner>>],
) -> f64 {
    struct V<'a> {
        grads: &'a GradientsParams,
        dir: &'a [Option<TensorPrimitive<Inner>>],
        i: usize,
        sum: f64,
    }
    impl burn::module::ModuleVisitor<B> for V<'_> {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<B, D>>) {
            let i = self.i;
            self.i += 1;
            if let (Some(v), Some(g)) = (&self.dir[i], self.grads.get::<Inner, D>(p.id)) {
                let v = Tensor::<Inner, D>::from_primitive(v.clone());
                let s = (g.cast(DType::F64) * v)
                    .sum()
                    .into_data()
                    .to_vec::<f64>()
                    .unwrap()[0];
                self.sum += s;
            }
        }
    }
    let mut v = V {
        grads,
        dir,
        i: 0,
        sum: 0.0,
    };
    m.visit(&mut v);
    v.sum
}

struct Problem {
    xs: Tensor<B, 4>,
    ys: Tensor<B, 1, Int>,
    xq: Tensor<B, 4>,
    yq: Tensor<B, 1, Int>,
    /// Real-valued targets `(support, query)` in place of the labels, when set.
    values: Option<(Tensor<B, 2>, Tensor<B, 2>)>,
    loss: Loss,
}

impl Problem {
    fn new(shape: [usize; 3], dtype: DType) -> Self {
        let (xs, ys) = task(shape, 2, dtype);
        let (xq, yq) = task(shape, 2, dtype);
        Self {
            xs,
            ys,
            xq,
            yq,
            values: None,
            loss: Loss::Auto,
        }
    }

    /// The same inputs under `loss`, against `width` random real values per input when
    /// `width > 0` (regression), against the labels otherwise.
    fn with_loss(self, loss: Loss, width: usize) -> Self {
        let n = self.xs.dims()[0];
        let values = (width > 0).then(|| {
            let v = || {
                rng::random::<B, 2>([n, width], Distribution::Normal(0.0, 1.0), &dev())
                    .cast(self.xs.dtype())
            };
            (v(), v())
        });
        Self {
            values,
            loss,
            ..self
        }
    }

    fn targets(&self) -> (Targets<B>, Targets<B>) {
        match &self.values {
            Some((s, q)) => (s.clone().into(), q.clone().into()),
            None => (self.ys.clone().into(), self.yq.clone().into()),
        }
    }

    fn meta_loss<M: AdaptableBackbone<B>>(&self, m: &M, cfg: &InnerLoop) -> Tensor<B, 1> {
        let (support, query) = self.targets();
        let adapted = adapt_with_loss(m, self.xs.clone(), support, cfg, &self.loss);
        self.loss.loss(adapted.forward(self.xq.clone()), &query)
    }

    /// (analytic, central finite difference) directional derivatives of the meta-loss.
    fn check<M: AdaptableBackbone<B>>(&self, m: &M, cfg: &InnerLoop) -> (f64, f64) {
        self.check_h(m, cfg, 1e-6)
    }

    fn check_h<M: AdaptableBackbone<B>>(&self, m: &M, cfg: &InnerLoop, h: f64) -> (f64, f64) {
        let dir = direction(m);
        let grads = GradientsParams::from_grads(self.meta_loss(m, cfg).backward(), m);
        let analytic = directional(m, &grads, &dir);
        let plus = m.clone().map(&mut Shift { dir: &dir, h, i: 0 });
        let minus = m.clone().map(&mut Shift {
            dir: &dir,
            h: -h,
            i: 0,
        });
        let fd =
            (scalar(self.meta_loss(&plus, cfg)) - scalar(self.meta_loss(&minus, cfg))) / (2.0 * h);
        (analytic, fd)
    }
}

fn inner(steps: usize, order: GradOrder) -> InnerLoop {
    InnerLoop {
        steps,
        lr: 0.3,
        order,
        group: ParamGroup::All,
    }
}

fn bn_modes() -> [BnConfig; 3] {
    [
        BnConfig::default(),
        BnConfig {
            mode: BnMode::Running,
            ..Default::default()
        },
        BnConfig {
            mode: BnMode::PerStep { steps: 3 },
            ..Default::default()
        },
    ]
}

fn check_meta_gradient<M: AdaptableBackbone<B>>(name: &str, m: M, shape: [usize; 3]) {
    check_meta_gradient_on(name, m, Problem::new(shape, DType::F64));
}

fn check_meta_gradient_on<M: AdaptableBackbone<B>>(name: &str, m: M, p: Problem) {
    let m = f64_model(m);
    for steps in [1, 3] {
        let (a, fd) = p.check(&m, &inner(steps, GradOrder::Second));
        let mut r = rel(a, fd);
        for h in [1e-7, 1e-8] {
            if r <= 1e-5 {
                break;
            }
            // A max-pool or ReLU switch inside the ±h interval spoils the difference
            // quotient; a smaller step avoids it.
            let (a2, fd2) = p.check_h(&m, &inner(steps, GradOrder::Second), h);
            println!("{name} steps={steps}: retry with h={h:e} ({a} vs {fd})");
            r = rel(a2, fd2);
        }
        println!("{name} steps={steps}: analytic {a:.12e} fd {fd:.12e} rel {r:.2e}");
        assert!(
            r <= 1e-5,
            "{name}, {steps} steps: meta-gradient {a} vs FD {fd} (rel {r:.2e})"
        );
    }
}

#[test]
fn meta_gradient_matches_finite_differences_with_mean_squared_error() {
    rng::seed(3);
    // Regression: the sine network's shape (Linear → ReLU, no batch-norm) on 2 real outputs.
    let fc = FcNetConfig {
        x_dim: 3,
        layer_dims: vec![6, 5],
        dropout: 0.0,
        num_classes: 2,
        batch_norm: false,
        ..Default::default()
    };
    let regression = Problem::new([3, 1, 1], DType::F64).with_loss(Loss::Mse, 2);
    check_meta_gradient_on("fcnet mse values", fc.init::<B>(&dev()), regression);
    // Auto on real values is MSE as well.
    let auto = Problem::new([3, 1, 1], DType::F64).with_loss(Loss::Auto, 2);
    check_meta_gradient_on("fcnet auto values", fc.init::<B>(&dev()), auto);
    // MSE against one-hot labels through convolutions and batch-norm.
    let conv4 = Conv4Config {
        hidden: 3,
        image_size: 16,
        num_classes: 2,
        ..Default::default()
    };
    let one_hot = Problem::new([1, 16, 16], DType::F64).with_loss(Loss::Mse, 0);
    check_meta_gradient_on("conv4 mse one-hot", conv4.init::<B>(&dev()), one_hot);
}

#[test]
fn meta_gradient_matches_finite_differences_for_every_backbone_and_bn_mode() {
    rng::seed(1);
    for bn in bn_modes() {
        let tag = format!("{:?}", bn.mode);
        let conv4 = Conv4Config {
            hidden: 3,
            image_size: 16,
            num_classes: 2,
            bn,
            ..Default::default()
        };
        check_meta_gradient(
            &format!("conv4 {tag}"),
            conv4.init::<B>(&dev()),
            [1, 16, 16],
        );
        let strided = Conv4Config {
            variant: Conv4Variant::Strided,
            image_size: 8,
            ..conv4
        };
        check_meta_gradient(
            &format!("conv4-strided {tag}"),
            strided.init::<B>(&dev()),
            [1, 8, 8],
        );
        let res = ResNet12Config {
            in_channels: 1,
            widths: [2, 3, 3, 4],
            num_classes: 2,
            bn,
        };
        check_meta_gradient(
            &format!("resnet12 {tag}"),
            res.init::<B>(&dev()),
            [1, 16, 16],
        );
        let meta = MetaNetEmbeddingConfig {
            hidden: 3,
            num_classes: 2,
            bn,
            ..Default::default()
        };
        check_meta_gradient(
            &format!("metanet {tag}"),
            meta.init::<B>(&dev()),
            [1, 16, 16],
        );
        let fc = FcNetConfig {
            x_dim: 12,
            layer_dims: vec![6, 5],
            dropout: 0.0,
            num_classes: 2,
            batch_norm: true,
            bn,
        };
        check_meta_gradient(&format!("fcnet {tag}"), fc.init::<B>(&dev()), [3, 2, 2]);
    }
    // No batch-norm; 5×5 images pool to 3×3 and 2×2 (ceil mode).
    let cnn = MetaNetCnnConfig {
        image_size: 5,
        filters: 2,
        conv_layers: 2,
        fc_hidden: 3,
        num_classes: 2,
        ..Default::default()
    };
    check_meta_gradient("metanet-cnn", cnn.init::<B>(&dev()), [1, 5, 5]);
}

#[test]
fn fast_weight_forward_equals_module_forward() {
    rng::seed(2);
    fn check<M: AdaptableBackbone<B>>(name: &str, m: M, shape: [usize; 3]) {
        let (x, y) = task(shape, 3, DType::F32);
        let reference = m
            .forward(x.clone())
            .inner()
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        let fast = adapt(
            &m,
            x.clone(),
            y,
            &InnerLoop {
                steps: 0,
                ..Default::default()
            },
        );
        let lifted = <M as AdaptableBackbone<B>>::Lifted::from_inner(m.clone());
        let outs = [
            fast.forward(x.clone()).inner(),
            lifted.forward(Tensor::from_inner(x)).inner().inner(),
        ];
        for out in outs {
            let out = out.into_data().to_vec::<f32>().unwrap();
            let a: Vec<f64> = reference.iter().map(|&v| v as f64).collect();
            let b: Vec<f64> = out.iter().map(|&v| v as f64).collect();
            let r = max_rel(&a, &b);
            println!("{name}: fast-weight forward rel {r:.2e}");
            assert!(
                r <= 1e-6,
                "{name}: fast-weight forward differs (rel {r:.2e})"
            );
        }
    }
    let bn = BnConfig::default();
    check(
        "conv4",
        Conv4Config {
            hidden: 4,
            image_size: 16,
            ..Default::default()
        }
        .init::<B>(&dev()),
        [1, 16, 16],
    );
    check(
        "resnet12",
        ResNet12Config {
            in_channels: 1,
            widths: [2, 3, 3, 4],
            num_classes: 5,
            bn,
        }
        .init::<B>(&dev()),
        [1, 16, 16],
    );
    check(
        "metanet",
        MetaNetEmbeddingConfig {
            hidden: 4,
            ..Default::default()
        }
        .init::<B>(&dev()),
        [1, 16, 16],
    );
    check(
        "fcnet",
        FcNetConfig {
            x_dim: 12,
            dropout: 0.0,
            ..Default::default()
        }
        .init::<B>(&dev()),
        [3, 2, 2],
    );
}

/// With lr = 1 and one step, θ − θ' is the inner gradient that the differentiable route
/// computed; compare it with burn's ordinary first-order gradient.
fn inner_gradient_error<M: AdaptableBackbone<B>>(m: &M, shape: [usize; 3], dtype: DType) -> f64 {
    let (x, y) = task(shape, 3, dtype);
    let cfg = InnerLoop {
        steps: 1,
        lr: 1.0,
        order: GradOrder::Second,
        group: ParamGroup::All,
    };
    let adapted = adapt(m, x.clone(), y.clone(), &cfg);
    let differentiable = param_difference(m, &adapted);
    let plain = support_gradients(m, x, y, ParamGroup::All, &Loss::Auto);
    // Concatenate all gradients: biases feeding a batch-norm have a true gradient of zero,
    // so the error is measured relative to the largest gradient entry of the network.
    struct V<'a> {
        a: &'a GradientsParams,
        b: &'a GradientsParams,
        all: (Vec<f64>, Vec<f64>),
        count: usize,
    }
    impl burn::module::ModuleVisitor<B> for V<'_> {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<B, D>>) {
            if let (Some(a), Some(b)) = (self.a.get::<Inner, D>(p.id), self.b.get::<Inner, D>(p.id))
            {
                self.all
                    .0
                    .extend(a.cast(DType::F64).into_data().to_vec::<f64>().unwrap());
                self.all
                    .1
                    .extend(b.cast(DType::F64).into_data().to_vec::<f64>().unwrap());
                self.count += 1;
            }
        }
    }
    let mut v = V {
        a: &differentiable,
        b: &plain,
        all: (Vec::new(), Vec::new()),
        count: 0,
    };
    m.visit(&mut v);
    assert!(
        v.count > 0 && v.count == plain.len(),
        "every parameter has both gradients"
    );
    max_rel(&v.all.0, &v.all.1)
}

#[test]
fn differentiable_inner_gradient_equals_autodiff_gradient() {
    rng::seed(3);
    let bn = BnConfig {
        mode: BnMode::PerStep { steps: 1 },
        ..Default::default()
    };
    let conv4 = Conv4Config {
        hidden: 4,
        image_size: 16,
        bn,
        ..Default::default()
    }
    .init::<B>(&dev());
    let res = ResNet12Config {
        in_channels: 1,
        widths: [2, 3, 3, 4],
        num_classes: 5,
        bn,
    }
    .init::<B>(&dev());
    let meta = MetaNetEmbeddingConfig {
        hidden: 4,
        bn,
        ..Default::default()
    }
    .init::<B>(&dev());
    let fc = FcNetConfig {
        x_dim: 12,
        dropout: 0.0,
        bn,
        ..Default::default()
    }
    .init::<B>(&dev());
    let img = [1, 16, 16];
    for (dtype, tol) in [(DType::F32, 1e-5), (DType::F64, 1e-9)] {
        let errors = if dtype == DType::F64 {
            [
                inner_gradient_error(&f64_model(conv4.clone()), img, dtype),
                inner_gradient_error(&f64_model(res.clone()), img, dtype),
                inner_gradient_error(&f64_model(meta.clone()), img, dtype),
                inner_gradient_error(&f64_model(fc.clone()), [3, 2, 2], dtype),
            ]
        } else {
            [
                inner_gradient_error(&conv4, img, dtype),
                inner_gradient_error(&res, img, dtype),
                inner_gradient_error(&meta, img, dtype),
                inner_gradient_error(&fc, [3, 2, 2], dtype),
            ]
        };
        println!("{dtype:?}: inner-gradient rel errors conv4/resnet12/metanet/fcnet {errors:?}");
        for e in errors {
            assert!(
                e <= tol,
                "{dtype:?}: inner gradient off by {e:.2e} > {tol:.0e}"
            );
        }
    }
}

#[test]
fn first_order_meta_gradient_differs_from_exact() {
    rng::seed(4);
    let m = f64_model(
        Conv4Config {
            hidden: 3,
            image_size: 16,
            num_classes: 2,
            ..Default::default()
        }
        .init::<B>(&dev()),
    );
    let p = Problem::new([1, 16, 16], DType::F64);
    let dir = direction(&m);
    let d = |order| {
        let cfg = InnerLoop {
            steps: 1,
            lr: 0.5,
            order,
            group: ParamGroup::All,
        };
        let grads = GradientsParams::from_grads(p.meta_loss(&m, &cfg).backward(), &m);
        directional(&m, &grads, &dir)
    };
    let (second, first) = (d(GradOrder::Second), d(GradOrder::First));
    let r = rel(second, first);
    println!("exact {second:.6e} vs first-order {first:.6e}: rel {r:.2e}");
    assert!(
        r > 1e-2,
        "first-order equals exact ({r:.2e}): no second-order term"
    );
}

#[test]
fn metasgd_learning_rates_get_exact_meta_gradients() {
    rng::seed(5);
    let cfg = Conv4Config {
        hidden: 3,
        image_size: 16,
        num_classes: 2,
        ..Default::default()
    };
    let m = f64_model(cfg.init::<B>(&dev()));
    struct Fill;
    impl ModuleMapper<B> for Fill {
        fn map_float<const D: usize>(&mut self, p: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            let (id, t, m) = p.consume();
            let t = Tensor::from_inner(t.inner().mul_scalar(0.0).add_scalar(0.1)).require_grad();
            Param::from_mapped_value(id, t, m)
        }
    }
    let lrs = f64_model(cfg.init::<B>(&dev())).map(&mut Fill);
    let p = Problem::new([1, 16, 16], DType::F64);
    let loss = |m: &Conv4<B>, lrs: &Conv4<B>| {
        let a = adapt_with_lrs(
            m,
            p.xs.clone(),
            p.ys.clone(),
            2,
            lrs,
            ParamGroup::All,
            &Loss::Auto,
        );
        cross_entropy(a.forward(p.xq.clone()), p.yq.clone())
    };
    let (dm, dl) = (direction(&m), direction(&lrs));
    let mut grads = loss(&m, &lrs).backward();
    let gm = GradientsParams::from_module(&mut grads, &m);
    let gl = GradientsParams::from_module(&mut grads, &lrs);
    let analytic = directional(&m, &gm, &dm) + directional(&lrs, &gl, &dl);
    let h = 1e-6;
    let shifted = |s: f64| {
        let m2 = m.clone().map(&mut Shift {
            dir: &dm,
            h: s * h,
            i: 0,
        });
        let l2 = lrs.clone().map(&mut Shift {
            dir: &dl,
            h: s * h,
            i: 0,
        });
        scalar(loss(&m2, &l2))
    };
    let fd = (shifted(1.0) - shifted(-1.0)) / (2.0 * h);
    let r = rel(analytic, fd);
    println!("metasgd: analytic {analytic:.10e} fd {fd:.10e} rel {r:.2e}");
    assert!(
        !gl.is_empty() && r <= 1e-5,
        "MetaSGD meta-gradient off: rel {r:.2e}"
    );
}

#[test]
fn fast_forward_never_mutates_running_statistics() {
    rng::seed(6);
    for mode in [BnMode::Running, BnMode::PerStep { steps: 2 }] {
        let bn = BnConfig {
            mode,
            ..Default::default()
        };
        let m = Conv4Config {
            hidden: 4,
            image_size: 16,
            bn,
            ..Default::default()
        }
        .init::<B>(&dev());
        let (x, y) = task([1, 16, 16], 3, DType::F32);
        let state = |m: &Conv4<B>| -> Vec<Vec<f64>> {
            let _ = m.clone().into_record(); // folds pending running-statistics updates in
            let roles = param_roles(m);
            values(m)
                .into_iter()
                .zip(roles)
                .filter(|(_, (_, r))| *r == ParamRole::State)
                .map(|(v, _)| v)
                .collect()
        };
        let before = state(&m);
        assert_eq!(before.len(), 8, "two running tensors per block");
        for order in [GradOrder::Second, GradOrder::First] {
            let cfg = InnerLoop {
                steps: 2,
                lr: 0.1,
                order,
                group: ParamGroup::All,
            };
            let adapted = adapt(&m, x.clone(), y.clone(), &cfg);
            let _ = adapted.forward(x.clone());
            let _ = support_gradients(&m, x.clone(), y.clone(), ParamGroup::All, &Loss::Auto);
            assert_eq!(
                state(&m),
                before,
                "{mode:?} {order:?}: adapt changed running statistics"
            );
        }
        // The meta-model's own forward does update them (so the check above can fail).
        let _ = m.forward(x);
        assert_ne!(
            state(&m),
            before,
            "{mode:?}: meta-model forward should update statistics"
        );
    }
}

#[test]
fn parameter_groups_adapt_only_their_parameters() {
    rng::seed(7);
    let m = Conv4Config {
        hidden: 4,
        image_size: 16,
        ..Default::default()
    }
    .init::<B>(&dev());
    let (x, y) = task([1, 16, 16], 3, DType::F32);
    let roles = param_roles(&m);
    let before = values(&m);
    for group in [ParamGroup::All, ParamGroup::Head, ParamGroup::Body] {
        for order in [GradOrder::Second, GradOrder::First] {
            let cfg = InnerLoop {
                steps: 1,
                lr: 0.5,
                order,
                group,
            };
            let after = values(&adapt(&m, x.clone(), y.clone(), &cfg));
            for ((b, a), (_, role)) in before.iter().zip(&after).zip(&roles) {
                let changed = b != a;
                assert_eq!(
                    changed,
                    group.contains(*role),
                    "{group:?} {order:?}: {role:?} changed={changed}"
                );
            }
        }
        let grads = support_gradients(&m, x.clone(), y.clone(), group, &Loss::Auto);
        let expected = roles.iter().filter(|(_, r)| group.contains(*r)).count();
        assert_eq!(
            grads.len(),
            expected,
            "{group:?}: support_gradients covers the group"
        );
    }
    assert_eq!(
        roles.iter().filter(|(_, r)| *r == ParamRole::Head).count(),
        2
    );
}

#[test]
fn same_seed_gives_same_initialisation() {
    let cfg = ResNet12Config {
        in_channels: 1,
        widths: [2, 3, 3, 4],
        ..Default::default()
    };
    let build = |seed| {
        rng::seed(seed);
        let m = cfg.init::<B>(&dev());
        let cloned = m.clone();
        (values(&m), values(&cloned))
    };
    let (a, a_clone) = build(11);
    let (b, _) = build(11);
    let (c, _) = build(12);
    assert_eq!(a, a_clone, "a clone shares the initialisation");
    assert_eq!(a, b, "same seed, same parameters");
    assert_ne!(a, c, "different seed, different parameters");
}

#[test]
fn invalid_configs_are_rejected_with_the_field_named() {
    let err = Conv4Config {
        image_size: 8,
        ..Default::default()
    }
    .validate()
    .unwrap_err();
    assert!(err.to_string().contains("image size 8"), "{err}");
    let err = FcNetConfig {
        dropout: 1.5,
        ..Default::default()
    }
    .validate()
    .unwrap_err();
    assert!(err.to_string().contains("dropout 1.5"), "{err}");
    let err = ResNet12Config {
        widths: [1, 0, 1, 1],
        ..Default::default()
    }
    .validate()
    .unwrap_err();
    assert!(err.to_string().contains("widths"), "{err}");
}

// ----------------------------------------------------------------------------- AnyBackbone

/// Small configurations of every backbone kind (running batch-norm statistics, so that every
/// kind with batch-norm has state tensors), with the input shape each takes.
fn any_configs() -> Vec<(BackboneConfig, [usize; 3])> {
    let bn = BnConfig {
        mode: BnMode::Running,
        ..Default::default()
    };
    vec![
        (
            Conv4Config {
                hidden: 4,
                image_size: 16,
                bn,
                ..Default::default()
            }
            .into(),
            [1, 16, 16],
        ),
        (
            ResNet12Config {
                in_channels: 1,
                widths: [2, 3, 3, 4],
                num_classes: 5,
                bn,
            }
            .into(),
            [1, 16, 16],
        ),
        (
            FcNetConfig {
                x_dim: 12,
                dropout: 0.0,
                bn,
                ..Default::default()
            }
            .into(),
            [3, 2, 2],
        ),
        (
            MetaNetEmbeddingConfig {
                hidden: 4,
                bn,
                ..Default::default()
            }
            .into(),
            [1, 16, 16],
        ),
        (
            MetaNetCnnConfig {
                image_size: 9,
                filters: 3,
                conv_layers: 3,
                ..Default::default()
            }
            .into(),
            [1, 9, 9],
        ),
    ]
}

fn exact(t: Tensor<B, 2>) -> Vec<f32> {
    t.inner().into_data().to_vec::<f32>().unwrap()
}

/// Paths (as `ModuleVisitor::enter_module` gives them) of every float tensor, in visit order.
fn tensor_paths<M: Module<B>>(m: &M) -> Vec<Vec<String>> {
    struct P(Vec<String>, Vec<Vec<String>>);
    impl burn::module::ModuleVisitor<B> for P {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.0.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.0.pop();
        }
        fn visit_float<const D: usize>(&mut self, _: &Param<Tensor<B, D>>) {
            self.1.push(self.0.clone());
        }
    }
    let mut p = P(Vec::new(), Vec::new());
    m.visit(&mut p);
    p.1
}

/// `AnyBackbone` against the network it wraps (same weights, same `ParamId`s): identical
/// forward, embedding, sizes, tensor paths (variant name prepended) and parameter roles.
fn check_any_matches<M>(name: &str, plain: M, any: AnyBackbone<B>, shape: [usize; 3])
where
    M: AdaptableBackbone<B>,
    M::InnerModule: Backbone<Inner>,
{
    let (x, _) = task(shape, 3, DType::F32);
    // Inference (running statistics) first, before any training forward updates them.
    let vx = x.clone().inner();
    let v_plain = plain.valid().forward(vx.clone()).into_data();
    let v_any = any.valid().forward(vx).into_data();
    assert_eq!(v_plain, v_any, "{name}: valid() forward");

    assert_eq!(
        exact(plain.forward(x.clone())),
        exact(any.forward(x.clone())),
        "{name}: forward"
    );
    assert_eq!(
        exact(plain.embed(x.clone())),
        exact(any.embed(x.clone())),
        "{name}: embed"
    );
    assert_eq!(
        plain.feature_dim(),
        any.feature_dim(),
        "{name}: feature_dim"
    );
    assert_eq!(
        plain.num_classes(),
        any.num_classes(),
        "{name}: num_classes"
    );

    let plain_paths = tensor_paths(&plain);
    let any_paths = tensor_paths(&any);
    assert_eq!(plain_paths.len(), any_paths.len(), "{name}: tensor count");
    let variant = match &any {
        AnyBackbone::Conv4(_) => "Conv4",
        AnyBackbone::ResNet12(_) => "ResNet12",
        AnyBackbone::FcNet(_) => "FcNet",
        AnyBackbone::MetaNetEmbedding(_) => "MetaNetEmbedding",
        AnyBackbone::MetaNetCnn(_) => "MetaNetCnn",
    };
    for (p, a) in plain_paths.iter().zip(&any_paths) {
        assert_eq!(a[0], variant, "{name}: burn names the variant first");
        assert_eq!(&a[1..], &p[..], "{name}: path under the variant");
    }

    let roles_plain = param_roles(&plain);
    let roles_any = param_roles(&any);
    assert_eq!(
        roles_plain, roles_any,
        "{name}: (ParamId, role) in visit order"
    );
    let count = |r| roles_any.iter().filter(|(_, x)| *x == r).count();
    println!(
        "{name}: {} head, {} body, {} state tensors",
        count(ParamRole::Head),
        count(ParamRole::Body),
        count(ParamRole::State)
    );
    if name == "metanet_cnn" {
        // No bias and no batch-norm.
        assert_eq!(count(ParamRole::Head), 1, "{name}: head weight");
        assert_eq!(count(ParamRole::State), 0, "{name}: no running statistics");
    } else {
        assert_eq!(count(ParamRole::Head), 2, "{name}: head weight and bias");
        assert!(count(ParamRole::State) > 0, "{name}: running statistics");
    }
}

#[test]
fn any_backbone_is_exactly_the_wrapped_backbone() {
    rng::seed(21);
    for (cfg, shape) in any_configs() {
        let any = cfg.init::<B>(&dev());
        assert_eq!(any.name(), cfg.name());
        match &any {
            AnyBackbone::Conv4(m) => check_any_matches(cfg.name(), m.clone(), any.clone(), shape),
            AnyBackbone::ResNet12(m) => {
                check_any_matches(cfg.name(), m.clone(), any.clone(), shape)
            }
            AnyBackbone::FcNet(m) => check_any_matches(cfg.name(), m.clone(), any.clone(), shape),
            AnyBackbone::MetaNetEmbedding(m) => {
                check_any_matches(cfg.name(), m.clone(), any.clone(), shape)
            }
            AnyBackbone::MetaNetCnn(m) => {
                check_any_matches(cfg.name(), m.clone(), any.clone(), shape)
            }
        }
    }
    // Roles of explicit paths.
    let path = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let role = |p: &[&str]| <AnyBackbone<B> as Backbone<B>>::param_role(&path(p));
    assert_eq!(role(&["Conv4", "head", "weight"]), ParamRole::Head);
    assert_eq!(
        role(&["ResNet12", "stages", "0", "convs", "1", "weight"]),
        ParamRole::Body
    );
    assert_eq!(
        role(&["FcNet", "blocks", "0", "bn", "running_mean"]),
        ParamRole::State
    );
    assert_eq!(role(&["MetaNetEmbedding", "head", "bias"]), ParamRole::Head);
}

#[test]
fn any_backbone_groups_adapt_exactly_like_the_wrapped_backbone() {
    rng::seed(22);
    let plain = Conv4Config {
        hidden: 4,
        image_size: 16,
        ..Default::default()
    }
    .init::<B>(&dev());
    let any = AnyBackbone::Conv4(plain.clone());
    let (x, y) = task([1, 16, 16], 3, DType::F32);
    let roles = param_roles(&any);
    let before = values(&any);
    for group in [ParamGroup::Head, ParamGroup::Body, ParamGroup::All] {
        for order in [GradOrder::Second, GradOrder::First] {
            let cfg = InnerLoop {
                steps: 2,
                lr: 0.5,
                order,
                group,
            };
            let after = values(&adapt(&any, x.clone(), y.clone(), &cfg));
            let mut changed_head = 0;
            for ((b, a), (_, role)) in before.iter().zip(&after).zip(&roles) {
                let changed = b != a;
                changed_head += usize::from(changed && *role == ParamRole::Head);
                assert_eq!(
                    changed,
                    group.contains(*role),
                    "{group:?} {order:?}: {role:?} changed={changed}"
                );
            }
            if group == ParamGroup::Head {
                assert_eq!(changed_head, 2, "ANIL adapts the head's weight and bias");
            }
            let after_plain = values(&adapt(&plain, x.clone(), y.clone(), &cfg));
            assert_eq!(
                after, after_plain,
                "{group:?} {order:?}: adapted parameters"
            );
        }
        let grads = support_gradients(&any, x.clone(), y.clone(), group, &Loss::Auto);
        let expected = roles.iter().filter(|(_, r)| group.contains(*r)).count();
        assert_eq!(grads.len(), expected, "{group:?}: support_gradients");
    }
}

/// Every gradient in `grads` of a tensor of `m` (visit order of `m`), as f64 values; `None` where there is none.
fn all_grads<M: Module<B>>(m: &M, grads: &GradientsParams) -> Vec<Option<Vec<f64>>> {
    struct V<'a>(&'a GradientsParams, Vec<Option<Vec<f64>>>);
    impl burn::module::ModuleVisitor<B> for V<'_> {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<B, D>>) {
            let g = self
                .0
                .get::<Inner, D>(p.id)
                .map(|g| g.cast(DType::F64).into_data().to_vec::<f64>().unwrap());
            self.1.push(g);
        }
    }
    let mut v = V(grads, Vec::new());
    m.visit(&mut v);
    v.1
}

#[test]
fn any_backbone_meta_gradient_equals_the_wrapped_backbones() {
    rng::seed(23);
    // MAML++ per-step batch-norm: the adapted model's statistics and affine slots come from
    // `fast_copy(step)`, so this also checks that `fast_copy` is delegated.
    let plain = f64_model(
        Conv4Config {
            hidden: 3,
            image_size: 16,
            num_classes: 2,
            bn: BnConfig {
                mode: BnMode::PerStep { steps: 3 },
                ..Default::default()
            },
            ..Default::default()
        }
        .init::<B>(&dev()),
    );
    let any = AnyBackbone::Conv4(plain.clone());
    let p = Problem::new([1, 16, 16], DType::F64);
    for (steps, group) in [
        (3, ParamGroup::All),
        (1, ParamGroup::Head),
        (2, ParamGroup::Body),
    ] {
        let cfg = InnerLoop {
            group,
            ..inner(steps, GradOrder::Second)
        };
        let g_plain = GradientsParams::from_grads(p.meta_loss(&plain, &cfg).backward(), &plain);
        let g_any = GradientsParams::from_grads(p.meta_loss(&any, &cfg).backward(), &any);
        let a = all_grads(&any, &g_any);
        let b = all_grads(&plain, &g_plain);
        // The query loss depends on every parameter, adapted or not; state gets none.
        let trainable = param_roles(&any)
            .iter()
            .filter(|(_, r)| *r != ParamRole::State)
            .count();
        assert_eq!(a.iter().filter(|g| g.is_some()).count(), trainable);
        assert_eq!(a, b, "{steps} steps {group:?}: meta-gradients bit for bit");
    }
    check_meta_gradient("any conv4 per-step", any, [1, 16, 16]);
}

#[test]
fn backbone_config_serde_tags_validation_and_names() {
    use serde::Deserialize;
    use serde::de::value::{Error, MapDeserializer};
    let from_tag = |kind: &'static str| {
        BackboneConfig::deserialize(MapDeserializer::<_, Error>::new(
            [("kind", kind)].into_iter(),
        ))
        .unwrap()
    };
    assert_eq!(from_tag("conv4"), Conv4Config::default().into());
    assert_eq!(from_tag("resnet12"), ResNet12Config::default().into());
    assert_eq!(from_tag("fcnet"), FcNetConfig::default().into());
    assert_eq!(
        from_tag("metanet_embedding"),
        MetaNetEmbeddingConfig::default().into()
    );
    for cfg in [
        from_tag("conv4"),
        from_tag("resnet12"),
        from_tag("fcnet"),
        from_tag("metanet_embedding"),
    ] {
        assert_eq!(from_tag(cfg.name()), cfg, "name() is the serde tag");
        assert!(cfg.validate().is_ok());
    }
    assert_eq!(BackboneConfig::default(), Conv4Config::default().into());
    let bad: BackboneConfig = FcNetConfig {
        dropout: 1.5,
        ..Default::default()
    }
    .into();
    let err = bad.validate().unwrap_err();
    assert!(err.to_string().contains("dropout 1.5"), "{err}");
    assert_eq!(bad.try_init::<B>(&dev()).unwrap_err(), err);
}

#[test]
fn head_inner_loop_on_cached_features_equals_the_full_head_inner_loop() {
    rng::seed(21);
    for bn in bn_modes() {
        let m = f64_model(
            Conv4Config {
                hidden: 3,
                image_size: 16,
                num_classes: 2,
                bn,
                ..Default::default()
            }
            .init::<B>(&dev()),
        );
        let per_step = matches!(bn.mode, BnMode::PerStep { .. });
        assert_eq!(step_dependent(&m), per_step, "{:?}", bn.mode);
        if per_step {
            continue; // features differ per inner step: callers must not cache them
        }
        let (sx, sy) = task([1, 16, 16], 2, DType::F64);
        let (qx, qy) = task([1, 16, 16], 3, DType::F64);
        let dir = direction(&m);
        for (steps, order) in [
            (1, GradOrder::Second),
            (3, GradOrder::Second),
            (3, GradOrder::First),
        ] {
            let cfg = InnerLoop {
                steps,
                lr: 0.5,
                order,
                group: ParamGroup::Head,
            };
            let full = adapt(&m, sx.clone(), sy.clone(), &cfg);
            let full_loss = cross_entropy(full.forward(qx.clone()), qy.clone());
            let support = m.fast_copy(0).embed(sx.clone());
            let cached = adapt_head(&m, support, sy.clone(), &cfg, &Loss::Auto);
            let cached_loss = cross_entropy(cached.forward(qx.clone()), qy.clone());
            let (l_full, l_cached) = (scalar(full_loss.clone()), scalar(cached_loss.clone()));
            let g_full = GradientsParams::from_grads(full_loss.backward(), &m);
            let g_cached = GradientsParams::from_grads(cached_loss.backward(), &m);
            let (d_full, d_cached) = (
                directional(&m, &g_full, &dir),
                directional(&m, &g_cached, &dir),
            );
            let tag = format!("{:?}, {steps} steps, {order:?}", bn.mode);
            println!(
                "{tag}: loss {l_full:.12e} / {l_cached:.12e}, ⟨g, v⟩ {d_full:.12e} / {d_cached:.12e}"
            );
            assert!(rel(l_full, l_cached) < 1e-12, "{tag}: losses differ");
            assert!(
                rel(d_full, d_cached) < 1e-10,
                "{tag}: meta-gradients differ: {d_full} vs {d_cached}"
            );
        }
    }
}
