//! Prototypical Networks (Snell, Swersky & Zemel, 2017).
//!
//! Each class is represented by the mean of its support embeddings (the backbone's
//! [`embed`](meta_backbones::Backbone::embed)); a query's logits are the negative squared
//! Euclidean distances to the prototypes. Support and query images of a task go through the
//! backbone in one batch, as in the authors' code. The backbone's head is unused.

use burn::optim::GradientsParams;
use burn::tensor::{Int, Tensor, backend::AutodiffBackend, backend::Backend};
use meta_backbones::Backbone;
use meta_data::{Targets, Task};
use serde::{Deserialize, Serialize};

use crate::factory::BackboneFactory;
use crate::learner::{MetaLearner, StepStats};
use crate::ops;
use crate::support::{SupportPredictor, SupportRule, support_meta_gradients};

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

/// Nearest-prototype classification: negative squared distances of the query embeddings to the
/// support-class means.
impl<B: Backend, N: Backbone<B>> SupportRule<B, N> for ProtoNetConfig {
    fn logits(
        &self,
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
}

/// A backbone `N` adapted to a support set: nearest-prototype classification on the inner backend.
pub type Prototypes<B, N> = SupportPredictor<B, ProtoNetConfig, N>;

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
        crate::maml_family::build_initialised(&self.factory, device)
    }

    fn meta_gradients(
        &self,
        model: &Self::Model,
        tasks: &[Task<B>],
    ) -> (GradientsParams, StepStats) {
        support_meta_gradients(&self.config, model, tasks)
    }

    fn adapt(
        &self,
        model: &Self::Model,
        support_x: Tensor<B, 4>,
        support_y: Targets<B>,
        ways: usize,
    ) -> Self::Adapted {
        let support_y = support_y.labels();
        SupportPredictor::new(self.config, model, support_x, support_y, ways)
    }

    fn config_json(&self) -> serde_json::Value {
        serde_json::to_value(self.config).unwrap_or(serde_json::Value::Null)
    }

    fn backbone_name(&self) -> String {
        self.factory.name()
    }
}
