//! Meta Networks, original model-based form (Munkhdalai & Yu, ICML 2017) — a compact version.
//!
//! # What is implemented
//! - **Base learner** `b`: the backbone's embedding `h(x)` followed by a *layer-augmented* output
//!   layer. Its slow weights `W` (`ways × emb`) and `b` are meta-parameters; its fast weights `W*`
//!   are generated per task. Logits are the element-wise sum of the slow and fast pre-activations
//!   (the paper's layer augmentation; the output layer has no non-linearity):
//!   `logits(x) = W h(x) + b + W*(x) h(x)`.
//! - **Meta information**: for each support example `i`, the gradient of its cross-entropy loss
//!   under the slow base learner with respect to the output weights,
//!   `∇ᵢ = ∂L(W h(xᵢ) + b, yᵢ)/∂W = (softmax(W h(xᵢ) + b) − onehot(yᵢ)) h(xᵢ)ᵀ` (`ways × emb`),
//!   computed in closed form and treated as an input (not differentiated through, as in the
//!   authors' implementation which read `.grad` arrays).
//! - **Meta-learner** `m` (parameters `G`): an MLP applied to every row of `∇ᵢ`, after the
//!   gradient preprocessing of Andrychowicz et al. (2016) that the paper uses (`p = 10`: each
//!   scalar becomes `(log|g|/p, sign g)` or `(−1, eᵖ g)`), producing the example-level fast
//!   weights `W*ᵢ = m(G, ∇ᵢ)` stored in a memory `M` (one entry per support example).
//! - **Memory read**: the key of an example is its embedding; a query attends over the support
//!   keys with a softmax of cosine similarities, and its fast weights are the attention-weighted
//!   sum `W*(x) = Σᵢ aᵢ W*ᵢ` (the paper's `softmax(aᵢ)ᵀ M`).
//! - **Meta-training**: the query cross-entropy is back-propagated to everything (embedding,
//!   `W`, `b`, `G`); gradients are clipped to global norm 1.0 by default (as in the
//!   embedding-based variant).
//!
//! # Differences from the paper
//! - One shared embedding network serves as the key function `u` and as the base learner's body;
//!   the paper has two separate CNNs.
//! - **Representation-level (task-level) fast weights are not implemented**: the paper also
//!   generates fast weights `Q*` for `u` from the gradients of a representation loss on sampled
//!   support pairs (the function `d` with an LSTM); here `u` has slow weights only.
//! - Fast weights augment the output layer only (the paper augments every layer of `b`).
//! - The meta-learner `m` is a 2-layer MLP shared across output rows; the paper's `m` is an MLP
//!   over the whole gradient.

use burn::module::{Module, Param};
use burn::optim::GradientsParams;
use burn::tensor::activation::{relu, softmax};
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

/// Hyper-parameters of the original Meta Networks.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetaNetConfig {
    /// Rows of the slow output layer (the N of N-way training). Tasks with more ways get zero
    /// slow logits for the extra classes. Default: 5.
    pub ways: usize,
    /// Hidden width of the meta-learner MLP `m`. Default: 64.
    pub meta_hidden: usize,
    /// Apply the Andrychowicz et al. gradient preprocessing (`p = 10`). Default: true (paper).
    pub preprocess_gradients: bool,
    /// Scale of cosine similarities before the memory-attention softmax. Default: 1.0.
    pub attention_temperature: f64,
    /// Global-norm clipping of the meta-gradient. Default: 1.0.
    pub grad_clip: f64,
}

impl Default for MetaNetConfig {
    fn default() -> Self {
        Self {
            ways: 5,
            meta_hidden: 64,
            preprocess_gradients: true,
            attention_temperature: 1.0,
            grad_clip: 1.0,
        }
    }
}

impl MetaNetConfig {
    /// Checks the values.
    pub fn check(self) -> Result<Self> {
        if self.ways == 0 || self.meta_hidden == 0 {
            return Err(AlgoError::InvalidConfig(
                "metanet.ways and metanet.meta_hidden must be at least 1".into(),
            ));
        }
        for (name, v) in [
            ("attention_temperature", self.attention_temperature),
            ("grad_clip", self.grad_clip),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(AlgoError::InvalidConfig(format!(
                    "metanet.{name} must be finite and > 0, got {v}"
                )));
            }
        }
        Ok(self)
    }
}

/// Meta-parameters of Meta Networks: embedding, slow output layer, meta-learner `m`.
#[derive(Module, Debug)]
pub struct MetaNetModel<B: Backend, N> {
    /// Embedding network (key function and base-learner body).
    pub net: N,
    /// Slow output weights `[ways, emb]`.
    pub w: Param<Tensor<B, 2>>,
    /// Slow output bias `[ways]`.
    pub b: Param<Tensor<B, 1>>,
    /// Meta-learner first layer `[in, meta_hidden]` (`in` = 2·emb with preprocessing, else emb).
    pub m1: Param<Tensor<B, 2>>,
    /// Meta-learner first bias `[meta_hidden]`.
    pub m1_bias: Param<Tensor<B, 1>>,
    /// Meta-learner second layer `[meta_hidden, emb]`.
    pub m2: Param<Tensor<B, 2>>,
    /// Meta-learner second bias `[emb]`.
    pub m2_bias: Param<Tensor<B, 1>>,
}

/// Uniform(−1/√fan_in, 1/√fan_in) parameter of `shape`.
fn uniform<B: Backend>(
    shape: [usize; 2],
    fan_in: usize,
    device: &B::Device,
) -> Param<Tensor<B, 2>> {
    Param::from_tensor(meta_backbones::rng::fan_in_uniform(shape, fan_in, device))
}

