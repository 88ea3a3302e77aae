//! Matching Networks (Vinyals et al., 2016), with or without full context embeddings.
//!
//! A query attends over the support embeddings with a softmax of cosine similarities; its class
//! distribution is the attention-weighted sum of the support labels' one-hot vectors:
//! `P(y | x̂) = Σᵢ softmax_i(τ · cos(f(x̂), g(xᵢ))) · onehot(yᵢ)`, trained with the negative
//! log-likelihood of the query labels. Without full context embeddings (the paper's Omniglot
//! model), `f = g =` the backbone's [`embed`](meta_backbones::Backbone::embed). With them
//! (`fce = true`, the paper's Mini-ImageNet model), `g` runs a bidirectional LSTM over the
//! support embeddings and `f` an attention LSTM of `read_steps` reads over `g(S)` for each query
//! ([`crate::matchingnet_fce`]). The softmax temperature τ is a fixed hyper-parameter (1 in the
//! paper). [`predict`](crate::Predictor::predict) returns `log P(y | x̂)`, which are valid
//! logits.

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::activation::softmax;
use burn::tensor::{Int, Tensor, backend::AutodiffBackend, backend::Backend};
use meta_backbones::Backbone;
use meta_data::{Targets, Task};
use serde::{Deserialize, Serialize};

use crate::error::{AlgoError, Result};
use crate::factory::BackboneFactory;
use crate::learner::{MetaLearner, StepStats};
use crate::matchingnet_fce::FullContext;
use crate::ops;
use crate::protonet::embed_jointly;
use crate::support::{SupportPredictor, SupportRule, support_meta_gradients};

/// Hyper-parameters of Matching Networks.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MatchingNetConfig {
    /// Scale τ applied to cosine similarities before the attention softmax. Default: 1.0 (the
    /// paper's plain cosine softmax). With non-negative (post-ReLU) embeddings the cosines lie in
    /// `[0, 1]`, so at τ = 1 a 5-way query can put at most `e/(e+4) ≈ 40%` on one class and
    /// learning is slow; τ = 10 learns several times faster on Omniglot (used by the tests).
    pub temperature: f64,
    /// Full context embeddings: the support set's bidirectional LSTM and the queries' attention
    /// LSTM (default: off, the paper's Omniglot model).
    pub fce: bool,
    /// Attention reads K of the query LSTM when `fce` is on (the paper leaves K open; default 5).
    pub read_steps: usize,
}

impl Default for MatchingNetConfig {
    fn default() -> Self {
        Self {
            temperature: 1.0,
            fce: false,
            read_steps: 5,
        }
    }
}

impl MatchingNetConfig {
    /// Checks the values; τ must be finite and positive.
    pub fn check(self) -> Result<Self> {
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(AlgoError::InvalidConfig(format!(
                "matchingnet.temperature must be finite and > 0, got {}",
                self.temperature
            )));
        }
        if self.fce && self.read_steps == 0 {
            return Err(AlgoError::InvalidConfig(
                "matchingnet.read_steps must be at least 1 with fce = true".into(),
            ));
        }
        Ok(self)
    }
}

/// Matching Networks over a backbone built by `F`.
#[derive(Debug, Clone)]
pub struct MatchingNet<F> {
    factory: F,
    config: MatchingNetConfig,
}

impl<F> MatchingNet<F> {
    /// Matching Networks with backbones from `factory`; fails on an invalid config.
    pub fn new(factory: F, config: MatchingNetConfig) -> Result<Self> {
        Ok(Self {
            factory,
            config: config.check()?,
        })
    }
}

/// Log-probabilities `[Nq, ways]` of queries given support/query embeddings.
fn log_probs<B: Backend>(
    support: Tensor<B, 2>,
    support_y: Tensor<B, 1, Int>,
    query: Tensor<B, 2>,
    ways: usize,
    temperature: f64,
) -> Tensor<B, 2> {
    let cos = ops::l2_normalize(query).matmul(ops::l2_normalize(support).transpose()); // [Nq, Ns]
    let attention = softmax(cos.mul_scalar(temperature), 1);
    let probs = attention.matmul(ops::one_hot(support_y, ways)); // [Nq, ways]
    probs.clamp_min(1e-8).log()
}

/// What Matching Networks learn: the backbone, and the full-context LSTMs when `fce` is on.
#[derive(Module, Debug)]
pub struct MatchingNetModel<B: Backend, N: Module<B>> {
    /// The embedding network `f′ = g′`; its head is unused.
    pub net: N,
    /// The full-context-embedding LSTMs (`fce = true`).
    pub fce: Option<FullContext<B>>,
}

/// Attention-based classification: a query's class distribution is the softmax(τ · cosine)
/// attention over the support embeddings applied to their one-hot labels; the logits are its log.
impl<B: Backend, N: Backbone<B>> SupportRule<B, MatchingNetModel<B, N>> for MatchingNetConfig {
    fn logits(
        &self,
        model: &MatchingNetModel<B, N>,
        support_x: Tensor<B, 4>,
        support_y: Tensor<B, 1, Int>,
        query_x: Tensor<B, 4>,
        ways: usize,
    ) -> Tensor<B, 2> {
        let (mut support, mut query) = embed_jointly(&model.net, support_x, query_x);
        if let Some(fce) = &model.fce {
            support = fce.support(support);
            query = fce.query(query, support.clone(), self.read_steps);
        }
        log_probs(support, support_y, query, ways, self.temperature)
    }

    fn loss(&self, log_probs: Tensor<B, 2>, labels: Tensor<B, 1, Int>) -> Tensor<B, 1> {
        ops::nll_from_log_probs(log_probs, labels)
    }
}

/// Matching Networks adapted to a support set: attention-based classification on the inner
/// backend.
pub type MatchingPredictor<B, N> = SupportPredictor<B, MatchingNetConfig, MatchingNetModel<B, N>>;

impl<B, F> MetaLearner<B> for MatchingNet<F>
where
    B: AutodiffBackend,
    F: BackboneFactory<B>,
{
    type Model = MatchingNetModel<B, F::Net>;
    type Adapted = MatchingPredictor<B, F::Net>;

    fn name(&self) -> &'static str {
        "matchingnet"
    }

    fn init_model(&self, device: &B::Device) -> Self::Model {
        let net = crate::maml_family::build_initialised(&self.factory, device);
        let fce = self
            .config
            .fce
            .then(|| FullContext::new(net.feature_dim(), device));
        MatchingNetModel { net, fce }
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
