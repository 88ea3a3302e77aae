//! MAML++ (Antoniou, Edwards & Storkey 2019, "How to train your MAML"): MAML with the paper's
//! five training fixes.
//!
//! - **LSLR** — a learned inner learning rate for every adapted tensor and every inner step,
//!   meta-learned with θ ([`MamlPlusPlusModel::rates`]).
//! - **MSL** — multi-step loss: the meta-objective is `Σ_k w_k L_query(θ_{k+1})`, the query loss
//!   after every inner step, with weights that start uniform and are annealed, epoch by epoch,
//!   towards the last step (the authors' `get_per_step_loss_importance_vector`,
//!   [`step_loss_weights`]); after `multi_step_loss_epochs` epochs, the last step's loss alone.
//! - **DA** — derivative-order annealing: first-order meta-gradients for the first
//!   `first_order_epochs` epochs, exact second order afterwards.
//! - **BNWB / BNRS** — per-step batch-norm weights, biases and running statistics: the
//!   backbone's `meta_backbones::BnMode::PerStep` (the CLI's MAML++ presets set it).
//! - **CA** — cosine annealing of the meta learning rate: the trainer's
//!   [`LrSchedule::Cosine`](crate::LrSchedule::Cosine).
//!
//! An *epoch* is `epoch_iterations` meta-iterations (500 in the authors' code). As in the
//! authors' code, batch-norm scales and shifts are learned in the outer loop only
//! (`adapt_bn = false`).

use burn::module::{AutodiffModule, Module, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Tensor, backend::AutodiffBackend, backend::Backend};
use meta_backbones::{
    AdaptableBackbone, Backbone, GradOrder, Loss, ParamGroup, ParamRole, accuracy, adapt_per_step,
    cross_entropy, param_paths,
};
use meta_data::{Targets, Task};
use serde::{Deserialize, Serialize};

use crate::error::{AlgoError, Result};
use crate::factory::BackboneFactory;
use crate::learner::{MetaLearner, StepStats};
use crate::maml_family::{AdaptedModel, build_initialised, config_json, mean_over_tasks, scalar};

/// MAML++'s hyper-parameters. Defaults: the authors' Omniglot configuration (inner rate 0.1,
/// 5 inner steps at training and test time, multi-step loss over the first 10 epochs, second
/// order throughout, epochs of 500 iterations).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MamlPlusPlusConfig {
    /// Initial inner learning rate (every learned rate starts here; the fixed rate when
    /// `learn_rates` is false). Default 0.1 (Omniglot; 0.01 for Mini-ImageNet).
    pub inner_lr: f64,
    /// Inner steps during meta-training (one learned rate per step). Default 5.
    pub inner_steps_train: usize,
    /// Inner steps at test time, at most `inner_steps_train` when rates are learned (the first
    /// `inner_steps_test` learned rates are used). Default 5.
    pub inner_steps_test: usize,
    /// Which of the paper's fixes are on, and their schedules.
    #[serde(flatten)]
    pub options: MamlPlusPlusOptions,
}

/// MAML++'s own switches and schedules (what it adds to MAML's inner rate and steps); the CLI's
/// `[mamlpp]` section.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MamlPlusPlusOptions {
    /// LSLR: learn a rate per adapted tensor and step. Default true.
    pub learn_rates: bool,
    /// Whether the inner loop also adapts batch-norm scales and shifts. Default false (the
    /// authors' `enable_inner_loop_optimizable_bn_params`).
    pub adapt_bn: bool,
    /// MSL: epochs over which the per-step loss weights are annealed; 0 turns the multi-step loss
    /// off. Default 10 (Omniglot; 15 for Mini-ImageNet).
    pub multi_step_loss_epochs: u64,
    /// DA: epochs at the start trained with first-order meta-gradients; 0 = second order
    /// throughout. Default 0 (Omniglot; the authors' Mini-ImageNet runs use 11: second order
    /// from epoch 11 on).
    pub first_order_epochs: u64,
    /// Meta-iterations per epoch. Default 500.
    pub epoch_iterations: u64,
}

impl MamlPlusPlusOptions {
    /// The authors' Omniglot settings (see [`MamlPlusPlusConfig`]).
    pub const OMNIGLOT: Self = Self {
        learn_rates: true,
        adapt_bn: false,
        multi_step_loss_epochs: 10,
        first_order_epochs: 0,
        epoch_iterations: 500,
    };
    /// The authors' Mini-ImageNet settings: multi-step loss over 15 epochs, first order for the
    /// first 11.
    pub const MINI_IMAGENET: Self = Self {
        multi_step_loss_epochs: 15,
        first_order_epochs: 11,
        ..Self::OMNIGLOT
    };
}

