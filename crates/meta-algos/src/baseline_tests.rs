//! Unit tests of the pre-training baselines: the head fitting against a hand-written f64 SGD,
//! the cosine head against its formula, training labels mapped to the split's classes, and the
//! errors of a bad configuration or task.

use burn::tensor::{Distribution, Int, Tensor, TensorData};
use meta_data::EpisodeSource;

use super::*;
use crate::test_util::{Synthetic, TB, tiny_factory};

type IB = <TB as AutodiffBackend>::InnerBackend;

fn host<const D: usize>(t: Tensor<IB, D>) -> Vec<f64> {
    t.into_data().convert::<f64>().to_vec().unwrap()
}

fn worst_relative(a: &[f64], b: &[f64]) -> f64 {
    let diff: f64 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>();
    let norm: f64 = b.iter().map(|y| y * y).sum::<f64>();
    (diff / norm.max(1e-30)).sqrt()
}

/// PyTorch's SGD (momentum, dampening, weight decay) on a linear head with full-batch
/// cross-entropy, in f64: the weights and biases after `steps` steps from `w`, `b`.
fn reference_sgd(
    x: &[f64],
    y: &[usize],
    (mut w, mut b): (Vec<f64>, Vec<f64>),
    dim: usize,
    config: &BaselineConfig,
    steps: usize,
) -> (Vec<f64>, Vec<f64>) {
    let (n, ways) = (y.len(), b.len());
    let (mut buf_w, mut buf_b): (Option<Vec<f64>>, Option<Vec<f64>>) = (None, None);
    let update = |p: &mut Vec<f64>, g: Vec<f64>, buf: &mut Option<Vec<f64>>| {
        let g: Vec<f64> = g
            .iter()
            .zip(p.iter())
            .map(|(g, p)| g + config.finetune_weight_decay * p)
            .collect();
        // PyTorch keeps no momentum buffer at momentum 0.
        let next: Vec<f64> = match buf.take() {
            Some(old) if config.finetune_momentum > 0.0 => old
                .iter()
                .zip(&g)
                .map(|(o, g)| config.finetune_momentum * o + (1.0 - config.finetune_dampening) * g)
                .collect(),
            _ => g,
        };
        p.iter_mut()
            .zip(&next)
            .for_each(|(p, v)| *p -= config.finetune_lr * v);
        *buf = Some(next);
    };
    for _ in 0..steps {
        let mut gw = vec![0.0; ways * dim];
        let mut gb = vec![0.0; ways];
        for i in 0..n {
            let row = &x[i * dim..(i + 1) * dim];
            let logits: Vec<f64> = (0..ways)
                .map(|c| b[c] + (0..dim).map(|d| w[c * dim + d] * row[d]).sum::<f64>())
                .collect();
            let max = logits.iter().cloned().fold(f64::MIN, f64::max);
            let z: f64 = logits.iter().map(|l| (l - max).exp()).sum();
            for c in 0..ways {
                let p = (logits[c] - max).exp() / z;
                let g = (p - f64::from(u8::from(c == y[i]))) / n as f64;
                gb[c] += g;
                for d in 0..dim {
                    gw[c * dim + d] += g * row[d];
                }
            }
        }
        update(&mut w, gw, &mut buf_w);
        update(&mut b, gb, &mut buf_b);
    }
    (w, b)
}

#[test]
fn fitted_linear_head_matches_a_hand_written_sgd() {
    let device = Default::default();
    let (n, dim, ways) = (6, 5, 3);
    let config = BaselineConfig {
        classes: 10,
        finetune_epochs: 4,
        finetune_batch: n,
        finetune_lr: 0.5,
        finetune_momentum: 0.8,
        finetune_dampening: 0.3,
        finetune_weight_decay: 0.05,
        ..BaselineConfig::default()
    };
    rng::seed(11);
    let features = rng::random::<IB, 2>([n, dim], Distribution::Normal(0.0, 1.0), &device);
    let labels = [0usize, 0, 1, 1, 2, 2];
    let y = Tensor::<IB, 1, Int>::from_data(
        TensorData::new(labels.map(|l| l as i64).to_vec(), [n]),
        &device,
    );
    rng::seed(12);
    let init = ClassifierHead::<IB>::init(BaselineHead::Linear, ways, dim, &device);
    let start = (
        host(init.weight.val()),
        host(init.bias.as_ref().unwrap().val()),
    );
    rng::seed(12);
    let fitted = fit_head::<TB>(&config, features.clone(), y, ways);
    let x = host(features);
    let (w, b) = reference_sgd(&x, &labels, start.clone(), dim, &config, 4);
    let got_w = host(fitted.weight.val());
    let got_b = host(fitted.bias.unwrap().val());
    assert!(fitted.gain.is_none());
    let (rw, rb) = (worst_relative(&got_w, &w), worst_relative(&got_b, &b));
    eprintln!("fitted head vs f64 SGD: weight {rw:.2e}, bias {rb:.2e}");
    assert!(rw < 1e-5 && rb < 1e-5, "weight {rw:.2e}, bias {rb:.2e}");
    // Control: without momentum the same steps land elsewhere.
    let plain = BaselineConfig {
        finetune_momentum: 0.0,
        ..config
    };
    let (w0, _) = reference_sgd(&x, &labels, start, dim, &plain, 4);
    assert!(worst_relative(&got_w, &w0) > 1e-3);
    // …and the fitting without momentum is plain SGD, dampening unused (PyTorch).
    rng::seed(12);
    let y = Tensor::<IB, 1, Int>::from_data(
        TensorData::new(labels.map(|l| l as i64).to_vec(), [n]),
        &device,
    );
    let features = Tensor::<IB, 2>::from_data(TensorData::new(x, [n, dim]), &device);
    let fitted = fit_head::<TB>(&plain, features, y, ways);
    let rel = worst_relative(&host(fitted.weight.val()), &w0);
    assert!(rel < 1e-5, "momentum-free fitting {rel:.2e} from plain SGD");
}

