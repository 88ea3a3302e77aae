//! Meta Networks as published, piece by piece: the per-example gradients against one backward
//! pass per example, the preprocessing against its formula, the memory read against a
//! hand-built fast-weight pass, prediction against the training forward, and the meta-gradient
//! against f64 central finite differences.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{DType, Tensor, TensorData};
use meta_backbones::{Backbone, MetaNetCnnConfig, rng};
use meta_data::{EpisodeSource, Task};

use crate::metanet::{chunk_means, example_gradients, log_and_sign};
use crate::test_util::{Synthetic, TB};
use crate::{MetaLearner, MetaNet, MetaNetConfig, MetaNetModel, Predictor, SupportRule, ops};

type Inner = <TB as AutodiffBackend>::InnerBackend;

/// A network for the synthetic 3-way tasks of 1×4×4 images.
fn net_config() -> MetaNetCnnConfig {
    MetaNetCnnConfig {
        in_channels: 1,
        image_size: 4,
        filters: 3,
        conv_layers: 2,
        fc_hidden: 5,
        num_classes: 3,
    }
}

fn host<const D: usize>(t: Tensor<Inner, D>) -> Vec<f64> {
    t.cast(DType::F64).into_data().to_vec::<f64>().unwrap()
}

fn max_abs(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

fn task(seed: u64) -> Task<TB> {
    Synthetic { seed }
        .episode(0)
        .to_task::<TB>(&Default::default())
}

#[test]
fn example_gradients_are_each_examples_own_gradient() {
    rng::seed(41);
    let net = net_config().init::<TB>(&Default::default());
    let t = task(5);
    let n = t.support_x.dims()[0];
    let batched = example_gradients(
        &net,
        t.support_x.clone().inner(),
        t.support_y.labels().inner(),
        3,
    );
    let mut worst = 0.0f64;
    for i in 0..n {
        let logits = net.forward(t.support_x.clone().narrow(0, i, 1));
        let grads = ops::cross_entropy(logits, t.support_y.labels().narrow(0, i, 1)).backward();
        let mut own: Vec<Vec<f64>> = net
            .convs
            .iter()
            .map(|w| host(w.grad(&grads).unwrap()))
            .collect();
        own.push(host(net.fc1.grad(&grads).unwrap()));
        own.push(host(net.head.grad(&grads).unwrap()));
        for (l, g) in own.iter().enumerate() {
            worst = worst.max(max_abs(g, &host(batched[l].clone().narrow(0, i, 1))));
        }
    }
    println!("per-example gradients, batched vs one example at a time: max |Δ| = {worst:.2e}");
    assert!(worst < 1e-5, "max |Δ| {worst}");
    // Control: the rows differ from each other (they are not the batch gradient repeated).
    let head = host(batched[3].clone());
    let width = head.len() / n;
    assert!(max_abs(&head[..width], &head[width..2 * width]) > 1e-3);
}

#[test]
fn preprocessing_is_the_authors_log_and_sign() {
    let k = 7.0;
    let g: [f64; 4] = [0.0, 1e-4, -0.5, 2.0];
    let x = Tensor::<Inner, 2>::from_data(TensorData::new(g.to_vec(), [4, 1]), &Default::default());
    let out = host(log_and_sign(x, k));
    let eps = f64::from(f32::EPSILON);
    for (i, v) in g.iter().enumerate() {
        let log = ((v.abs() + eps).ln() / k).max(-1.0);
        let sign = (v * k.exp()).clamp(-1.0, 1.0);
        assert!(
            (out[2 * i] - log).abs() < 1e-6,
            "log part of {v}: {}",
            out[2 * i]
        );
        assert!((out[2 * i + 1] - sign).abs() < 1e-6, "sign part of {v}");
    }
    // 1e-4 lies in the linear part of the sign feature, 2.0 is clamped.
    assert!((out[3] - 1e-4 * k.exp()).abs() < 1e-6 && out[7] == 1.0);
}

#[test]
fn chunks_are_consecutive_nearly_equal_runs() {
    let rows: Vec<f32> = (0..7).map(|i| i as f32).collect();
    let g = Tensor::<Inner, 2>::from_data(TensorData::new(rows, [7, 1]), &Default::default());
    let means: Vec<f64> = chunk_means(g.clone(), 3)
        .into_iter()
        .flat_map(host)
        .collect();
    assert_eq!(means, vec![0.5, 2.5, 5.0], "rows 0–1, 2–3, 4–6");
    assert_eq!(chunk_means(g, 10).len(), 7, "at most one chunk per row");
}

#[test]
fn one_support_example_gives_every_query_its_fast_weights() {
    rng::seed(42);
    let config = MetaNetConfig::default();
    let learner = MetaNet::new(net_config(), config).unwrap();
    let model: MetaNetModel<TB> = learner.init_model(&Default::default());
    let t = task(6);
    let (sx, sy) = (
        t.support_x.clone().narrow(0, 0, 1),
        t.support_y.labels().narrow(0, 0, 1),
    );
    let lift = |gs: Vec<Tensor<Inner, 2>>| gs.into_iter().map(Tensor::from_inner).collect();
    let key_grads = lift(example_gradients(
        &model.key,
        sx.clone().inner(),
        sy.clone().inner(),
        3,
    ));
    let base_grads: Vec<Tensor<TB, 2>> = lift(example_gradients(
        &model.base,
        sx.clone().inner(),
        sy.inner(),
        3,
    ));
    let memory = model.memorize(&config, sx, key_grads, base_grads.clone());
    let logits = host(model.read(&config, &memory, t.query_x.clone(), 3).inner());
    // With one memory slot the attention is 1 for every query: W* = m(∇₀) for all of them.
    let nq = t.query_x.dims()[0];
    let fast: Vec<Tensor<TB, 2>> = base_grads
        .iter()
        .enumerate()
        .map(|(l, g)| {
            let numel = g.dims()[1];
            let m = if l < 2 {
                &model.example_conv
            } else {
                &model.example_fc
            };
            m.forward(log_and_sign(g.clone().reshape([numel, 1]), 7.0))
                .reshape([1, numel])
                .repeat_dim(0, nq)
        })
        .collect();
    let by_hand = model
        .base
        .run(t.query_x.clone(), &model.base.weights(), Some(&fast));
    let by_hand = host(by_hand.logits.inner());
    assert!(max_abs(&logits, &by_hand) < 1e-5);
    // Control: the slow base learner alone gives other logits.
    let slow = host(model.base.forward(t.query_x).inner());
    assert!(max_abs(&logits, &slow) > 1e-4);
}

#[test]
fn prediction_equals_the_training_forward() {
    rng::seed(43);
    let config = MetaNetConfig::default();
    let learner = MetaNet::new(net_config(), config).unwrap();
    let model = learner.init_model(&Default::default());
    let t = task(7);
    let train = SupportRule::logits(
        &config,
        &model,
        t.support_x.clone(),
        t.support_y.labels(),
        t.query_x.clone(),
        3,
    );
    let predicted = learner.adapt(&model, t.support_x.clone(), t.support_y.clone(), 3);
    let predicted = host(predicted.predict(t.query_x.clone()).inner());
    assert!(max_abs(&host(train.inner()), &predicted) < 1e-5);
    // Context dependence: another support set changes the prediction.
    let other = task(8);
    let moved = learner.adapt(&model, other.support_x, other.support_y, 3);
    assert!(max_abs(&host(moved.predict(t.query_x).inner()), &predicted) > 1e-5);
}

/// Visit-order list of every float parameter's values.
struct Values(Vec<Vec<f64>>);
impl ModuleVisitor<TB> for Values {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<TB, D>>) {
        self.0.push(host(p.val().inner()));
    }
}