impl Default for MamlPlusPlusOptions {
    fn default() -> Self {
        Self::OMNIGLOT
    }
}

impl Default for MamlPlusPlusConfig {
    fn default() -> Self {
        Self {
            inner_lr: 0.1,
            inner_steps_train: 5,
            inner_steps_test: 5,
            options: MamlPlusPlusOptions::default(),
        }
    }
}

impl MamlPlusPlusConfig {
    /// Refuses settings MAML++ cannot run with; the message names the setting.
    pub fn check(&self) -> Result<()> {
        let bad = |msg: String| Err(AlgoError::InvalidConfig(msg));
        if !(self.inner_lr.is_finite() && self.inner_lr > 0.0) {
            return bad(format!(
                "MAML++ inner_lr (--inner-lr) must be finite and > 0, got {}",
                self.inner_lr
            ));
        }
        if self.inner_steps_train == 0 {
            return bad("MAML++ inner_steps_train (--inner-steps) must be at least 1".into());
        }
        if self.options.learn_rates && self.inner_steps_test > self.inner_steps_train {
            return bad(format!(
                "MAML++ learns one rate per training step: inner_steps_test \
                 (--test-inner-steps) {} must not exceed inner_steps_train (--inner-steps) {}",
                self.inner_steps_test, self.inner_steps_train
            ));
        }
        if self.options.epoch_iterations == 0 {
            return bad("MAML++ epoch_iterations must be at least 1".into());
        }
        Ok(())
    }
}

/// The weight of each inner step's query loss at `epoch` (0-based), as in the authors'
/// `get_per_step_loss_importance_vector`: all `1/steps` at epoch 0; every non-final weight falls
/// by `epoch / (steps · msl_epochs)` to at least `0.03 / steps`, the final one rises to at most
/// `1 − (steps − 1) · 0.03 / steps`. From epoch `msl_epochs` on (or when it is 0): the last
/// step alone (`[0, …, 0, 1]`).
pub fn step_loss_weights(steps: usize, msl_epochs: u64, epoch: u64) -> Vec<f64> {
    let mut w = vec![0.0; steps];
    if steps == 0 {
        return w;
    }
    if msl_epochs == 0 || epoch >= msl_epochs {
        w[steps - 1] = 1.0;
        return w;
    }
    let n = steps as f64;
    let decay = 1.0 / n / msl_epochs as f64;
    let floor = 0.03 / n;
    let e = epoch as f64;
    for weight in w.iter_mut().take(steps - 1) {
        *weight = (1.0 / n - e * decay).max(floor);
    }
    w[steps - 1] = (1.0 / n + e * (n - 1.0) * decay).min(1.0 - (n - 1.0) * floor);
    w
}

/// MAML++'s meta-parameters: the network θ and, with LSLR, one `[inner_steps_train]` vector of
/// learned inner rates per tensor the inner loop adapts (visit order).
#[derive(Module, Debug)]
pub struct MamlPlusPlusModel<B: Backend, M: Module<B>> {
    /// The network θ.
    pub net: M,
    /// Learned per-step inner rates, one vector per adapted tensor (empty without LSLR).
    pub rates: Vec<Param<Tensor<B, 1>>>,
}

/// MAML++ over backbones built by `F`.
#[derive(Debug, Clone)]
pub struct MamlPlusPlus<F> {
    factory: F,
    config: MamlPlusPlusConfig,
}

