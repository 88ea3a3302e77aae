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
use crate::learner::{MetaLearner, StepStats};
use crate::ops;
use crate::support::{SupportClassifier, SupportPredictor, adapt_on_inner};

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

/// A backbone classifying queries by their distance to the support-class prototypes.
#[derive(Debug, Clone)]
pub struct PrototypeClassifier<N>(pub N);

impl<B: Backend, N: Backbone<B>> SupportClassifier<B> for PrototypeClassifier<N> {
    fn logits(
        &self,
        support_x: Tensor<B, 4>,
        support_y: Tensor<B, 1, Int>,
        query_x: Tensor<B, 4>,
        ways: usize,
    ) -> Tensor<B, 2> {
        prototype_logits(&self.0, support_x, support_y, query_x, ways)
    }
}

/// A backbone adapted to a support set: nearest-prototype classification on the inner backend.
pub type Prototypes<B, N> =
    SupportPredictor<B, PrototypeClassifier<<N as AutodiffModule<B>>::InnerModule>>;

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

/// Negative squared distances `[Nq, ways]` of query embeddings to the support-class means.
fn prototype_logits<B: Backend, N: Backbone<B>>(
    net: &N,
    support_x: Tensor<B, 4>,
    support_y: Tensor<B, 1, Int>,
    query_x: Tensor<B, 4>,
    ways: usize,
) -> Tensor<B, 2> {
    let (support, query) = embed_jointly(net, support_x, query_x);
    let protos = ops::class_means(support, support_y, ways);
    ops::squared_euclidean(query, protos).neg()
}

/// Query logits of one task.
fn task_logits<B: AutodiffBackend, N: Backbone<B>>(net: &N, task: &Task<B>) -> Tensor<B, 2> {
    let (sx, sy, qx) = (
        task.support_x.clone(),
        task.support_y.clone(),
        task.query_x.clone(),
    );
    prototype_logits(net, sx, sy, qx, task.ways)
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
        adapt_on_inner(model, PrototypeClassifier, support_x, support_y, ways)
    }

    fn config_json(&self) -> serde_json::Value {
        serde_json::to_value(self.config).unwrap_or(serde_json::Value::Null)
    }

    fn backbone_name(&self) -> String {
        self.factory.name()
    }
}

use burn::tensor::ElementConversion as _;
