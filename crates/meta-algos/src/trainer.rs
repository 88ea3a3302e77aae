//! The meta-training loop, generic over any [`MetaLearner`].
//!
//! Iteration `i` (zero-based) trains on episodes `i·B .. (i+1)·B` of the training source
//! (`B` = meta-batch), seeds the backend with a pure function of `(seed, i)`, asks the learner for
//! meta-gradients, refuses a non-finite loss or gradient (typed error naming the iteration, no
//! update), clips the gradient by its **global** norm over all parameters, and applies one outer
//! optimizer step (Adam or SGD) at the scheduled learning rate. Every `val_every` iterations the
//! model is evaluated on the same validation episodes (mean ± 95% CI) and the best model is kept.
//! Everything that determines iteration `i` is a function of the checkpointed state, so a run
//! resumed from a checkpoint continues exactly as the uninterrupted run would have.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use burn::module::{AutodiffModule, Module, ModuleVisitor, Param};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{Adam, AdamConfig, GradientsParams, Optimizer, Sgd, SgdConfig};
use burn::tensor::{ElementConversion as _, Tensor, backend::AutodiffBackend};
use meta_data::{Episode, EpisodeSource, Prefetcher, Task};
use serde::{Deserialize, Serialize};

use crate::checkpoint::{
    self, BestValidation, CheckpointHeader, read_checkpoint_file, record_from_bytes,
    record_to_bytes, write_checkpoint_file,
};
use crate::error::{AlgoError, Result};
use crate::eval::{episode_accuracy, mean_ci95};
use crate::learner::MetaLearner;

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
    fn name(self) -> &'static str {
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
    /// The algorithm's [`recommended_grad_clip`](MetaLearner::recommended_grad_clip) (Meta
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
        }
    }
}

/// Validation result of one evaluation point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Validation {
    /// Mean validation accuracy.
    pub mean: f64,
    /// 95% CI half-width.
    pub ci95: f64,
    /// Whether this is the best validation so far.
    pub is_best: bool,
}

/// What one meta-iteration did; handed to the metrics callback.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IterationMetrics {
    /// Zero-based index of the iteration just completed.
    pub iteration: u64,
    /// Mean query loss of the meta-batch.
    pub loss: f64,
    /// Mean query accuracy of the meta-batch.
    pub accuracy: f64,
    /// Learning rate used.
    pub lr: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Whether the gradient was clipped.
    pub clipped: bool,
    /// Seconds the iteration took (excluding validation).
    pub seconds: f64,
    /// Validation, when this iteration was a validation point.
    pub validation: Option<Validation>,
}

/// Where the time of one [`Trainer::step_tasks_timed`] went, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct StepTiming {
    /// The learner's meta-gradients of the meta-batch (inner loops, query losses, backward).
    pub meta_grad_s: f64,
    /// Finiteness checks, gradient norm and clipping, and the outer optimizer step.
    pub outer_s: f64,
}

/// What a finished [`Trainer::run`] reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainSummary {
    /// Completed iterations.
    pub iterations: u64,
    /// Loss of the last iteration.
    pub final_loss: f64,
    /// Best validation, if any validation ran.
    pub best_validation: Option<BestValidation>,
    /// Wall time of this call, seconds.
    pub seconds: f64,
}

/// The outer optimizer with its state.
#[derive(Clone)]
enum OuterOptim<B: AutodiffBackend, M: AutodiffModule<B>> {
    Adam(OptimizerAdaptor<Adam, M, B>),
    Sgd(OptimizerAdaptor<Sgd<B::InnerBackend>, M, B>),
}

impl<B: AutodiffBackend, M: AutodiffModule<B>> OuterOptim<B, M> {
    fn new(kind: OuterOptimizer, adam: AdamParams) -> Self {
        match kind {
            OuterOptimizer::Adam => Self::Adam(
                AdamConfig::new()
                    .with_beta_1(adam.beta1)
                    .with_beta_2(adam.beta2)
                    .with_epsilon(adam.epsilon)
                    .init(),
            ),
            OuterOptimizer::Sgd => Self::Sgd(SgdConfig::new().init()),
        }
    }

