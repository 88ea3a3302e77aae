//! The evaluation protocol: `T` test episodes from a fixed seed, adaptation on each support set
//! (the learner's own test-time procedure, e.g. its test-time inner steps), accuracy on the
//! query set, reported as mean ± 1.96·σ/√T.

use burn::tensor::backend::AutodiffBackend;
use meta_data::{EpisodeSampler, EpisodeSource};
use serde::{Deserialize, Serialize};

use crate::error::{AlgoError, Result};
use crate::learner::{MetaLearner, Predictor};
use crate::ops;

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

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            episodes: 600,
            seed: 0,
        }
    }
}

/// Mean accuracy with its 95% confidence interval over a stated number of episodes and seed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Mean query accuracy over the episodes, in `[0, 1]`.
    pub mean: f64,
    /// Half-width of the 95% confidence interval: `1.96 · σ / √T`, σ the population standard
    /// deviation of per-episode accuracies.
    pub ci95: f64,
    /// Number of episodes `T`.
    pub episodes: usize,
    /// Seed of the episodes.
    pub seed: u64,
}

impl std::fmt::Display for EvalReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.2}% ± {:.2}% ({} episodes, seed {})",
            100.0 * self.mean,
            100.0 * self.ci95,
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

/// Query accuracy of `model` on each episode in `indices` of `source`, after adaptation.
pub fn episode_accuracies<B, L>(
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
        .map(|i| episode_accuracy(learner, model, &source.episode(i), device))
        .collect()
}

/// Query accuracy of `model` on one host episode after adapting on its support set.
pub fn episode_accuracy<B, L>(
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
    let logits = adapted.predict(task.query_x).detach();
    ops::accuracy(logits, task.query_y)
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
    if config.episodes == 0 {
        return Err(AlgoError::InvalidConfig(
            "evaluation needs at least 1 episode".into(),
        ));
    }
    B::seed(device, config.seed);
    meta_backbones::rng::seed(config.seed);
    let acc = episode_accuracies(learner, model, source, 0..config.episodes as u64, device);
    let (mean, ci95) = mean_ci95(&acc);
    Ok(EvalReport {
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
