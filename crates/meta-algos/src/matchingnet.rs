//! Matching Networks (Vinyals et al., 2016), without full-context embeddings.
//!
//! A query attends over the support embeddings with a softmax of cosine similarities; its class
//! distribution is the attention-weighted sum of the support labels' one-hot vectors:
//! `P(y | x̂) = Σᵢ softmax_i(τ · cos(f(x̂), g(xᵢ))) · onehot(yᵢ)`, trained with the negative
//! log-likelihood of the query labels. `f = g =` the backbone's
//! [`embed`](meta_backbones::Backbone::embed).
//!
//! **Implemented:** the "simple" Matching Network (the paper's Omniglot model): one shared
//! embedding, cosine attention, no full-context embeddings (FCE: the bidirectional-LSTM support
//! encoder and attention-LSTM query encoder). FCE is **not** implemented. The softmax temperature τ
//! is a fixed hyper-parameter (1 in the paper).
//! [`predict`](crate::Predictor::predict) returns `log P(y | x̂)`, which are valid logits.

use burn::optim::GradientsParams;
use burn::tensor::activation::softmax;
use burn::tensor::{Int, Tensor, backend::AutodiffBackend, backend::Backend};
use meta_backbones::Backbone;
use meta_data::Task;
use serde::{Deserialize, Serialize};

use crate::error::{AlgoError, Result};
use crate::factory::BackboneFactory;
use crate::learner::{MetaLearner, StepStats};
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
}

impl Default for MatchingNetConfig {
    fn default() -> Self {
        Self { temperature: 1.0 }
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

/// Attention-based classification: a query's class distribution is the softmax(τ · cosine)
/// attention over the support embeddings applied to their one-hot labels; the logits are its log.
impl<B: Backend, N: Backbone<B>> SupportRule<B, N> for MatchingNetConfig {
    fn logits(
        &self,
        net: &N,
        support_x: Tensor<B, 4>,
        support_y: Tensor<B, 1, Int>,
        query_x: Tensor<B, 4>,
        ways: usize,
    ) -> Tensor<B, 2> {
        let (support, query) = embed_jointly(net, support_x, query_x);
        log_probs(support, support_y, query, ways, self.temperature)
    }

    fn loss(&self, log_probs: Tensor<B, 2>, labels: Tensor<B, 1, Int>) -> Tensor<B, 1> {
        ops::nll_from_log_probs(log_probs, labels)
    }
}

/// A backbone `N` adapted to a support set: attention-based classification on the inner backend.
pub type MatchingPredictor<B, N> = SupportPredictor<B, MatchingNetConfig, N>;

impl<B, F> MetaLearner<B> for MatchingNet<F>
where
    B: AutodiffBackend,
    F: BackboneFactory<B>,
{
    type Model = F::Net;
    type Adapted = MatchingPredictor<B, F::Net>;

    fn name(&self) -> &'static str {
        "matchingnet"
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
        support_y: Tensor<B, 1, Int>,
        ways: usize,
    ) -> Self::Adapted {
        SupportPredictor::new(self.config, model, support_x, support_y, ways)
    }

    fn config_json(&self) -> serde_json::Value {
        serde_json::to_value(self.config).unwrap_or(serde_json::Value::Null)
    }

    fn backbone_name(&self) -> String {
        self.factory.name()
    }
}