#[test]
fn cosine_head_is_scaled_cosine_similarity_to_weight_normalised_classes() {
    let device = Default::default();
    let (n, dim, ways) = (4, 6, 3);
    rng::seed(5);
    let mut head = ClassifierHead::<IB>::init(BaselineHead::Cosine, ways, dim, &device);
    // g starts at ‖v‖; set it apart so that it shows in the logits.
    let gain = [0.5f64, 1.0, 2.0];
    head.gain = Some(Param::from_tensor(Tensor::from_data(
        TensorData::new(gain.to_vec(), [ways]),
        &device,
    )));
    let x = rng::random::<IB, 2>([n, dim], Distribution::Normal(0.0, 1.0), &device);
    let got = host(head.logits(x.clone(), 2.0));
    let (x, v) = (host(x), host(head.weight.val()));
    let norm = |r: &[f64]| r.iter().map(|a| a * a).sum::<f64>().sqrt() + 1e-5;
    let mut want = Vec::new();
    for i in 0..n {
        let xi = &x[i * dim..(i + 1) * dim];
        for (c, g) in gain.iter().enumerate() {
            let vc = &v[c * dim..(c + 1) * dim];
            let dot: f64 = xi.iter().zip(vc).map(|(a, b)| a * b).sum();
            want.push(2.0 * g * dot / (norm(xi) * norm(vc)));
        }
    }
    let rel = worst_relative(&got, &want);
    assert!(rel < 1e-6, "cosine logits {rel:.2e} from the formula");
    // A freshly initialised gain is the weights' norm.
    rng::seed(5);
    let fresh = ClassifierHead::<IB>::init(BaselineHead::Cosine, ways, dim, &device);
    let norms: Vec<f64> = (0..ways)
        .map(|c| norm(&v[c * dim..(c + 1) * dim]) - 1e-5)
        .collect();
    assert!(worst_relative(&host(fresh.gain.unwrap().val()), &norms) < 1e-6);
}

#[test]
fn fitted_cosine_head_separates_the_support_set() {
    let device = Default::default();
    let config = BaselineConfig {
        classes: 10,
        head: BaselineHead::Cosine,
        ..BaselineConfig::default()
    };
    rng::seed(3);
    // Three well-separated directions plus noise, two shots each.
    let centres = rng::random::<IB, 2>([3, 8], Distribution::Normal(0.0, 1.0), &device);
    let idx = Tensor::<IB, 1, Int>::from_data(TensorData::from([0i64, 0, 1, 1, 2, 2]), &device);
    let noise = rng::random::<IB, 2>([6, 8], Distribution::Normal(0.0, 0.1), &device);
    let features = centres.select(0, idx.clone()) + noise;
    let fresh = ClassifierHead::<IB>::init(BaselineHead::Cosine, 3, 8, &device);
    let before = ops::cross_entropy(fresh.logits(features.clone(), 2.0), idx.clone());
    let fitted = fit_head::<TB>(&config, features.clone(), idx.clone(), 3);
    let logits = fitted.logits(features, config.scale_for(3));
    let after = ops::cross_entropy(logits.clone(), idx.clone());
    let (before, after) = (host(before)[0], host(after)[0]);
    eprintln!("cosine head support loss: {before:.3} before fitting, {after:.3} after");
    assert!(after < 0.8 * before, "{before} → {after}");
    assert_eq!(ops::accuracy(logits, idx), 1.0);
}