    fn step(&mut self, lr: f64, model: M, grads: GradientsParams) -> M {
        match self {
            Self::Adam(o) => o.step(lr, model, grads),
            Self::Sgd(o) => o.step(lr, model, grads),
        }
    }

    fn to_bytes(&self) -> Result<Vec<u8>> {
        match self {
            Self::Adam(o) => record_to_bytes::<B, _>(o.to_record()),
            Self::Sgd(o) => record_to_bytes::<B, _>(o.to_record()),
        }
    }

    fn load_bytes(self, bytes: Vec<u8>, device: &B::Device, path: &Path) -> Result<Self> {
        Ok(match self {
            Self::Adam(o) => {
                Self::Adam(o.load_record(record_from_bytes::<B, _>(bytes, device, path)?))
            }
            Self::Sgd(o) => {
                Self::Sgd(o.load_record(record_from_bytes::<B, _>(bytes, device, path)?))
            }
        })
    }
}

/// Global L2 norm over every gradient of `model`'s parameters in `grads` (one device sync).
pub fn global_grad_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    model: &M,
    grads: &GradientsParams,
) -> f64 {
    struct Norm<'a, B: AutodiffBackend> {
        grads: &'a GradientsParams,
        sum: Option<Tensor<B::InnerBackend, 1>>,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for Norm<'_, B> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if let Some(g) = self.grads.get::<B::InnerBackend, D>(param.id) {
                let sq = g.powi_scalar(2).sum();
                self.sum = Some(match self.sum.take() {
                    Some(s) => s + sq,
                    None => sq,
                });
            }
        }
    }
    let mut v = Norm::<B> { grads, sum: None };
    model.visit(&mut v);
    match v.sum {
        Some(s) => {
            let sq: f64 = s.into_scalar().elem();
            sq.sqrt()
        }
        None => 0.0,
    }
}

/// Multiplies every gradient of `model`'s parameters in `grads` by `factor`.
pub fn scale_grads<B: AutodiffBackend, M: AutodiffModule<B>>(
    model: &M,
    grads: &mut GradientsParams,
    factor: f64,
) {
    struct Scale<'a> {
        grads: &'a mut GradientsParams,
        factor: f64,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for Scale<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if let Some(g) = self.grads.remove::<B::InnerBackend, D>(param.id) {
                self.grads.register(param.id, g.mul_scalar(self.factor));
            }
        }
    }
    model.visit(&mut Scale { grads, factor });
}

/// Clips `grads` to global norm `max_norm`; returns the norm before clipping and whether it
/// was clipped.
pub fn clip_grad_global_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    model: &M,
    grads: &mut GradientsParams,
    max_norm: f64,
) -> (f64, bool) {
    let norm = global_grad_norm::<B, M>(model, grads);
    if norm.is_finite() && norm > max_norm {
        scale_grads::<B, M>(model, grads, max_norm / (norm + 1e-12));
        (norm, true)
    } else {
        (norm, false)
    }
}

