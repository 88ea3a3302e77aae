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

use burn::module::{AutodiffModule, Module};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{Adam, AdamConfig, GradientsParams, Optimizer, Sgd, SgdConfig};
use burn::tensor::backend::AutodiffBackend;
use meta_data::{Episode, EpisodeSource, IntoSharedSource, Prefetcher, Task};
use serde::{Deserialize, Serialize};

use crate::checkpoint::{
    self, BestValidation, CheckpointHeader, read_checkpoint_file, record_from_bytes,
    record_to_bytes, write_checkpoint_file,
};
use crate::error::{AlgoError, Result};
use crate::eval::{Metric, episode_score, mean_ci95};
pub use crate::grad_norm::{clip_grad_global_norm, global_grad_norm, scale_grads};
use crate::learner::MetaLearner;
pub use crate::train_config::{AdamParams, GradClip, LrSchedule, OuterOptimizer, TrainerConfig};

/// Validation result of one evaluation point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Validation {
    /// Mean validation score: accuracy, or mean squared error for regression tasks (see
    /// `metric`).
    pub mean: f64,
    /// 95% CI half-width.
    pub ci95: f64,
    /// Whether this is the best validation so far (highest accuracy, lowest MSE).
    pub is_best: bool,
    /// What `mean` measures.
    #[serde(default)]
    pub metric: Metric,
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
    /// Whether [`MetaLearner::preflight`] has passed in this process.
    preflight_done: bool,
}

impl<B: AutodiffBackend, L: MetaLearner<B>> Trainer<B, L> {
    /// A trainer with freshly initialised meta-parameters, drawn from the calling thread's
    /// [`meta_backbones::rng`] seeded with `config.seed` (burn's backend generator is seeded too,
    /// for modules that draw from it), so initialisation is reproducible.
    pub fn new(learner: L, config: TrainerConfig, device: &B::Device) -> Result<Self> {
        config.check()?;
        B::seed(device, config.seed);
        meta_backbones::rng::seed(config.seed);
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
            preflight_done: false,
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
        if !self.preflight_done {
            if let Some(task) = tasks.first() {
                crate::preflight::check_task_kind(
                    self.learner.name(),
                    self.learner.supports_regression(),
                    task,
                )?;
                self.learner.preflight(&self.model, task)?;
            }
            self.preflight_done = true;
        }
        barrier(&self.device)?;
        let start = Instant::now();
        let it = self.iteration;
        B::seed(&self.device, iteration_seed(self.config.seed, it));
        meta_backbones::rng::seed(iteration_seed(self.config.seed, it));
        let (mut grads, stats) = self.learner.meta_gradients_at(&self.model, tasks, it);
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
        let metric = episodes.first().map_or(Metric::Accuracy, Metric::of);
        let scores: Vec<f64> = episodes
            .iter()
            .map(|e| episode_score(&self.learner, &self.model, e, &self.device))
            .collect();
        let (mean, ci95) = mean_ci95(&scores);
        // A non-finite score (a diverging test-time adaptation) is never the best: it would also
        // not survive the checkpoint header's JSON.
        let is_best = mean.is_finite() && self.best.is_none_or(|b| metric.better(mean, b.mean));
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
            metric,
        }
    }

    /// Trains from the current iteration up to `config.iterations` on episodes of `train` (a
    /// sampler or any other [`EpisodeSource`], by value or in an `Arc`), validating on `val` every
    /// `val_every` iterations and after the last, calling `on_metrics` after every iteration and,
    /// when `checkpoint_dir` is given, writing `latest.ckpt` every `checkpoint_every` iterations
    /// and at the end, and `best.ckpt` on every new best validation.
    pub fn run(
        &mut self,
        train: impl IntoSharedSource,
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
        train: impl IntoSharedSource,
        val: Option<&dyn EpisodeSource>,
        checkpoint_dir: Option<&Path>,
        mut on_metrics: impl FnMut(&IterationMetrics),
    ) -> Result<TrainSummary> {
        let train = train.into_shared();
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
#[path = "trainer_tests.rs"]
mod tests;
