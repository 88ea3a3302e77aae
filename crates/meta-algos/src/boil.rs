//! BOIL, "Body Only update in Inner Loop" (Oh, Yoo, Kim & Yun 2021, "BOIL: Towards
//! Representation Change for Few-shot Learning").
//!
//! ```text
//! for each task τ in the meta-batch:
//!     φ'_τ ← φ − α ∇φ L_τ^support(w; f_φ)   (body φ only; head w frozen)
//! (φ, w) ← (φ, w) − β ∇ mean_τ L_τ^query(w; f_φ'_τ)
//! ```
//!
//! The inner step is `meta_backbones::adapt` with [`ParamGroup::Body`] and second order: the
//! head is never changed by adaptation, but it is meta-learned by the outer step.

use burn::optim::GradientsParams;
use burn::tensor::{Int, Tensor, backend::AutodiffBackend};
use meta_backbones::{AdaptableBackbone, GradOrder, InnerLoop, ParamGroup, adapt};
use meta_data::Task;
use serde::{Deserialize, Serialize};

use crate::factory::BackboneFactory;
use crate::learner::{MetaLearner, StepStats};
use crate::maml_family::{AdaptedModel, mean_over_tasks, query_gradients};

/// BOIL's hyper-parameters. Defaults: MAML's Omniglot 5-way values (inner rate 0.4, 1 step;
/// Oh et al. tune the body rate to 0.5 on miniImageNet), with 10 test-time steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BoilConfig {
    /// Inner-loop SGD step size α. Default 0.4 (Omniglot 5-way; 0.1 for 20-way).
    pub inner_lr: f64,
    /// Inner steps during meta-training. Default 1 (Omniglot 5-way; 5 for 20-way).
    pub inner_steps_train: usize,
    /// Inner steps at test time. Default 10.
    pub inner_steps_test: usize,
}

impl Default for BoilConfig {
    fn default() -> Self {
        Self {
            inner_lr: 0.4,
            inner_steps_train: 1,
            inner_steps_test: 10,
        }
    }
}

impl BoilConfig {
    /// The inner loop used during meta-training (second order, body only).
    pub fn train_inner_loop(&self) -> InnerLoop {
        InnerLoop {
            steps: self.inner_steps_train,
            lr: self.inner_lr,
            order: GradOrder::Second,
            group: ParamGroup::Body,
        }
    }

    /// The inner loop used at test time (body only). First order: the adapted weights are the
    /// same, and no meta-gradient is taken through them.
    pub fn test_inner_loop(&self) -> InnerLoop {
        InnerLoop {
            steps: self.inner_steps_test,
            order: GradOrder::First,
            ..self.train_inner_loop()
        }
    }
}

/// BOIL over backbones built by `F`.
#[derive(Debug, Clone)]
pub struct Boil<F> {
    factory: F,
    config: BoilConfig,
}

impl<F> Boil<F> {
    /// BOIL with `config` over backbones built by `factory`.
    pub fn new(factory: F, config: BoilConfig) -> Self {
        Self { factory, config }
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &BoilConfig {
        &self.config
    }
}

impl<B, F, M> MetaLearner<B> for Boil<F>
where
    B: AutodiffBackend,
    F: BackboneFactory<B, Net = M>,
    M: AdaptableBackbone<B>,
{
    type Model = M;
    type Adapted = AdaptedModel<M>;

    fn name(&self) -> &'static str {
        "boil"
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maml_family::test_util::{TB, factory, flat, flat_grads, task};
    use burn::tensor::backend::Backend;

    #[test]
    fn boil_freezes_the_head_in_the_inner_loop_but_meta_learns_it() {
        let device = Default::default();
        TB::seed(&device, 13);
        let boil = Boil::new(factory(), BoilConfig::default());
        let model = boil.init_model(&device);
        let t = task(&device);

        let adapted =
            MetaLearner::adapt(&boil, &model, t.support_x.clone(), t.support_y.clone(), 3);
        assert_eq!(
            flat(&adapted.model.head),
            flat(&model.head),
            "head changed by BOIL's inner loop"
        );
        assert_ne!(
            flat(&adapted.model.body),
            flat(&model.body),
            "body not adapted"
        );

        let (grads, _) = boil.meta_gradients(&model, &[t]);
        let head = flat_grads(&model.head, &grads);
        let body = flat_grads(&model.body, &grads);
        assert!(
            head.iter().any(|g| g.abs() > 1e-6),
            "head gets no meta-gradient"
        );
        assert!(
            body.iter().any(|g| g.abs() > 1e-6),
            "body gets no meta-gradient"
        );
    }
}
