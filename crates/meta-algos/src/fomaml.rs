//! First-order MAML (Finn, Abbeel & Levine 2017, §5.2): MAML with the inner gradient treated as
//! a constant, so the meta-gradient is the query-loss gradient at the adapted weights.
//!
//! ```text
//! for each task τ in the meta-batch:
//!     θ'_τ ← θ − α stop_grad(∇θ L_τ^support(θ))   (k steps)
//! θ ← θ − β mean_τ ∇θ'_τ L_τ^query(θ'_τ)         (outer Adam step, taken by the trainer)
//! ```
//!
//! The inner step is `meta_backbones::adapt` with [`GradOrder::First`]: `θ'_τ = θ − const`, so
//! back-propagating the query loss to θ gives exactly `∇θ' L^query(θ')`.

use burn::optim::GradientsParams;
use burn::tensor::{Int, Tensor, backend::AutodiffBackend};
use meta_backbones::{AdaptableBackbone, GradOrder, InnerLoop, ParamGroup, adapt};
use meta_data::Task;
use serde::{Deserialize, Serialize};

use crate::factory::BackboneFactory;
use crate::learner::{MetaLearner, StepStats};
use crate::maml_family::{AdaptedModel, mean_over_tasks, query_gradients};

/// First-order MAML's hyper-parameters; defaults as [`MamlConfig`](crate::maml::MamlConfig)
/// (Finn et al. 2017, Omniglot 5-way: inner rate 0.4, 1 step; 10 test-time steps).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FomamlConfig {
    /// Inner-loop SGD step size α. Default 0.4 (Omniglot 5-way; 0.1 for 20-way).
    pub inner_lr: f64,
    /// Inner steps during meta-training. Default 1 (Omniglot 5-way; 5 for 20-way).
    pub inner_steps_train: usize,
    /// Inner steps at test time. Default 10.
    pub inner_steps_test: usize,
}

impl Default for FomamlConfig {
    fn default() -> Self {
        Self {
            inner_lr: 0.4,
            inner_steps_train: 1,
            inner_steps_test: 10,
        }
    }
}

impl FomamlConfig {
    /// The inner loop used during meta-training (first order, all parameters).
    pub fn train_inner_loop(&self) -> InnerLoop {
        InnerLoop {
            steps: self.inner_steps_train,
            lr: self.inner_lr,
            order: GradOrder::First,
            group: ParamGroup::All,
        }
    }

    /// The inner loop used at test time.
    pub fn test_inner_loop(&self) -> InnerLoop {
        InnerLoop {
            steps: self.inner_steps_test,
            ..self.train_inner_loop()
        }
    }
}

/// FOMAML over backbones built by `F`.
#[derive(Debug, Clone)]
pub struct Fomaml<F> {
    factory: F,
    config: FomamlConfig,
}

impl<F> Fomaml<F> {
    /// FOMAML with `config` over backbones built by `factory`.
    pub fn new(factory: F, config: FomamlConfig) -> Self {
        Self { factory, config }
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &FomamlConfig {
        &self.config
    }
}

impl<B, F, M> MetaLearner<B> for Fomaml<F>
where
    B: AutodiffBackend,
    F: BackboneFactory<B, Net = M>,
    M: AdaptableBackbone<B>,
{
    type Model = M;
    type Adapted = AdaptedModel<M>;

    fn name(&self) -> &'static str {
        "fomaml"
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
            let adapted = adapt(
                model,
                task.support_x.clone(),
                task.support_y.clone(),
                &inner,
            );
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
