//! Pre-training baselines (Chen, Liu, Kira, Wang & Huang, ICLR 2019, "A closer look at few-shot
//! classification"): **Baseline** (a linear head) and **Baseline++** (a cosine head).
//!
//! Training is ordinary classification over every training class: all images of a meta-batch —
//! support and queries of each sampled task, each labelled with its class of the training split
//! through [`Task::classes`] — form one mini-batch for the backbone's
//! [`embed`](meta_backbones::Backbone::embed) and a head over all `classes` training classes.
//! At test time the embedding is frozen and a new head for the episode's `ways` classes is
//! fitted to the support features alone, as in the authors' code: `finetune_epochs` passes over
//! the support set in shuffled mini-batches of `finetune_batch`, SGD with momentum, dampening
//! and weight decay. Baseline++'s head is the authors' `distLinear`: cosine similarity of the
//! L2-normalised feature to weight-normalised class weights (a learned norm per class,
//! PyTorch's `WeightNorm` with `g` initialised to `‖v‖`), times a scale (2 for at most 200
//! classes, else 10). The authors evaluate with the network in `eval()` mode; the presets use
//! running batch-norm statistics, so that support and query features are computed alike.

use burn::module::{AutodiffModule, Module, Param};
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, Optimizer, SgdConfig, decay::WeightDecayConfig};
use burn::tensor::{
    Distribution, ElementConversion as _, Int, Tensor, TensorData, backend::AutodiffBackend,
    backend::Backend,
};
use meta_backbones::{Backbone, rng};
use meta_data::{Targets, Task};
use serde::{Deserialize, Serialize};

use crate::factory::BackboneFactory;
use crate::learner::{MetaLearner, Predictor, StepStats};
use crate::{AlgoError, Result, ops};

/// The classifier on top of the embedding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BaselineHead {
    /// Baseline: a linear layer with bias.
    #[default]
    Linear,
    /// Baseline++: scaled cosine similarity to weight-normalised class weights.
    Cosine,
}

/// Hyper-parameters of the pre-training baselines; defaults are Chen et al.'s.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BaselineConfig {
    /// Classes of the training split: the pre-training head's outputs (the CLI fills it from the
    /// data).
    pub classes: usize,
    /// Linear head (Baseline) or cosine head (Baseline++).
    pub head: BaselineHead,
    /// Scale of the cosine head's logits; `None`: the authors' 2 for heads of at most 200
    /// classes, 10 for more. Refused with the linear head.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale: Option<f64>,
    /// Passes over the support set when a test episode's head is fitted (authors: 100).
    pub finetune_epochs: usize,
    /// Support images per fitting step (authors: 4).
    pub finetune_batch: usize,
    /// SGD learning rate of the fitting (authors: 0.01).
    pub finetune_lr: f64,
    /// SGD momentum of the fitting (authors: 0.9).
    pub finetune_momentum: f64,
    /// SGD dampening of the fitting, PyTorch's meaning (authors: 0.9).
    pub finetune_dampening: f64,
    /// L2 weight decay of the fitting (authors: 1e-3).
    pub finetune_weight_decay: f64,
}

impl Default for BaselineConfig {
    fn default() -> Self {
        Self {
            classes: 0,
            head: BaselineHead::Linear,
            scale: None,
            finetune_epochs: 100,
            finetune_batch: 4,
            finetune_lr: 0.01,
            finetune_momentum: 0.9,
            finetune_dampening: 0.9,
            finetune_weight_decay: 1e-3,
        }
    }
}

