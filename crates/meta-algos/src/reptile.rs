//! Reptile (Nichol, Achiam & Schulman 2018, "On First-Order Meta-Learning Algorithms").
//!
//! ```text
//! for each task τ in the meta-batch:
//!     W_τ ← k steps of SGD/Adam on L_τ, starting from Φ
//! Φ ← Φ + ε · mean_τ (W_τ − Φ)            ε annealed linearly from ε₀ (1.0) to 0
//! ```
//!
//! `meta_gradients` returns the pseudo-gradient `mean_τ (Φ − W_τ)`; the trainer applies it with a
//! plain SGD step of rate ε, which gives the update above. The outer step size and its annealing
//! belong to the trainer: Nichol et al.'s setting is `optimizer: Sgd`, `lr: 1.0` (ε₀) and
//! `schedule: Linear { final_lr: 0.0 }` (see the `reptile-*` presets). No second-order terms are involved, so the inner loop is ordinary first-order training
//! of a fast copy of the meta-model.

use burn::module::AutodiffModule;
use burn::optim::{AdamConfig, GradientsParams, Optimizer, SgdConfig};
use burn::tensor::{Int, Tensor, TensorData, backend::AutodiffBackend};
use meta_backbones::{Backbone, Loss, TaskLoss, param_difference};
use meta_data::{Targets, Task};
use serde::{Deserialize, Serialize};

use crate::factory::BackboneFactory;
use crate::learner::{MetaLearner, StepStats};
use crate::maml_family::{
    AdaptedModel, build_initialised, config_json, mean_over_tasks, query_accuracy, scalar,
};

/// The optimizer of Reptile's inner loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum InnerOptimizer {
    /// Plain SGD.
    Sgd,
    /// Adam with β₁ = 0, as in Nichol et al.'s Omniglot/Mini-ImageNet experiments; its moment
    /// estimates start fresh for every task.
    #[default]
    Adam,
}

/// Reptile's hyper-parameters. Defaults: Nichol et al. (2018), Appendix A, Omniglot 5-way 1-shot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReptileConfig {
    /// Inner-loop optimizer steps per task during meta-training (k). Default 5.
    pub inner_steps_train: usize,
    /// Inner-loop steps at test time. Default 50.
    pub inner_steps_test: usize,
    /// Inner-loop learning rate. Default 1e-3 (Adam).
    pub inner_lr: f64,
    /// Inner-loop optimizer. Default Adam (β₁ = 0).
    pub inner_optimizer: InnerOptimizer,
    /// Images per inner step; `None` uses the whole training set of the task every step.
    /// Default `Some(10)`.
    pub inner_batch: Option<usize>,
    /// Meta-train the inner loop on support ∪ query (Reptile has no query set: the paper samples
    /// "train shots" images per class, 10 for Omniglot, and trains on all of them). Test-time
    /// adaptation always uses the support set only. Default `true`.
    pub train_on_query: bool,
    /// The inner-loop loss. Default [`Loss::Auto`] (cross-entropy for class labels, mean
    /// squared error for real values).
    pub loss: Loss,
}

impl Default for ReptileConfig {
    fn default() -> Self {
        Self {
            inner_steps_train: 5,
            inner_steps_test: 50,
            inner_lr: 1e-3,
            inner_optimizer: InnerOptimizer::Adam,
            inner_batch: Some(10),
            train_on_query: true,
            loss: Loss::Auto,
        }
    }
}

/// Reptile over backbones built by `F`. Train it with an SGD outer optimizer (see the module
/// documentation); Adam would rescale the pseudo-gradient.
#[derive(Debug, Clone)]
pub struct Reptile<F> {
    factory: F,
    config: ReptileConfig,
}

