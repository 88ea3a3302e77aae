//! The MAML family learns on real Omniglot 5-way 1-shot (Vinyals split, 28×28): each algorithm is
//! meta-trained for a small CPU budget with the crate's `Trainer`, then evaluated on test-split
//! episodes with the crate's evaluator. Chance is 20%; each threshold is one a broken algorithm
//! (no meta-gradient, wrong sign, adaptation that does nothing) cannot reach.
//!
//! Data: `META_DATA_DIR` (skipped with a message when missing, a failure with
//! `META_REQUIRE_DATA=1`). Budget: all tests of this file together ≤ 8 minutes in the dev profile
//! on 2 cores; see the iteration counts below (measured figures in docs/benchmarks.md).
//!
//! `MAML_FAMILY_ITERS=<n>` overrides every algorithm's iteration count (for probing).

use std::sync::Arc;
use std::time::Instant;

use burn::backend::{Autodiff, Flex};
use meta_algos::{
    Anil, AnilConfig, Boil, BoilConfig, EvalConfig, FnFactory, Fomaml, FomamlConfig, LrSchedule,
    Maml, MamlConfig, MetaLearner, MetaSgd, MetaSgdConfig, OuterOptimizer, Reptile, ReptileConfig,
    Trainer, TrainerConfig, evaluate_sampler,
};
use meta_backbones::{Conv4, Conv4Config, Conv4Variant};
use meta_data::{
    DatasetKind, EpisodeSampler, EpisodeSpec, OmniglotSplit, Split, load_split_sampler,
};

type B = Autodiff<Flex>;

const WAYS: usize = 5;
const TEST_EPISODES: usize = 60;

const MAML_ITERS: u64 = 500;
const FOMAML_ITERS: u64 = 150;
const FOMAML_MIN: f64 = 0.62;
const ANIL_ITERS: u64 = 200;
const ANIL_MIN: f64 = 0.56;
const BOIL_ITERS: u64 = 150;
const BOIL_MIN: f64 = 0.63;
const METASGD_ITERS: u64 = 200;
const METASGD_MIN: f64 = 0.62;
const REPTILE_ITERS: u64 = 120;
const REPTILE_TEST_STEPS: usize = 20;
const REPTILE_MIN: f64 = 0.53;

/// Conv4 with 32 filters, strided (Finn et al.'s Omniglot variant, no pooling): the cheapest
/// Conv4 on 28×28 images.
fn backbone() -> FnFactory<B, Conv4<B>> {
    FnFactory::new("conv4-32-strided", |device| {
        Conv4Config {
            hidden: 32,
            variant: Conv4Variant::Strided,
            num_classes: WAYS,
            ..Conv4Config::default()
        }
        .init(device)
    })
}

fn sampler(dir: &std::path::Path, split: Split, queries: usize, seed: u64) -> EpisodeSampler {
    load_split_sampler(
        dir,
        &DatasetKind::Omniglot,
        OmniglotSplit::Vinyals,
        split,
        EpisodeSpec::new(WAYS, 1, queries),
        seed,
        None,
    )
    .unwrap_or_else(|e| panic!("loading Omniglot from {}: {e}", dir.display()))
}