#[test]
fn pre_training_labels_are_the_split_classes() {
    let device = Default::default();
    let learner = Baseline::new(
        tiny_factory(8),
        BaselineConfig {
            classes: 10,
            ..BaselineConfig::default()
        },
    )
    .unwrap();
    rng::seed(1);
    let model = MetaLearner::<TB>::init_model(&learner, &device);
    let tasks: Vec<_> = (0..2)
        .map(|i| Synthetic { seed: 4 }.episode(i).to_task::<TB>(&device))
        .collect();
    learner.preflight(&model, &tasks[0]).unwrap();
    let (grads, stats) = learner.meta_gradients(&model, &tasks);
    assert!(
        grads
            .get::<IB, 2>(model.head.weight.id)
            .is_some_and(|g| g.abs().sum().into_scalar() > 0.0)
    );
    // The same loss by hand: every image with its class's index into the split.
    let (mut xs, mut ys, mut local) = (vec![], vec![], vec![]);
    for task in &tasks {
        let table = |y: Tensor<TB, 1, Int>| -> Vec<i64> {
            let y: Vec<i64> = y.into_data().convert::<i64>().to_vec().unwrap();
            y.iter().map(|&l| task.classes[l as usize] as i64).collect()
        };
        xs.extend([task.support_x.clone(), task.query_x.clone()]);
        ys.extend(table(task.support_y.labels()));
        ys.extend(table(task.query_y.labels()));
        local.extend([task.support_y.labels(), task.query_y.labels()]);
    }
    let n = ys.len();
    let logits = model.head.logits(model.net.embed(Tensor::cat(xs, 0)), 2.0);
    let labels = Tensor::<TB, 1, Int>::from_data(TensorData::new(ys, [n]), &device);
    let want: f64 = ops::cross_entropy(logits.clone(), labels)
        .into_scalar()
        .elem();
    assert!(
        (stats.loss - want).abs() < 1e-6 * want,
        "{} vs {want}",
        stats.loss
    );
    // Control: the task-local labels give another loss.
    let wrong: f64 = ops::cross_entropy(logits, Tensor::cat(local, 0))
        .into_scalar()
        .elem();
    assert!(
        (stats.loss - wrong).abs() > 1e-3,
        "{} vs {wrong}",
        stats.loss
    );
}

#[test]
fn tasks_without_their_classes_or_outside_the_head_are_refused() {
    let device = Default::default();
    let learner = |classes| {
        Baseline::new(
            tiny_factory(8),
            BaselineConfig {
                classes,
                ..BaselineConfig::default()
            },
        )
        .unwrap()
    };
    let model = MetaLearner::<TB>::init_model(&learner(10), &device);
    let mut task = Synthetic { seed: 4 }.episode(0).to_task::<TB>(&device);
    // A head with as many classes as the task's highest class index cannot hold that class.
    let high = *task.classes.iter().max().unwrap();
    let err = learner(high).preflight(&model, &task).unwrap_err();
    assert!(err.to_string().contains("baseline.classes"), "{err}");
    task.classes.clear();
    let err = learner(10).preflight(&model, &task).unwrap_err();
    assert!(err.to_string().contains("Task::classes"), "{err}");
}

#[test]
fn bad_configurations_name_their_key() {
    let base = BaselineConfig {
        classes: 10,
        ..BaselineConfig::default()
    };
    let cases = [
        (BaselineConfig { classes: 1, ..base }, "classes"),
        (
            BaselineConfig {
                scale: Some(3.0),
                ..base
            },
            "scale",
        ),
        (
            BaselineConfig {
                head: BaselineHead::Cosine,
                scale: Some(-1.0),
                ..base
            },
            "scale",
        ),
        (
            BaselineConfig {
                finetune_epochs: 0,
                ..base
            },
            "finetune_epochs",
        ),
        (
            BaselineConfig {
                finetune_lr: f64::NAN,
                ..base
            },
            "finetune_lr",
        ),
        (
            BaselineConfig {
                finetune_momentum: 1.0,
                ..base
            },
            "finetune_momentum",
        ),
        (
            BaselineConfig {
                finetune_dampening: -0.1,
                ..base
            },
            "finetune_dampening",
        ),
        (
            BaselineConfig {
                finetune_weight_decay: -1.0,
                ..base
            },
            "finetune_weight_decay",
        ),
    ];
    for (config, key) in cases {
        let err = config.check().unwrap_err().to_string();
        assert!(
            err.contains(&format!("baseline.{key}")) || err.contains(key),
            "{err}"
        );
    }
    assert!(base.check().is_ok());
    assert_eq!(base.scale_for(64), 2.0);
    assert_eq!(base.scale_for(4112), 10.0);
}
