//! MAML with the exact second-order meta-gradient (Finn, Abbeel & Levine 2017,
//! "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks").
//!
//! ```text
//! for each task τ in the meta-batch:
//!     θ'_τ ← θ − α ∇θ L_τ^support(θ)           (k steps, differentiable)
//! θ ← θ − β ∇θ mean_τ L_τ^query(θ'_τ)         (outer Adam step, taken by the trainer)
//! ```
//!
//! The inner step is `meta_backbones::adapt` with [`GradOrder::Second`]: the adapted weights are
//! recorded functions of θ, so the query loss back-propagates through the inner gradient
//! (Hessian-vector products included) to the original meta-model.

use meta_backbones::{GradOrder, Loss, ParamGroup};
use serde::{Deserialize, Serialize};

use crate::maml_family::{MamlFamily, MamlVariant};

/// MAML's hyper-parameters (also FOMAML's, ANIL's and BOIL's). Defaults: Finn et al. (2017),
/// Omniglot 5-way (inner rate 0.4, one inner step during meta-training), with 10 test-time steps
/// (issue 4's evaluation protocol).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MamlConfig {
    /// Inner-loop SGD step size α. Default 0.4 (Omniglot 5-way; 0.1 for 20-way).
    pub inner_lr: f64,
    /// Inner steps during meta-training. Default 1 (Omniglot 5-way; 5 for 20-way).
    pub inner_steps_train: usize,
    /// Inner steps at test time. Default 10.
    pub inner_steps_test: usize,
    /// The inner and outer loss. Default [`Loss::Auto`]: cross-entropy for class labels, mean
    /// squared error for real values. Your own [`TaskLoss`](meta_backbones::TaskLoss) goes
    /// through [`MamlFamily::with_loss`].
    pub loss: Loss,
}

impl Default for MamlConfig {
    fn default() -> Self {
        Self {
            inner_lr: 0.4,
            inner_steps_train: 1,
            inner_steps_test: 10,
            loss: Loss::Auto,
        }
    }
}

/// MAML's variant of [`MamlFamily`]: second-order inner loop over all parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MamlKind;

impl MamlVariant for MamlKind {
    const NAME: &'static str = "maml";
    const ORDER: GradOrder = GradOrder::Second;
    const GROUP: ParamGroup = ParamGroup::All;
}

/// MAML over backbones built by `F`. The exact meta-gradient differentiates the inner gradient
/// once more, so every layer of the backbone must survive a second backward pass (use
/// `meta_backbones::Linear`, not burn's `nn::Linear`; the table is on [`meta_backbones::Backbone`]);
/// [`MetaLearner::preflight`](crate::MetaLearner::preflight) checks it before the first iteration.
pub type Maml<F> = MamlFamily<F, MamlKind>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MetaLearner;
    use crate::fomaml::{Fomaml, FomamlConfig};
    use crate::maml_family::test_util::{factory, flat, flat_grads, rel_err, task, with_flat};
    use meta_backbones::Backbone;

    #[test]
    fn maml_meta_gradient_matches_central_finite_differences_and_fomaml_does_not() {
        let device = Default::default();
        meta_backbones::rng::seed(7);
        let config = MamlConfig {
            inner_lr: 0.5,
            inner_steps_train: 2,
            inner_steps_test: 2,
            ..MamlConfig::default()
        };
        let maml = Maml::new(factory(), config.clone());
        let model = maml.init_model(&device);
        let tasks = vec![task(&device), task(&device)];

        let (grads, _) = maml.meta_gradients(&model, &tasks);
        let analytic = flat_grads(&model, &grads);

        // Central differences of the meta-objective (mean query loss after adaptation).
        let theta = flat(&model);
        let h = 5e-3;
        let loss_at = |values: &[f64]| {
            let perturbed = with_flat(model.clone(), values);
            maml.meta_gradients(&perturbed, &tasks).1.loss
        };
        let numeric: Vec<f64> = (0..theta.len())
            .map(|k| {
                let mut p = theta.clone();
                p[k] += h;
                let up = loss_at(&p);
                p[k] -= 2.0 * h;
                (up - loss_at(&p)) / (2.0 * h)
            })
            .collect();
        let maml_err = rel_err(&analytic, &numeric);

        let fomaml = Fomaml::new(
            factory(),
            FomamlConfig {
                inner_lr: config.inner_lr,
                inner_steps_train: config.inner_steps_train,
                inner_steps_test: config.inner_steps_test,
                ..FomamlConfig::default()
            },
        );
        let (fo_grads, _) = fomaml.meta_gradients(&model, &tasks);
        let fo_err = rel_err(&flat_grads(&model, &fo_grads), &numeric);
        println!("relative error vs finite differences: MAML {maml_err:.2e}, FOMAML {fo_err:.2e}");
        assert!(maml_err < 2e-3, "MAML meta-gradient off by {maml_err}");
        assert!(
            fo_err > 20.0 * maml_err && fo_err > 2e-2,
            "FOMAML should miss the second-order terms (err {fo_err} vs MAML {maml_err})"
        );
    }

    #[test]
    fn maml_test_time_adaptation_lowers_support_loss() {
        // Over several initialisations and tasks (how far 10 steps of 0.4 get the tiny MLP
        // depends on both: measured ratios after/before 0.26–0.84 over seeds 0–7): every one
        // lowers the loss, and on average to at most 3/4 of it. No adaptation gives 1.
        let device = Default::default();
        let maml = Maml::new(factory(), MamlConfig::default());
        let mut ratios = Vec::new();
        for seed in 0..5 {
            meta_backbones::rng::seed(seed);
            let model = maml.init_model(&device);
            let t = task(&device);
            let loss = |logits| {
                crate::maml_family::scalar(meta_backbones::cross_entropy(
                    logits,
                    t.support_y.labels(),
                ))
            };
            let before = loss(model.forward(t.support_x.clone()));
            let adapted =
                MetaLearner::adapt(&maml, &model, t.support_x.clone(), t.support_y.clone(), 3);
            let logits = crate::Predictor::predict(&adapted, t.support_x.clone());
            assert_eq!(logits.dims(), [6, 3]);
            let after = loss(logits);
            assert!(
                after < before,
                "seed {seed}: support loss {before} -> {after}"
            );
            ratios.push(after / before);
        }
        let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
        assert!(mean < 0.75, "support loss ratios {ratios:?}");
    }
}
