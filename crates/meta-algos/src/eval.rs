//! The evaluation protocol: `T` test episodes from a fixed seed, adaptation on each support set
//! (the learner's own test-time procedure, e.g. its test-time inner steps), the score on the
//! query set (accuracy for classification, mean squared error for regression), reported as
//! mean ± 1.96·σ/√T; and, for regression, the error after 0, 1, …, k adaptation steps.

use burn::tensor::backend::AutodiffBackend;
use meta_data::{Episode, EpisodeSampler, EpisodeSource};
use serde::{Deserialize, Serialize};

use crate::error::{AlgoError, Result};
use crate::learner::{MetaLearner, Predictor};
use crate::preflight::check_task_kind;

/// What a score measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Query accuracy in `[0, 1]` (classification; higher is better).
    #[default]
    Accuracy,
    /// Query mean squared error (regression; lower is better).
    Mse,
}

impl Metric {
    /// The metric of `episode`'s tasks.
    pub fn of(episode: &Episode) -> Self {
        if episode.is_regression() {
            Metric::Mse
        } else {
            Metric::Accuracy
        }
    }

    /// Whether score `a` is better than score `b`.
    pub fn better(self, a: f64, b: f64) -> bool {
        match self {
            Metric::Accuracy => a > b,
            Metric::Mse => a < b,
        }
    }

    /// `value` as text: a percentage for accuracy, a plain number for MSE.
    pub fn format(self, value: f64) -> String {
        match self {
            Metric::Accuracy => format!("{:.2}%", 100.0 * value),
            Metric::Mse => format!("{value:.4}"),
        }
    }
}

/// How many test episodes, from which seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvalConfig {
    /// Number of test episodes `T`. Default: 600 (MAML / ProtoNet protocol).
    pub episodes: usize,
    /// Seed of the test episodes. Default: 0. [`evaluate_sampler`] applies it to the sampler;
    /// [`evaluate`] only records it (its source must already have been built with it).
    pub seed: u64,
}

impl EvalConfig {
    /// Refuses an evaluation of no episodes.
    pub fn check(&self) -> Result<()> {
        if self.episodes == 0 {
            return Err(AlgoError::InvalidConfig(
                "evaluation needs at least 1 episode".into(),
            ));
        }
        Ok(())
    }
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            episodes: 600,
            seed: 0,
        }
    }
}

/// Mean score with its 95% confidence interval over a stated number of episodes and seed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// What the score is (reports written before regression existed hold accuracy).
    #[serde(default)]
    pub metric: Metric,
    /// Mean query score over the episodes: accuracy in `[0, 1]`, or mean squared error.
    pub mean: f64,
    /// Half-width of the 95% confidence interval: `1.96 · σ / √T`, σ the population standard
    /// deviation of per-episode scores.
    pub ci95: f64,
    /// Number of episodes `T`.
    pub episodes: usize,
    /// Seed of the episodes.
    pub seed: u64,
}

impl std::fmt::Display for EvalReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self.metric {
            Metric::Accuracy => "",
            Metric::Mse => " MSE",
        };
        write!(
            f,
            "{} ± {}{name} ({} episodes, seed {})",
            self.metric.format(self.mean),
            self.metric.format(self.ci95),
            self.episodes,
            self.seed
        )
    }
}

/// Mean and 95% CI half-width (`1.96 · σ / √n`, population σ) of `values`; `(0, 0)` when empty.
pub fn mean_ci95(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (0.0, 0.0);
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, 1.96 * var.sqrt() / n.sqrt())
}

/// Query score ([`episode_score`]) of `model` on each episode in `indices` of `source`, after
/// adaptation.
pub fn episode_scores<B, L>(
    learner: &L,
    model: &L::Model,
    source: &dyn EpisodeSource,
    indices: impl IntoIterator<Item = u64>,
    device: &B::Device,
) -> Vec<f64>
where
    B: AutodiffBackend,
    L: MetaLearner<B>,
{
    indices
        .into_iter()
        .map(|i| episode_score(learner, model, &source.episode(i), device))
        .collect()
}

/// Query score of `model` on one host episode after adapting on its support set: accuracy for
/// classification, mean squared error for regression ([`meta_backbones::score`]).
///
/// # Panics
/// On a regression episode for a learner without
/// [`supports_regression`](MetaLearner::supports_regression); [`evaluate`] and the trainer
/// refuse those first.
pub fn episode_score<B, L>(
    learner: &L,
    model: &L::Model,
    episode: &meta_data::Episode,
    device: &B::Device,
) -> f64
where
    B: AutodiffBackend,
    L: MetaLearner<B>,
{
    let task = episode.to_task::<B>(device);
    let adapted = learner.adapt(model, task.support_x, task.support_y, task.ways);
    let outputs = adapted.predict(task.query_x).detach();
    meta_backbones::score(outputs, &task.query_y)
}

