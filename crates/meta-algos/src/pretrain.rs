//! The pre-training baseline of Finn, Abbeel & Levine (2017, §5.1) for regression: one network
//! trained on every task's points with ordinary gradient steps (no inner loop), then fine-tuned
//! by gradient descent on each test task's K support points.
//!
//! ```text
//! θ ← θ − β ∇θ mean_τ L_τ(θ) over support ∪ query points       (outer step, by the trainer)
//! test: θ'_τ ← k SGD steps of rate α on L_τ^support, from θ
//! ```
//!
//! It is what MAML is measured against on the sine waves: the pre-trained network regresses
//! towards the mean of all waves (≈ 0) and a few steps of fine-tuning barely move it.

use burn::optim::GradientsParams;
use burn::tensor::{Tensor, backend::AutodiffBackend};
use meta_backbones::{
    AdaptableBackbone, GradOrder, InnerLoop, Loss, ParamGroup, TaskLoss, adapt_with_loss,
};
use meta_data::{Targets, Task};
use serde::{Deserialize, Serialize};

use crate::error::AlgoError;
use crate::factory::BackboneFactory;
use crate::learner::{MetaLearner, StepStats};
use crate::maml_family::{
    AdaptedModel, build_initialised, config_json, mean_over_tasks, query_accuracy, scalar,
    trajectory,
};

/// The baseline's hyper-parameters. Defaults: the sine-wave setting (fine-tuning rate 0.01,
/// MAML's inner rate; 10 test-time steps).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PretrainConfig {
    /// Fine-tuning SGD step size at test time. Default 0.01.
    pub inner_lr: f64,
    /// Fine-tuning steps at test time. Default 10.
    pub inner_steps_test: usize,
    /// The training and fine-tuning loss. Default [`Loss::Auto`] (mean squared error on real
    /// values).
    pub loss: Loss,
}

impl Default for PretrainConfig {
    fn default() -> Self {
        Self {
            inner_lr: 0.01,
            inner_steps_test: 10,
            loss: Loss::Auto,
        }
    }
}

/// The pre-training baseline over backbones built by `F` (regression tasks only: the targets
/// must mean the same in every task, which per-task class labels do not — for classification
/// use [`Baseline`](crate::Baseline)).
#[derive(Debug, Clone)]
pub struct Pretrain<F> {
    factory: F,
    config: PretrainConfig,
}

impl<F> Pretrain<F> {
    /// The baseline with `config` over backbones built by `factory`.
    pub fn new(factory: F, config: PretrainConfig) -> Self {
        Self { factory, config }
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &PretrainConfig {
        &self.config
    }

    fn fine_tuning(&self, steps: usize) -> InnerLoop {
        InnerLoop {
            steps,
            lr: self.config.inner_lr,
            order: GradOrder::First,
            group: ParamGroup::All,
        }
    }
}

impl<B, F, M> MetaLearner<B> for Pretrain<F>
where
    B: AutodiffBackend,
    F: BackboneFactory<B, Net = M>,
    M: AdaptableBackbone<B>,
{
    type Model = M;
    type Adapted = AdaptedModel<M>;

    fn name(&self) -> &'static str {
        "pretrain"
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

    fn init_model(&self, device: &B::Device) -> M {
        build_initialised(&self.factory, device)
    }

    fn preflight(&self, model: &M, task: &Task<B>) -> crate::Result<()> {
        if !task.is_regression() {
            return Err(AlgoError::InvalidConfig(
                "pretrain fits one network to every task's targets, which needs targets that \
                 mean the same in every task (regression); class labels are re-drawn per task: \
                 use the `baseline` algorithm (pre-training over all training classes)"
                    .into(),
            ));
        }
        crate::preflight::check_loss("pretrain", &self.config.loss, model, task)
    }

    fn meta_gradients(&self, model: &M, tasks: &[Task<B>]) -> (GradientsParams, StepStats) {
        mean_over_tasks::<B, M, _>(model, tasks.len(), |i| {
            let task = &tasks[i];
            let x = Tensor::cat(vec![task.support_x.clone(), task.query_x.clone()], 0);
            let y = task.support_y.cat(&task.query_y);
            let loss = self.config.loss.loss(model.forward(x), &y);
            let value = scalar(loss.clone().detach());
            let acc = query_accuracy(model.forward(task.query_x.clone()).detach(), &task.query_y);
            (
                GradientsParams::from_grads(loss.backward(), model),
                value,
                acc,
            )
        })
    }

    fn adapt(
        &self,
        model: &M,
        support_x: Tensor<B, 4>,
        support_y: Targets<B>,
        _ways: usize,
    ) -> AdaptedModel<M> {
        AdaptedModel {
            model: adapt_with_loss(
                &model.clone().no_grad(),
                support_x,
                support_y,
                &self.fine_tuning(self.config.inner_steps_test),
                &self.config.loss,
            ),
        }
    }

    fn adapt_trajectory(
        &self,
        model: &M,
        support_x: Tensor<B, 4>,
        support_y: Targets<B>,
        _ways: usize,
        steps: usize,
    ) -> Option<Vec<AdaptedModel<M>>> {
        let inner = self.fine_tuning(steps);
        Some(trajectory(
            model,
            support_x,
            support_y,
            &inner,
            &self.config.loss,
        ))
    }
}
