//! MAML++'s meta-gradient (θ and the learned per-step rates) against a reference in plain f64
//! arithmetic, on the tiny tanh MLP of [`maml_reference_tests`](crate::maml_reference_tests):
//! central finite differences of the multi-step objective `Σ_k w_k L_query(θ_{k+1})` for the
//! exact (second-order) phase, and the first-order formula for the derivative-order-annealing
//! phase. Each check also measures a wrong reference (the last step's loss alone; the exact
//! gradient for the first-order phase) and shows it is far off.

use burn::module::Param;

use crate::maml_family::test_util::{TB, TinyNet, factory, flat_grads, rel_err};
use crate::maml_reference_tests::{
    BODY, D_IN, HIDDEN, PARAMS, PlainTask, STEPS, f64_model, f64_task, f64_tensor,
    loss_and_gradient, plain_task, theta,
};
use crate::{
    MamlPlusPlus, MamlPlusPlusConfig, MamlPlusPlusModel, MamlPlusPlusOptions, MetaLearner,
    step_loss_weights,
};

/// TinyNet's tensors in visit order: `[start, end)` of each in the flattened θ.
const TENSORS: [(usize, usize); 4] = [
    (0, D_IN * HIDDEN),
    (D_IN * HIDDEN, BODY),
    (BODY, PARAMS - crate::maml_reference_tests::WAYS),
    (PARAMS - crate::maml_reference_tests::WAYS, PARAMS),
];

/// Learned rates `[tensor][step]`, all different so that a mix-up of tensor or step shows.
fn rates() -> Vec<f64> {
    (0..TENSORS.len() * STEPS)
        .map(|i| 0.2 + 0.07 * (i / STEPS) as f64 + 0.11 * (i % STEPS) as f64)
        .collect()
}

fn tensor_of(i: usize) -> usize {
    TENSORS
        .iter()
        .position(|&(a, b)| (a..b).contains(&i))
        .unwrap()
}

/// The fast weights after each step (θ_1 … θ_STEPS) and each step's support gradient.
fn trajectory(theta: &[f64], rates: &[f64], task: &PlainTask) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
    let (mut fast, mut thetas, mut grads) = (theta.to_vec(), Vec::new(), Vec::new());
    for k in 0..STEPS {
        let (_, g) = loss_and_gradient(&fast, &task.support_x, &task.support_y);
        for (i, p) in fast.iter_mut().enumerate() {
            *p -= rates[tensor_of(i) * STEPS + k] * g[i];
        }
        thetas.push(fast.clone());
        grads.push(g);
    }
    (thetas, grads)
}

/// The meta-objective: mean over tasks of `Σ_k w_k L_query(θ_{k+1})`.
fn objective(params: &[f64], tasks: &[PlainTask], weights: &[f64]) -> f64 {
    let (theta, rates) = params.split_at(PARAMS);
    let sum: f64 = tasks
        .iter()
        .map(|t| {
            let (thetas, _) = trajectory(theta, rates, t);
            (0..STEPS)
                .map(|k| weights[k] * loss_and_gradient(&thetas[k], &t.query_x, &t.query_y).0)
                .sum::<f64>()
        })
        .sum();
    sum / tasks.len() as f64
}

/// Central differences of [`objective`] over θ and the rates (f64, step 1e-6).
fn finite_differences(params: &[f64], tasks: &[PlainTask], weights: &[f64]) -> Vec<f64> {
    let h = 1e-6;
    (0..params.len())
        .map(|k| {
            let mut p = params.to_vec();
            p[k] += h;
            let up = objective(&p, tasks, weights);
            p[k] -= 2.0 * h;
            (up - objective(&p, tasks, weights)) / (2.0 * h)
        })
        .collect()
}

/// The first-order meta-gradient (support gradients held constant): θ gets
/// `Σ_k w_k ∇L_q(θ_{k+1})`, rate `(j, k')` gets `−Σ_{k ≥ k'} w_k ⟨∇L_q(θ_{k+1}), g_{k'}⟩_j`.
fn first_order(params: &[f64], tasks: &[PlainTask], weights: &[f64]) -> Vec<f64> {
    let (theta, rates) = params.split_at(PARAMS);
    let mut out = vec![0.0; params.len()];
    for t in tasks {
        let (thetas, grads) = trajectory(theta, rates, t);
        for k in 0..STEPS {
            let (_, q) = loss_and_gradient(&thetas[k], &t.query_x, &t.query_y);
            for i in 0..PARAMS {
                out[i] += weights[k] * q[i] / tasks.len() as f64;
                for (k_prev, g) in grads.iter().enumerate().take(k + 1) {
                    out[PARAMS + tensor_of(i) * STEPS + k_prev] -=
                        weights[k] * q[i] * g[i] / tasks.len() as f64;
                }
            }
        }
    }
    out
}