/// Per-iteration backend seed: a SplitMix64 hash of `(seed, iteration)`.
fn iteration_seed(seed: u64, iteration: u64) -> u64 {
    let mut z = seed
        ^ iteration
            .wrapping_add(1)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Meta-trains `L` on episodes; owns the meta-parameters and the outer optimizer.
pub struct Trainer<B: AutodiffBackend, L: MetaLearner<B>> {
    learner: L,
    config: TrainerConfig,
    device: B::Device,
    model: L::Model,
    optim: OuterOptim<B, L::Model>,
    iteration: u64,
    best: Option<BestValidation>,
    best_model: Option<L::Model>,
    val_cache: Option<Vec<Episode>>,
}

impl<B: AutodiffBackend, L: MetaLearner<B>> Trainer<B, L> {
    /// A trainer with freshly initialised meta-parameters (the backend is seeded with
    /// `config.seed` first, so initialisation is reproducible).
    pub fn new(learner: L, config: TrainerConfig, device: &B::Device) -> Result<Self> {
        config.check()?;
        B::seed(device, config.seed);
        let model = learner.init_model(device);
        // Materialise lazily initialised parameters now, from the seeded RNG.
        let _ = checkpoint::param_shapes::<B, _>(&model);
        Ok(Self {
            optim: OuterOptim::new(config.optimizer, config.adam),
            learner,
            config,
            device: device.clone(),
            model,
            iteration: 0,
            best: None,
            best_model: None,
            val_cache: None,
        })
    }

    /// A trainer restored from a checkpoint written by [`Trainer::save_checkpoint`]: meta-parameters,
    /// optimizer state, iteration, sampler position and best validation. Refuses a checkpoint of
    /// another algorithm, backbone, outer optimizer, parameter shape or meta-batch size. `config`
    /// may differ otherwise (e.g. more iterations).
    pub fn resume(
        learner: L,
        config: TrainerConfig,
        device: &B::Device,
        path: &Path,
    ) -> Result<Self> {
        let mut trainer = Self::new(learner, config, device)?;
        trainer.load_checkpoint(path)?;
        Ok(trainer)
    }

    /// The header this trainer would write now.
    pub fn header(&self) -> CheckpointHeader {
        let mut h = CheckpointHeader::describe::<B, L>(&self.learner, &self.model);
        h.trainer_config = serde_json::to_value(&self.config).unwrap_or(serde_json::Value::Null);
        h.optimizer = self.config.optimizer.name().into();
        h.iteration = self.iteration;
        h.sampler_position = self.sampler_position();
        h.best_validation = self.best;
        h
    }

    /// Writes the complete training state to `path` atomically.
    pub fn save_checkpoint(&self, path: &Path) -> Result<()> {
        let model = record_to_bytes::<B, _>(self.model.clone().into_record())?;
        let optim = self.optim.to_bytes()?;
        write_checkpoint_file(path, &self.header(), &model, &optim)
    }

    /// Replaces the training state with the one in `path` (see [`Trainer::resume`]).
    pub fn load_checkpoint(&mut self, path: &Path) -> Result<()> {
        let file = read_checkpoint_file(path)?;
        let expected = self.header();
        expected.check_matches(&file.header, path, true)?;
        let position = file
            .header
            .iteration
            .checked_mul(self.config.meta_batch as u64);
        if position != Some(file.header.sampler_position) {
            return Err(AlgoError::CheckpointMismatch {
                path: path.to_path_buf(),
                expected: format!("meta-batch {}", self.config.meta_batch),
                found: format!(
                    "sampler position {} after {} iterations (another meta-batch size)",
                    file.header.sampler_position, file.header.iteration
                ),
            });
        }
        let record = record_from_bytes::<B, <L::Model as Module<B>>::Record>(
            file.model,
            &self.device,
            path,
        )?;
        let optim = self
            .optim
            .clone()
            .load_bytes(file.optimizer, &self.device, path)?;
        self.model = self.model.clone().load_record(record);
        self.optim = optim;
        self.iteration = file.header.iteration;
        self.best = file.header.best_validation;
        self.best_model = None;
        Ok(())
    }

    /// The current meta-parameters.
    pub fn model(&self) -> &L::Model {
        &self.model
    }

    /// The meta-parameters of the best validation seen by this trainer object (after a resume,
    /// only bests found since; the best checkpoint file holds earlier ones).
    pub fn best_model(&self) -> Option<&L::Model> {
        self.best_model.as_ref()
    }

    /// Best validation so far (survives checkpoints).
    pub fn best_validation(&self) -> Option<BestValidation> {
        self.best
    }

    /// The algorithm.
    pub fn learner(&self) -> &L {
        &self.learner
    }

    /// The configuration.
    pub fn config(&self) -> &TrainerConfig {
        &self.config
    }

    /// Completed iterations.
    pub fn iteration(&self) -> u64 {
        self.iteration
    }

    /// Index of the next training episode.
    pub fn sampler_position(&self) -> u64 {
        self.iteration.saturating_mul(self.config.meta_batch as u64)
    }

    /// The clipping norm in force.
    pub fn clip_norm(&self) -> Option<f64> {
        match self.config.grad_clip {
            GradClip::Auto => self.learner.recommended_grad_clip(),
            GradClip::Off => None,
            GradClip::Norm(c) => Some(c),
        }
    }

    /// One meta-iteration on `tasks` (no validation). On a non-finite loss or gradient returns a
    /// typed error naming the iteration and leaves the model, optimizer and iteration unchanged.
    pub fn step_tasks(&mut self, tasks: &[Task<B>]) -> Result<IterationMetrics> {
        self.step(tasks, false).map(|(metrics, _)| metrics)
    }

    /// [`Trainer::step_tasks`] with its two phases timed for benchmarks: the device is synced
    /// before the iteration and after each phase, so the clocks measure finished work on
    /// asynchronous (GPU) backends too. The extra syncs cost a little; training uses
    /// `step_tasks`.
    pub fn step_tasks_timed(
        &mut self,
        tasks: &[Task<B>],
    ) -> Result<(IterationMetrics, StepTiming)> {
        self.step(tasks, true)
    }

    fn step(&mut self, tasks: &[Task<B>], sync: bool) -> Result<(IterationMetrics, StepTiming)> {
        let barrier = |device: &B::Device| -> Result<()> {
            if sync {
                B::sync(device).map_err(|e| AlgoError::Backend(e.to_string()))?;
            }
            Ok(())
        };
        barrier(&self.device)?;
        let start = Instant::now();
        let it = self.iteration;
        B::seed(&self.device, iteration_seed(self.config.seed, it));
        let (mut grads, stats) = self.learner.meta_gradients(&self.model, tasks);
        barrier(&self.device)?;
        let meta_grad_s = start.elapsed().as_secs_f64();
        if !stats.loss.is_finite() {
            return Err(AlgoError::NonFiniteLoss {
                iteration: it,
                loss: stats.loss,
            });
        }
        let (grad_norm, clipped) = match self.clip_norm() {
            Some(c) => clip_grad_global_norm::<B, _>(&self.model, &mut grads, c),
            None => (global_grad_norm::<B, _>(&self.model, &grads), false),
        };
        if !grad_norm.is_finite() {
            return Err(AlgoError::NonFiniteGradient {
                iteration: it,
                norm: grad_norm,
            });
        }
        let lr = self.config.lr_at(it);
        self.model = self.optim.step(lr, self.model.clone(), grads);
        barrier(&self.device)?;
        let seconds = start.elapsed().as_secs_f64();
        self.iteration += 1;
        let metrics = IterationMetrics {
            iteration: it,
            loss: stats.loss,
            accuracy: stats.accuracy,
            lr,
            grad_norm,
            clipped,
            seconds,
            validation: None,
        };
        let timing = StepTiming {
            meta_grad_s,
            outer_s: seconds - meta_grad_s,
        };
        Ok((metrics, timing))
    }

    /// One meta-iteration on host episodes (converted to tensors on the trainer's device).
    pub fn step_episodes(&mut self, episodes: &[Episode]) -> Result<IterationMetrics> {
        let tasks: Vec<Task<B>> = episodes.iter().map(|e| e.to_task(&self.device)).collect();
        self.step_tasks(&tasks)
    }

    /// Evaluates the current model on the fixed validation episodes `0..val_episodes` of `val`
    /// (cached after the first call) and updates the best model.
    pub fn validate(&mut self, val: &dyn EpisodeSource) -> Validation {
        let n = self.config.val_episodes.max(1);
        let episodes = self
            .val_cache
            .get_or_insert_with(|| (0..n as u64).map(|i| val.episode(i)).collect());
        let acc: Vec<f64> = episodes
            .iter()
            .map(|e| episode_accuracy(&self.learner, &self.model, e, &self.device))
            .collect();
        let (mean, ci95) = mean_ci95(&acc);
        let is_best = self.best.is_none_or(|b| mean > b.mean);
        if is_best {
            self.best = Some(BestValidation {
                iteration: self.iteration,
                mean,
                ci95,
            });
            self.best_model = Some(self.model.clone());
        }
        Validation {
            mean,
            ci95,
            is_best,
        }
    }

    /// Trains from the current iteration up to `config.iterations`, validating on `val` every
    /// `val_every` iterations and after the last, calling `on_metrics` after every iteration and,
    /// when `checkpoint_dir` is given, writing `latest.ckpt` every `checkpoint_every` iterations
    /// and at the end, and `best.ckpt` on every new best validation.
    pub fn run(
        &mut self,
        train: Arc<dyn EpisodeSource>,
        val: Option<&dyn EpisodeSource>,
        checkpoint_dir: Option<&Path>,
        on_metrics: impl FnMut(&IterationMetrics),
    ) -> Result<TrainSummary> {
        let total = self.config.iterations;
        self.run_until(total, train, val, checkpoint_dir, on_metrics)
    }

    /// Like [`Trainer::run`] but stops after iteration `until` (at most `config.iterations`);
    /// the schedule still spans `config.iterations`, so a run split into several calls (or
    /// interrupted and resumed) equals one uninterrupted run.
    pub fn run_until(
        &mut self,
        until: u64,
        train: Arc<dyn EpisodeSource>,
        val: Option<&dyn EpisodeSource>,
        checkpoint_dir: Option<&Path>,
        mut on_metrics: impl FnMut(&IterationMetrics),
    ) -> Result<TrainSummary> {
        let start = Instant::now();
        let last = self.config.iterations;
        let total = until.min(last);
        let meta_batch = self.config.meta_batch;
        let mut prefetch = if self.config.prefetch_threads > 0 && self.iteration < total {
            Some(
                Prefetcher::new(
                    Arc::clone(&train),
                    self.sampler_position(),
                    meta_batch,
                    self.config.prefetch_threads,
                    2,
                )
                .map_err(|e| AlgoError::Episodes(e.to_string()))?,
            )
        } else {
            None
        };
        let mut final_loss = f64::NAN;
        while self.iteration < total {
            let episodes = match prefetch.as_mut() {
                Some(p) => p.next_batch().ok_or_else(|| {
                    AlgoError::Episodes("the episode prefetch thread stopped".into())
                })?,
                None => {
                    let first = self.sampler_position();
                    (first..first + meta_batch as u64)
                        .map(|i| train.episode(i))
                        .collect()
                }
            };
            let mut metrics = self.step_episodes(&episodes)?;
            final_loss = metrics.loss;
            let done = self.iteration;
            let ve = self.config.val_every;
            if let Some(val) = val
                && ve > 0
                && (done.is_multiple_of(ve) || done == last)
            {
                let v = self.validate(val);
                metrics.validation = Some(v);
                if v.is_best
                    && let Some(dir) = checkpoint_dir
                {
                    self.save_checkpoint(&dir.join("best.ckpt"))?;
                }
            }
            // Metrics first: a kill between the two leaves a checkpoint older than the last
            // logged line, and a resumed run drops and repeats that line; the other order would
            // lose the line for good.
            on_metrics(&metrics);
            if let Some(dir) = checkpoint_dir {
                let every = self.config.checkpoint_every;
                if (every > 0 && done.is_multiple_of(every)) || done == total || done == last {
                    self.save_checkpoint(&dir.join("latest.ckpt"))?;
                }
            }
        }
        Ok(TrainSummary {
            iterations: self.iteration,
            final_loss,
            best_validation: self.best,
            seconds: start.elapsed().as_secs_f64(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protonet::{ProtoNet, ProtoNetConfig};
    use crate::test_util::{Synthetic, TB, TinyNet, param_values, tiny_factory};
    use crate::{MetaNetEb, MetaNetEbConfig, StepStats};
    use burn::tensor::{Int, TensorData};
    use std::sync::atomic::{AtomicU64, Ordering};

    fn dev() -> burn::tensor::Device<TB> {
        Default::default()
    }

    fn quiet(iterations: u64) -> TrainerConfig {
        TrainerConfig {
            iterations,
            meta_batch: 2,
            val_every: 0,
            prefetch_threads: 0,
            lr: 1e-2,
            ..TrainerConfig::default()
        }
    }

    #[test]
    fn global_norm_clipping_scales_all_tensors_by_one_factor() {
        let device = dev();
        let net = TinyNet::<TB>::new(2, 1, 1, &device); // w1 [2,1], b1 [1], w2 [1,1]
        let mut grads = GradientsParams::new();
        let g = |v: Vec<f32>, s: [usize; 2]| {
            Tensor::<burn::backend::Flex, 2>::from_data(TensorData::new(v, s), &device)
        };
        grads.register(net.w1.id, g(vec![3.0, 0.0], [2, 1]));
        grads.register(
            net.b1.id,
            Tensor::<burn::backend::Flex, 1>::from_floats([0.0], &device),
        );
        grads.register(net.w2.id, g(vec![4.0], [1, 1]));
        assert!((global_grad_norm::<TB, _>(&net, &grads) - 5.0).abs() < 1e-6);
        let (norm, clipped) = clip_grad_global_norm::<TB, _>(&net, &mut grads, 1.0);
        assert!(clipped && (norm - 5.0).abs() < 1e-6);
        let w1: Vec<f32> = grads
            .get::<burn::backend::Flex, 2>(net.w1.id)
            .map(|t| t.into_data().to_vec().unwrap_or_default())
            .unwrap_or_default();
        let w2: Vec<f32> = grads
            .get::<burn::backend::Flex, 2>(net.w2.id)
            .map(|t| t.into_data().to_vec().unwrap_or_default())
            .unwrap_or_default();
        // Per-tensor clipping would give 1.0 and 1.0; global clipping keeps the 3:4 ratio.
        assert!((w1[0] - 0.6).abs() < 1e-5, "{w1:?}");
        assert!((w2[0] - 0.8).abs() < 1e-5, "{w2:?}");
        assert!((global_grad_norm::<TB, _>(&net, &grads) - 1.0).abs() < 1e-5);
        // Below the threshold nothing changes.
        let (_, clipped) = clip_grad_global_norm::<TB, _>(&net, &mut grads, 2.0);
        assert!(!clipped);
    }

    #[test]
    fn lr_schedules_hit_their_endpoints() {
        let mut c = TrainerConfig {
            iterations: 11,
            lr: 1.0,
            schedule: LrSchedule::Cosine { floor: 0.1 },
            ..TrainerConfig::default()
        };
        assert!((c.lr_at(0) - 1.0).abs() < 1e-12);
        assert!((c.lr_at(5) - 0.55).abs() < 1e-12);
        assert!((c.lr_at(10) - 0.1).abs() < 1e-12);
        c.schedule = LrSchedule::Linear { final_lr: 0.0 };
        assert!((c.lr_at(5) - 0.5).abs() < 1e-12);
        assert!(c.lr_at(10).abs() < 1e-12);
    }

    #[test]
    fn invalid_trainer_config_is_rejected_naming_the_field() {
        let c = TrainerConfig {
            meta_batch: 0,
            ..TrainerConfig::default()
        };
        let e = c.check().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("meta_batch"), "{e}");
        let c = TrainerConfig {
            grad_clip: GradClip::Norm(-1.0),
            ..TrainerConfig::default()
        };
        assert!(c.check().is_err());
    }

    #[test]
    fn adam_params_change_the_outer_step_and_are_checked() {
        let source = Synthetic { seed: 3 };
        let tasks: Vec<Task<TB>> = (0..2).map(|i| source.episode(i).to_task(&dev())).collect();
        let learner = || ProtoNet::new(tiny_factory(8), ProtoNetConfig::default());
        let trained = |adam: AdamParams| {
            let config = TrainerConfig { adam, ..quiet(4) };
            let mut trainer = Trainer::new(learner(), config, &dev()).expect("trainer");
            for _ in 0..2 {
                trainer.step_tasks(&tasks).expect("step");
            }
            param_values::<TB, _>(trainer.model())
        };
        let default = trained(AdamParams::default());
        assert_eq!(default, trained(AdamParams::default()));
        for changed in [
            AdamParams {
                beta1: 0.0,
                ..AdamParams::default()
            },
            AdamParams {
                beta2: 0.5,
                ..AdamParams::default()
            },
            AdamParams {
                epsilon: 1.0,
                ..AdamParams::default()
            },
        ] {
            assert_ne!(default, trained(changed), "{changed:?}");
        }
        for (bad, field) in [(1.0, "beta1"), (-0.1, "beta1")] {
            let c = TrainerConfig {
                adam: AdamParams {
                    beta1: bad,
                    ..AdamParams::default()
                },
                ..TrainerConfig::default()
            };
            let e = c.check().err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains(field), "{e}");
        }
        let c = TrainerConfig {
            adam: AdamParams {
                epsilon: 0.0,
                ..AdamParams::default()
            },
            ..TrainerConfig::default()
        };
        assert!(c.check().is_err());
    }

    #[test]
    fn timed_step_updates_like_step_tasks_and_splits_its_time() {
        let source = Synthetic { seed: 3 };
        let tasks: Vec<Task<TB>> = (0..2).map(|i| source.episode(i).to_task(&dev())).collect();
        let learner = || ProtoNet::new(tiny_factory(8), ProtoNetConfig::default());
        let mut plain = Trainer::new(learner(), quiet(4), &dev()).expect("trainer");
        let mut timed = Trainer::new(learner(), quiet(4), &dev()).expect("trainer");
        let m = plain.step_tasks(&tasks).expect("step");
        let (mt, t) = timed.step_tasks_timed(&tasks).expect("timed step");
        assert_eq!((m.loss, m.grad_norm), (mt.loss, mt.grad_norm));
        assert_eq!(
            param_values::<TB, _>(plain.model()),
            param_values::<TB, _>(timed.model())
        );
        assert!(t.meta_grad_s > 0.0 && t.outer_s >= 0.0, "{t:?}");
        assert!(
            (t.meta_grad_s + t.outer_s - mt.seconds).abs() < 1e-9,
            "{t:?} {mt:?}"
        );
    }

    /// ProtoNet that reports a NaN loss from its `nan_from`-th call on.
    struct Flaky {
        inner: ProtoNet<crate::FnFactory<TB, TinyNet<TB>>>,
        calls: AtomicU64,
        nan_from: u64,
    }

    impl MetaLearner<TB> for Flaky {
        type Model = TinyNet<TB>;
        type Adapted = crate::protonet::Prototypes<TB, TinyNet<TB>>;
        fn name(&self) -> &'static str {
            "flaky"
        }
        fn init_model(&self, device: &burn::tensor::Device<TB>) -> TinyNet<TB> {
            self.inner.init_model(device)
        }
        fn meta_gradients(
            &self,
            model: &TinyNet<TB>,
            tasks: &[Task<TB>],
        ) -> (GradientsParams, StepStats) {
            let (g, mut s) = self.inner.meta_gradients(model, tasks);
            if self.calls.fetch_add(1, Ordering::SeqCst) >= self.nan_from {
                s.loss = f64::NAN;
            }
            (g, s)
        }
        fn adapt(
            &self,
            m: &TinyNet<TB>,
            x: Tensor<TB, 4>,
            y: Tensor<TB, 1, Int>,
            ways: usize,
        ) -> Self::Adapted {
            self.inner.adapt(m, x, y, ways)
        }
    }

    #[test]
    fn nan_loss_stops_with_typed_error_naming_iteration_and_leaves_model_unchanged() {
        let learner = Flaky {
            inner: ProtoNet::new(tiny_factory(8), ProtoNetConfig::default()),
            calls: AtomicU64::new(0),
            nan_from: 3,
        };
        let mut trainer = Trainer::new(learner, quiet(10), &dev()).expect("trainer");
        let source: Arc<dyn EpisodeSource> = Arc::new(Synthetic { seed: 1 });
        let mut before = Vec::new();
        let mut seen = 0;
        let err = trainer
            .run(Arc::clone(&source), None, None, |_| seen += 1)
            .err();
        // Model at the moment of failure must equal the model after iteration 2.
        before.push(param_values::<TB, _>(trainer.model()));
        match err {
            Some(AlgoError::NonFiniteLoss { iteration, .. }) => assert_eq!(iteration, 3),
            other => panic!("expected NonFiniteLoss, got {other:?}"),
        }
        assert_eq!(seen, 3);
        assert_eq!(trainer.iteration(), 3);
        let msg = AlgoError::NonFiniteLoss {
            iteration: 3,
            loss: f64::NAN,
        }
        .to_string();
        assert!(
            msg.contains("iteration 3") && msg.contains("no update"),
            "{msg}"
        );

        // Reference: 3 clean iterations give exactly the same parameters.
        let clean = ProtoNet::new(tiny_factory(8), ProtoNetConfig::default());
        let mut reference = Trainer::new(clean, quiet(3), &dev()).expect("trainer");
        reference
            .run(source, None, None, |_| {})
            .expect("clean run");
        assert_eq!(before[0], param_values::<TB, _>(reference.model()));
    }

    fn resume_is_exact<L: MetaLearner<TB> + Clone>(learner: L, config: TrainerConfig) {
        let dir = tempfile::tempdir().expect("tempdir");
        let source: Arc<dyn EpisodeSource> = Arc::new(Synthetic { seed: 7 });
        let val = Synthetic { seed: 99 };
        let n = config.iterations;

        let mut full = Trainer::new(learner.clone(), config.clone(), &dev()).expect("trainer");
        full.run(Arc::clone(&source), Some(&val), None, |_| {})
            .expect("full run");

        let mut first = Trainer::new(learner.clone(), config.clone(), &dev()).expect("trainer");
        first
            .run_until(n / 2, Arc::clone(&source), Some(&val), None, |_| {})
            .expect("first half");
        let path = dir.path().join("latest.ckpt");
        first.save_checkpoint(&path).expect("save");
        drop(first);
        let mut second = Trainer::resume(learner, config, &dev(), &path).expect("resume");
        assert_eq!(second.iteration(), n / 2);
        assert_eq!(second.sampler_position(), (n / 2) * 2);
        second
            .run(source, Some(&val), None, |_| {})
            .expect("second half");

        assert_eq!(
            param_values::<TB, _>(full.model()),
            param_values::<TB, _>(second.model()),
            "resumed run diverged from the uninterrupted run"
        );
        // The best validation goes through the JSON header (serde_json parses floats to within
        // one ulp), so compare the numbers with a tolerance and the iteration exactly.
        let (a, b) = (full.best_validation(), second.best_validation());
        assert_eq!(a.map(|v| v.iteration), b.map(|v| v.iteration));
        let close = |x: f64, y: f64| (x - y).abs() < 1e-12;
        assert!(
            a.zip(b)
                .is_none_or(|(a, b)| close(a.mean, b.mean) && close(a.ci95, b.ci95))
        );
    }

    #[test]
    fn resume_from_checkpoint_matches_uninterrupted_run_adam_cosine() {
        let config = TrainerConfig {
            iterations: 8,
            val_every: 2,
            val_episodes: 3,
            prefetch_threads: 1,
            schedule: LrSchedule::Cosine { floor: 1e-4 },
            ..quiet(8)
        };
        resume_is_exact(
            ProtoNet::new(tiny_factory(8), ProtoNetConfig::default()),
            config,
        );
    }

    #[test]
    fn resume_from_checkpoint_matches_uninterrupted_run_sgd_linear_clipped() {
        let config = TrainerConfig {
            iterations: 6,
            optimizer: OuterOptimizer::Sgd,
            schedule: LrSchedule::Linear { final_lr: 0.0 },
            lr: 0.5,
            ..quiet(6)
        };
        let learner = MetaNetEb::new(tiny_factory(8), MetaNetEbConfig::default()).expect("config");
        resume_is_exact(learner, config);
    }
}
