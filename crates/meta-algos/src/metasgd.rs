//! Meta-SGD (Li, Zhou, Chen & Li 2017, "Meta-SGD: Learning to Learn Quickly for Few-Shot
//! Learning"): MAML whose inner step size is a learned tensor α of the same shape as θ, meta-learned
//! jointly with θ.
//!
//! ```text
//! for each task τ in the meta-batch:
//!     θ'_τ ← θ − α ⊙ ∇θ L_τ^support(θ)        (differentiable in θ and α)
//! (θ, α) ← (θ, α) − β ∇(θ, α) mean_τ L_τ^query(θ'_τ)
//! ```
//!
//! The inner step is `meta_backbones::adapt_with_lrs`, which keeps the update differentiable
//! with respect to both the parameters and the learning rates.

use burn::module::{AutodiffModule, Module, ModuleMapper, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Distribution, Tensor, backend::AutodiffBackend, backend::Backend};
use meta_backbones::{AdaptableBackbone, Loss, ParamGroup, adapt_with_lrs};
use meta_data::{Targets, Task};
use serde::{Deserialize, Serialize};

use crate::factory::BackboneFactory;
use crate::learner::{MetaLearner, StepStats};
use crate::maml_family::{
    AdaptedModel, build_initialised, config_json, mean_over_tasks, query_gradients,
};

/// How the learned learning rates start.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum LrInit {
    /// Every rate equal to `value`.
    Constant {
        /// The initial rate.
        value: f64,
    },
    /// Rates drawn uniformly from `[low, high]` (Li et al. 2017 §4: `[0.005, 0.1]`).
    Uniform {
        /// Lower bound.
        low: f64,
        /// Upper bound.
        high: f64,
    },
}

/// Meta-SGD's hyper-parameters. Defaults: Li et al. (2017) §4.2, Omniglot: one inner step at
/// train and test time, rates initialised uniformly in `[0.005, 0.1]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MetaSgdConfig {
    /// Initial per-parameter inner learning rates. Default uniform in `[0.005, 0.1]`.
    pub lr_init: LrInit,
    /// Inner steps during meta-training. Default 1.
    pub inner_steps_train: usize,
    /// Inner steps at test time (with the learned rates). Default 1.
    pub inner_steps_test: usize,
    /// The inner and outer loss. Default [`Loss::Auto`] (cross-entropy for class labels, mean
    /// squared error for real values).
    pub loss: Loss,
}

impl Default for MetaSgdConfig {
    fn default() -> Self {
        Self {
            lr_init: LrInit::Uniform {
                low: 0.005,
                high: 0.1,
            },
            inner_steps_train: 1,
            inner_steps_test: 1,
            loss: Loss::Auto,
        }
    }
}

/// Meta-SGD's meta-parameters: the network θ and its learned inner learning rates α (a second
/// instance of the same backbone type whose tensors hold the rates).
#[derive(Module, Debug)]
pub struct MetaSgdModel<B: Backend, M: Module<B>> {
    /// The network θ.
    pub net: M,
    /// Element-wise inner learning rates α, shaped like `net`'s tensors.
    pub lrs: M,
    backend: core::marker::PhantomData<B>,
}

impl<B: Backend, M: Module<B>> MetaSgdModel<B, M> {
    /// Pairs a network with its learning-rate tensors (same architecture).
    pub fn new(net: M, lrs: M) -> Self {
        Self {
            net,
            lrs,
            backend: core::marker::PhantomData,
        }
    }
}

/// Meta-SGD over backbones built by `F`.
#[derive(Debug, Clone)]
pub struct MetaSgd<F> {
    factory: F,
    config: MetaSgdConfig,
}

impl<F> MetaSgd<F> {
    /// Meta-SGD with `config` over backbones built by `factory`.
    pub fn new(factory: F, config: MetaSgdConfig) -> Self {
        Self { factory, config }
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &MetaSgdConfig {
        &self.config
    }
}

impl<F> MetaSgd<F> {
    /// `steps` test-time inner steps with the learned rates, on untracked meta-parameters (no
    /// outer graph accumulates across test episodes).
    fn adapt_steps<B, M>(
        &self,
        model: &MetaSgdModel<B, M>,
        support_x: Tensor<B, 4>,
        support_y: Targets<B>,
        steps: usize,
    ) -> AdaptedModel<M>
    where
        B: AutodiffBackend,
        M: AdaptableBackbone<B>,
    {
        AdaptedModel {
            model: adapt_with_lrs(
                &model.net.clone().no_grad(),
                support_x,
                support_y,
                steps,
                &model.lrs.clone().no_grad(),
                ParamGroup::All,
                &self.config.loss,
            ),
        }
    }
}

/// Overwrites every float tensor with initial learning rates.
struct FillRates(LrInit);

impl<B: Backend> ModuleMapper<B> for FillRates {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        let (shape, device) = (tensor.shape(), tensor.device());
        let rates = match self.0 {
            LrInit::Constant { value } => Tensor::full(shape, value, &device),
            LrInit::Uniform { low, high } => {
                let dims: [usize; D] = shape.dims();
                meta_backbones::rng::random(dims, Distribution::Uniform(low, high), &device)
            }
        };
        let rates = rates.set_require_grad(tensor.is_require_grad());
        Param::from_mapped_value(id, rates, mapper)
    }
}