/// Andrychowicz et al. (2016) preprocessing of gradient scalars, `p = 10`: `[N, D] → [N, 2D]`.
fn preprocess<B: Backend>(g: Tensor<B, 2>) -> Tensor<B, 2> {
    const P: f64 = 10.0;
    let small = g.clone().abs().lower_elem((-P).exp());
    let log_part = g
        .clone()
        .abs()
        .clamp_min(1e-30)
        .log()
        .div_scalar(P)
        .mask_fill(small.clone(), -1.0);
    let sign_part = g.clone().sign().mask_where(small, g.mul_scalar(P.exp()));
    Tensor::cat(vec![log_part, sign_part], 1)
}

impl<B: Backend, N: Backbone<B>> MetaNetModel<B, N> {
    /// Slow logits `[n, ways]` (rows of `W` beyond its size are zero).
    fn slow_logits(&self, h: Tensor<B, 2>, ways: usize) -> Tensor<B, 2> {
        let rows = self.b.dims()[0];
        let n = h.dims()[0];
        let used = ways.min(rows);
        let w = self.w.val().narrow(0, 0, used);
        let b = self.b.val().narrow(0, 0, used).reshape([1, used]);
        let logits = h.matmul(w.transpose()) + b;
        if ways > used {
            let pad = Tensor::zeros([n, ways - used], &logits.device());
            Tensor::cat(vec![logits, pad], 1)
        } else {
            logits
        }
    }

    /// Query logits from support and query images.
    fn logits(
        &self,
        support_x: Tensor<B, 4>,
        support_y: Tensor<B, 1, Int>,
        query_x: Tensor<B, 4>,
        ways: usize,
        config: &MetaNetConfig,
    ) -> Tensor<B, 2> {
        let (hs, hq) = embed_jointly(&self.net, support_x, query_x);
        let [ns, emb] = hs.dims();
        let nq = hq.dims()[0];

        // Meta information: closed-form output-layer loss gradients of each support example.
        let p = softmax(self.slow_logits(hs.clone(), ways), 1).detach();
        let coef = p - ops::one_hot(support_y, ways); // [ns, ways]
        let grads = coef.reshape([ns, ways, 1]) * hs.clone().detach().reshape([ns, 1, emb]);
        let rows = grads.reshape([ns * ways, emb]);
        let input = if config.preprocess_gradients {
            preprocess(rows)
        } else {
            rows
        };
        // Meta-learner m: example-level fast weights, one [ways, emb] matrix per support example.
        let hidden = self.m1_bias.dims()[0];
        let z = relu(input.matmul(self.m1.val()) + self.m1_bias.val().reshape([1, hidden]));
        let memory = (z.matmul(self.m2.val()) + self.m2_bias.val().reshape([1, emb]))
            .reshape([ns, ways * emb]);

        // Memory read: cosine attention of queries over support keys.
        let cos = ops::l2_normalize(hq.clone()).matmul(ops::l2_normalize(hs).transpose());
        let attention = softmax(cos.mul_scalar(config.attention_temperature), 1); // [nq, ns]
        let fast = attention.matmul(memory).reshape([nq, ways, emb]);

        // Layer augmentation: slow + fast pre-activations.
        let fast_logits = (fast * hq.clone().reshape([nq, 1, emb]))
            .sum_dim(2)
            .reshape([nq, ways]);
        self.slow_logits(hq, ways) + fast_logits
    }
}

/// Meta Networks (original, model-based) over a backbone built by `F`.
#[derive(Debug, Clone)]
pub struct MetaNet<F> {
    factory: F,
    config: MetaNetConfig,
}

impl<F> MetaNet<F> {
    /// Meta Networks with backbones from `factory`; fails on an invalid config.
    pub fn new(factory: F, config: MetaNetConfig) -> Result<Self> {
        Ok(Self {
            factory,
            config: config.check()?,
        })
    }
}

/// Fast weights generated from the support set at prediction time, with support and query
/// images embedded in one batch as in training. The meta-information gradients are closed-form,
/// so no autodiff is needed to predict.
impl<B: Backend, N: Backbone<B>> SupportRule<B, MetaNetModel<B, N>> for MetaNetConfig {
    fn logits(
        &self,
        model: &MetaNetModel<B, N>,
        support_x: Tensor<B, 4>,
        support_y: Tensor<B, 1, Int>,
        query_x: Tensor<B, 4>,
        ways: usize,
    ) -> Tensor<B, 2> {
        model.logits(support_x, support_y, query_x, ways, self)
    }
}

/// A Meta Network adapted to a support set, classifying on the inner backend.
pub type MetaNetPredictor<B, N> = SupportPredictor<B, MetaNetConfig, MetaNetModel<B, N>>;

impl<B, F> MetaLearner<B> for MetaNet<F>
where
    B: AutodiffBackend,
    F: BackboneFactory<B>,
{
    type Model = MetaNetModel<B, F::Net>;
    type Adapted = MetaNetPredictor<B, F::Net>;

    fn name(&self) -> &'static str {
        "metanet"
    }

    fn init_model(&self, device: &B::Device) -> Self::Model {
        let net = self.factory.build(device);
        let emb = net.feature_dim();
        let c = &self.config;
        let input = if c.preprocess_gradients { 2 * emb } else { emb };
        let model = MetaNetModel {
            w: uniform([c.ways, emb], emb, device),
            b: Param::from_tensor(Tensor::zeros([c.ways], device)),
            m1: uniform([input, c.meta_hidden], input, device),
            m1_bias: Param::from_tensor(Tensor::zeros([c.meta_hidden], device)),
            m2: uniform([c.meta_hidden, emb], c.meta_hidden, device),
            m2_bias: Param::from_tensor(Tensor::zeros([emb], device)),
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

    fn recommended_grad_clip(&self) -> Option<f64> {
        Some(self.config.grad_clip)
    }
}