fn iterations(default: u64) -> u64 {
    std::env::var("MAML_FAMILY_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Meta-trains `learner` on Omniglot train episodes, evaluates on test episodes; returns the
/// mean test accuracy (or `None` when the data set is absent and not required).
fn train_and_test<L: MetaLearner<B>>(
    learner: L,
    trainer: TrainerConfig,
    queries: usize,
) -> Option<f64> {
    let dir = meta_data::testing::data_dir()?;
    meta_data::testing::omniglot_dir()?;
    let device = Default::default();
    let name = learner.name();
    let train = Arc::new(sampler(&dir, Split::Train, queries, 1));
    let test = sampler(&dir, Split::Test, 15, 2);

    let start = Instant::now();
    let mut trainer =
        Trainer::<B, L>::new(learner, trainer, &device).expect("valid trainer config");
    let summary = trainer
        .run(train, None, None, |_| {})
        .unwrap_or_else(|e| panic!("{name}: training failed: {e}"));
    let trained = start.elapsed().as_secs_f64();

    let start = Instant::now();
    let report = evaluate_sampler(
        trainer.learner(),
        trainer.model(),
        &test,
        &EvalConfig {
            episodes: TEST_EPISODES,
            seed: 7,
        },
        &device,
    )
    .expect("evaluation");
    println!(
        "{name}: {} iterations in {trained:.1}s (final loss {:.3}); test accuracy {:.1}% ± {:.1}% \
         over {} episodes in {:.1}s",
        summary.iterations,
        summary.final_loss,
        100.0 * report.mean,
        100.0 * report.ci95,
        report.episodes,
        start.elapsed().as_secs_f64()
    );
    Some(report.mean)
}

fn adam(iters: u64, meta_batch: usize, lr: f64) -> TrainerConfig {
    TrainerConfig {
        iterations: iterations(iters),
        meta_batch,
        optimizer: OuterOptimizer::Adam,
        lr,
        val_every: 0,
        prefetch_threads: 1,
        ..TrainerConfig::default()
    }
}

// Budgets and thresholds, measured on 2 shared cores (AMD EPYC, load ≈ 5; 415 s for the whole
// file, tests 2 at a time). Measured test accuracies (60 episodes, ± 95% CI): MAML 84.0 ± 2.4,
// FOMAML 66.8 ± 2.9, ANIL 65.8 ± 3.6, BOIL 75.2 ± 2.9, Meta-SGD 73.3 ± 3.1, Reptile 62.7 ± 3.3.
// An untrained Conv4 adapted at test time (what an algorithm with a broken meta-gradient
// delivers) scores 42% (Reptile's 20 Adam steps) to 49% (10 SGD steps of rate 0.4); each
// threshold is above that and below the measured value minus its CI.

#[test]
fn maml_learns_omniglot_5w1s_above_80_percent() {
    let learner = Maml::new(backbone(), MamlConfig::default());
    if let Some(acc) = train_and_test(learner, adam(MAML_ITERS, 4, 3e-3), 5) {
        assert!(acc > 0.80, "MAML test accuracy {acc}");
    }
}

#[test]
fn fomaml_learns_omniglot_5w1s() {
    let learner = Fomaml::new(backbone(), FomamlConfig::default());
    if let Some(acc) = train_and_test(learner, adam(FOMAML_ITERS, 4, 3e-3), 5) {
        assert!(acc > FOMAML_MIN, "FOMAML test accuracy {acc}");
    }
}

#[test]
fn anil_learns_omniglot_5w1s() {
    let learner = Anil::new(backbone(), AnilConfig::default());
    if let Some(acc) = train_and_test(learner, adam(ANIL_ITERS, 4, 3e-3), 5) {
        assert!(acc > ANIL_MIN, "ANIL test accuracy {acc}");
    }
}

#[test]
fn boil_learns_omniglot_5w1s() {
    let learner = Boil::new(backbone(), BoilConfig::default());
    if let Some(acc) = train_and_test(learner, adam(BOIL_ITERS, 4, 3e-3), 5) {
        assert!(acc > BOIL_MIN, "BOIL test accuracy {acc}");
    }
}

#[test]
fn metasgd_learns_omniglot_5w1s() {
    let learner = MetaSgd::new(backbone(), MetaSgdConfig::default());
    if let Some(acc) = train_and_test(learner, adam(METASGD_ITERS, 4, 3e-3), 5) {
        assert!(acc > METASGD_MIN, "Meta-SGD test accuracy {acc}");
    }
}

#[test]
fn reptile_learns_omniglot_5w1s() {
    // Nichol et al.'s inner loop (Adam β₁ = 0, batch 10, 5 steps, support ∪ query as 10 train
    // shots) with a 3× larger inner rate and 20 instead of 50 test-time steps to fit the budget.
    let config = ReptileConfig {
        inner_steps_test: REPTILE_TEST_STEPS,
        inner_lr: 3e-3,
        ..ReptileConfig::default()
    };
    let learner = Reptile::new(backbone(), config);
    let trainer = TrainerConfig {
        optimizer: OuterOptimizer::Sgd,
        lr: 1.0,
        schedule: LrSchedule::Linear { final_lr: 0.0 },
        ..adam(REPTILE_ITERS, 5, 1.0)
    };
    if let Some(acc) = train_and_test(learner, trainer, 9) {
        assert!(acc > REPTILE_MIN, "Reptile test accuracy {acc}");
    }
}
