//! Meta Networks as published (Munkhdalai & Yu, ICML 2017), following the authors' Omniglot
//! code (`MetaNetFull`: the whole model fast-parameterised and layer-augmented).
//!
//! # The model
//! Two networks of the same [`MetaNetCnn`] architecture: the **base learner** `b` (slow weights
//! `W`) and the **representation (key) function** `u` (slow weights `Q`), and four small
//! **meta-learner** networks that turn loss gradients into fast weights, each applied to every
//! gradient coordinate after the authors' preprocessing (`log(|g| + ε)/k` clamped at −1 and
//! `g·eᵏ` clamped to ±1, `k = 7`):
//! - **task-level fast weights** `Q* = d(Z, {∇ᵗ})`: the support set is cut into `task_chunks`
//!   chunks; `∇ᵗ` is the gradient, with respect to every layer of `u`, of `u`'s own
//!   cross-entropy (through its head) on chunk `t`; `d` is an LSTM (20 units) run over the
//!   chunks, followed by a linear read-out (one `d` for conv layers, one for fc layers);
//! - **example-level fast weights** `W*ᵢ = m(G, ∇ᵢ)`: `∇ᵢ` is the gradient, with respect to
//!   every layer of `b`, of `b`'s cross-entropy on support example `i`; `m` is an MLP
//!   2 → 20 → 20 → 1 (one for conv layers, one for fc layers). The `W*ᵢ` form the memory `M`.
//! - **keys** `rᵢ = u(Q, Q*, xᵢ)`: `u`'s `fc1` pre-activation with every layer augmented by
//!   `Q*`, for support (the memory's keys) and query examples;
//! - **memory read**: a query attends over the support keys with a softmax of cosine
//!   similarities, `W*(x) = Σᵢ aᵢ W*ᵢ`;
//! - **prediction** `b(W, W*(x), x)`: every layer of `b` layer-augmented,
//!   `ReLU(W h) + ReLU(W* h)` (the output layer `W h + W* h`).
//!
//! The query cross-entropy is back-propagated to `W`, `Q`, `Z` and `G`; the gradients `∇` are
//! inputs (not differentiated through), as in the authors' code, which read `.grad` arrays.
//! The meta-gradient is clipped to global norm 10 by default (the authors' Chainer
//! `GradientClipping(10)`; our loss is the query mean where theirs was the sum).
//!
//! # Differences from the authors' code
//! - Chunks are consecutive runs of the support set (sorted by class), at most
//!   `task_chunks` of them; the authors cut `N` examples into pieces of `N / 5`.
//! - The per-example gradients of `b` come from one batched pass with one copy of the weights
//!   per example (grouped convolutions), not from one backward pass per example; they are
//!   equal (tested).
//!
//! The embedding-based variant that only learns class vectors is [`crate::metanet_eb`].

use burn::module::{AutodiffModule, Module};
use burn::optim::GradientsParams;
use burn::tensor::activation::{relu, softmax};
use burn::tensor::{Int, Tensor, backend::AutodiffBackend, backend::Backend};
use meta_backbones::{Linear, MetaNetCnn, MetaNetCnnConfig};
use meta_data::{Targets, Task};
use serde::{Deserialize, Serialize};

use crate::error::{AlgoError, Result};
use crate::learner::{MetaLearner, Predictor, StepStats};
use crate::matchingnet_fce::LstmCell;
use crate::ops;
use crate::support::{SupportRule, support_meta_gradients};

/// Hyper-parameters of Meta Networks (the networks' sizes are a [`MetaNetCnnConfig`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetaNetConfig {
    /// Hidden width of the meta-learners `m` (MLP) and `d` (LSTM). Default: 20 (authors).
    pub meta_hidden: usize,
    /// Chunks of the support set whose gradients `d` reads in turn. Default: 5 (authors).
    pub task_chunks: usize,
    /// Generate task-level fast weights for the key network (`false`: keys from `u`'s slow
    /// weights alone, an ablation). Default: true.
    pub task_fast_weights: bool,
    /// `k` of the gradient preprocessing. Default: 7 (authors).
    pub preprocess_k: f64,
    /// Scale of cosine similarities before the memory-attention softmax. Default: 1.0.
    pub attention_temperature: f64,
    /// Global-norm clipping of the meta-gradient. Default: 10 (authors).
    pub grad_clip: f64,
}

impl Default for MetaNetConfig {
    fn default() -> Self {
        Self {
            meta_hidden: 20,
            task_chunks: 5,
            task_fast_weights: true,
            preprocess_k: 7.0,
            attention_temperature: 1.0,
            grad_clip: 10.0,
        }
    }
}