impl<F> Reptile<F> {
    /// Reptile with `config` over backbones built by `factory`.
    pub fn new(factory: F, config: ReptileConfig) -> Self {
        Self { factory, config }
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &ReptileConfig {
        &self.config
    }
}

/// Trains a fast copy of `model` for `steps` optimizer steps on `(x, y)`, cycling through
/// class-interleaved mini-batches of `config.inner_batch` images.
fn inner_train<B, M>(
    config: &ReptileConfig,
    model: &M,
    x: Tensor<B, 4>,
    y: Targets<B>,
    steps: usize,
) -> M
where
    B: AutodiffBackend,
    M: Backbone<B> + AutodiffModule<B>,
{
    let fast = model.fast_copy(0);
    match config.inner_optimizer {
        InnerOptimizer::Sgd => {
            let optim = SgdConfig::new().init::<B, M>();
            run_inner(config, optim, fast, x, y, steps)
        }
        InnerOptimizer::Adam => {
            let optim = AdamConfig::new().with_beta_1(0.0).init::<B, M>();
            run_inner(config, optim, fast, x, y, steps)
        }
    }
}

fn run_inner<B, M, O>(
    config: &ReptileConfig,
    mut optim: O,
    mut fast: M,
    x: Tensor<B, 4>,
    y: Targets<B>,
    steps: usize,
) -> M
where
    B: AutodiffBackend,
    M: Backbone<B> + AutodiffModule<B>,
    O: Optimizer<M, B>,
{
    let batches = interleaved_batches(&y, config.inner_batch, steps);
    let device = x.device();
    for rows in batches {
        let (bx, by) = match rows {
            Some(rows) => {
                let len = rows.len();
                let idx = Tensor::<B, 1, Int>::from_data(TensorData::new(rows, [len]), &device);
                (x.clone().select(0, idx.clone()), y.select(idx))
            }
            None => (x.clone(), y.clone()),
        };
        let loss = config.loss.loss(fast.forward(bx), &by);
        let grads = GradientsParams::from_grads(loss.backward(), &fast);
        fast = optim.step(config.inner_lr, fast, grads);
    }
    fast
}

/// Row indices for each of `steps` inner steps: class-interleaved order (the first image of
/// every class, then the second, …) so that consecutive chunks are class-balanced (rows in
/// order for real-valued targets), cut into chunks of `batch` rows, wrapping around. `None`
/// entries mean "all rows".
fn interleaved_batches<B: AutodiffBackend>(
    y: &Targets<B>,
    batch: Option<usize>,
    steps: usize,
) -> Vec<Option<Vec<i64>>> {
    let labels: Vec<i64> = match y {
        Targets::Classes(y) => y.to_data().iter::<i64>().collect(),
        // One "class": the interleaved order is the rows' own.
        Targets::Values(_) => vec![0; y.len()],
    };
    let n = labels.len();
    let batch = match batch {
        Some(b) if b > 0 && b < n => b,
        _ => return vec![None; steps],
    };
    // rank of each row within its class, then sort by (rank, label, row).
    let mut seen = std::collections::HashMap::<i64, usize>::new();
    let mut keyed: Vec<(usize, i64, usize)> = labels
        .iter()
        .enumerate()
        .map(|(row, &label)| {
            let rank = seen.entry(label).or_insert(0);
            *rank += 1;
            (*rank, label, row)
        })
        .collect();
    keyed.sort_unstable();
    let order: Vec<i64> = keyed.into_iter().map(|(_, _, row)| row as i64).collect();
    (0..steps)
        .map(|step| {
            Some(
                (0..batch)
                    .map(|j| order[(step * batch + j) % n])
                    .collect::<Vec<_>>(),
            )
        })
        .collect()
}

impl<B, F, M> MetaLearner<B> for Reptile<F>
where
    B: AutodiffBackend,
    F: BackboneFactory<B, Net = M>,
    M: Backbone<B> + AutodiffModule<B>,
{
    type Model = M;
    type Adapted = AdaptedModel<M>;

    fn name(&self) -> &'static str {
        "reptile"
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

    fn preflight(&self, model: &M, task: &Task<B>) -> crate::Result<()> {
        crate::preflight::check_loss("reptile", &self.config.loss, model, task)
    }

    fn init_model(&self, device: &B::Device) -> M {
        build_initialised(&self.factory, device)
    }

    fn meta_gradients(&self, model: &M, tasks: &[Task<B>]) -> (GradientsParams, StepStats) {
        mean_over_tasks::<B, M, _>(model, tasks.len(), |i| {
            let task = &tasks[i];
            let (x, y) = if self.config.train_on_query {
                (
                    Tensor::cat(vec![task.support_x.clone(), task.query_x.clone()], 0),
                    task.support_y.cat(&task.query_y),
                )
            } else {
                (task.support_x.clone(), task.support_y.clone())
            };
            let adapted = inner_train(&self.config, model, x, y, self.config.inner_steps_train);
            // Stats of the adapted weights on the query set (seen during the inner loop when
            // `train_on_query` is set). No gradient flows from here.
            let logits = adapted.forward(task.query_x.clone()).detach();
            let loss = scalar(self.config.loss.loss(logits.clone(), &task.query_y));
            let acc = query_accuracy(logits, &task.query_y);
            (param_difference(model, &adapted), loss, acc)
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
            // The trained copy predicts untracked: no outer graph accumulates across episodes.
            model: inner_train(
                &self.config,
                model,
                support_x,
                support_y,
                self.config.inner_steps_test,
            )
            .no_grad(),
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
        // The inner optimizer's state lives inside one run; re-running per step count keeps it.
        let path = (0..=steps)
            .map(|k| AdaptedModel {
                model: inner_train(&self.config, model, support_x.clone(), support_y.clone(), k)
                    .no_grad(),
            })
            .collect();
        Some(path)
    }
}

#[cfg(test)]
mod pseudo_gradient_tests {
    use super::*;
    use crate::maml_family::test_util::{TB, factory, flat, flat_grads, task};
    use meta_backbones::cross_entropy;

    #[test]
    fn one_sgd_step_pseudo_gradient_is_lr_times_the_mean_support_gradient() {
        let device = Default::default();
        meta_backbones::rng::seed(19);
        let config = ReptileConfig {
            inner_steps_train: 1,
            inner_lr: 0.1,
            inner_optimizer: InnerOptimizer::Sgd,
            inner_batch: None,
            train_on_query: false,
            ..ReptileConfig::default()
        };
        let reptile = Reptile::new(factory(), config);
        let model = reptile.init_model(&device);
        let tasks = [task(&device), task(&device)];
        let (pseudo, _) = reptile.meta_gradients(&model, &tasks);
        let pseudo = flat_grads(&model, &pseudo);

        // By hand: W = Φ − lr ∇L(Φ), so Φ − W = lr ∇L(Φ); averaged over the two tasks.
        let mut expected = vec![0.0; pseudo.len()];
        for t in &tasks {
            let loss = cross_entropy(model.forward(t.support_x.clone()), t.support_y.labels());
            let g = flat_grads(
                &model,
                &GradientsParams::from_grads(loss.backward(), &model),
            );
            for (e, g) in expected.iter_mut().zip(g) {
                *e += 0.1 * g / 2.0;
            }
        }
        for (p, e) in pseudo.iter().zip(&expected) {
            assert!((p - e).abs() < 1e-6, "{p} vs {e}");
        }
        assert!(expected.iter().any(|e| e.abs() > 1e-4));
    }

    #[test]
    fn adam_pseudo_gradient_is_phi_minus_adapted_weights() {
        let device = Default::default();
        meta_backbones::rng::seed(23);
        let config = ReptileConfig {
            inner_steps_train: 3,
            inner_steps_test: 3,
            inner_batch: Some(4),
            train_on_query: false,
            ..ReptileConfig::default()
        };
        let reptile = Reptile::new(factory(), config);
        let model = reptile.init_model(&device);
        let t = task(&device);
        let (pseudo, _) = reptile.meta_gradients(&model, std::slice::from_ref(&t));
        let pseudo = flat_grads(&model, &pseudo);
        let w = flat(&MetaLearner::adapt(&reptile, &model, t.support_x, t.support_y, 3).model);
        let phi = flat(&model);
        for ((p, phi), w) in pseudo.iter().zip(&phi).zip(&w) {
            assert!((p - (phi - w)).abs() < 1e-6, "{p} vs {}", phi - w);
        }
        assert!(
            pseudo.iter().any(|p| p.abs() > 1e-4),
            "inner loop did not move"
        );
    }

    #[test]
    fn interleaved_batches_are_class_balanced() {
        let device = Default::default();
        let y = Tensor::<TB, 1, Int>::from_data(
            TensorData::new(vec![0i64, 0, 1, 1, 2, 2], [6]),
            &device,
        )
        .into();
        let b = interleaved_batches(&y, Some(3), 3);
        assert_eq!(b[0], Some(vec![0, 2, 4]));
        assert_eq!(b[1], Some(vec![1, 3, 5]));
        assert_eq!(b[2], Some(vec![0, 2, 4]));
        assert_eq!(interleaved_batches(&y, None, 2), vec![None, None]);
    }
}