/// Every parameter cast to f64 and moved by `eps` along `dirs` (visit order).
struct Shift<'a> {
    dirs: &'a [Vec<f64>],
    eps: f64,
    i: usize,
}
impl ModuleMapper<TB> for Shift<'_> {
    fn map_float<const D: usize>(&mut self, p: Param<Tensor<TB, D>>) -> Param<Tensor<TB, D>> {
        let (id, t, mapper) = p.consume();
        let t = t.inner().cast(DType::F64);
        let d = TensorData::new(self.dirs[self.i].clone(), t.shape());
        self.i += 1;
        let d = Tensor::<Inner, D>::from_data(d, &t.device()).cast(DType::F64);
        let moved = t + d.mul_scalar(self.eps);
        Param::from_mapped_value(id, Tensor::from_inner(moved).require_grad(), mapper)
    }
}

/// `Σ ⟨grad, dir⟩` over every parameter (visit order).
struct Dot<'a> {
    grads: &'a GradientsParams,
    dirs: &'a [Vec<f64>],
    i: usize,
    sum: f64,
    missing: usize,
}
impl ModuleVisitor<TB> for Dot<'_> {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<TB, D>>) {
        match self.grads.get::<Inner, D>(p.id) {
            Some(g) => {
                let g = host(g);
                self.sum += g
                    .iter()
                    .zip(&self.dirs[self.i])
                    .map(|(a, b)| a * b)
                    .sum::<f64>();
            }
            None => self.missing += 1,
        }
        self.i += 1;
    }
}

fn f64_task(t: &Task<TB>) -> Task<TB> {
    let cast = |x: &Tensor<TB, 4>| Tensor::from_inner(x.clone().inner().cast(DType::F64));
    Task {
        support_x: cast(&t.support_x),
        query_x: cast(&t.query_x),
        ..t.clone()
    }
}

