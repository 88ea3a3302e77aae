//! The sine-wave regression tasks of Finn, Abbeel & Levine (2017, §5.1): each task is
//! `y = A sin(x − φ)` with its own amplitude and phase; K support and Q query points.

use rand::RngExt;
use serde::{Deserialize, Serialize};

use crate::episode::{Episode, EpisodeSource};
use crate::error::{DataError, Result};
use crate::sampler::episode_rng;
use crate::split::Split;

/// The task family: ranges of amplitude, phase and inputs, and points per task.
///
/// Defaults are the paper's: amplitude U[0.1, 5.0], phase U[0, π], x ~ U[−5, 5], K = 10
/// support points, and 10 query points (the paper's meta-training uses K for both).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SineConfig {
    /// Amplitude range `[low, high]`.
    pub amplitude: [f64; 2],
    /// Phase range `[low, high]`, radians.
    pub phase: [f64; 2],
    /// Input range `[low, high]`.
    pub x_range: [f64; 2],
    /// Support points per task (K).
    pub shots: usize,
    /// Query points per task.
    pub queries: usize,
}

impl Default for SineConfig {
    fn default() -> Self {
        Self {
            amplitude: [0.1, 5.0],
            phase: [0.0, std::f64::consts::PI],
            x_range: [-5.0, 5.0],
            shots: 10,
            queries: 10,
        }
    }
}

impl SineConfig {
    /// Checks the ranges and counts; the error names the key.
    pub fn validate(&self) -> Result<()> {
        let paper = [
            ("amplitude", self.amplitude, "[0.1, 5.0]"),
            ("phase", self.phase, "[0, 3.14159]"),
            ("x_range", self.x_range, "[-5, 5]"),
        ];
        for (name, [lo, hi], default) in paper {
            if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
                return Err(DataError::InvalidParameter {
                    name,
                    value: format!("[{lo}, {hi}]"),
                    hint: format!("a finite [low, high] with low <= high (the paper's: {default})"),
                });
            }
        }
        if self.shots == 0 {
            return Err(DataError::ZeroParameter { name: "shots" });
        }
        if self.queries == 0 {
            return Err(DataError::ZeroParameter { name: "queries" });
        }
        Ok(())
    }
}

/// One sine task's parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SineWave {
    /// Amplitude A.
    pub amplitude: f64,
    /// Phase φ.
    pub phase: f64,
}

impl SineWave {
    /// `A sin(x − φ)`.
    pub fn at(&self, x: f64) -> f64 {
        self.amplitude * (x - self.phase).sin()
    }
}

/// Sine tasks of one split as an [`EpisodeSource`]: episode `i` is a pure function of
/// `(seed, split, i)`, like the image sampler's. Inputs are `[1, 1, 1]` (one scalar), targets
/// one value per point; support points come first in the episode's RNG stream, then queries.
#[derive(Debug, Clone)]
pub struct SineTasks {
    config: SineConfig,
    split: Split,
    seed: u64,
}

impl SineTasks {
    /// The tasks of `split` under `seed`.
    pub fn new(config: SineConfig, split: Split, seed: u64) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            config,
            split,
            seed,
        })
    }

    /// The same tasks under another seed.
    pub fn with_seed(&self, seed: u64) -> Self {
        Self {
            seed,
            ..self.clone()
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SineConfig {
        &self.config
    }

    /// The wave and the episode of task `index`.
    pub fn task(&self, index: u64) -> (SineWave, Episode) {
        let c = &self.config;
        let mut rng = episode_rng(self.seed, self.split.id(), index);
        let uniform = |rng: &mut rand_chacha::ChaCha8Rng, [lo, hi]: [f64; 2]| {
            if lo == hi {
                lo
            } else {
                rng.random_range(lo..hi)
            }
        };
        let wave = SineWave {
            amplitude: uniform(&mut rng, c.amplitude),
            phase: uniform(&mut rng, c.phase),
        };
        let mut points = |n: usize| {
            let xs: Vec<f64> = (0..n).map(|_| uniform(&mut rng, c.x_range)).collect();
            let ys = xs.iter().map(|&x| wave.at(x) as f32).collect();
            (xs.iter().map(|&x| x as f32).collect(), ys)
        };
        let support = points(c.shots);
        let query = points(c.queries);
        (wave, Episode::regression([1, 1, 1], 1, support, query))
    }
}

impl EpisodeSource for SineTasks {
    fn episode(&self, index: u64) -> Episode {
        self.task(index).1
    }

    fn shape(&self) -> (usize, usize, usize) {
        (1, self.config.shots, self.config.queries)
    }

    fn image_shape(&self) -> [usize; 3] {
        [1, 1, 1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_follow_the_wave_stay_in_range_and_are_pure_functions_of_seed_split_index() {
        let tasks = SineTasks::new(SineConfig::default(), Split::Train, 7).unwrap();
        let (wave, e) = tasks.task(3);
        assert!((0.1..5.0).contains(&wave.amplitude) && (0.0..3.15).contains(&wave.phase));
        assert_eq!((e.support_len(), e.query_len(), e.value_dim), (10, 10, 1));
        for (x, y) in e.support_images.iter().zip(&e.support_values) {
            assert!((-5.0..5.0).contains(x));
            assert!((wave.at(f64::from(*x)) as f32 - y).abs() < 1e-5);
        }
        assert_eq!(tasks.episode(3), e);
        assert_ne!(tasks.episode(4), e);
        assert_ne!(tasks.with_seed(8).episode(3), e);
        let val = SineTasks::new(SineConfig::default(), Split::Val, 7).unwrap();
        assert_ne!(val.episode(3), e);
    }

    #[test]
    fn amplitudes_and_phases_cover_their_ranges_uniformly() {
        let tasks = SineTasks::new(SineConfig::default(), Split::Train, 1).unwrap();
        let waves: Vec<SineWave> = (0..4000).map(|i| tasks.task(i).0).collect();
        let mean = |f: &dyn Fn(&SineWave) -> f64| waves.iter().map(f).sum::<f64>() / 4000.0;
        // U[0.1, 5]: mean 2.55, σ/√n ≈ 0.022; U[0, π]: mean π/2, σ/√n ≈ 0.014.
        assert!((mean(&|w| w.amplitude) - 2.55).abs() < 0.1);
        assert!((mean(&|w| w.phase) - std::f64::consts::FRAC_PI_2).abs() < 0.06);
    }

    #[test]
    fn bad_ranges_and_counts_are_refused_by_key() {
        for (config, key) in [
            (
                SineConfig {
                    amplitude: [5.0, 0.1],
                    ..Default::default()
                },
                "amplitude",
            ),
            (
                SineConfig {
                    x_range: [f64::NAN, 1.0],
                    ..Default::default()
                },
                "x_range",
            ),
            (
                SineConfig {
                    shots: 0,
                    ..Default::default()
                },
                "shots",
            ),
            (
                SineConfig {
                    queries: 0,
                    ..Default::default()
                },
                "queries",
            ),
        ] {
            let err = SineTasks::new(config, Split::Train, 0)
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{err}");
        }
    }
}
