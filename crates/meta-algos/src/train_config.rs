//! What a meta-training run is configured with: [`TrainerConfig`] and its parts — the outer
//! optimizer ([`OuterOptimizer`], [`AdamParams`]), the learning-rate schedule ([`LrSchedule`])
//! and gradient clipping ([`GradClip`]).

use serde::{Deserialize, Serialize};

use crate::error::{AlgoError, Result};

/// The outer (meta-) optimizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OuterOptimizer {
    /// Adam (β₁ = 0.9, β₂ = 0.999, ε = 1e-8, as in PyTorch/TensorFlow). Default.
    #[default]
    Adam,
    /// Plain SGD without momentum; with Reptile's pseudo-gradient `Φ − W` a step of rate ε is
    /// `Φ + ε(W − Φ)`.
    Sgd,
}

impl OuterOptimizer {
    pub(crate) fn name(self) -> &'static str {
        match self {
            OuterOptimizer::Adam => "adam",
            OuterOptimizer::Sgd => "sgd",
        }
    }
}

/// Learning-rate schedule over `iterations`, a pure function of the iteration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum LrSchedule {
    /// `lr` throughout. Default.
    #[default]
    Constant,
    /// Cosine annealing from `lr` at iteration 0 to `floor` at the last iteration.
    Cosine {
        /// Final learning rate.
        floor: f64,
    },
    /// Linear annealing from `lr` to `final_lr` (Reptile anneals ε to 0).
    Linear {
        /// Final learning rate.
        final_lr: f64,
    },
    /// Step decay: `lr · factor^⌊iteration / every⌋` (Prototypical Networks halve the rate every
    /// 2,000 episodes: `every = 2000`, `factor = 0.5`).
    Step {
        /// Iterations between two decays, ≥ 1.
        every: u64,
        /// Multiplier applied at each decay, in (0, 1].
        factor: f64,
    },
}

/// Adam's moment decay rates and denominator constant (used when the outer optimizer is Adam).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdamParams {
    /// Decay rate of the first-moment estimate, in `[0, 1)`. Default: 0.9.
    pub beta1: f32,
    /// Decay rate of the second-moment estimate, in `[0, 1)`. Default: 0.999.
    pub beta2: f32,
    /// Constant added to the denominator, > 0. Default: 1e-8 (PyTorch/TensorFlow).
    pub epsilon: f32,
}

impl Default for AdamParams {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
        }
    }
}

/// Global-norm gradient clipping.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum GradClip {
    /// The algorithm's [`recommended_grad_clip`](crate::MetaLearner::recommended_grad_clip) (Meta
    /// Networks: 1.0, others: none). Default.
    #[default]
    Auto,
    /// No clipping.
    Off,
    /// Rescale the whole gradient so that its global L2 norm is at most this value.
    Norm(f64),
}

/// Hyper-parameters of the meta-training loop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainerConfig {
    /// Number of meta-iterations (outer steps). Default: 1000.
    pub iterations: u64,
    /// Tasks per meta-iteration. Default: 4.
    pub meta_batch: usize,
    /// Outer optimizer. Default: Adam.
    pub optimizer: OuterOptimizer,
    /// Adam's β₁, β₂ and ε (used only when `optimizer` is Adam). Default: 0.9, 0.999, 1e-8.
    pub adam: AdamParams,
    /// Outer learning rate (Reptile: ε). Default: 1e-3.
    pub lr: f64,
    /// Learning-rate schedule. Default: constant.
    pub schedule: LrSchedule,
    /// Global-norm gradient clipping. Default: `auto` (the algorithm's recommendation).
    pub grad_clip: GradClip,
    /// Validate every this many iterations (and after the last); 0 disables. Default: 500.
    pub val_every: u64,
    /// Number of validation episodes (episodes `0..n` of the validation source, the same every
    /// time). Default: 100.
    pub val_episodes: usize,
    /// Seed of model initialisation and of the per-iteration backend RNG. Default: 0.
    pub seed: u64,
    /// Background threads building episodes ahead (0: build on the training thread). Default: 1.
    pub prefetch_threads: usize,
    /// Write `latest.ckpt` every this many iterations when a checkpoint directory is given
    /// (0: only at the end). `best.ckpt` is written on every new best validation. Default: 500.
    pub checkpoint_every: u64,
}

impl Default for TrainerConfig {
    fn default() -> Self {
        Self {
            iterations: 1000,
            meta_batch: 4,
            optimizer: OuterOptimizer::Adam,
            adam: AdamParams::default(),
            lr: 1e-3,
            schedule: LrSchedule::Constant,
            grad_clip: GradClip::Auto,
            val_every: 500,
            val_episodes: 100,
            seed: 0,
            prefetch_threads: 1,
            checkpoint_every: 500,
        }
    }
}

impl TrainerConfig {
    /// Checks ranges; everything downstream relies on it.
    pub fn check(&self) -> Result<()> {
        let bad = |m: String| Err(AlgoError::InvalidConfig(m));
        if self.meta_batch == 0 {
            return bad("trainer.meta_batch must be at least 1".into());
        }
        if !(self.lr.is_finite() && self.lr >= 0.0) {
            return bad(format!(
                "trainer.lr must be finite and >= 0, got {}",
                self.lr
            ));
        }
        match self.schedule {
            LrSchedule::Cosine { floor: v } | LrSchedule::Linear { final_lr: v }
                if !(v.is_finite() && v >= 0.0) =>
            {
                return bad(format!(
                    "trainer.schedule final learning rate must be finite and >= 0, got {v}"
                ));
            }
            LrSchedule::Step { every, factor }
                if every == 0 || !(factor > 0.0 && factor <= 1.0) =>
            {
                return bad(format!(
                    "trainer.schedule step needs every >= 1 and factor in (0, 1], got every = \
                     {every}, factor = {factor}"
                ));
            }
            _ => {}
        }
        if let GradClip::Norm(c) = self.grad_clip
            && !(c.is_finite() && c > 0.0)
        {
            return bad(format!(
                "trainer.grad_clip norm must be finite and > 0, got {c}"
            ));
        }
        let AdamParams {
            beta1,
            beta2,
            epsilon,
        } = self.adam;
        for (name, beta) in [("beta1", beta1), ("beta2", beta2)] {
            if !(0.0..1.0).contains(&beta) {
                return bad(format!("trainer.adam.{name} must be in [0, 1), got {beta}"));
            }
        }
        if !(epsilon.is_finite() && epsilon > 0.0) {
            return bad(format!(
                "trainer.adam.epsilon must be finite and > 0, got {epsilon}"
            ));
        }
        if self.val_every > 0 && self.val_episodes == 0 {
            return bad("trainer.val_episodes must be at least 1 when val_every > 0".into());
        }
        Ok(())
    }

    /// Learning rate of (zero-based) iteration `it`.
    pub fn lr_at(&self, it: u64) -> f64 {
        let last = self.iterations.saturating_sub(1).max(1) as f64;
        let t = (it as f64 / last).clamp(0.0, 1.0);
        match self.schedule {
            LrSchedule::Constant => self.lr,
            LrSchedule::Cosine { floor } => {
                floor + 0.5 * (self.lr - floor) * (1.0 + (std::f64::consts::PI * t).cos())
            }
            LrSchedule::Linear { final_lr } => self.lr + (final_lr - self.lr) * t,
            LrSchedule::Step { every, factor } => {
                let decays = i32::try_from(it / every.max(1)).unwrap_or(i32::MAX);
                self.lr * factor.powi(decays)
            }
        }
    }
}
