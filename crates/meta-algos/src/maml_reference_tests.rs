//! The meta-gradients of FOMAML, ANIL and BOIL against a reference written in plain f64
//! arithmetic, independent of burn and of `meta_backbones::adapt`: the tiny tanh MLP of
//! [`test_util`](crate::maml_family::test_util) with its forward pass, cross-entropy and
//! gradient coded by hand, adapted by hand.
//!
//! - FOMAML's meta-gradient is `∇L_query(θ′)`, the ordinary query gradient at the adapted
//!   weights θ′ (the inner gradient held constant).
//! - ANIL's and BOIL's meta-gradients are the derivatives of their own meta-objectives — the
//!   query loss after adapting the head only / the body only — by central finite differences.
//!
//! The learners run on f64 tensors (flex stores each tensor's dtype), so agreement is at f64
//! round-off for FOMAML (measured 4e-16) and at the finite differences' error for ANIL and BOIL
//! (2e-9), far below what a wrong term, group or order produces (≥ 1e-2: each test also measures
//! a wrong reference — the exact gradient, the all-parameter objective — and shows it is that
//! far off).

use burn::backend::Flex;
use burn::module::Param;
use burn::tensor::{DType, Int, Tensor, TensorData};
use meta_backbones::ParamGroup;
use meta_data::Task;

use crate::maml_family::test_util::{Dense, TB, TinyNet, factory, flat_grads, rel_err};
use crate::{Anil, Boil, Fomaml, MamlConfig, MetaLearner};

pub(crate) const D_IN: usize = 4;
pub(crate) const HIDDEN: usize = 5;
pub(crate) const WAYS: usize = 3;
/// Body tensors (`body.weight` `[4, 5]`, `body.bias` `[5]`) come first in visit order.
pub(crate) const BODY: usize = D_IN * HIDDEN + HIDDEN;
pub(crate) const PARAMS: usize = BODY + HIDDEN * WAYS + WAYS;
pub(crate) const STEPS: usize = 2;
const INNER_LR: f64 = 0.5;

/// One task in plain numbers: flattened 2×2 images and labels, support and query.
pub(crate) struct PlainTask {
    pub support_x: Vec<[f64; D_IN]>,
    pub support_y: Vec<usize>,
    pub query_x: Vec<[f64; D_IN]>,
    pub query_y: Vec<usize>,
}

/// A deterministic value in `[-scale, scale]` (no RNG: nothing to race on), exact in f32 so
/// that no conversion on the way into a tensor changes it.
fn wave(i: usize, salt: f64, scale: f64) -> f64 {
    f64::from((scale * (1.37 * i as f64 + salt).sin()) as f32)
}

/// Images per support or query set. A power of two: burn's autodiff back-propagates the mean's
/// division by `n` with an f32 scalar, exact for 1/8 but not for 1/6 (which alone would put
/// every gradient 3e-8 off).
const SET: usize = 8;

/// Task `t`: 3-way, labels 0, 1, 2, 0, 1, 2, 0, 1 in both support and query set.
pub(crate) fn plain_task(t: usize) -> PlainTask {
    let images = |offset: usize| -> Vec<[f64; D_IN]> {
        (0..SET)
            .map(|n| std::array::from_fn(|k| wave(offset + n * D_IN + k, t as f64, 1.5)))
            .collect()
    };
    let labels: Vec<usize> = (0..SET).map(|n| n % WAYS).collect();
    PlainTask {
        support_x: images(0),
        support_y: labels.clone(),
        query_x: images(100),
        query_y: labels,
    }
}

/// The meta-parameters θ, flattened in visit order.
pub(crate) fn theta() -> Vec<f64> {
    (0..PARAMS).map(|i| wave(i, 0.3, 0.8)).collect()
}

