//! Prototypical Networks (Snell, Swersky & Zemel, 2017).
//!
//! Each class is represented by the mean of its support embeddings (the backbone's
//! [`embed`](meta_backbones::Backbone::embed)); a query's logits are the negative squared
//! Euclidean distances to the prototypes. Support and query images of a task go through the
//! backbone in one batch, as in the authors' code. The backbone's head is unused.

use burn::module::AutodiffModule;
use burn::optim::GradientsParams;
use burn::tensor::{Int, Tensor, backend::AutodiffBackend, backend::Backend};
use meta_backbones::Backbone;
use meta_data::Task;
use serde::{Deserialize, Serialize};

use crate::factory::BackboneFactory;
use crate::learner::{MetaLearner, Predictor, StepStats};
use crate::ops;

/// Hyper-parameters of Prototypical Networks. The method has none besides the backbone and the
/// outer optimizer (paper: Adam, lr 1e-3 halved every 2000 episodes), which live in the trainer.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtoNetConfig {}

/// Prototypical Networks over a backbone built by `F`.
#[derive(Debug, Clone)]
pub struct ProtoNet<F> {
    factory: F,
    config: ProtoNetConfig,
}

impl<F> ProtoNet<F> {
    /// Prototypical Networks with backbones from `factory`.
    pub fn new(factory: F, config: ProtoNetConfig) -> Self {
        Self { factory, config }
    }

    /// Like [`new`](Self::new), but first checks the backbone configuration for backend `B`.
    pub fn checked<B: AutodiffBackend>(factory: F, config: ProtoNetConfig) -> crate::Result<Self>
    where
        F: BackboneFactory<B>,
    {
        crate::factory::check_factory(&factory)?;
        Ok(Self::new(factory, config))
    }
}

/// A support set remembered for prototype classification.
///
/// [`predict`](Predictor::predict) embeds the support set and the queries in one batch, as in
/// training, on the inner backend: no autodiff graph is recorded, so test episodes do not
/// accumulate memory (on `Autodiff<LibTorch>` a recorded-but-never-backpropagated forward kept
/// ~63 MB per 5-way episode alive). Batch statistics are those of that joint batch, as in
/// training; a running-statistics batch-norm uses its running statistics, as a `valid()` model does.
#[derive(Debug, Clone)]
pub struct Prototypes<B: AutodiffBackend, N: AutodiffModule<B>> {
    net: N::InnerModule,
    support_x: Tensor<B::InnerBackend, 4>,
    support_y: Tensor<B::InnerBackend, 1, Int>,
    ways: usize,
}

impl<B, N> Predictor<B> for Prototypes<B, N>
where
    B: AutodiffBackend,
    N: AutodiffModule<B, InnerModule: Backbone<B::InnerBackend>>,
{
    fn predict(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        let (support, query) = embed_jointly(&self.net, self.support_x.clone(), x.inner());
        let protos = ops::class_means(support, self.support_y.clone(), self.ways);
        Tensor::from_inner(ops::squared_euclidean(query, protos).neg())
    }
}

/// Embeds support and query images in one backbone call; returns (support, query) features.
pub(crate) fn embed_jointly<B: Backend, N: Backbone<B>>(
    net: &N,
    support_x: Tensor<B, 4>,
    query_x: Tensor<B, 4>,
) -> (Tensor<B, 2>, Tensor<B, 2>) {
    let ns = support_x.dims()[0];
    let nq = query_x.dims()[0];
    let emb = net.embed(Tensor::cat(vec![support_x, query_x], 0));
    (emb.clone().narrow(0, 0, ns), emb.narrow(0, ns, nq))
}

/// Query logits of one task.
fn task_logits<B: AutodiffBackend, N: Backbone<B>>(net: &N, task: &Task<B>) -> Tensor<B, 2> {
    let (support, query) = embed_jointly(net, task.support_x.clone(), task.query_x.clone());
    let protos = ops::class_means(support, task.support_y.clone(), task.ways);
    ops::squared_euclidean(query, protos).neg()
}

/// Sums per-task query losses, back-propagates once, and averages loss/accuracy.
pub(crate) fn metric_meta_gradients<B, M>(
    model: &M,
    tasks: &[Task<B>],
    logits_of: impl Fn(&M, &Task<B>) -> Tensor<B, 2>,
    loss_of: impl Fn(Tensor<B, 2>, Tensor<B, 1, Int>) -> Tensor<B, 1>,
) -> (GradientsParams, StepStats)
where
    B: AutodiffBackend,
    M: burn::module::AutodiffModule<B>,
{
    if tasks.is_empty() {
        return (GradientsParams::new(), StepStats::default());
    }
    let mut losses = Vec::with_capacity(tasks.len());
    let mut correct = Vec::with_capacity(tasks.len());
    let mut total = 0usize;
    for task in tasks {
        let logits = logits_of(model, task);
        correct.push(ops::correct(logits.clone().detach(), task.query_y.clone()));
        total += task.query_y.dims()[0];
        losses.push(loss_of(logits, task.query_y.clone()));
    }
    let loss = Tensor::cat(losses, 0).mean();
    let loss_value: f64 = loss.clone().into_scalar().elem();
    let correct: i64 = Tensor::cat(correct, 0).sum().into_scalar().elem();
    let grads = GradientsParams::from_grads(loss.backward(), model);
    let stats = StepStats {
        loss: loss_value,
        accuracy: correct as f64 / total.max(1) as f64,
    };
    (grads, stats)
}

impl<B, F> MetaLearner<B> for ProtoNet<F>
where
    B: AutodiffBackend,
    F: BackboneFactory<B>,
{
    type Model = F::Net;
    type Adapted = Prototypes<B, F::Net>;

    fn name(&self) -> &'static str {
        "protonet"
    }

    fn init_model(&self, device: &B::Device) -> Self::Model {
        self.factory.build(device)
    }

    fn meta_gradients(
        &self,
        model: &Self::Model,
        tasks: &[Task<B>],
    ) -> (GradientsParams, StepStats) {
        metric_meta_gradients(model, tasks, task_logits, ops::cross_entropy)
    }

    fn adapt(
        &self,
        model: &Self::Model,
        support_x: Tensor<B, 4>,
        support_y: Tensor<B, 1, Int>,
        ways: usize,
    ) -> Self::Adapted {
        Prototypes {
            net: model.valid(),
            support_x: support_x.inner(),
            support_y: support_y.inner(),
            ways,
        }
    }

    fn config_json(&self) -> serde_json::Value {
        serde_json::to_value(self.config).unwrap_or(serde_json::Value::Null)
    }

    fn backbone_name(&self) -> String {
        self.factory.name()
    }
}

use burn::tensor::ElementConversion as _;
