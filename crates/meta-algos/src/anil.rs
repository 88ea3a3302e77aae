//! ANIL, "Almost No Inner Loop" (Raghu, Raghu, Bengio & Vinyals 2020, "Rapid Learning or
//! Feature Reuse? Towards Understanding the Effectiveness of MAML").
//!
//! ```text
//! for each task τ in the meta-batch:
//!     w'_τ ← w − α ∇w L_τ^support(w; f_φ)   (head w only, over the body's features f_φ)
//! (φ, w) ← (φ, w) − β ∇ mean_τ L_τ^query(w'_τ; f_φ)
//! ```
//!
//! The inner step is `meta_backbones::adapt` with [`ParamGroup::Head`] and second order: the
//! body φ is never changed by adaptation, and receives its meta-gradient both through the query
//! features and through the support features that the head's inner gradient depends on.

use burn::optim::GradientsParams;
use burn::tensor::{Int, Tensor, backend::AutodiffBackend};
use meta_backbones::{AdaptableBackbone, GradOrder, InnerLoop, ParamGroup, adapt};
use meta_data::Task;
use serde::{Deserialize, Serialize};

use crate::factory::BackboneFactory;
use crate::learner::{MetaLearner, StepStats};
use crate::maml_family::{AdaptedModel, mean_over_tasks, query_gradients};

/// ANIL's hyper-parameters. Raghu et al. (2020) reuse MAML's: defaults are MAML's Omniglot 5-way
/// values (inner rate 0.4, 1 step), with 10 test-time steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AnilConfig {
    /// Inner-loop SGD step size α. Default 0.4 (Omniglot 5-way; 0.1 for 20-way).
    pub inner_lr: f64,
    /// Inner steps during meta-training. Default 1 (Omniglot 5-way; 5 for 20-way).
    pub inner_steps_train: usize,
    /// Inner steps at test time. Default 10.
    pub inner_steps_test: usize,
}

impl Default for AnilConfig {
    fn default() -> Self {
        Self {
            inner_lr: 0.4,
            inner_steps_train: 1,
            inner_steps_test: 10,
        }
    }
}

impl AnilConfig {
    /// The inner loop used during meta-training (second order, head only).
    pub fn train_inner_loop(&self) -> InnerLoop {
        InnerLoop {
            steps: self.inner_steps_train,
            lr: self.inner_lr,
            order: GradOrder::Second,
            group: ParamGroup::Head,
        }
    }

    /// The inner loop used at test time (head only). First order: the adapted weights are the
    /// same, and no meta-gradient is taken through them.
    pub fn test_inner_loop(&self) -> InnerLoop {
        InnerLoop {
            steps: self.inner_steps_test,
            order: GradOrder::First,
            ..self.train_inner_loop()
        }
    }
}

/// ANIL over backbones built by `F`.
#[derive(Debug, Clone)]
pub struct Anil<F> {
    factory: F,
    config: AnilConfig,
}

impl<F> Anil<F> {
    /// ANIL with `config` over backbones built by `factory`.
    pub fn new(factory: F, config: AnilConfig) -> Self {
        Self { factory, config }
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &AnilConfig {
        &self.config
    }
}

impl<B, F, M> MetaLearner<B> for Anil<F>
where
    B: AutodiffBackend,
    F: BackboneFactory<B, Net = M>,
    M: AdaptableBackbone<B>,
{
    type Model = M;
    type Adapted = AdaptedModel<M>;

    fn name(&self) -> &'static str {
        "anil"
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
    fn anil_adapts_only_the_head_and_still_meta_learns_the_body() {
        let device = Default::default();
        TB::seed(&device, 11);
        let anil = Anil::new(factory(), AnilConfig::default());
        let model = anil.init_model(&device);
        let t = task(&device);

        let adapted = adapt(
            &model,
            t.support_x.clone(),
            t.support_y.clone(),
            &anil.config().train_inner_loop(),
        );
        assert_eq!(
            flat(&adapted.body),
            flat(&model.body),
            "body changed by ANIL's inner loop"
        );
        assert_ne!(flat(&adapted.head), flat(&model.head), "head not adapted");

        let (grads, stats) = anil.meta_gradients(&model, &[t]);
        assert!(stats.loss.is_finite());
        let body = flat_grads(&model.body, &grads);
        let head = flat_grads(&model.head, &grads);
        assert!(
            body.iter().any(|g| g.abs() > 1e-6),
            "body gets no meta-gradient"
        );
        assert!(
            head.iter().any(|g| g.abs() > 1e-6),
            "head gets no meta-gradient"
        );
    }
}
