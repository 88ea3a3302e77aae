//! Meta Networks, embedding-based variant.
//!
//! With the backbone's embedding `h(x)` (width `emb`), two matrices `U, V` (`hidden × emb`) and a
//! bias `e` (`hidden`), each class gets a fast weight vector from its support examples,
//! `W_c = mean_{i: yᵢ = c} (U h(xᵢ) + e)`, and a query's logits are
//! `logits_c = (V h(x̂)) · W_c`. Everything (`h`, `U`, `V`, `e`) is trained end to end with the
//! query cross-entropy, and — as in the Meta Networks papers — the meta-gradient is clipped to a
//! global norm of 1.0 by default ([`recommended_grad_clip`](crate::MetaLearner::recommended_grad_clip)).
//! Support and query images are embedded in one batch.

use burn::module::{Module, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Int, Tensor, backend::AutodiffBackend, backend::Backend};
use meta_backbones::Backbone;
use meta_data::{Targets, Task};
use serde::{Deserialize, Serialize};

use crate::error::{AlgoError, Result};
use crate::factory::BackboneFactory;
use crate::learner::{MetaLearner, StepStats};
use crate::ops;
use crate::protonet::embed_jointly;
use crate::support::{SupportPredictor, SupportRule, support_meta_gradients};

/// Hyper-parameters of the embedding-based Meta Networks.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetaNetEbConfig {
    /// Width of the fast-weight space (rows of `U` and `V`). Default: 128.
    pub hidden: usize,
    /// Global-norm clipping of the meta-gradient. Default: 1.0.
    pub grad_clip: f64,
}

impl Default for MetaNetEbConfig {
    fn default() -> Self {
        Self {
            hidden: 128,
            grad_clip: 1.0,
        }
    }
}

impl MetaNetEbConfig {
    /// Checks the values.
    pub fn check(self) -> Result<Self> {
        if self.hidden == 0 {
            return Err(AlgoError::InvalidConfig(
                "metanet_eb.hidden must be at least 1".into(),
            ));
        }
        if !(self.grad_clip.is_finite() && self.grad_clip > 0.0) {
            return Err(AlgoError::InvalidConfig(format!(
                "metanet_eb.grad_clip must be finite and > 0, got {}",
                self.grad_clip
            )));
        }
        Ok(self)
    }
}

/// Meta-parameters of the embedding-based Meta Networks: the embedding backbone, `U`, `V`, `e`.
#[derive(Module, Debug)]
pub struct MetaNetEbModel<B: Backend, N> {
    /// Embedding network `h`.
    pub net: N,
    /// `[hidden, emb]`: maps support embeddings into fast-weight space.
    pub u: Param<Tensor<B, 2>>,
    /// `[hidden, emb]`: maps query embeddings into fast-weight space.
    pub v: Param<Tensor<B, 2>>,
    /// `[hidden]`: bias of the support mapping.
    pub e: Param<Tensor<B, 1>>,
}

/// Uniform(−1/√fan_in, 1/√fan_in) matrix `[rows, cols]`.
pub(crate) fn uniform_matrix<B: Backend>(
    rows: usize,
    cols: usize,
    device: &B::Device,
) -> Param<Tensor<B, 2>> {
    Param::from_tensor(meta_backbones::rng::fan_in_uniform(
        [rows, cols],
        cols,
        device,
    ))
}

impl<B: Backend, N: Backbone<B>> MetaNetEbModel<B, N> {
    /// Per-class fast weights `[ways, hidden]` from support embeddings `[Ns, emb]`.
    fn class_weights(
        &self,
        support: Tensor<B, 2>,
        support_y: Tensor<B, 1, Int>,
        ways: usize,
    ) -> Tensor<B, 2> {
        let hidden = self.e.dims()[0];
        let mapped = support.matmul(self.u.val().transpose()) + self.e.val().reshape([1, hidden]);
        ops::class_means(mapped, support_y, ways)
    }
}

/// Fast-weight classification: `logits_c = (V h(x̂)) · W_c`.
impl<B: Backend, N: Backbone<B>> SupportRule<B, MetaNetEbModel<B, N>> for MetaNetEbConfig {
    fn logits(
        &self,
        model: &MetaNetEbModel<B, N>,
        support_x: Tensor<B, 4>,
        support_y: Tensor<B, 1, Int>,
        query_x: Tensor<B, 4>,
        ways: usize,
    ) -> Tensor<B, 2> {
        let (support, query) = embed_jointly(&model.net, support_x, query_x);
        let w = model.class_weights(support, support_y, ways);
        query
            .matmul(model.v.val().transpose())
            .matmul(w.transpose())
    }
}

/// Embedding-based Meta Networks over a backbone built by `F`.
#[derive(Debug, Clone)]
pub struct MetaNetEb<F> {
    factory: F,
    config: MetaNetEbConfig,
}

impl<F> MetaNetEb<F> {
    /// Embedding-based Meta Networks with backbones from `factory`; fails on an invalid config.
    pub fn new(factory: F, config: MetaNetEbConfig) -> Result<Self> {
        Ok(Self {
            factory,
            config: config.check()?,
        })
    }
}

/// An embedding-based Meta Network adapted to a support set, classifying on the inner backend.
pub type MetaNetEbPredictor<B, N> = SupportPredictor<B, MetaNetEbConfig, MetaNetEbModel<B, N>>;

impl<B, F> MetaLearner<B> for MetaNetEb<F>
where
    B: AutodiffBackend,
    F: BackboneFactory<B>,
{
    type Model = MetaNetEbModel<B, F::Net>;
    type Adapted = MetaNetEbPredictor<B, F::Net>;

    fn name(&self) -> &'static str {
        "metanet_eb"
    }

    fn init_model(&self, device: &B::Device) -> Self::Model {
        let net = self.factory.build(device);
        let emb = net.feature_dim();
        let hidden = self.config.hidden;
        let model = MetaNetEbModel {
            u: uniform_matrix(hidden, emb, device),
            v: uniform_matrix(hidden, emb, device),
            e: Param::from_tensor(Tensor::zeros([hidden], device)),
            net,
        };
        meta_backbones::params::force_init(&model);
        model
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

    fn recommended_grad_clip(&self) -> Option<f64> {
        Some(self.config.grad_clip)
    }
}