impl<B, F, M> MetaLearner<B> for MetaSgd<F>
where
    B: AutodiffBackend,
    F: BackboneFactory<B, Net = M>,
    M: AdaptableBackbone<B>,
    MetaSgdModel<B, M>: AutodiffModule<B>,
{
    type Model = MetaSgdModel<B, M>;
    type Adapted = AdaptedModel<M>;

    fn name(&self) -> &'static str {
        "metasgd"
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

    fn supports_regression(&self) -> bool {
        true
    }

    fn init_model(&self, device: &B::Device) -> Self::Model {
        let net = build_initialised(&self.factory, device);
        // A second instance gives the same architecture with fresh `ParamId`s.
        let lrs = self
            .factory
            .build(device)
            .map(&mut FillRates(self.config.lr_init));
        meta_backbones::params::force_init(&lrs);
        MetaSgdModel::new(net, lrs)
    }

    fn preflight(&self, model: &Self::Model, task: &Task<B>) -> crate::Result<()> {
        crate::preflight::check_loss("metasgd", &self.config.loss, &model.net, task)?;
        // The learned rates enter the inner step as a product; the operations differentiated
        // twice are the backbone's, which one plain exact step exercises.
        let inner = meta_backbones::InnerLoop {
            steps: 1,
            lr: 0.01,
            ..meta_backbones::InnerLoop::default()
        };
        crate::preflight::check_second_order("metasgd", &model.net, task, &inner)
    }

    fn meta_gradients(
        &self,
        model: &Self::Model,
        tasks: &[Task<B>],
    ) -> (GradientsParams, StepStats) {
        let steps = self.config.inner_steps_train;
        mean_over_tasks::<B, Self::Model, _>(model, tasks.len(), |i| {
            let task = &tasks[i];
            let adapted = adapt_with_lrs(
                &model.net,
                task.support_x.clone(),
                task.support_y.clone(),
                steps,
                &model.lrs,
                ParamGroup::All,
                &self.config.loss,
            );
            let outputs = adapted.forward(task.query_x.clone());
            query_gradients(model, outputs, task, &self.config.loss)
        })
    }

    fn adapt(
        &self,
        model: &Self::Model,
        support_x: Tensor<B, 4>,
        support_y: Targets<B>,
        _ways: usize,
    ) -> AdaptedModel<M> {
        self.adapt_steps(model, support_x, support_y, self.config.inner_steps_test)
    }

    fn adapt_trajectory(
        &self,
        model: &Self::Model,
        support_x: Tensor<B, 4>,
        support_y: Targets<B>,
        _ways: usize,
        steps: usize,
    ) -> Option<Vec<AdaptedModel<M>>> {
        // Steps are cheap next to an evaluation's bookkeeping; re-running the loop per count
        // keeps one code path for the learned-rate update.
        let path = (0..=steps)
            .map(|k| self.adapt_steps(model, support_x.clone(), support_y.clone(), k))
            .collect();
        Some(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maml_family::test_util::{factory, flat, flat_grads, task};

    #[test]
    fn metasgd_learning_rates_start_in_range_and_receive_gradients() {
        let device = Default::default();
        meta_backbones::rng::seed(17);
        let msgd = MetaSgd::new(factory(), MetaSgdConfig::default());
        let model = msgd.init_model(&device);
        let rates = flat(&model.lrs);
        assert_eq!(rates.len(), flat(&model.net).len());
        assert!(rates.iter().all(|r| (0.005..=0.1).contains(r)), "{rates:?}");

        let (grads, stats) = msgd.meta_gradients(&model, &[task(&device), task(&device)]);
        assert!(stats.loss.is_finite());
        let lr_grads = flat_grads(&model.lrs, &grads);
        let nonzero = lr_grads.iter().filter(|g| g.abs() > 1e-9).count();
        assert!(
            nonzero * 2 > lr_grads.len(),
            "only {nonzero}/{} rates get a gradient",
            lr_grads.len()
        );
        assert!(
            flat_grads(&model.net, &grads)
                .iter()
                .any(|g| g.abs() > 1e-6)
        );
    }
}