#[test]
fn meta_gradient_matches_f64_finite_differences() {
    rng::seed(44);
    for task_fast in [true, false] {
        let config = MetaNetConfig {
            task_fast_weights: task_fast,
            task_chunks: 3,
            ..MetaNetConfig::default()
        };
        let learner = MetaNet::new(net_config(), config).unwrap();
        let model = learner.init_model(&Default::default());
        let mut values = Values(Vec::new());
        model.visit(&mut values);
        let dirs: Vec<Vec<f64>> = values
            .0
            .iter()
            .map(|v| rng::values(v.len(), burn::tensor::Distribution::Normal(0.0, 1.0)))
            .collect();
        let at = |eps: f64| {
            model.clone().map(&mut Shift {
                dirs: &dirs,
                eps,
                i: 0,
            })
        };
        let tasks = [f64_task(&task(9)), f64_task(&task(10))];
        let center = at(0.0);
        // The support gradients are inputs of the model (not differentiated through, as in the
        // authors' code), so the finite differences hold them at the centre's values.
        let lift = |gs: Vec<Tensor<Inner, 2>>| -> Vec<Tensor<TB, 2>> {
            gs.into_iter().map(Tensor::from_inner).collect()
        };
        let inputs: Vec<_> = tasks
            .iter()
            .map(|t| {
                let (sx, sy) = (t.support_x.clone().inner(), t.support_y.labels().inner());
                let key = lift(example_gradients(
                    &center.key,
                    sx.clone(),
                    sy.clone(),
                    t.ways,
                ));
                (key, lift(example_gradients(&center.base, sx, sy, t.ways)))
            })
            .collect();
        let loss = |m: &MetaNetModel<TB>| -> f64 {
            let losses: Vec<f64> = tasks
                .iter()
                .zip(&inputs)
                .map(|(t, (key, base))| {
                    let memory =
                        m.memorize(&config, t.support_x.clone(), key.clone(), base.clone());
                    let logits = m.read(&config, &memory, t.query_x.clone(), t.ways);
                    host(ops::cross_entropy(logits, t.query_y.labels()).inner())[0]
                })
                .collect();
            losses.iter().sum::<f64>() / losses.len() as f64
        };
        let (grads, _) = learner.meta_gradients(&center, &tasks);
        let mut dot = Dot {
            grads: &grads,
            dirs: &dirs,
            i: 0,
            sum: 0.0,
            missing: 0,
        };
        center.visit(&mut dot);
        let eps = 1e-6;
        let fd = (loss(&at(eps)) - loss(&at(-eps))) / (2.0 * eps);
        let rel = (fd - dot.sum).abs() / fd.abs().max(1e-12);
        println!(
            "task_fast_weights = {task_fast}: directional meta-gradient {:.9}, f64 central FD {fd:.9}, relative error {rel:.2e}; {} tensors without gradient",
            dot.sum, dot.missing
        );
        assert!(rel < 1e-5, "relative error {rel}");
        // The key network's head only feeds its own gradients (inputs): no meta-gradient; without
        // task-level fast weights `d` (2 × 5 tensors) is unused too.
        assert_eq!(dot.missing, if task_fast { 1 } else { 11 });
    }
}

#[test]
fn preflight_refuses_too_many_ways_and_other_image_sizes() {
    let device = Default::default();
    let t = task(11); // 3-way, 1×4×4
    let narrow = MetaNetCnnConfig {
        num_classes: 2,
        ..net_config()
    };
    let learner = MetaNet::new(narrow, MetaNetConfig::default()).unwrap();
    let model = learner.init_model(&device);
    let err = learner.preflight(&model, &t).unwrap_err().to_string();
    assert!(err.contains("3-way") && err.contains("have 2"), "{err}");
    let wide = MetaNetCnnConfig {
        image_size: 8,
        ..net_config()
    };
    let learner = MetaNet::new(wide, MetaNetConfig::default()).unwrap();
    let model = learner.init_model(&device);
    let err = learner.preflight(&model, &t).unwrap_err().to_string();
    assert!(err.contains("1×8×8") && err.contains("1×4×4"), "{err}");
    // The matching network passes.
    let learner = MetaNet::new(net_config(), MetaNetConfig::default()).unwrap();
    learner.preflight(&learner.init_model(&device), &t).unwrap();
}

#[test]
fn invalid_settings_are_refused_with_the_key_named() {
    for (config, key) in [
        (
            MetaNetConfig {
                task_chunks: 0,
                ..Default::default()
            },
            "task_chunks",
        ),
        (
            MetaNetConfig {
                preprocess_k: 0.0,
                ..Default::default()
            },
            "preprocess_k",
        ),
        (
            MetaNetConfig {
                grad_clip: f64::NAN,
                ..Default::default()
            },
            "grad_clip",
        ),
    ] {
        let err = MetaNet::new(net_config(), config).unwrap_err().to_string();
        assert!(err.contains(key), "{err}");
    }
    let bad_net = MetaNetCnnConfig {
        filters: 0,
        ..net_config()
    };
    let err = MetaNet::new(bad_net, MetaNetConfig::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("metanet-cnn") && err.contains("filters"),
        "{err}"
    );
}