/// Evaluates on episodes `0..config.episodes` of `source`, which must have been built with
/// `config.seed` (recorded in the report). Prefer [`evaluate_sampler`] with a meta-data sampler.
pub fn evaluate<B, L>(
    learner: &L,
    model: &L::Model,
    source: &dyn EpisodeSource,
    config: &EvalConfig,
    device: &B::Device,
) -> Result<EvalReport>
where
    B: AutodiffBackend,
    L: MetaLearner<B>,
{
    config.check()?;
    let first = source.episode(0);
    check_task_kind(
        learner.name(),
        learner.supports_regression(),
        &first.to_task::<B>(device),
    )?;
    B::seed(device, config.seed);
    meta_backbones::rng::seed(config.seed);
    let scores = episode_scores(learner, model, source, 0..config.episodes as u64, device);
    let (mean, ci95) = mean_ci95(&scores);
    Ok(EvalReport {
        metric: Metric::of(&first),
        mean,
        ci95,
        episodes: config.episodes,
        seed: config.seed,
    })
}

/// Evaluates on episodes `0..config.episodes` of `sampler` re-seeded with `config.seed`.
pub fn evaluate_sampler<B, L>(
    learner: &L,
    model: &L::Model,
    sampler: &EpisodeSampler,
    config: &EvalConfig,
    device: &B::Device,
) -> Result<EvalReport>
where
    B: AutodiffBackend,
    L: MetaLearner<B>,
{
    evaluate(
        learner,
        model,
        &sampler.with_seed(config.seed),
        config,
        device,
    )
}

/// Mean squared query error after 0, 1, …, `steps` test-time adaptation steps, each with its
/// 95% confidence interval, over a stated number of regression episodes (Finn et al. 2017,
/// Figure 3's curve).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepsReport {
    /// `mse[k]`: mean query MSE after `k` steps.
    pub mse: Vec<f64>,
    /// `ci95[k]`: its 95% confidence-interval half-width.
    pub ci95: Vec<f64>,
    /// Number of episodes.
    pub episodes: usize,
    /// Seed of the episodes.
    pub seed: u64,
}

/// Evaluates regression episodes `0..config.episodes` of `source` (built with `config.seed`)
/// after every number of adaptation steps from 0 to `steps`. The error names the algorithm
/// when it has no inner loop of steps or cannot regress, and the source when it holds
/// classification tasks.
pub fn evaluate_steps<B, L>(
    learner: &L,
    model: &L::Model,
    source: &dyn EpisodeSource,
    config: &EvalConfig,
    steps: usize,
    device: &B::Device,
) -> Result<StepsReport>
where
    B: AutodiffBackend,
    L: MetaLearner<B>,
{
    config.check()?;
    let first = source.episode(0);
    if !first.is_regression() {
        return Err(AlgoError::Episodes(
            "an error-versus-steps evaluation needs regression tasks (real-valued targets)".into(),
        ));
    }
    check_task_kind(
        learner.name(),
        learner.supports_regression(),
        &first.to_task::<B>(device),
    )?;
    B::seed(device, config.seed);
    meta_backbones::rng::seed(config.seed);
    let mut per_step = vec![Vec::with_capacity(config.episodes); steps + 1];
    for i in 0..config.episodes as u64 {
        let task = source.episode(i).to_task::<B>(device);
        let path = learner
            .adapt_trajectory(model, task.support_x, task.support_y, task.ways, steps)
            .ok_or_else(|| {
                AlgoError::InvalidConfig(format!(
                    "{} has no inner loop of adaptation steps to evaluate step by step",
                    learner.name()
                ))
            })?;
        for (k, adapted) in path.iter().enumerate() {
            let outputs = adapted.predict(task.query_x.clone()).detach();
            per_step[k].push(meta_backbones::score(outputs, &task.query_y));
        }
    }
    let (mse, ci95) = per_step.iter().map(|v| mean_ci95(v)).unzip();
    Ok(StepsReport {
        mse,
        ci95,
        episodes: config.episodes,
        seed: config.seed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ci95_matches_hand_computed_value_on_known_sample() {
        // mean 0.5, population variance (0.01 + 0.01 + 0.0225 + 0.0225) / 4 = 0.01625, n = 4:
        // CI = 1.96 · √0.01625 / √4 = 0.124924…
        let (mean, ci) = mean_ci95(&[0.4, 0.6, 0.35, 0.65]);
        assert!((mean - 0.5).abs() < 1e-12);
        let expected = 1.96 * 0.01625f64.sqrt() / 2.0;
        assert!((ci - 0.124_925_978_083_023_2).abs() < 1e-9, "ci {ci}");
        assert!((ci - expected).abs() < 1e-12, "ci {ci} vs {expected}");
    }

    #[test]
    fn ci95_is_zero_for_constant_sample_and_empty_input() {
        let (mean, ci) = mean_ci95(&[0.8; 10]);
        assert!((mean - 0.8).abs() < 1e-12 && ci < 1e-12);
        assert_eq!(mean_ci95(&[]), (0.0, 0.0));
    }
}