impl BaselineConfig {
    /// `self` if every value is usable; otherwise an error naming the key.
    pub fn check(self) -> Result<Self> {
        let bad = |what: String| Err(AlgoError::InvalidConfig(format!("baseline.{what}")));
        if self.classes < 2 {
            return bad(format!(
                "classes must be at least 2 (the training split's classes), got {}",
                self.classes
            ));
        }
        match (self.head, self.scale) {
            (BaselineHead::Linear, Some(_)) => {
                return bad("scale applies to the cosine head only (head = \"cosine\")".into());
            }
            (_, Some(s)) if !(s.is_finite() && s > 0.0) => {
                return bad(format!("scale must be finite and > 0, got {s}"));
            }
            _ => {}
        }
        if self.finetune_epochs == 0 || self.finetune_batch == 0 {
            return bad(format!(
                "finetune_epochs and finetune_batch must be at least 1, got {} and {}",
                self.finetune_epochs, self.finetune_batch
            ));
        }
        if !(self.finetune_lr.is_finite() && self.finetune_lr > 0.0) {
            return bad(format!(
                "finetune_lr must be finite and > 0, got {}",
                self.finetune_lr
            ));
        }
        for (key, value) in [
            ("finetune_momentum", self.finetune_momentum),
            ("finetune_dampening", self.finetune_dampening),
        ] {
            if !(0.0..1.0).contains(&value) {
                return bad(format!("{key} must be in [0, 1), got {value}"));
            }
        }
        if !(self.finetune_weight_decay.is_finite() && self.finetune_weight_decay >= 0.0) {
            return bad(format!(
                "finetune_weight_decay must be finite and >= 0, got {}",
                self.finetune_weight_decay
            ));
        }
        Ok(self)
    }

    /// The cosine head's scale for a head of `classes` outputs.
    pub fn scale_for(&self, classes: usize) -> f64 {
        self.scale
            .unwrap_or(if classes <= 200 { 2.0 } else { 10.0 })
    }
}

/// A classifier head over embeddings: `weight` `[classes, features]` and either a bias (linear)
/// or a learned norm per class (cosine).
#[derive(Module, Debug)]
pub struct ClassifierHead<B: Backend> {
    /// Class weights `[classes, features]` (cosine head: their directions `v`).
    pub weight: Param<Tensor<B, 2>>,
    /// Biases `[classes]` of the linear head.
    pub bias: Option<Param<Tensor<B, 1>>>,
    /// Norms `g` `[classes]` of the cosine head's class weights.
    pub gain: Option<Param<Tensor<B, 1>>>,
}

impl<B: Backend> ClassifierHead<B> {
    /// A freshly initialised head of `classes` outputs over `features` inputs: PyTorch's
    /// `nn.Linear` initialisation from [`meta_backbones::rng`], and `g = ‖v‖` for the cosine head.
    pub fn init(kind: BaselineHead, classes: usize, features: usize, device: &B::Device) -> Self {
        let weight = rng::fan_in_uniform::<B, 2>([classes, features], features, device);
        let (bias, gain) = match kind {
            BaselineHead::Linear => (Some(rng::fan_in_uniform([classes], features, device)), None),
            BaselineHead::Cosine => (None, Some(row_norms(weight.clone()))),
        };
        Self {
            weight: Param::from_tensor(weight),
            bias: bias.map(Param::from_tensor),
            gain: gain.map(Param::from_tensor),
        }
    }

    /// Logits `[N, classes]` of features `[N, features]`; `scale` multiplies the cosine head's.
    pub fn logits(&self, features: Tensor<B, 2>, scale: f64) -> Tensor<B, 2> {
        head_logits(
            features,
            self.weight.val(),
            self.bias.as_ref().map(Param::val),
            self.gain.as_ref().map(Param::val),
            scale,
        )
    }
}

/// L2 norms `[N]` of the rows of `x` `[N, D]`.
fn row_norms<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 1> {
    let n = x.dims()[0];
    x.powi_scalar(2).sum_dim(1).sqrt().reshape([n])
}

/// Rows of `x` divided by their norm plus 1e-5 (the authors' `distLinear`).
fn unit_rows<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    let n = x.dims()[0];
    let norms = row_norms(x.clone()).add_scalar(1e-5).reshape([n, 1]);
    x / norms
}

/// The head's logits from its tensors: `x·Wᵀ + b` (linear), or `scale · x̂·(g ⊙ Ŵ)ᵀ` (cosine,
/// when `gain` is given).
fn head_logits<B: Backend>(
    x: Tensor<B, 2>,
    weight: Tensor<B, 2>,
    bias: Option<Tensor<B, 1>>,
    gain: Option<Tensor<B, 1>>,
    scale: f64,
) -> Tensor<B, 2> {
    match gain {
        Some(gain) => {
            let classes = weight.dims()[0];
            let w = unit_rows(weight) * gain.reshape([classes, 1]);
            unit_rows(x).matmul(w.transpose()).mul_scalar(scale)
        }
        None => {
            let y = x.matmul(weight.transpose());
            match bias {
                Some(b) => y + b.unsqueeze_dim(0),
                None => y,
            }
        }
    }
}