impl<F> MamlPlusPlus<F> {
    /// MAML++ with `config` over backbones built by `factory`; refuses an invalid `config`.
    pub fn new(factory: F, config: MamlPlusPlusConfig) -> Result<Self> {
        config.check()?;
        Ok(Self { factory, config })
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &MamlPlusPlusConfig {
        &self.config
    }

    /// Gradient order and per-step loss weights of meta-iteration `iteration`.
    pub fn schedule_at(&self, iteration: u64) -> (GradOrder, Vec<f64>) {
        let epoch = iteration / self.config.options.epoch_iterations;
        let order = if epoch < self.config.options.first_order_epochs {
            GradOrder::First
        } else {
            GradOrder::Second
        };
        let weights = step_loss_weights(
            self.config.inner_steps_train,
            self.config.options.multi_step_loss_epochs,
            epoch,
        );
        (order, weights)
    }

    /// Whether the inner loop adapts the tensor at `path` with `role`.
    fn adapts(&self, path: &[String], role: ParamRole) -> bool {
        let bn_affine = path.last().is_some_and(|n| n == "gamma" || n == "beta");
        role != ParamRole::State && (self.config.options.adapt_bn || !bn_affine)
    }

    /// One entry per tensor of `model.net` (visit order): its first `steps` inner rates, or
    /// `None` where the inner loop leaves it alone.
    fn rate_slots<B, M>(
        &self,
        model: &MamlPlusPlusModel<B, M>,
        steps: usize,
        device: &B::Device,
    ) -> Vec<Option<Tensor<B, 1>>>
    where
        B: AutodiffBackend,
        M: Backbone<B>,
    {
        let mut learned = model.rates.iter();
        param_paths(&model.net)
            .iter()
            .map(|(path, role)| {
                self.adapts(path, *role).then(|| {
                    if self.config.options.learn_rates {
                        let rates = learned.next().expect("one rate vector per adapted tensor");
                        rates.val().narrow(0, 0, steps)
                    } else {
                        Tensor::full([steps], self.config.inner_lr, device)
                    }
                })
            })
            .collect()
    }
}

impl<B, F, M> MetaLearner<B> for MamlPlusPlus<F>
where
    B: AutodiffBackend,
    F: BackboneFactory<B, Net = M>,
    M: AdaptableBackbone<B>,
    MamlPlusPlusModel<B, M>: AutodiffModule<B>,
{
    type Model = MamlPlusPlusModel<B, M>;
    type Adapted = AdaptedModel<M>;

    fn name(&self) -> &'static str {
        "mamlpp"
    }

    fn config_json(&self) -> serde_json::Value {
        config_json(&self.config)
    }

    fn test_inner_steps(&self) -> Option<usize> {
        Some(self.config.inner_steps_test)
    }

    fn backbone_name(&self) -> String {
        self.factory.name()
    }

    fn init_model(&self, device: &B::Device) -> Self::Model {
        let net = build_initialised(&self.factory, device);
        let steps = self.config.inner_steps_train;
        let rates = if self.config.options.learn_rates {
            param_paths(&net)
                .iter()
                .filter(|(path, role)| self.adapts(path, *role))
                .map(|_| Param::from_tensor(Tensor::full([steps], self.config.inner_lr, device)))
                .collect()
        } else {
            Vec::new()
        };
        MamlPlusPlusModel { net, rates }
    }

    fn preflight(&self, model: &Self::Model, task: &Task<B>) -> crate::Result<()> {
        crate::preflight::check_group("mamlpp", &model.net, ParamGroup::All)?;
        let inner = meta_backbones::InnerLoop {
            steps: 1,
            lr: self.config.inner_lr,
            ..meta_backbones::InnerLoop::default()
        };
        crate::preflight::check_second_order("mamlpp", &model.net, task, &inner)
    }

    /// The meta-gradient of meta-iteration 0 (see [`meta_gradients_at`](Self::meta_gradients_at)).
    fn meta_gradients(
        &self,
        model: &Self::Model,
        tasks: &[Task<B>],
    ) -> (GradientsParams, StepStats) {
        self.meta_gradients_at(model, tasks, 0)
    }

    fn meta_gradients_at(
        &self,
        model: &Self::Model,
        tasks: &[Task<B>],
        iteration: u64,
    ) -> (GradientsParams, StepStats) {
        let (order, weights) = self.schedule_at(iteration);
        let steps = self.config.inner_steps_train;
        mean_over_tasks::<B, Self::Model, _>(model, tasks.len(), |i| {
            let task = &tasks[i];
            let rates = self.rate_slots(model, steps, &task.support_x.device());
            let mut objective: Option<Tensor<B, 1>> = None;
            let mut last_logits = None;
            adapt_per_step(
                &model.net,
                task.support_x.clone(),
                task.support_y.labels(),
                order,
                &rates,
                &Loss::CrossEntropy,
                |k, adapted| {
                    if weights[k] == 0.0 {
                        return;
                    }
                    let logits = adapted.forward(task.query_x.clone());
                    if k + 1 == steps {
                        last_logits = Some(logits.clone().detach());
                    }
                    let loss = cross_entropy(logits, task.query_y.labels()).mul_scalar(weights[k]);
                    objective = Some(match objective.take() {
                        Some(sum) => sum + loss,
                        None => loss,
                    });
                },
            );
            let objective = objective.expect("the last step always carries weight");
            let logits = last_logits.expect("the last step always carries weight");
            let acc = accuracy(logits.clone(), task.query_y.labels());
            let loss = scalar(cross_entropy(logits, task.query_y.labels()));
            (
                GradientsParams::from_grads(objective.backward(), model),
                loss,
                acc,
            )
        })
    }