fn learner(first_order_epochs: u64) -> MamlPlusPlus<crate::FnFactory<TB, TinyNet<TB>>> {
    MamlPlusPlus::new(
        factory(),
        MamlPlusPlusConfig {
            inner_lr: 0.3,
            inner_steps_train: STEPS,
            inner_steps_test: STEPS,
            options: MamlPlusPlusOptions {
                multi_step_loss_epochs: 3,
                first_order_epochs,
                epoch_iterations: 2,
                ..Default::default()
            },
        },
    )
    .unwrap()
}

/// The learner's meta-gradient at `iteration` over θ and the rates (visit order), the plain
/// tasks, and the flattened parameters.
fn meta_gradient(
    learner: &MamlPlusPlus<crate::FnFactory<TB, TinyNet<TB>>>,
    iteration: u64,
) -> (Vec<f64>, Vec<PlainTask>, Vec<f64>) {
    let (theta, rates, tasks) = (theta(), rates(), vec![plain_task(0), plain_task(1)]);
    let model = MamlPlusPlusModel {
        net: f64_model(&theta),
        rates: rates
            .chunks(STEPS)
            .map(|r| Param::from_tensor(f64_tensor(r, [STEPS])))
            .collect(),
    };
    let burn_tasks: Vec<_> = tasks.iter().map(f64_task).collect();
    let (grads, stats) = learner.meta_gradients_at(&model, &burn_tasks, iteration);
    assert!(stats.loss.is_finite());
    (flat_grads(&model, &grads), tasks, [theta, rates].concat())
}

#[test]
fn multi_step_meta_gradient_of_weights_and_rates_matches_finite_differences() {
    let last_only = step_loss_weights(STEPS, 0, 0);
    // Iteration 2 is epoch 1 of 3: weights [1/3, 2/3]; iteration 6 is past the annealing.
    for (iteration, weights) in [(2, vec![1.0 / 3.0, 2.0 / 3.0]), (6, last_only.clone())] {
        let scheduled = learner(0).schedule_at(iteration).1;
        assert!(
            rel_err(&scheduled, &weights) < 1e-12,
            "iteration {iteration}: {scheduled:?}"
        );
        let (analytic, tasks, params) = meta_gradient(&learner(0), iteration);
        let numeric = finite_differences(&params, &tasks, &weights);
        let err = rel_err(&analytic, &numeric);
        let rate_err = rel_err(&analytic[PARAMS..], &numeric[PARAMS..]);
        println!("MAML++ iteration {iteration}: {err:.2e} (rates alone {rate_err:.2e})");
        assert!(
            err < 1e-7 && rate_err < 1e-7,
            "off by {err:.2e} / {rate_err:.2e}"
        );
        if iteration == 2 {
            let control = rel_err(&analytic, &finite_differences(&params, &tasks, &last_only));
            println!("  vs the last step's loss alone: {control:.2e}");
            assert!(
                control > 1e-2,
                "the last-step objective is as close ({control:.2e})"
            );
        }
    }
}

#[test]
fn derivative_order_annealing_starts_first_order_then_turns_exact() {
    let learner = learner(2); // epochs 0 and 1 (iterations 0..4) first order
    let weights = vec![1.0 / 3.0, 2.0 / 3.0];
    let (analytic, tasks, params) = meta_gradient(&learner, 3);
    let expected = first_order(&params, &tasks, &weights);
    let exact = finite_differences(&params, &tasks, &weights);
    let (err, control) = (rel_err(&analytic, &expected), rel_err(&exact, &expected));
    println!("MAML++ first-order phase: {err:.2e}; exact vs first order: {control:.2e}");
    // Not at f64 round-off: burn's autodiff back-propagates the loss weights (1/3, 2/3) as f32
    // scalars.
    assert!(err < 1e-7, "first-order meta-gradient off by {err:.2e}");
    assert!(
        control > 1e-2,
        "the exact gradient is as close ({control:.2e})"
    );
    // Epoch 2 (iteration 4): second order.
    let (analytic, _, _) = meta_gradient(&learner, 4);
    let weights = step_loss_weights(STEPS, 3, 2);
    let err = rel_err(&analytic, &finite_differences(&params, &tasks, &weights));
    assert!(err < 1e-7, "second-order phase off by {err:.2e}");
}