impl MetaNetConfig {
    /// Checks the values.
    pub fn check(self) -> Result<Self> {
        if self.meta_hidden == 0 || self.task_chunks == 0 {
            return Err(AlgoError::InvalidConfig(
                "metanet.meta_hidden and metanet.task_chunks must be at least 1".into(),
            ));
        }
        for (name, v) in [
            ("preprocess_k", self.preprocess_k),
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

/// The authors' gradient preprocessing of a column of gradient coordinates: `[R, 1] → [R, 2]`.
pub fn log_and_sign<B: Backend>(g: Tensor<B, 2>, k: f64) -> Tensor<B, 2> {
    let log = (g.clone().abs().add_scalar(f64::from(f32::EPSILON)).log())
        .div_scalar(k)
        .clamp_min(-1.0);
    let sign = g.mul_scalar(k.exp()).clamp(-1.0, 1.0);
    Tensor::cat(vec![log, sign], 1)
}

/// The example-level meta-learner `m`: an MLP 2 → h → h → 1 over gradient coordinates.
#[derive(Module, Debug)]
pub struct GradientMlp<B: Backend> {
    /// First layer.
    pub l1: Linear<B>,
    /// Second layer.
    pub l2: Linear<B>,
    /// Read-out.
    pub out: Linear<B>,
}

impl<B: Backend> GradientMlp<B> {
    fn new(hidden: usize, device: &B::Device) -> Self {
        Self {
            l1: Linear::new(2, hidden, device),
            l2: Linear::new(hidden, hidden, device),
            out: Linear::new(hidden, 1, device),
        }
    }

    /// Preprocessed coordinates `[R, 2]` to fast weights `[R, 1]`.
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        self.out
            .forward(relu(self.l2.forward(relu(self.l1.forward(x)))))
    }
}

/// The task-level meta-learner `d`: an LSTM over a sequence of gradient coordinates, then a
/// linear read-out of its last output.
#[derive(Module, Debug)]
pub struct GradientLstm<B: Backend> {
    /// The LSTM cell (input 2).
    pub cell: LstmCell<B>,
    /// Read-out.
    pub out: Linear<B>,
}

impl<B: Backend> GradientLstm<B> {
    fn new(hidden: usize, device: &B::Device) -> Self {
        Self {
            cell: LstmCell::new(2, hidden, hidden, device),
            out: Linear::new(hidden, 1, device),
        }
    }

    /// Preprocessed coordinates `[R, 2]`, one tensor per step, to fast weights `[R, 1]`.
    pub fn forward(&self, steps: Vec<Tensor<B, 2>>) -> Tensor<B, 2> {
        let rows = steps[0].dims()[0];
        let hidden = self.out.weight.dims()[0];
        let (device, dtype) = (steps[0].device(), steps[0].dtype());
        let zeros = || Tensor::zeros([rows, hidden], (&device, dtype));
        let (mut h, mut c) = (zeros(), zeros());
        for x in steps {
            (h, c) = self.cell.step(x, h, c);
        }
        self.out.forward(h)
    }
}

/// Meta-parameters of Meta Networks: base learner, key network, and the meta-learners.
#[derive(Module, Debug)]
pub struct MetaNetModel<B: Backend> {
    /// Base learner `b` (slow weights `W`).
    pub base: MetaNetCnn<B>,
    /// Representation (key) function `u` (slow weights `Q`).
    pub key: MetaNetCnn<B>,
    /// `m` for the conv layers of `b`.
    pub example_conv: GradientMlp<B>,
    /// `m` for the fc layers of `b`.
    pub example_fc: GradientMlp<B>,
    /// `d` for the conv layers of `u`.
    pub task_conv: GradientLstm<B>,
    /// `d` for the fc layers of `u`.
    pub task_fc: GradientLstm<B>,
}

/// What a support set leaves for its queries: `u`'s task-level fast weights, the support keys
/// and the memory of example-level fast weights (`[Ns, numel]` per layer of `b`).
#[derive(Debug, Clone)]
pub struct TaskMemory<B: Backend> {
    key_fast: Option<Vec<Tensor<B, 2>>>,
    support_keys: Tensor<B, 2>,
    memory: Vec<Tensor<B, 2>>,
}

/// Cosine similarities `[Nq, Ns]` of query and support keys (the authors' form, `ε = 1e-6`
/// under the square root).
fn cosine<B: Backend>(q: Tensor<B, 2>, s: Tensor<B, 2>) -> Tensor<B, 2> {
    let dots = q.clone().matmul(s.clone().transpose());
    let qn = q.powi_scalar(2).sum_dim(1);
    let sn = s.powi_scalar(2).sum_dim(1).transpose();
    dots / (qn * sn).add_scalar(1e-6).sqrt()
}

/// Means of `g`'s rows over at most `chunks` consecutive, nearly equal runs: `[1, numel]` each.
pub(crate) fn chunk_means<B: Backend>(g: Tensor<B, 2>, chunks: usize) -> Vec<Tensor<B, 2>> {
    let n = g.dims()[0];
    let t = chunks.min(n);
    (0..t)
        .map(|i| {
            let (a, b) = (i * n / t, (i + 1) * n / t);
            g.clone().narrow(0, a, b - a).mean_dim(0)
        })
        .collect()
}

/// Per-example gradients of `net`'s cross-entropy (first `ways` logits) with respect to every
/// layer's weights, `[N, numel]` per layer, as constants on the inner backend.
pub fn example_gradients<B: AutodiffBackend>(
    net: &MetaNetCnn<B>,
    x: Tensor<B::InnerBackend, 4>,
    y: Tensor<B::InnerBackend, 1, Int>,
    ways: usize,
) -> Vec<Tensor<B::InnerBackend, 2>> {
    let n = x.dims()[0];
    let copies: Vec<Tensor<B, 2>> = net
        .weights()
        .into_iter()
        .map(|w| Tensor::from_inner(w.inner().repeat_dim(0, n)).require_grad())
        .collect();
    let logits = net.run(Tensor::from_inner(x), &copies, None).logits;
    let loss = ops::cross_entropy(logits.narrow(1, 0, ways), Tensor::from_inner(y));
    let grads = loss.mul_scalar(n as f64).backward();
    copies
        .iter()
        .map(|w| w.grad(&grads).expect("every layer is on the tape"))
        .collect()
}

impl<B: Backend> MetaNetModel<B> {
    /// Fast weights and memory from the support set and the gradients of `u` and `b` on it
    /// (from [`example_gradients`]).
    pub fn memorize(
        &self,
        config: &MetaNetConfig,
        support_x: Tensor<B, 4>,
        key_grads: Vec<Tensor<B, 2>>,
        base_grads: Vec<Tensor<B, 2>>,
    ) -> TaskMemory<B> {
        let convs = self.base.conv_layers();
        let k = config.preprocess_k;
        let key_fast = config.task_fast_weights.then(|| {
            key_grads
                .into_iter()
                .enumerate()
                .map(|(l, g)| {
                    let numel = g.dims()[1];
                    let d = if l < convs {
                        &self.task_conv
                    } else {
                        &self.task_fc
                    };
                    let steps = chunk_means(g, config.task_chunks)
                        .into_iter()
                        .map(|row| log_and_sign(row.reshape([numel, 1]), k))
                        .collect();
                    d.forward(steps).reshape([1, numel])
                })
                .collect::<Vec<_>>()
        });
        let support_keys = self
            .key
            .run(support_x, &self.key.weights(), key_fast.as_deref())
            .key;
        let memory = base_grads
            .into_iter()
            .enumerate()
            .map(|(l, g)| {
                let [n, numel] = g.dims();
                let m = if l < convs {
                    &self.example_conv
                } else {
                    &self.example_fc
                };
                m.forward(log_and_sign(g.reshape([n * numel, 1]), k))
                    .reshape([n, numel])
            })
            .collect();
        TaskMemory {
            key_fast,
            support_keys,
            memory,
        }
    }

    /// Query logits `[Nq, ways]` read from `memory`.
    pub fn read(
        &self,
        config: &MetaNetConfig,
        memory: &TaskMemory<B>,
        query_x: Tensor<B, 4>,
        ways: usize,
    ) -> Tensor<B, 2> {
        let keys = self
            .key
            .run(
                query_x.clone(),
                &self.key.weights(),
                memory.key_fast.as_deref(),
            )
            .key;
        let scores = cosine(keys, memory.support_keys.clone());
        let attention = softmax(scores.mul_scalar(config.attention_temperature), 1);
        let fast: Vec<Tensor<B, 2>> = (memory.memory.iter())
            .map(|m| attention.clone().matmul(m.clone()))
            .collect();
        let out = self.base.run(query_x, &self.base.weights(), Some(&fast));
        out.logits.narrow(1, 0, ways)
    }
}

/// Training: the support gradients are taken on the autodiff backend, then everything else is
/// one differentiable forward pass.
impl<B: AutodiffBackend> SupportRule<B, MetaNetModel<B>> for MetaNetConfig {
    fn logits(
        &self,
        model: &MetaNetModel<B>,
        support_x: Tensor<B, 4>,
        support_y: Tensor<B, 1, Int>,
        query_x: Tensor<B, 4>,
        ways: usize,
    ) -> Tensor<B, 2> {
        let (sx, sy) = (support_x.clone().inner(), support_y.inner());
        let lift = |gs: Vec<Tensor<B::InnerBackend, 2>>| -> Vec<Tensor<B, 2>> {
            gs.into_iter().map(Tensor::from_inner).collect()
        };
        let key_grads = lift(example_gradients(&model.key, sx.clone(), sy.clone(), ways));
        let base_grads = lift(example_gradients(&model.base, sx, sy, ways));
        let memory = model.memorize(self, support_x, key_grads, base_grads);
        model.read(self, &memory, query_x, ways)
    }
}

/// A Meta Network that has read a support set: its memory and a `valid()` copy of the model,
/// on the inner backend.
#[derive(Debug, Clone)]
pub struct MetaNetPredictor<B: AutodiffBackend> {
    config: MetaNetConfig,
    model: MetaNetModel<B::InnerBackend>,
    memory: TaskMemory<B::InnerBackend>,
    ways: usize,
}

impl<B: AutodiffBackend> Predictor<B> for MetaNetPredictor<B> {
    fn predict(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        Tensor::from_inner(
            self.model
                .read(&self.config, &self.memory, x.inner(), self.ways),
        )
    }
}

/// Meta Networks as published, with networks of `net`'s architecture.
#[derive(Debug, Clone)]
pub struct MetaNet {
    net: MetaNetCnnConfig,
    config: MetaNetConfig,
}

impl MetaNet {
    /// Meta Networks whose base learner and key network are both `net`; fails on an invalid
    /// configuration.
    pub fn new(net: MetaNetCnnConfig, config: MetaNetConfig) -> Result<Self> {
        net.validate()
            .map_err(|e| AlgoError::InvalidConfig(format!("metanet-cnn: {e}")))?;
        Ok(Self {
            net,
            config: config.check()?,
        })
    }
}

impl<B: AutodiffBackend> MetaLearner<B> for MetaNet {
    type Model = MetaNetModel<B>;
    type Adapted = MetaNetPredictor<B>;

    fn name(&self) -> &'static str {
        "metanet"
    }

    fn init_model(&self, device: &B::Device) -> Self::Model {
        let hidden = self.config.meta_hidden;
        let model = MetaNetModel {
            base: self.net.init(device),
            key: self.net.init(device),
            example_conv: GradientMlp::new(hidden, device),
            example_fc: GradientMlp::new(hidden, device),
            task_conv: GradientLstm::new(hidden, device),
            task_fc: GradientLstm::new(hidden, device),
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
        let (sx, sy) = (support_x.inner(), support_y.inner());
        let key_grads = example_gradients(&model.key, sx.clone(), sy.clone(), ways);
        let base_grads = example_gradients(&model.base, sx.clone(), sy, ways);
        let inner = model.valid();
        let memory = inner.memorize(&self.config, sx, key_grads, base_grads);
        MetaNetPredictor {
            config: self.config,
            model: inner,
            memory,
            ways,
        }
    }

    fn preflight(&self, _model: &Self::Model, task: &Task<B>) -> Result<()> {
        let classes = self.net.num_classes;
        if task.ways > classes {
            return Err(AlgoError::InvalidConfig(format!(
                "metanet: a {}-way task needs {} logits, the networks have {classes} \
                 (metanet-cnn num_classes follows --ways)",
                task.ways, task.ways
            )));
        }
        let [_, c, h, w] = task.support_x.dims();
        let (ch, size) = (self.net.in_channels, self.net.image_size);
        if c != ch || h != size || w != size {
            return Err(AlgoError::InvalidConfig(format!(
                "metanet: the networks take {ch}×{size}×{size} images, the task has {c}×{h}×{w}"
            )));
        }
        Ok(())
    }

    fn config_json(&self) -> serde_json::Value {
        serde_json::to_value(self.config).unwrap_or(serde_json::Value::Null)
    }

    fn backbone_name(&self) -> String {
        format!(
            "metanet-cnn {}",
            serde_json::to_string(&self.net).unwrap_or_default()
        )
    }

    fn recommended_grad_clip(&self) -> Option<f64> {
        Some(self.config.grad_clip)
    }
}