/// Everything the baselines learn: the backbone (its embedding) and the head over the training
/// classes.
#[derive(Module, Debug)]
pub struct BaselineModel<B: Backend, N: Module<B>> {
    /// The backbone; its own head is unused.
    pub net: N,
    /// The pre-training classifier over all training classes.
    pub head: ClassifierHead<B>,
}

/// A pre-training baseline over a backbone built by `F`.
#[derive(Debug, Clone)]
pub struct Baseline<F> {
    factory: F,
    config: BaselineConfig,
}

impl<F> Baseline<F> {
    /// The baseline with backbones from `factory`; fails on an invalid config.
    pub fn new(factory: F, config: BaselineConfig) -> Result<Self> {
        Ok(Self {
            factory,
            config: config.check()?,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &BaselineConfig {
        &self.config
    }
}

/// The split classes behind a task's labels, as a device tensor.
fn class_table<B: Backend>(task: &Task<B>, device: &B::Device) -> Tensor<B, 1, Int> {
    let ids: Vec<i64> = task.classes.iter().map(|&c| c as i64).collect();
    let n = ids.len();
    Tensor::from_data(TensorData::new(ids, [n]), device)
}

impl<B, F> MetaLearner<B> for Baseline<F>
where
    B: AutodiffBackend,
    F: BackboneFactory<B>,
{
    type Model = BaselineModel<B, F::Net>;
    type Adapted = FittedHead<B, F::Net>;

    /// `"baseline"` for both heads (the head is in the config).
    fn name(&self) -> &'static str {
        "baseline"
    }

    fn init_model(&self, device: &B::Device) -> Self::Model {
        let net = crate::maml_family::build_initialised(&self.factory, device);
        let head = ClassifierHead::init(
            self.config.head,
            self.config.classes,
            net.feature_dim(),
            device,
        );
        BaselineModel { net, head }
    }

    /// Cross-entropy over all training classes of every image of `tasks` (one mini-batch);
    /// the stats are that loss and the training-class accuracy.
    fn meta_gradients(
        &self,
        model: &Self::Model,
        tasks: &[Task<B>],
    ) -> (GradientsParams, StepStats) {
        let Some(first) = tasks.first() else {
            return (GradientsParams::new(), StepStats::default());
        };
        let device = first.support_x.device();
        let (mut xs, mut ys) = (Vec::new(), Vec::new());
        for task in tasks {
            assert_eq!(
                task.classes.len(),
                task.ways,
                "baseline: a task without its split classes (Task::classes)"
            );
            let table = class_table(task, &device);
            xs.extend([task.support_x.clone(), task.query_x.clone()]);
            ys.push(table.clone().select(0, task.support_y.labels()));
            ys.push(table.select(0, task.query_y.labels()));
        }
        let (x, y) = (Tensor::cat(xs, 0), Tensor::cat(ys, 0));
        let scale = self.config.scale_for(self.config.classes);
        let logits = model.head.logits(model.net.embed(x), scale);
        let accuracy = ops::accuracy(logits.clone().detach(), y.clone());
        let loss = ops::cross_entropy(logits, y);
        let loss_value: f64 = loss.clone().into_scalar().elem();
        let grads = GradientsParams::from_grads(loss.backward(), model);
        (
            grads,
            StepStats {
                loss: loss_value,
                accuracy,
            },
        )
    }

    fn adapt(
        &self,
        model: &Self::Model,
        support_x: Tensor<B, 4>,
        support_y: Targets<B>,
        ways: usize,
    ) -> Self::Adapted {
        let support_y = support_y.labels();
        let net = model.net.valid();
        let features = net.embed(support_x.inner());
        let head = fit_head::<B>(&self.config, features, support_y.inner(), ways);
        FittedHead {
            net,
            head,
            scale: self.config.scale_for(ways),
        }
    }

    fn config_json(&self) -> serde_json::Value {
        serde_json::to_value(self.config).unwrap_or(serde_json::Value::Null)
    }

    fn backbone_name(&self) -> String {
        self.factory.name()
    }

    /// Every task must carry its split classes, inside the head's `classes`.
    fn preflight(&self, _model: &Self::Model, task: &Task<B>) -> Result<()> {
        if task.classes.len() != task.ways {
            return Err(AlgoError::Episodes(format!(
                "baseline trains on the split classes of each task (Task::classes), and this task \
                 has {} for {} ways; build tasks with Episode::to_task",
                task.classes.len(),
                task.ways
            )));
        }
        match task.classes.iter().find(|&&c| c >= self.config.classes) {
            Some(c) => Err(AlgoError::InvalidConfig(format!(
                "baseline.classes is {} but a training task holds class {c}; set it to the \
                 number of classes of the training split",
                self.config.classes
            ))),
            None => Ok(()),
        }
    }
}

/// A new head for `ways` classes fitted to support `features` `[N, D]` with `labels` `[N]`:
/// `config.finetune_epochs` shuffled passes of mini-batches, with burn's SGD (PyTorch's
/// semantics: weight decay added to the gradient, dampened momentum whose first buffer is the
/// gradient itself; no momentum buffer at `finetune_momentum = 0`, as in PyTorch). Runs the small
/// autodiff graph of the head only; the features are constants.
pub fn fit_head<B: AutodiffBackend>(
    config: &BaselineConfig,
    features: Tensor<B::InnerBackend, 2>,
    labels: Tensor<B::InnerBackend, 1, Int>,
    ways: usize,
) -> ClassifierHead<B::InnerBackend> {
    let device = features.device();
    let [n, dim] = features.dims();
    let mut head = ClassifierHead::<B>::init(config.head, ways, dim, &device);
    let momentum = (config.finetune_momentum > 0.0).then_some(MomentumConfig {
        momentum: config.finetune_momentum,
        dampening: config.finetune_dampening,
        nesterov: false,
    });
    let mut sgd = SgdConfig::new()
        .with_weight_decay(Some(WeightDecayConfig::new(
            config.finetune_weight_decay as f32,
        )))
        .with_momentum(momentum)
        .init::<B, ClassifierHead<B>>();
    let scale = config.scale_for(ways);
    for _ in 0..config.finetune_epochs {
        for batch in permutation(n).chunks(config.finetune_batch) {
            let idx = Tensor::<B::InnerBackend, 1, Int>::from_data(
                TensorData::new(batch.to_vec(), [batch.len()]),
                &device,
            );
            let x = Tensor::<B, 2>::from_inner(features.clone().select(0, idx.clone()));
            let y = Tensor::<B, 1, Int>::from_inner(labels.clone().select(0, idx));
            let loss = ops::cross_entropy(head.logits(x, scale), y);
            let grads = GradientsParams::from_grads(loss.backward(), &head);
            head = sgd.step(config.finetune_lr, head, grads);
        }
    }
    head.valid()
}

/// A random order of `0..n` from [`meta_backbones::rng`].
fn permutation(n: usize) -> Vec<i64> {
    let keys = rng::values(n, Distribution::Default);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| keys[a].total_cmp(&keys[b]));
    order.into_iter().map(|i| i as i64).collect()
}

/// A baseline adapted to one episode: the frozen embedding and the head fitted to its support
/// set, on the inner backend.
#[derive(Debug, Clone)]
pub struct FittedHead<B: AutodiffBackend, N: AutodiffModule<B>> {
    net: N::InnerModule,
    head: ClassifierHead<B::InnerBackend>,
    scale: f64,
}

impl<B, N> Predictor<B> for FittedHead<B, N>
where
    B: AutodiffBackend,
    N: AutodiffModule<B, InnerModule: Backbone<B::InnerBackend>>,
{
    fn predict(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        Tensor::from_inner(self.head.logits(self.net.embed(x.inner()), self.scale))
    }
}

#[cfg(test)]
#[path = "baseline_tests.rs"]
mod tests;
