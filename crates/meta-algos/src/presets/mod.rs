//! Named hyper-parameter presets that carry the papers' settings.
//!
//! A preset is plain data: the CLI (`--preset NAME`) and `cargo xtask reproduce NAME` map it onto
//! an algorithm config, an episode spec and a trainer config. Rows are built by one constructor
//! per algorithm family, so a new algorithm adds rows, not types.
//!
//! Conventions shared by every row:
//! - `queries_*` are query images *per class*.
//! - `meta_lr` is the outer learning rate: Adam's rate for the gradient-based methods, and the
//!   initial outer step size ε for Reptile (annealed linearly to 0 over `iterations`, applied as an
//!   SGD step on the pseudo-gradient `Φ − W`).
//! - `backbone` names a `meta-backbones` architecture (`conv4` = four 3×3 conv blocks of 64
//!   channels with batch-norm, ReLU and 2×2 max-pooling, followed by a linear head).
//! - Where the paper's protocol differs from ours (e.g. MAML's strided Omniglot convolutions, or
//!   Reptile's larger training shot count) the row's `note` says so.

use std::borrow::Cow;

use meta_backbones::BnConfig;
use meta_data::ImageAugment;
use serde::{Deserialize, Serialize};

use crate::baseline::BaselineHead;
use crate::mamlpp::MamlPlusPlusOptions;
use crate::reptile::InnerOptimizer;
use crate::train_config::LrSchedule;

/// One named set of hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preset {
    /// Identifier used on the command line, e.g. `maml-omniglot-5w1s`.
    pub name: Cow<'static, str>,
    /// Algorithm identifier, the same string as `MetaLearner::name` (e.g. `"maml"`).
    pub algo: Cow<'static, str>,
    /// Data set identifier (e.g. `"omniglot"`).
    pub dataset: Cow<'static, str>,
    /// Classes per task (N).
    pub ways: usize,
    /// Support images per class (K).
    pub shots: usize,
    /// Query images per class during meta-training.
    pub queries_train: usize,
    /// Query images per class during evaluation.
    pub queries_test: usize,
    /// Inner-loop steps during meta-training (0 for methods without an inner loop).
    pub inner_steps_train: usize,
    /// Inner-loop steps at test time.
    pub inner_steps_test: usize,
    /// Inner-loop learning rate (initial value for MetaSGD's learned rates).
    pub inner_lr: f64,
    /// Outer learning rate (Adam), or Reptile's initial outer step size ε.
    pub meta_lr: f64,
    /// Tasks per meta-batch.
    pub meta_batch: usize,
    /// Meta-training iterations (outer steps).
    pub iterations: usize,
    /// Validate every this many iterations.
    pub validate_every: usize,
    /// Validation episodes per validation.
    pub val_episodes: usize,
    /// Images per inner-loop step (Reptile's inner batch); `None` for algorithms without one.
    pub inner_batch: Option<usize>,
    /// Backbone identifier from `meta-backbones`.
    pub backbone: Cow<'static, str>,
    /// Filters per Conv4 block; `None`: the backbone's default for the data set (64 on
    /// Omniglot, 32 on colour images).
    pub hidden: Option<usize>,
    /// Per-image augmentation of the training episodes.
    pub augment: ImageAugment,
    /// Outer learning-rate schedule; `None`: the algorithm's default (Reptile anneals linearly,
    /// the others keep the rate constant).
    pub schedule: Option<LrSchedule>,
    /// The backbone's batch-norm; `None`: the backbone's default (batch statistics).
    pub bn: Option<BnConfig>,
    /// MAML++'s switches and schedules; `None` for other algorithms.
    pub mamlpp: Option<MamlPlusPlusOptions>,
    /// The pre-training baselines' head (Baseline or Baseline++); `None` for other algorithms.
    pub baseline: Option<BaselineHead>,
    /// Matching Networks' full context embeddings (`[matchingnet] fce`); false elsewhere.
    pub matchingnet_fce: bool,
    /// Reptile's inner optimizer; `None`: its default (Adam with β₁ = 0).
    pub inner_optimizer: Option<InnerOptimizer>,
    /// MAML's sine-regression network (Finn et al. 2017, §5.1): FcNet 1→40→40→1 with ReLU, no
    /// batch-norm and no dropout, in place of the backbone's defaults.
    pub sine_net: bool,
    /// The paper (and table/section) the values come from.
    pub reference: Cow<'static, str>,
    /// Where our protocol deviates from the paper's, or which values the paper does not fix.
    pub note: Cow<'static, str>,
}

