//! The benchmark workloads, the run configuration each (workload, algorithm) pair trains with, and
//! where their episodes come from (random pixels or Omniglot's sampler).

use crate::config::RunConfig;
use anyhow::{Context, Result};
use meta_data::{Episode, EpisodeSampler, EpisodeSource};
use std::path::Path;
use std::sync::Arc;

/// One benchmark workload: a backbone, an image size and an episode shape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Workload {
    /// `--workload` name.
    pub name: &'static str,
    /// Image shape `[C, H, W]` (Conv4 has 64 filters on grey images, 32 on colour ones).
    pub image_shape: [usize; 3],
    /// Classes per task.
    pub ways: usize,
    /// Support images per class.
    pub shots: usize,
    /// Query images per class.
    pub queries: usize,
    /// Tasks per meta-iteration.
    pub meta_batch: usize,
    /// Inner-loop steps (MAML family; also the steps of the separately timed adaptation).
    pub inner_steps: usize,
    /// Inner-loop learning rate.
    pub inner_lr: f64,
    /// Draws Omniglot episodes when Omniglot is available.
    pub omniglot: bool,
    /// Runs only this algorithm, whatever `--algo` says.
    pub only_algo: Option<&'static str>,
}

/// Every workload, in the default order.
pub const WORKLOADS: &[Workload] = &[
    Workload {
        name: "omniglot-5w1s",
        image_shape: [1, 28, 28],
        ways: 5,
        shots: 1,
        queries: 15,
        meta_batch: 32,
        inner_steps: 1,
        inner_lr: 0.4,
        omniglot: true,
        only_algo: None,
    },
    Workload {
        name: "miniimagenet-5w5s",
        image_shape: [3, 84, 84],
        ways: 5,
        shots: 5,
        queries: 15,
        meta_batch: 4,
        inner_steps: 5,
        inner_lr: 0.01,
        omniglot: false,
        only_algo: None,
    },
    Workload {
        name: "protonet-episode",
        image_shape: [1, 28, 28],
        ways: 5,
        shots: 1,
        queries: 15,
        meta_batch: 1,
        inner_steps: 1,
        inner_lr: 0.4,
        omniglot: true,
        only_algo: Some("protonet"),
    },
];

/// The workload named `name`.
pub fn workload(name: &str) -> Option<&'static Workload> {
    WORKLOADS.iter().find(|w| w.name == name)
}

impl Workload {
    /// The run configuration of `algo` on this workload (Conv4, max-pool; Meta Networks their own
    /// `metanet-cnn`), as `train` would
    /// resolve it; the test-time inner steps equal the training ones so that the timed
    /// adaptation does the training inner loop's work.
    pub fn run_config(&self, algo: &str, meta_batch: usize, seed: u64) -> RunConfig {
        let [_, size, _] = self.image_shape;
        RunConfig {
            algo: algo.into(),
            dataset: if self.omniglot {
                "omniglot"
            } else {
                "miniimagenet"
            }
            .into(),
            backbone: if algo == "metanet" {
                "metanet-cnn"
            } else {
                "conv4"
            }
            .into(),
            seed,
            ways: self.ways,
            shots: self.shots,
            queries: self.queries,
            test_queries: self.queries,
            inner_steps: self.inner_steps,
            test_inner_steps: self.inner_steps,
            inner_lr: self.inner_lr,
            meta_batch,
            // Long enough that annealed schedules (Reptile) keep their initial rate here.
            iterations: 1_000_000,
            image_size: size,
            validate_every: 0,
            test_episodes: 0,
            ..RunConfig::default()
        }
    }
}

/// Where a workload's host episodes come from.
#[derive(Clone)]
pub enum EpisodeFeed {
    /// Uniform random pixels (the cost of an iteration does not depend on their values).
    Synthetic {
        /// Seed of the pixels.
        seed: u64,
    },
    /// Real training episodes from a data set's sampler.
    Sampler(Arc<EpisodeSampler>),
}