/// Mean cross-entropy of the MLP `θ` on `(x, y)` and its gradient (visit order), by hand.
pub(crate) fn loss_and_gradient(theta: &[f64], x: &[[f64; D_IN]], y: &[usize]) -> (f64, Vec<f64>) {
    let (w1, rest) = theta.split_at(D_IN * HIDDEN);
    let (b1, rest) = rest.split_at(HIDDEN);
    let (w2, b2) = rest.split_at(HIDDEN * WAYS);
    let n = x.len() as f64;
    let (mut loss, mut grad) = (0.0, vec![0.0; PARAMS]);
    for (xi, &yi) in x.iter().zip(y) {
        let h: Vec<f64> = (0..HIDDEN)
            .map(|j| (b1[j] + (0..D_IN).map(|k| xi[k] * w1[k * HIDDEN + j]).sum::<f64>()).tanh())
            .collect();
        let z: Vec<f64> = (0..WAYS)
            .map(|c| b2[c] + (0..HIDDEN).map(|j| h[j] * w2[j * WAYS + c]).sum::<f64>())
            .collect();
        let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let lse = max + z.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
        loss += (lse - z[yi]) / n;
        // ∂L/∂z = (softmax(z) − onehot(y)) / n
        let dz: Vec<f64> = (0..WAYS)
            .map(|c| ((z[c] - lse).exp() - f64::from(u8::from(c == yi))) / n)
            .collect();
        for j in 0..HIDDEN {
            for c in 0..WAYS {
                grad[BODY + j * WAYS + c] += h[j] * dz[c];
            }
            let dh: f64 = (0..WAYS).map(|c| w2[j * WAYS + c] * dz[c]).sum::<f64>();
            let da = dh * (1.0 - h[j] * h[j]);
            for k in 0..D_IN {
                grad[k * HIDDEN + j] += xi[k] * da;
            }
            grad[D_IN * HIDDEN + j] += da;
        }
        for c in 0..WAYS {
            grad[BODY + HIDDEN * WAYS + c] += dz[c];
        }
    }
    (loss, grad)
}

/// Whether parameter `i` (visit order) is in `group`.
fn in_group(i: usize, group: ParamGroup) -> bool {
    match group {
        ParamGroup::All => true,
        ParamGroup::Head => i >= BODY,
        ParamGroup::Body => i < BODY,
    }
}

/// θ′: [`STEPS`] SGD steps of rate [`INNER_LR`] on the support loss, `group` only.
fn adapted(theta: &[f64], task: &PlainTask, group: ParamGroup) -> Vec<f64> {
    let mut fast = theta.to_vec();
    for _ in 0..STEPS {
        let (_, g) = loss_and_gradient(&fast, &task.support_x, &task.support_y);
        for (i, (p, g)) in fast.iter_mut().zip(g).enumerate() {
            if in_group(i, group) {
                *p -= INNER_LR * g;
            }
        }
    }
    fast
}

/// The meta-objective: mean query loss after adapting `group`.
fn meta_loss(theta: &[f64], tasks: &[PlainTask], group: ParamGroup) -> f64 {
    let sum: f64 = tasks
        .iter()
        .map(|t| loss_and_gradient(&adapted(theta, t, group), &t.query_x, &t.query_y).0)
        .sum();
    sum / tasks.len() as f64
}

/// Central differences of [`meta_loss`] (f64, step 1e-6).
fn finite_differences(theta: &[f64], tasks: &[PlainTask], group: ParamGroup) -> Vec<f64> {
    let h = 1e-6;
    (0..PARAMS)
        .map(|k| {
            let mut p = theta.to_vec();
            p[k] += h;
            let up = meta_loss(&p, tasks, group);
            p[k] -= 2.0 * h;
            (up - meta_loss(&p, tasks, group)) / (2.0 * h)
        })
        .collect()
}

/// An f64 tensor on the autodiff backend holding `values`.
pub(crate) fn f64_tensor<const D: usize>(values: &[f64], shape: [usize; D]) -> Tensor<TB, D> {
    let data = TensorData::new(values.to_vec(), shape);
    let t = Tensor::<Flex, D>::from_data(data, &Default::default()).cast(DType::F64);
    assert_eq!(t.dtype(), DType::F64);
    Tensor::from_inner(t)
}

/// The tiny MLP with parameters `theta`, as f64 tensors.
pub(crate) fn f64_model(theta: &[f64]) -> TinyNet<TB> {
    let dense = |values: &[f64], d_in: usize, d_out: usize| {
        let (w, b) = values.split_at(d_in * d_out);
        Dense {
            weight: Param::from_tensor(f64_tensor(w, [d_in, d_out])),
            bias: Param::from_tensor(f64_tensor(b, [d_out])),
        }
    };
    TinyNet {
        body: dense(&theta[..BODY], D_IN, HIDDEN),
        head: dense(&theta[BODY..], HIDDEN, WAYS),
    }
}