    fn adapt(
        &self,
        model: &Self::Model,
        support_x: Tensor<B, 4>,
        support_y: Targets<B>,
        _ways: usize,
    ) -> AdaptedModel<M> {
        let support_y = support_y.labels();
        // Untracked meta-parameters: no outer graph accumulates across test episodes.
        let model = model.clone().no_grad();
        let rates = self.rate_slots(&model, self.config.inner_steps_test, &support_x.device());
        AdaptedModel {
            model: adapt_per_step(
                &model.net,
                support_x,
                support_y,
                GradOrder::First,
                &rates,
                &Loss::CrossEntropy,
                |_, _| {},
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_loss_weights_follow_the_authors_annealing() {
        // Epoch 0: uniform.
        assert_eq!(step_loss_weights(5, 10, 0), vec![0.2; 5]);
        // Epoch 5 of 10: non-final weights fall by 5 / (5 · 10) = 0.1, the last rises by 0.4.
        let w = step_loss_weights(5, 10, 5);
        for (got, want) in w.iter().zip([0.1, 0.1, 0.1, 0.1, 0.6]) {
            assert!((got - want).abs() < 1e-12, "{w:?}");
        }
        let w = step_loss_weights(5, 10, 9);
        for (got, want) in w.iter().zip([0.02, 0.02, 0.02, 0.02, 0.92]) {
            assert!((got - want).abs() < 1e-12, "{w:?}");
        }
        // Epoch 49 of 50: 0.2 − 49 · 0.004 = 0.004 is clamped at 0.03 / 5, the last weight at
        // 1 − 4 · 0.006.
        let w = step_loss_weights(5, 50, 49);
        for (got, want) in w.iter().zip([0.006, 0.006, 0.006, 0.006, 0.976]) {
            assert!((got - want).abs() < 1e-12, "{w:?}");
        }
        // After the annealing epochs, or without MSL: the last step alone.
        assert_eq!(step_loss_weights(5, 10, 10), vec![0.0, 0.0, 0.0, 0.0, 1.0]);
        assert_eq!(step_loss_weights(3, 0, 0), vec![0.0, 0.0, 1.0]);
        assert_eq!(step_loss_weights(1, 10, 0), vec![1.0]);
    }

    #[test]
    fn invalid_settings_are_refused_with_their_names() {
        let refused = |c: MamlPlusPlusConfig| c.check().unwrap_err().to_string();
        let err = refused(MamlPlusPlusConfig {
            inner_steps_test: 6,
            ..Default::default()
        });
        assert!(
            err.contains("inner_steps_test") && err.contains("6"),
            "{err}"
        );
        // Without learned rates any number of test steps is fine.
        MamlPlusPlusConfig {
            inner_steps_test: 10,
            options: MamlPlusPlusOptions {
                learn_rates: false,
                ..Default::default()
            },
            ..Default::default()
        }
        .check()
        .unwrap();
        let err = refused(MamlPlusPlusConfig {
            inner_steps_train: 0,
            ..Default::default()
        });
        assert!(
            err.contains("inner_steps_train") && err.contains("--inner-steps"),
            "{err}"
        );
        let err = refused(MamlPlusPlusConfig {
            inner_lr: -1.0,
            ..Default::default()
        });
        assert!(err.contains("inner_lr"), "{err}");
        let err = refused(MamlPlusPlusConfig {
            options: MamlPlusPlusOptions {
                epoch_iterations: 0,
                ..Default::default()
            },
            ..Default::default()
        });
        assert!(err.contains("epoch_iterations"), "{err}");
    }

    #[test]
    fn rates_cover_the_adapted_tensors_and_batch_norm_only_when_asked() {
        use meta_backbones::{BnConfig, BnMode, Conv4Config};
        type TB = burn::backend::Autodiff<burn::backend::Flex>;
        let device = Default::default();
        let conv4 = Conv4Config {
            hidden: 4,
            num_classes: 3,
            bn: BnConfig {
                mode: BnMode::PerStep { steps: 5 },
                ..Default::default()
            },
            ..Default::default()
        };
        let count = |adapt_bn| {
            let learner = MamlPlusPlus::new(
                conv4.clone(),
                MamlPlusPlusConfig {
                    options: MamlPlusPlusOptions {
                        adapt_bn,
                        ..Default::default()
                    },
                    ..Default::default()
                },
            )
            .unwrap();
            let model = MetaLearner::<TB>::init_model(&learner, &device);
            assert!(model.rates.iter().all(|r| r.val().dims() == [5]));
            let values: Vec<f32> = model.rates[0].val().into_data().to_vec().unwrap();
            assert_eq!(values, vec![0.1; 5]);
            model.rates.len()
        };
        // Four conv weights and biases and the head's weight and bias; then γ and β of four
        // batch-norms too. Running statistics never.
        assert_eq!(count(false), 10);
        assert_eq!(count(true), 18);
    }
}