pub(super) const fn s(text: &'static str) -> Cow<'static, str> {
    Cow::Borrowed(text)
}

/// Replaces a borrowed text field in a `const fn` (where the old value cannot be dropped; a
/// borrowed `Cow` owns nothing to free).
pub(super) const fn set(slot: &mut Cow<'static, str>, text: &'static str) {
    std::mem::forget(std::mem::replace(slot, s(text)));
}

mod rows;
mod table;

pub use table::PRESETS;

/// Looks a preset up by name.
pub fn preset(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.name == name)
}

/// Names of every preset, for help texts and error messages.
pub fn preset_names() -> impl Iterator<Item = &'static str> {
    PRESETS.iter().map(|p| match &p.name {
        Cow::Borrowed(name) => *name,
        Cow::Owned(_) => "",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preset_names_are_unique_and_found() {
        let names: Vec<_> = preset_names().collect();
        for (i, name) in names.iter().enumerate() {
            assert!(!name.is_empty());
            assert!(!names[..i].contains(name), "duplicate preset {name}");
            assert_eq!(preset(name).map(|p| &p.name), Some(&Cow::Borrowed(*name)));
        }
        assert!(preset("no-such-preset").is_none());
    }

    #[test]
    fn presets_have_usable_shapes() {
        for p in PRESETS {
            // Regression tasks have one output; classification at least two classes.
            let ways_ok = if p.dataset == "sine" {
                p.ways == 1
            } else {
                p.ways >= 2
            };
            assert!(ways_ok && p.shots >= 1 && p.queries_test >= 1, "{}", p.name);
            assert_eq!(p.sine_net, p.dataset == "sine", "{}", p.name);
            assert!(p.meta_batch >= 1 && p.iterations >= 1, "{}", p.name);
            assert!(p.inner_lr > 0.0 && p.meta_lr > 0.0, "{}", p.name);
            assert!(p.name.contains(&*p.algo), "{} vs {}", p.name, p.algo);
        }
    }

    #[test]
    fn reptile_presets_run_the_inner_batch_their_note_states() {
        let reptile: Vec<&Preset> = PRESETS.iter().filter(|p| p.algo == "reptile").collect();
        assert!(!reptile.is_empty());
        for p in PRESETS {
            assert_eq!(p.inner_batch.is_some(), p.algo == "reptile", "{}", p.name);
        }
        for p in reptile {
            let batch = p.inner_batch.unwrap_or_default();
            assert!(
                p.note.contains(&format!("inner batch {batch},")),
                "{}: runs inner batch {batch}, note says: {}",
                p.name,
                p.note
            );
        }
        let twenty = preset("reptile-omniglot-20w1s").map(|p| p.inner_batch);
        assert_eq!(
            twenty,
            Some(Some(20)),
            "Nichol et al., app. A: 20-way inner batch 20"
        );
    }

    #[test]
    fn cpu_presets_change_only_the_budget_of_their_paper_row() {
        let cpu_rows: Vec<&Preset> = PRESETS
            .iter()
            .filter(|p| p.name.ends_with("-cpu"))
            .collect();
        assert!(!cpu_rows.is_empty());
        for cpu in cpu_rows {
            let paper = preset(cpu.name.strip_suffix("-cpu").unwrap())
                .unwrap_or_else(|| panic!("{}: no paper row", cpu.name));
            let mut budget_reset = cpu.clone();
            budget_reset.name = paper.name.clone();
            budget_reset.note = paper.note.clone();
            budget_reset.meta_batch = paper.meta_batch;
            budget_reset.iterations = paper.iterations;
            budget_reset.validate_every = paper.validate_every;
            budget_reset.val_episodes = paper.val_episodes;
            assert_eq!(&budget_reset, paper, "{}", cpu.name);
            assert!(
                cpu.iterations * cpu.meta_batch < paper.iterations * paper.meta_batch,
                "{}",
                cpu.name
            );
        }
    }

    #[test]
    fn every_cpu_preset_has_its_measured_row_in_the_results() {
        let results = include_str!("../../../../docs/results.md");
        for p in PRESETS.iter().filter(|p| p.name.ends_with("-cpu")) {
            let row = format!("| `{}`", p.name);
            assert!(
                results.lines().any(|line| line.starts_with(&row)),
                "docs/results.md has no row for {}",
                p.name
            );
        }
    }

    #[test]
    fn preset_round_trips_through_json() {
        for p in PRESETS {
            let text = serde_json::to_string(p).expect("serialise");
            let back: Preset = serde_json::from_str(&text).expect("deserialise");
            assert_eq!(&back, p);
        }
    }
}
