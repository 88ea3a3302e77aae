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

use burn::optim::GradientsParams;
use burn::tensor::{Int, Tensor, backend::AutodiffBackend};
use meta_backbones::{AdaptableBackbone, GradOrder, InnerLoop, ParamGroup, adapt};
use meta_data::Task;
use serde::{Deserialize, Serialize};

use crate::factory::BackboneFactory;
use crate::learner::{MetaLearner, StepStats};
use crate::maml_family::{AdaptedModel, mean_over_tasks, query_gradients};

/// MAML's hyper-parameters. Defaults: Finn et al. (2017), Omniglot 5-way (inner rate 0.4, one
/// inner step during meta-training), with 10 test-time steps (issue 4's evaluation protocol).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MamlConfig {
    /// Inner-loop SGD step size α. Default 0.4 (Omniglot 5-way; 0.1 for 20-way).
    pub inner_lr: f64,
    /// Inner steps during meta-training. Default 1 (Omniglot 5-way; 5 for 20-way).
    pub inner_steps_train: usize,
    /// Inner steps at test time. Default 10.
    pub inner_steps_test: usize,
}

impl Default for MamlConfig {
    fn default() -> Self {
        Self {
            inner_lr: 0.4,
            inner_steps_train: 1,
            inner_steps_test: 10,
        }
    }
}

impl MamlConfig {
    /// The inner loop used during meta-training (second order, all parameters).
    pub fn train_inner_loop(&self) -> InnerLoop {
        InnerLoop {
            steps: self.inner_steps_train,
            lr: self.inner_lr,
            order: GradOrder::Second,
            group: ParamGroup::All,
        }
    }

    /// The inner loop used at test time. First order: the adapted weights are the same, and
    /// no meta-gradient is taken through them.
    pub fn test_inner_loop(&self) -> InnerLoop {
        InnerLoop {
            steps: self.inner_steps_test,
            order: GradOrder::First,
            ..self.train_inner_loop()
        }
    }
}

/// MAML over backbones built by `F`.
#[derive(Debug, Clone)]
pub struct Maml<F> {
    factory: F,
    config: MamlConfig,
}

impl<F> Maml<F> {
    /// MAML with `config` over backbones built by `factory`.
    pub fn new(factory: F, config: MamlConfig) -> Self {
        Self { factory, config }
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &MamlConfig {
        &self.config
    }
}

impl<B, F, M> MetaLearner<B> for Maml<F>
where
    B: AutodiffBackend,
    F: BackboneFactory<B, Net = M>,
    M: AdaptableBackbone<B>,
{
    type Model = M;
    type Adapted = AdaptedModel<M>;

    fn name(&self) -> &'static str {
        "maml"
    }

    fn config_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.config).unwrap_or(serde_json::Value::Null)
    }

    fn backbone_name(&self) -> String {
        self.factory.name()
    }

    fn init_model(&self, device: &B::Device) -> M {
        let model = self.factory.build(device);
        meta_backbones::params::force_init(&model);
        model
    }

    fn meta_gradients(&self, model: &M, tasks: &[Task<B>]) -> (GradientsParams, StepStats) {
        let inner = self.config.train_inner_loop();
        mean_over_tasks::<B, M, _>(model, tasks.len(), |i| {
            let task = &tasks[i];
            let adapted = adapt(model, task.support_x.clone(), task.support_y.clone(), &inner);
            query_gradients(model, &adapted, task)
        })
    }

    fn adapt(
        &self,
        model: &M,
        support_x: Tensor<B, 4>,
        support_y: Tensor<B, 1, Int>,
        _ways: usize,
    ) -> AdaptedModel<M> {
        AdaptedModel {
            model: adapt(model, support_x, support_y, &self.config.test_inner_loop()),
        }
    }
}
