//! Batch normalisation written from means and variances (double-backward safe), with the
//! three statistics modes used in meta-learning, and running statistics that fast copies
//! never share with the meta-model.

use burn::module::{Module, Param, RunningState};
use burn::nn::Initializer;
use burn::tensor::{Tensor, backend::Backend};
use serde::{Deserialize, Serialize};

use crate::channel;

/// Which statistics batch-norm normalises with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BnMode {
    /// Always the current batch's statistics ("transductive"; MAML's convention). No running
    /// statistics are kept.
    #[default]
    Batch,
    /// Batch statistics while the backend records gradients (training), running statistics
    /// otherwise (a `valid()` model). The meta-model's own forward passes update them.
    Running,
    /// MAML++ (Antoniou et al. 2019, "BNRS + BNWB"): separate running statistics *and*
    /// separate affine parameters for each inner step `0..=steps`; step `k` of an inner loop
    /// and the model adapted by `k` steps use slot `k` (clamped to `steps`). Normalisation
    /// follows [`BnMode::Running`].
    PerStep {
        /// Number of inner steps; `steps + 1` slots are kept.
        steps: usize,
    },
}

impl BnMode {
    /// Number of statistics/affine slots.
    pub fn slots(self) -> usize {
        match self {
            BnMode::PerStep { steps } => steps + 1,
            _ => 1,
        }
    }
}

/// Batch-norm hyper-parameters shared by a backbone's layers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BnConfig {
    /// Statistics mode (default [`BnMode::Batch`]).
    pub mode: BnMode,
    /// Running-statistics momentum (default 0.1, PyTorch's).
    pub momentum: f64,
    /// Variance epsilon (default 1e-5, PyTorch's).
    pub eps: f64,
}

impl Default for BnConfig {
    fn default() -> Self {
        Self {
            mode: BnMode::Batch,
            momentum: 0.1,
            eps: 1e-5,
        }
    }
}

impl BnConfig {
    /// A layer over `channels` channels (γ = 1, β = 0, running mean 0 and variance 1).
    pub fn init<B: Backend>(&self, channels: usize, device: &B::Device) -> BatchNorm<B> {
        let slots = self.mode.slots();
        BatchNorm {
            gamma: Initializer::Ones.init([slots, channels], device),
            beta: Initializer::Zeros.init([slots, channels], device),
            running_mean: RunningState::new(Tensor::zeros([slots, channels], device)),
            running_var: RunningState::new(Tensor::ones([slots, channels], device)),
            mode: self.mode,
            momentum: self.momentum,
            eps: self.eps,
            step: 0,
            track: true,
        }
    }
}

/// Batch normalisation over the channel dimension, for `[N, C, L]` views of activations.
///
/// γ and β have shape `[slots, C]` (one slot unless [`BnMode::PerStep`]).
#[derive(Module, Debug)]
pub struct BatchNorm<B: Backend> {
    /// Scale γ, `[slots, C]`.
    pub gamma: Param<Tensor<B, 2>>,
    /// Shift β, `[slots, C]`.
    pub beta: Param<Tensor<B, 2>>,
    /// Running means, `[slots, C]`.
    pub running_mean: RunningState<Tensor<B, 2>>,
    /// Running (unbiased) variances, `[slots, C]`.
    pub running_var: RunningState<Tensor<B, 2>>,
    #[module(skip)]
    mode: BnMode,
    #[module(skip)]
    momentum: f64,
    #[module(skip)]
    eps: f64,
    #[module(skip)]
    step: usize,
    #[module(skip)]
    track: bool,
}

impl<B: Backend> BatchNorm<B> {
    /// The statistics mode.
    pub fn mode(&self) -> BnMode {
        self.mode
    }

    /// A copy for inner step `step` whose running statistics are fresh copies (not shared
    /// with `self`) and are never updated.
    pub fn fast_copy(&self, step: usize) -> Self {
        let mut copy = self.clone();
        copy.running_mean = RunningState::from_record(self.running_mean.clone().into_record());
        copy.running_var = RunningState::from_record(self.running_var.clone().into_record());
        copy.step = step;
        copy.track = false;
        copy
    }

    fn slot(&self) -> usize {
        self.step.min(self.mode.slots() - 1)
    }

    fn row(t: Tensor<B, 2>, slot: usize) -> Tensor<B, 2> {
        let [slots, c] = t.dims();
        if slots == 1 {
            t
        } else {
            t.slice([slot..slot + 1, 0..c])
        }
    }

    /// Normalises `[N, C, L]` over N and L, per channel.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [n, c, l] = x.dims();
        let slot = self.slot();
        let training = B::ad_enabled(&x.device());
        let use_running = self.mode != BnMode::Batch && !training;
        let gamma = Self::row(self.gamma.val(), slot);
        let beta = Self::row(self.beta.val(), slot);
        let (mean, var) = if use_running {
            let mean = Self::row(self.running_mean.value_sync(), slot);
            let var = Self::row(self.running_var.value_sync(), slot);
            (mean.reshape([c]), var.reshape([c]))
        } else {
            // Var = E[x²] − E[x]²: one pass over x fewer than centring first; activations
            // are O(1), so cancellation is harmless.
            let count = (n * l) as f64;
            let mean = channel::sum(x.clone()).div_scalar(count);
            let mean_sq = channel::dot(x.clone(), x.clone()).div_scalar(count);
            let var = mean_sq - mean.clone() * mean.clone();
            if self.track && self.mode != BnMode::Batch && training {
                self.update_running(
                    mean.clone().reshape([1, c]),
                    var.clone().reshape([1, c]),
                    n * l,
                    slot,
                );
            }
            (mean, var)
        };
        // y = x·s + (β − μ·s) with s = γ / √(σ² + ε): one per-channel affine pass over x.
        let scale = gamma.reshape([c]) / var.add_scalar(self.eps).sqrt();
        let shift = beta.reshape([c]) - mean * scale.clone();
        channel::affine(x, scale, shift)
    }

    /// Normalises `[N, C]` (a 1-d batch-norm).
    pub fn forward2(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let [n, c] = x.dims();
        self.forward(x.reshape([n, c, 1])).reshape([n, c])
    }

    /// Normalises `[N, C, H, W]` through its `[N, C, H·W]` view.
    pub fn forward4(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [n, c, h, w] = x.dims();
        self.forward(x.reshape([n, c, h * w])).reshape([n, c, h, w])
    }

    fn update_running(&self, mean: Tensor<B, 2>, var: Tensor<B, 2>, count: usize, slot: usize) {
        let m = self.momentum;
        let unbias = if count > 1 {
            count as f64 / (count - 1) as f64
        } else {
            1.0
        };
        let var = var.detach().mul_scalar(unbias);
        let mean = mean.detach();
        for (state, batch) in [(&self.running_mean, mean), (&self.running_var, var)] {
            let old = state.value_sync();
            let [slots, c] = old.dims();
            let row = Self::row(old.clone(), slot).mul_scalar(1.0 - m) + batch.mul_scalar(m);
            let new = if slots == 1 {
                row
            } else {
                old.slice_assign([slot..slot + 1, 0..c], row)
            };
            state.update(new.detach());
        }
    }
}