impl EpisodeFeed {
    /// `"synthetic"` or `"omniglot"`, as recorded in the results.
    pub fn label(&self) -> &'static str {
        match self {
            EpisodeFeed::Synthetic { .. } => "synthetic",
            EpisodeFeed::Sampler(_) => "omniglot",
        }
    }

    /// Episode `index` of `workload`.
    pub fn episode(&self, workload: &Workload, index: u64) -> Episode {
        match self {
            EpisodeFeed::Sampler(sampler) => sampler.episode(index),
            EpisodeFeed::Synthetic { seed } => synthetic_episode(workload, *seed, index),
        }
    }
}

/// A task of `workload`'s shape with uniform pixels in `[0, 1)`, a pure function of
/// `(seed, index)`.
fn synthetic_episode(workload: &Workload, seed: u64, index: u64) -> Episode {
    let [c, h, w] = workload.image_shape;
    let (n, k, q) = (workload.ways, workload.shots, workload.queries);
    let mut state = seed ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut pixels = |count: usize| -> Vec<f32> {
        (0..count)
            .map(|_| {
                // SplitMix64: fast, and plenty for pixels whose values do not matter.
                state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let mut z = state;
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32
            })
            .collect()
    };
    let labels = |per: usize| -> Vec<i64> {
        (0..n as i64)
            .flat_map(|l| std::iter::repeat_n(l, per))
            .collect()
    };
    Episode {
        ways: n,
        shots: k,
        queries: q,
        image_shape: [c, h, w],
        support_images: pixels(n * k * c * h * w),
        support_labels: labels(k),
        query_images: pixels(n * q * c * h * w),
        query_labels: labels(q),
        classes: (0..n).collect(),
        value_dim: 0,
        support_values: Vec::new(),
        query_values: Vec::new(),
    }
}

/// Whether `data_dir` holds Omniglot (both archives, zipped or unpacked).
pub fn has_omniglot(data_dir: &Path) -> bool {
    let omniglot = data_dir.join("omniglot");
    ["images_background", "images_evaluation"]
        .iter()
        .all(|part| omniglot.join(format!("{part}.zip")).is_file() || omniglot.join(part).is_dir())
}

/// The Omniglot training-split sampler (Vinyals split, 28×28) for 5-way 1-shot 15-query
/// episodes, the shape of both Omniglot workloads.
pub fn omniglot_sampler(data_dir: &Path, seed: u64) -> Result<EpisodeSampler> {
    let Some(w) = workload("omniglot-5w1s") else {
        anyhow::bail!("the omniglot-5w1s workload is missing");
    };
    let settings = crate::data::DataSettings {
        data_dir,
        dataset: "omniglot",
        omniglot_split: "vinyals",
        image_size: w.image_shape[1],
        seed,
        folder: None,
        sine: None,
        csv: None,
    };
    settings
        .sampler(meta_data::Split::Train, w.ways, w.shots, w.queries, seed)
        .with_context(|| format!("--data-dir {}: cannot load Omniglot", data_dir.display()))?
        .context("Omniglot has no training split")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_episodes_have_the_workload_shape_and_unit_pixels() {
        for w in WORKLOADS {
            let e = EpisodeFeed::Synthetic { seed: 3 }.episode(w, 5);
            let [c, h, ww] = w.image_shape;
            assert_eq!(e.support_images.len(), w.ways * w.shots * c * h * ww);
            assert_eq!(e.query_labels.len(), w.ways * w.queries);
            assert!(e.query_images.iter().all(|p| (0.0..1.0).contains(p)));
            let mean = e.query_images.iter().sum::<f32>() / e.query_images.len() as f32;
            assert!((mean - 0.5).abs() < 0.05, "{mean}");
        }
    }

    #[test]
    fn every_workload_config_validates_for_every_algo() {
        for w in WORKLOADS {
            // The regression baseline has no classification workload.
            for algo in crate::algos::ALGOS.iter().filter(|a| **a != "pretrain") {
                let config = w.run_config(algo, w.meta_batch, 1);
                config.validate().unwrap();
                assert_eq!(config.image_size, w.image_shape[1]);
            }
        }
    }
}