/// `task` as f64 tensors (`[8, 1, 2, 2]` images).
pub(crate) fn f64_task(task: &PlainTask) -> Task<TB> {
    let images = |x: &[[f64; D_IN]]| {
        let flat: Vec<f64> = x.iter().flatten().copied().collect();
        f64_tensor(&flat, [x.len(), 1, 2, 2])
    };
    let labels = |y: &[usize]| {
        let y: Vec<i64> = y.iter().map(|&c| c as i64).collect();
        let n = y.len();
        Tensor::<TB, 1, Int>::from_data(TensorData::new(y, [n]), &Default::default())
    };
    Task {
        ways: WAYS,
        support_x: images(&task.support_x),
        support_y: labels(&task.support_y).into(),
        query_x: images(&task.query_x),
        query_y: labels(&task.query_y).into(),
        classes: Vec::new(),
    }
}

fn config() -> MamlConfig {
    MamlConfig {
        inner_lr: INNER_LR,
        inner_steps_train: STEPS,
        inner_steps_test: STEPS,
        ..MamlConfig::default()
    }
}

/// `learner`'s meta-gradient at [`theta`] on two tasks (visit order), the plain tasks and θ.
fn meta_gradient<L: MetaLearner<TB, Model = TinyNet<TB>>>(
    learner: &L,
) -> (Vec<f64>, Vec<PlainTask>, Vec<f64>) {
    let (theta, tasks) = (theta(), vec![plain_task(0), plain_task(1)]);
    let model = f64_model(&theta);
    let burn_tasks: Vec<Task<TB>> = tasks.iter().map(f64_task).collect();
    let (grads, _) = learner.meta_gradients(&model, &burn_tasks);
    (flat_grads(&model, &grads), tasks, theta)
}

#[test]
fn fomaml_meta_gradient_is_the_query_gradient_at_the_adapted_weights() {
    let (fomaml, tasks, theta) = meta_gradient(&Fomaml::new(factory(), config()));
    let mut expected = vec![0.0; PARAMS];
    for task in &tasks {
        let fast = adapted(&theta, task, ParamGroup::All);
        let (_, g) = loss_and_gradient(&fast, &task.query_x, &task.query_y);
        for (e, g) in expected.iter_mut().zip(g) {
            *e += g / tasks.len() as f64;
        }
    }
    // Control: the exact (second-order) meta-gradient, which FOMAML must not be.
    let exact = finite_differences(&theta, &tasks, ParamGroup::All);
    let (err, control) = (rel_err(&fomaml, &expected), rel_err(&exact, &expected));
    println!(
        "FOMAML vs ∇L_query(θ′): {err:.2e}; exact meta-gradient vs ∇L_query(θ′): {control:.2e}"
    );
    assert!(err < 1e-12, "FOMAML's meta-gradient is off by {err:.2e}");
    assert!(
        control > 1e-2,
        "the exact gradient is as close ({control:.2e})"
    );
}

/// `learner`'s meta-gradient against finite differences of the objective adapting `group`,
/// and the objective adapting every parameter as the control it must not match.
fn check_group<L: MetaLearner<TB, Model = TinyNet<TB>>>(learner: &L, group: ParamGroup) {
    let (analytic, tasks, theta) = meta_gradient(learner);
    let numeric = finite_differences(&theta, &tasks, group);
    let all = finite_differences(&theta, &tasks, ParamGroup::All);
    let (err, control) = (rel_err(&analytic, &numeric), rel_err(&analytic, &all));
    println!(
        "{}: vs finite differences adapting {group:?}: {err:.2e}; adapting All: {control:.2e}",
        learner.name()
    );
    assert!(
        err < 1e-7,
        "{}: meta-gradient off by {err:.2e}",
        learner.name()
    );
    assert!(
        control > 1e-2,
        "{}: the all-parameter objective is as close ({control:.2e})",
        learner.name()
    );
}

#[test]
fn anil_meta_gradient_matches_finite_differences_of_head_only_adaptation() {
    check_group(&Anil::new(factory(), config()), ParamGroup::Head);
}

#[test]
fn boil_meta_gradient_matches_finite_differences_of_body_only_adaptation() {
    check_group(&Boil::new(factory(), config()), ParamGroup::Body);
}
