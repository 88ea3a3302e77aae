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

use meta_backbones::{BnConfig, BnMode};
use meta_data::ImageAugment;
use serde::{Deserialize, Serialize};

use crate::mamlpp::MamlPlusPlusOptions;
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
    /// The paper (and table/section) the values come from.
    pub reference: Cow<'static, str>,
    /// Where our protocol deviates from the paper's, or which values the paper does not fix.
    pub note: Cow<'static, str>,
}

const fn s(text: &'static str) -> Cow<'static, str> {
    Cow::Borrowed(text)
}

/// Replaces a borrowed text field in a `const fn` (where the old value cannot be dropped; a
/// borrowed `Cow` owns nothing to free).
const fn set(slot: &mut Cow<'static, str>, text: &'static str) {
    std::mem::forget(std::mem::replace(slot, s(text)));
}

/// Finn, Abbeel & Levine (2017), "Model-Agnostic Meta-Learning for Fast Adaptation of Deep
/// Networks", ICML, §5.2 and Appendix A.1.
const MAML_PAPER: &str = "Finn, Abbeel & Levine 2017 (MAML), ICML, sec. 5.2 / app. A.1";
/// Raghu, Raghu, Bengio & Vinyals (2020), "Rapid Learning or Feature Reuse? Towards Understanding
/// the Effectiveness of MAML", ICLR.
const ANIL_PAPER: &str = "Raghu et al. 2020 (ANIL), ICLR, sec. 4; MAML's Omniglot settings";
/// ANIL on Mini-ImageNet: the same paper, with MAML's Mini-ImageNet settings.
const ANIL_MINI_PAPER: &str =
    "Raghu et al. 2020 (ANIL), ICLR, sec. 4; MAML's Mini-ImageNet settings";
/// Oh, Yoo, Kim & Yun (2021), "BOIL: Towards Representation Change for Few-shot Learning", ICLR.
const BOIL_PAPER: &str = "Oh et al. 2021 (BOIL), ICLR; MAML's Omniglot settings";
/// Nichol, Achiam & Schulman (2018), "On First-Order Meta-Learning Algorithms", arXiv:1803.02999,
/// Table 3 / Appendix A (transductive Omniglot).
const REPTILE_PAPER: &str = "Nichol, Achiam & Schulman 2018 (Reptile), arXiv:1803.02999, app. A";
/// Li, Zhou, Chen & Li (2017), "Meta-SGD: Learning to Learn Quickly for Few-Shot Learning",
/// arXiv:1707.09835, §4.2.
const METASGD_PAPER: &str = "Li et al. 2017 (Meta-SGD), arXiv:1707.09835, sec. 4.2";

/// Snell, Swersky & Zemel (2017), "Prototypical Networks for Few-shot Learning", NeurIPS, §3.1.
const PROTONET_PAPER: &str =
    "Snell, Swersky & Zemel 2017 (Prototypical Networks), NeurIPS, sec. 3.1";
/// Munkhdalai & Yu (2017), "Meta Networks", ICML.
const METANET_PAPER: &str = "Munkhdalai & Yu 2017 (Meta Networks), ICML";
const PROTONET_NOTE: &str = "Paper: 60-way training episodes with 5 queries; we train at the test \
     N-way. Lr 1e-3 halved every 2000 episodes as in the paper. Inner-loop fields unused.";

const MAML_NOTE: &str = "Paper: 1 query per class during training, strided convs without \
     max-pool for Omniglot, 3 test steps; we use 15 queries, max-pool Conv4-64 and 10 test steps \
     (issue 4).";
const FOMAML_NOTE: &str =
    "First-order approximation, MAML paper sec. 5.2. Same deviations as maml-*.";
const MATCHINGNET_PAPER: &str = "Vinyals et al. 2016 (Matching Networks), NeurIPS, sec. 4.1";
const MATCHINGNET_NOTE: &str =
    "Cosine attention without full-context embeddings; inner-loop fields unused.";
const METANET_NOTE: &str = "Example-level fast weights on the output layer only (see metanet.rs); \
     gradient clipping 1.0; inner-loop fields unused.";
const METANET_EB_NOTE: &str = "Embedding-based variant: W_c = mean(U h + e), logits (V h_q)·W_c; \
     clipping 1.0; inner-loop fields unused.";

/// An Omniglot N-way 1-shot row with MAML's settings (Finn et al. 2017, app. A.1): 5-way takes
/// one inner step of rate 0.4 and meta-batch 32, 20-way five steps of rate 0.1 and meta-batch 16;
/// 10 test steps, Adam 1e-3, 60,000 iterations, 15 queries per class, Conv4-64.
const fn maml_row(
    name: &'static str,
    algo: &'static str,
    ways: usize,
    reference: &'static str,
    note: &'static str,
) -> Preset {
    let twenty = ways >= 20;
    Preset {
        name: s(name),
        algo: s(algo),
        dataset: s("omniglot"),
        ways,
        shots: 1,
        queries_train: 15,
        queries_test: 15,
        inner_steps_train: if twenty { 5 } else { 1 },
        inner_steps_test: 10,
        inner_lr: if twenty { 0.1 } else { 0.4 },
        meta_lr: 1e-3,
        meta_batch: if twenty { 16 } else { 32 },
        iterations: 60_000,
        validate_every: 500,
        val_episodes: 100,
        inner_batch: None,
        backbone: s("conv4"),
        hidden: None,
        augment: ImageAugment::NONE,
        schedule: None,
        bn: None,
        mamlpp: None,
        reference: s(reference),
        note: s(note),
    }
}

/// Meta-SGD: MAML's row with one inner step at train and test time and initial rates 0.1.
const fn metasgd_row(name: &'static str, ways: usize, note: &'static str) -> Preset {
    let mut row = maml_row(name, "metasgd", ways, METASGD_PAPER, note);
    row.inner_steps_train = 1;
    row.inner_steps_test = 1;
    row.inner_lr = 0.1;
    row
}

/// Reptile's transductive Omniglot row (Nichol et al. 2018, app. A): 9 queries + 1 shot as the
/// paper's 10 train shots, meta-batch 5, 50 test steps, ε annealed from 1.
const fn reptile_row(
    name: &'static str,
    ways: usize,
    inner_steps_train: usize,
    inner_lr: f64,
    inner_batch: usize,
    iterations: usize,
    note: &'static str,
) -> Preset {
    Preset {
        name: s(name),
        algo: s("reptile"),
        dataset: s("omniglot"),
        ways,
        shots: 1,
        queries_train: 9,
        queries_test: 15,
        inner_steps_train,
        inner_steps_test: 50,
        inner_lr,
        meta_lr: 1.0,
        meta_batch: 5,
        iterations,
        validate_every: 500,
        val_episodes: 100,
        inner_batch: Some(inner_batch),
        backbone: s("conv4"),
        hidden: None,
        augment: ImageAugment::NONE,
        schedule: None,
        bn: None,
        mamlpp: None,
        reference: s(REPTILE_PAPER),
        note: s(note),
    }
}

/// A metric or Meta Networks row: no inner loop (its fields are unused), Adam 1e-3, 20,000
/// iterations, 15 queries per class, Conv4-64.
const fn metric_row(
    name: &'static str,
    algo: &'static str,
    ways: usize,
    meta_batch: usize,
    reference: &'static str,
    note: &'static str,
) -> Preset {
    Preset {
        name: s(name),
        algo: s(algo),
        dataset: s("omniglot"),
        ways,
        shots: 1,
        queries_train: 15,
        queries_test: 15,
        inner_steps_train: 1,
        inner_steps_test: 1,
        inner_lr: 0.4,
        meta_lr: 1e-3,
        meta_batch,
        iterations: 20_000,
        validate_every: 500,
        val_episodes: 100,
        inner_batch: None,
        backbone: s("conv4"),
        hidden: None,
        augment: ImageAugment::NONE,
        schedule: None,
        bn: None,
        mamlpp: None,
        reference: s(reference),
        note: s(note),
    }
}

/// Prototypical Networks on Omniglot `ways`-way: [`metric_row`]'s settings with the paper's
/// rate schedule.
const fn protonet_row(name: &'static str, ways: usize, note: &'static str) -> Preset {
    let mut row = metric_row(name, "protonet", ways, 1, PROTONET_PAPER, note);
    row.schedule = PROTONET_SCHEDULE;
    row
}

/// `row` with `shots` support images per class and `note`.
const fn with_shots(mut row: Preset, shots: usize, note: &'static str) -> Preset {
    row.shots = shots;
    set(&mut row.note, note);
    row
}

/// Ravi & Larochelle (2017), "Optimization as a Model for Few-Shot Learning", ICLR: the
/// Mini-ImageNet split, and the Matching Networks figures on it.
const RAVI_PAPER: &str =
    "Ravi & Larochelle 2017, ICLR (Mini-ImageNet split; Matching Networks row)";

/// Finn et al.'s Mini-ImageNet row (app. A.1): Conv4 with 32 filters, 5 inner steps of rate
/// 0.01 at training and 10 at test, meta-batch 4 (1-shot) or 2 (5-shot), 15 queries per class,
/// Adam 1e-3, 60,000 iterations; with the standard training augmentation.
const fn maml_miniimagenet_row(
    name: &'static str,
    algo: &'static str,
    shots: usize,
    reference: &'static str,
    note: &'static str,
) -> Preset {
    let mut row = maml_row(name, algo, 5, reference, note);
    set(&mut row.dataset, "miniimagenet");
    row.shots = shots;
    row.inner_steps_train = 5;
    row.inner_steps_test = 10;
    row.inner_lr = 0.01;
    row.meta_batch = if shots == 1 { 4 } else { 2 };
    row.hidden = Some(32);
    row.augment = ImageAugment::STANDARD;
    row
}

/// A metric-based Mini-ImageNet 5-way row: Conv4-64, Adam 1e-3 (`schedule` over it), one
/// episode per iteration, 20,000 iterations, 15 queries per class, standard augmentation.
const fn metric_miniimagenet_row(
    name: &'static str,
    algo: &'static str,
    shots: usize,
    schedule: Option<LrSchedule>,
    reference: &'static str,
    note: &'static str,
) -> Preset {
    let mut row = metric_row(name, algo, 5, 1, reference, note);
    set(&mut row.dataset, "miniimagenet");
    row.shots = shots;
    row.hidden = Some(64);
    row.augment = ImageAugment::STANDARD;
    row.schedule = schedule;
    row
}

/// Antoniou, Edwards & Storkey (2019), "How to train your MAML", ICLR; settings from the
/// authors' `experiment_config/` files (HowToTrainYourMAMLPytorch).
const MAMLPP_PAPER: &str = "Antoniou, Edwards & Storkey 2019 (MAML++), ICLR; authors' configs";

/// A MAML++ row (the authors' configuration files): 5 inner steps at training and test time with
/// learned per-step rates, per-step batch-norm, Adam 1e-3 cosine-annealed, 100 epochs of 500
/// iterations. Omniglot: rate 0.1, meta-batch 8, Conv4-64, one query per class in training,
/// multi-step loss over 10 epochs, second order throughout, lr annealed to 1e-5. Mini-ImageNet:
/// rate 0.01, meta-batch 4 (1-shot) / 2 (5-shot), Conv4-48, 15 queries, multi-step loss over 15
/// epochs, first order for the first 11, lr kept at 1e-3 (the authors' floor equals it).
const fn mamlpp_row(name: &'static str, omniglot: bool, ways: usize, shots: usize) -> Preset {
    let mut row = maml_row(name, "mamlpp", ways, MAMLPP_PAPER, MAMLPP_NOTE);
    if !omniglot {
        set(&mut row.dataset, "miniimagenet");
    }
    row.shots = shots;
    row.inner_steps_train = 5;
    row.inner_steps_test = 5;
    row.iterations = 50_000;
    row.bn = Some(BnConfig {
        mode: BnMode::PerStep { steps: 5 },
        momentum: 0.1,
        eps: 1e-5,
    });
    if omniglot {
        row.inner_lr = 0.1;
        row.meta_batch = 8;
        row.queries_train = 1;
        row.schedule = Some(LrSchedule::Cosine { floor: 1e-5 });
        row.mamlpp = Some(MamlPlusPlusOptions::OMNIGLOT);
    } else {
        row.inner_lr = 0.01;
        row.meta_batch = if shots == 1 { 4 } else { 2 };
        row.hidden = Some(48);
        row.mamlpp = Some(MamlPlusPlusOptions::MINI_IMAGENET);
    }
    row
}

const MAMLPP_NOTE: &str = "MAML++ with LSLR, MSL, DA, per-step batch-norm (BNWB + BNRS) and \
     cosine annealing as in the authors' configuration files; batch-norm scales and shifts are \
     not adapted in the inner loop (theirs neither); we test on 15 queries per class. Published \
     Omniglot 99.47 (5w1s), 97.65 +- 0.05 (20w1s); Mini-ImageNet 52.15 +- 0.26 (5w1s), \
     68.32 +- 0.44 (5w5s).";

/// Prototypical Networks' rate: halved every 2,000 episodes (Snell et al. 2017, sec. 3.1).
const PROTONET_SCHEDULE: Option<LrSchedule> = Some(LrSchedule::Step {
    every: 2_000,
    factor: 0.5,
});

const MAML_MINI_NOTE: &str = "Training images augmented as in RFS/MetaOptNet/LibFewShot (crop \
     with padding 8, flip, colour jitter 0.4; the MAML paper used none); 15 queries, max-pool \
     Conv4-32 as in the paper. Published 48.70 +- 1.84 (1-shot), 63.11 +- 0.92 (5-shot).";
const FOMAML_MINI_NOTE: &str = "First-order MAML, settings and augmentation as maml-miniimagenet-*. \
     Published 48.07 +- 1.75 (1-shot), 63.15 +- 0.91 (5-shot).";
const ANIL_MINI_NOTE: &str = "MAML's Mini-ImageNet settings and augmentation; inner loop on the \
     head only. Published 46.7 +- 0.4 (1-shot), 61.5 +- 0.5 (5-shot) (Raghu et al., Table 2).";
const PROTONET_MINI_NOTE: &str = "Paper: 30-way (1-shot) / 20-way (5-shot) training episodes and \
     no augmentation; we train at 5-way with the standard augmentation (crop with padding 8, flip, \
     colour jitter 0.4). Lr 1e-3 halved every 2000 episodes as in the paper. Published \
     49.42 +- 0.78 (1-shot), 68.20 +- 0.66 (5-shot).";
const MATCHINGNET_MINI_NOTE: &str = "Cosine attention without full-context embeddings, Conv4-64, \
     standard augmentation (crop with padding 8, flip, colour jitter 0.4). Published \
     (Ravi & Larochelle's re-run) 43.56 +- 0.84 (1-shot), 55.31 +- 0.73 (5-shot).";

/// A CPU budget of a paper row (built with the name `…-cpu` and [`CPU_NOTE`]): its
/// hyper-parameters with `meta_batch` tasks per iteration, `iterations` iterations and a
/// validation of `val_episodes` episodes every `validate_every`, sized to finish in minutes on a
/// 2-core CPU with the default backend.
const fn cpu_budget(
    mut row: Preset,
    meta_batch: usize,
    iterations: usize,
    validate_every: usize,
    val_episodes: usize,
) -> Preset {
    row.meta_batch = meta_batch;
    row.iterations = iterations;
    row.validate_every = validate_every;
    row.val_episodes = val_episodes;
    row
}

const CPU_NOTE: &str = "CPU budget of the paper row without `-cpu`: same hyper-parameters, fewer \
     iterations (and tasks per iteration); measured accuracy and wall time in docs/results.md.";

/// Every preset, in a stable order: each algorithm on Omniglot 5-way and 20-way 1-shot at its
/// paper's budget, Omniglot 5-way 5-shot and Mini-ImageNet 5-way 1-/5-shot rows, then CPU
/// budgets (`-cpu`).
pub const PRESETS: &[Preset] = &[
    // --- MAML: exact second-order meta-gradient.
    maml_row("maml-omniglot-5w1s", "maml", 5, MAML_PAPER, MAML_NOTE),
    maml_row("maml-omniglot-20w1s", "maml", 20, MAML_PAPER, MAML_NOTE),
    // --- First-order MAML: same settings, second-order terms dropped.
    maml_row("fomaml-omniglot-5w1s", "fomaml", 5, MAML_PAPER, FOMAML_NOTE),
    maml_row(
        "fomaml-omniglot-20w1s",
        "fomaml",
        20,
        MAML_PAPER,
        FOMAML_NOTE,
    ),
    // --- ANIL: inner loop on the head only.
    maml_row(
        "anil-omniglot-5w1s",
        "anil",
        5,
        ANIL_PAPER,
        "ANIL reuses MAML's hyper-parameters; the paper reports 20-way only (96.2%).",
    ),
    maml_row(
        "anil-omniglot-20w1s",
        "anil",
        20,
        ANIL_PAPER,
        "Published: 96.2% (Raghu et al. 2020, Table 2).",
    ),
    // --- BOIL: inner loop on the body only, head frozen.
    maml_row(
        "boil-omniglot-5w1s",
        "boil",
        5,
        BOIL_PAPER,
        "BOIL's paper tunes on miniImageNet (inner lr 0.5); Omniglot values are MAML's.",
    ),
    maml_row(
        "boil-omniglot-20w1s",
        "boil",
        20,
        BOIL_PAPER,
        "BOIL's paper reports no Omniglot figures; values are MAML's 20-way ones.",
    ),
    // --- Reptile: k inner Adam steps, outer step ε annealed 1 → 0.
    reptile_row(
        "reptile-omniglot-5w1s",
        5,
        5,
        1e-3,
        10,
        100_000,
        "Inner Adam (beta1 = 0), inner batch 10, meta-train on support and query together \
         (1 + 9 = the paper's 10 train shots); epsilon annealed linearly from 1 to 0. \
         Published 97.68% (transductive).",
    ),
    reptile_row(
        "reptile-omniglot-20w1s",
        20,
        10,
        5e-4,
        20,
        200_000,
        "Inner Adam (beta1 = 0), inner batch 20, support and query together as 10 train \
         shots; epsilon annealed linearly from 1 to 0. Published 89.43% (transductive).",
    ),
    // --- Meta-SGD: per-parameter learned inner rates.
    metasgd_row(
        "metasgd-omniglot-5w1s",
        5,
        "Learned rates initialised uniformly in [0.005, 0.1]; one inner step at train and \
         test time as in the paper. Published 99.53% (5w1s), 95.93% (20w1s).",
    ),
    metasgd_row(
        "metasgd-omniglot-20w1s",
        20,
        "Learned rates initialised uniformly in [0.005, 0.1]; one inner step.",
    ),
    // --- Metric-based and Meta Networks (no inner loop).
    protonet_row("protonet-omniglot-5w1s", 5, PROTONET_NOTE),
    protonet_row("protonet-omniglot-20w1s", 20, PROTONET_NOTE),
    metric_row(
        "matchingnet-omniglot-5w1s",
        "matchingnet",
        5,
        1,
        MATCHINGNET_PAPER,
        MATCHINGNET_NOTE,
    ),
    metric_row(
        "matchingnet-omniglot-20w1s",
        "matchingnet",
        20,
        1,
        MATCHINGNET_PAPER,
        MATCHINGNET_NOTE,
    ),
    metric_row(
        "metanet-omniglot-5w1s",
        "metanet",
        5,
        4,
        METANET_PAPER,
        METANET_NOTE,
    ),
    metric_row(
        "metanet-omniglot-20w1s",
        "metanet",
        20,
        4,
        METANET_PAPER,
        METANET_NOTE,
    ),
    metric_row(
        "metanet-eb-omniglot-5w1s",
        "metanet-eb",
        5,
        1,
        METANET_PAPER,
        METANET_EB_NOTE,
    ),
    metric_row(
        "metanet-eb-omniglot-20w1s",
        "metanet-eb",
        20,
        1,
        METANET_PAPER,
        METANET_EB_NOTE,
    ),
    // --- Omniglot 5-way 5-shot: the 1-shot rows' settings with five support images.
    with_shots(
        maml_row("maml-omniglot-5w5s", "maml", 5, MAML_PAPER, MAML_NOTE),
        5,
        "MAML's 5-way settings with 5 shots. Published 99.9 +- 0.1. Same deviations as \
         maml-omniglot-5w1s.",
    ),
    with_shots(
        maml_row("fomaml-omniglot-5w5s", "fomaml", 5, MAML_PAPER, FOMAML_NOTE),
        5,
        "First-order MAML with 5 shots. Published 99.2 +- 0.2.",
    ),
    with_shots(
        metasgd_row("metasgd-omniglot-5w5s", 5, ""),
        5,
        "Meta-SGD with 5 shots, one inner step. Published 99.93 +- 0.09.",
    ),
    with_shots(
        protonet_row("protonet-omniglot-5w5s", 5, PROTONET_NOTE),
        5,
        "Paper: 60-way training episodes with 5 queries; we train at 5-way. Lr 1e-3 halved every \
         2000 episodes as in the paper. Published 99.7.",
    ),
    with_shots(
        metric_row(
            "matchingnet-omniglot-5w5s",
            "matchingnet",
            5,
            1,
            MATCHINGNET_PAPER,
            MATCHINGNET_NOTE,
        ),
        5,
        "Cosine attention without full-context embeddings. Published 98.9.",
    ),
    // --- Mini-ImageNet 5-way 1-shot and 5-shot (the 20-images-per-class subset the tests use is
    // enough to run them, not to reproduce the published figures).
    maml_miniimagenet_row(
        "maml-miniimagenet-5w1s",
        "maml",
        1,
        MAML_PAPER,
        MAML_MINI_NOTE,
    ),
    maml_miniimagenet_row(
        "maml-miniimagenet-5w5s",
        "maml",
        5,
        MAML_PAPER,
        MAML_MINI_NOTE,
    ),
    maml_miniimagenet_row(
        "fomaml-miniimagenet-5w1s",
        "fomaml",
        1,
        MAML_PAPER,
        FOMAML_MINI_NOTE,
    ),
    maml_miniimagenet_row(
        "fomaml-miniimagenet-5w5s",
        "fomaml",
        5,
        MAML_PAPER,
        FOMAML_MINI_NOTE,
    ),
    maml_miniimagenet_row(
        "anil-miniimagenet-5w1s",
        "anil",
        1,
        ANIL_MINI_PAPER,
        ANIL_MINI_NOTE,
    ),
    maml_miniimagenet_row(
        "anil-miniimagenet-5w5s",
        "anil",
        5,
        ANIL_MINI_PAPER,
        ANIL_MINI_NOTE,
    ),
    metric_miniimagenet_row(
        "protonet-miniimagenet-5w1s",
        "protonet",
        1,
        PROTONET_SCHEDULE,
        PROTONET_PAPER,
        PROTONET_MINI_NOTE,
    ),
    metric_miniimagenet_row(
        "protonet-miniimagenet-5w5s",
        "protonet",
        5,
        PROTONET_SCHEDULE,
        PROTONET_PAPER,
        PROTONET_MINI_NOTE,
    ),
    metric_miniimagenet_row(
        "matchingnet-miniimagenet-5w1s",
        "matchingnet",
        1,
        None,
        RAVI_PAPER,
        MATCHINGNET_MINI_NOTE,
    ),
    metric_miniimagenet_row(
        "matchingnet-miniimagenet-5w5s",
        "matchingnet",
        5,
        None,
        RAVI_PAPER,
        MATCHINGNET_MINI_NOTE,
    ),
    // --- MAML++: learned per-step rates, multi-step loss, per-step batch-norm.
    mamlpp_row("mamlpp-omniglot-5w1s", true, 5, 1),
    mamlpp_row("mamlpp-omniglot-20w1s", true, 20, 1),
    mamlpp_row("mamlpp-miniimagenet-5w1s", false, 5, 1),
    mamlpp_row("mamlpp-miniimagenet-5w5s", false, 5, 5),
    // --- CPU budgets: minutes on 2 cores.
    cpu_budget(
        maml_row("maml-omniglot-5w1s-cpu", "maml", 5, MAML_PAPER, CPU_NOTE),
        4,
        800,
        200,
        100,
    ),
    cpu_budget(
        protonet_row("protonet-omniglot-5w1s-cpu", 5, CPU_NOTE),
        1,
        8_000,
        1_000,
        100,
    ),
    cpu_budget(
        with_shots(
            protonet_row("protonet-omniglot-5w5s-cpu", 5, CPU_NOTE),
            5,
            CPU_NOTE,
        ),
        1,
        3_000,
        1_000,
        100,
    ),
    cpu_budget(
        metric_miniimagenet_row(
            "protonet-miniimagenet-5w1s-cpu",
            "protonet",
            1,
            PROTONET_SCHEDULE,
            PROTONET_PAPER,
            CPU_NOTE,
        ),
        1,
        600,
        200,
        100,
    ),
    cpu_budget(
        metric_miniimagenet_row(
            "protonet-miniimagenet-5w5s-cpu",
            "protonet",
            5,
            PROTONET_SCHEDULE,
            PROTONET_PAPER,
            CPU_NOTE,
        ),
        1,
        600,
        200,
        100,
    ),
];

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
            assert!(
                p.ways >= 2 && p.shots >= 1 && p.queries_test >= 1,
                "{}",
                p.name
            );
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
        let results = include_str!("../../../docs/results.md");
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
