//! The papers' settings behind the presets: one constructor per algorithm family, and the
//! references and notes the rows carry.

use meta_backbones::{BnConfig, BnMode};
use meta_data::ImageAugment;

use super::{Preset, s, set};
use crate::baseline::BaselineHead;
use crate::mamlpp::MamlPlusPlusOptions;
use crate::reptile::InnerOptimizer;
use crate::train_config::LrSchedule;

/// Finn, Abbeel & Levine (2017), "Model-Agnostic Meta-Learning for Fast Adaptation of Deep
/// Networks", ICML, §5.2 and Appendix A.1.
pub(super) const MAML_PAPER: &str = "Finn, Abbeel & Levine 2017 (MAML), ICML, sec. 5.2 / app. A.1";
/// Raghu, Raghu, Bengio & Vinyals (2020), "Rapid Learning or Feature Reuse? Towards Understanding
/// the Effectiveness of MAML", ICLR.
pub(super) const ANIL_PAPER: &str =
    "Raghu et al. 2020 (ANIL), ICLR, sec. 4; MAML's Omniglot settings";
/// ANIL on Mini-ImageNet: the same paper, with MAML's Mini-ImageNet settings.
pub(super) const ANIL_MINI_PAPER: &str =
    "Raghu et al. 2020 (ANIL), ICLR, sec. 4; MAML's Mini-ImageNet settings";
/// Oh, Yoo, Kim & Yun (2021), "BOIL: Towards Representation Change for Few-shot Learning", ICLR.
pub(super) const BOIL_PAPER: &str = "Oh et al. 2021 (BOIL), ICLR; MAML's Omniglot settings";
/// Nichol, Achiam & Schulman (2018), "On First-Order Meta-Learning Algorithms", arXiv:1803.02999,
/// Table 3 / Appendix A (transductive Omniglot).
pub(super) const REPTILE_PAPER: &str =
    "Nichol, Achiam & Schulman 2018 (Reptile), arXiv:1803.02999, app. A";
/// Li, Zhou, Chen & Li (2017), "Meta-SGD: Learning to Learn Quickly for Few-Shot Learning",
/// arXiv:1707.09835, §4.2.
pub(super) const METASGD_PAPER: &str = "Li et al. 2017 (Meta-SGD), arXiv:1707.09835, sec. 4.2";

/// Snell, Swersky & Zemel (2017), "Prototypical Networks for Few-shot Learning", NeurIPS, §3.1.
pub(super) const PROTONET_PAPER: &str =
    "Snell, Swersky & Zemel 2017 (Prototypical Networks), NeurIPS, sec. 3.1";
/// Munkhdalai & Yu (2017), "Meta Networks", ICML.
pub(super) const METANET_PAPER: &str = "Munkhdalai & Yu 2017 (Meta Networks), ICML";
pub(super) const PROTONET_NOTE: &str = "Paper: 60-way training episodes with 5 queries; we train at the test \
     N-way. Lr 1e-3 halved every 2000 episodes as in the paper. Inner-loop fields unused.";

pub(super) const MAML_NOTE: &str = "Paper: 1 query per class during training, strided convs without \
     max-pool for Omniglot, 3 test steps; we use 15 queries, max-pool Conv4-64 and 10 test steps \
     (issue 4).";
pub(super) const FOMAML_NOTE: &str =
    "First-order approximation, MAML paper sec. 5.2. Same deviations as maml-*.";
pub(super) const MATCHINGNET_PAPER: &str =
    "Vinyals et al. 2016 (Matching Networks), NeurIPS, sec. 4.1";
pub(super) const MATCHINGNET_NOTE: &str =
    "Cosine attention without full-context embeddings; inner-loop fields unused.";
pub(super) const METANET_NOTE: &str = "As published (authors' Omniglot code): base learner and key \
     network are the layer-augmented metanet-cnn (5 conv layers of 64 filters without batch-norm, \
     fc 64); task-level fast weights from 5 support chunks, example-level fast weights for every \
     layer, clipping 10, one task per update. 20,000 iterations (the authors' script allows \
     100,000); 15 queries per class; inner-loop fields unused.";
pub(super) const METANET_MINI_NOTE: &str = "The Omniglot row's networks on 84×84 colour images \
     (five 2×2 pools leave a 3×3 map, fc 576 → 64); the authors' Mini-ImageNet network was not \
     checked; no augmentation; inner-loop fields unused.";
pub(super) const METANET_EB_NOTE: &str = "Embedding-based variant: W_c = mean(U h + e), logits (V h_q)·W_c; \
     clipping 1.0; inner-loop fields unused.";

/// An Omniglot N-way 1-shot row with MAML's settings (Finn et al. 2017, app. A.1): 5-way takes
/// one inner step of rate 0.4 and meta-batch 32, 20-way five steps of rate 0.1 and meta-batch 16;
/// 10 test steps, Adam 1e-3, 60,000 iterations, 15 queries per class, Conv4-64.
pub(super) const fn maml_row(
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
        baseline: None,
        matchingnet_fce: false,
        inner_optimizer: None,
        sine_net: false,
        reference: s(reference),
        note: s(note),
    }
}

/// Meta-SGD: MAML's row with one inner step at train and test time and initial rates 0.1.
pub(super) const fn metasgd_row(name: &'static str, ways: usize, note: &'static str) -> Preset {
    let mut row = maml_row(name, "metasgd", ways, METASGD_PAPER, note);
    row.inner_steps_train = 1;
    row.inner_steps_test = 1;
    row.inner_lr = 0.1;
    row
}

/// Reptile's transductive Omniglot row (Nichol et al. 2018, app. A): 9 queries + 1 shot as the
/// paper's 10 train shots, meta-batch 5, 50 test steps, ε annealed from 1.
pub(super) const fn reptile_row(
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
        baseline: None,
        matchingnet_fce: false,
        inner_optimizer: None,
        sine_net: false,
        reference: s(REPTILE_PAPER),
        note: s(note),
    }
}

/// A metric or Meta Networks row: no inner loop (its fields are unused), Adam 1e-3, 20,000
/// iterations, 15 queries per class, Conv4-64.
pub(super) const fn metric_row(
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
        baseline: None,
        matchingnet_fce: false,
        inner_optimizer: None,
        sine_net: false,
        reference: s(reference),
        note: s(note),
    }
}

/// Meta Networks as published on Omniglot `ways`-way 1-shot: [`metric_row`]'s settings with
/// the layer-augmented `metanet-cnn` networks and one task per update (the authors').
pub(super) const fn metanet_row(name: &'static str, ways: usize) -> Preset {
    let mut row = metric_row(name, "metanet", ways, 1, METANET_PAPER, METANET_NOTE);
    set(&mut row.backbone, "metanet-cnn");
    row
}

/// Meta Networks on Mini-ImageNet 5-way 1-shot: [`metanet_row`] on 84×84 colour images.
pub(super) const fn metanet_miniimagenet_row(name: &'static str) -> Preset {
    let mut row = metanet_row(name, 5);
    set(&mut row.dataset, "miniimagenet");
    set(&mut row.note, METANET_MINI_NOTE);
    row
}

/// Prototypical Networks on Omniglot `ways`-way: [`metric_row`]'s settings with the paper's
/// rate schedule.
pub(super) const fn protonet_row(name: &'static str, ways: usize, note: &'static str) -> Preset {
    let mut row = metric_row(name, "protonet", ways, 1, PROTONET_PAPER, note);
    row.schedule = PROTONET_SCHEDULE;
    row
}

/// `row` with `shots` support images per class and `note`.
pub(super) const fn with_shots(mut row: Preset, shots: usize, note: &'static str) -> Preset {
    row.shots = shots;
    set(&mut row.note, note);
    row
}

/// Ravi & Larochelle (2017), "Optimization as a Model for Few-Shot Learning", ICLR: the
/// Mini-ImageNet split, and the Matching Networks figures on it.
pub(super) const RAVI_PAPER: &str =
    "Ravi & Larochelle 2017, ICLR (Mini-ImageNet split; Matching Networks row)";

/// Finn et al.'s Mini-ImageNet row (app. A.1): Conv4 with 32 filters, 5 inner steps of rate
/// 0.01 at training and 10 at test, meta-batch 4 (1-shot) or 2 (5-shot), 15 queries per class,
/// Adam 1e-3, 60,000 iterations; with the standard training augmentation.
pub(super) const fn maml_miniimagenet_row(
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
pub(super) const fn metric_miniimagenet_row(
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
pub(super) const MAMLPP_PAPER: &str =
    "Antoniou, Edwards & Storkey 2019 (MAML++), ICLR; authors' configs";

/// A MAML++ row (the authors' configuration files): 5 inner steps at training and test time with
/// learned per-step rates, per-step batch-norm, Adam 1e-3 cosine-annealed, 100 epochs of 500
/// iterations. Omniglot: rate 0.1, meta-batch 8, Conv4-64, one query per class in training,
/// multi-step loss over 10 epochs, second order throughout, lr annealed to 1e-5. Mini-ImageNet:
/// rate 0.01, meta-batch 4 (1-shot) / 2 (5-shot), Conv4-48, 15 queries, multi-step loss over 15
/// epochs, first order for the first 11, lr kept at 1e-3 (the authors' floor equals it).
pub(super) const fn mamlpp_row(
    name: &'static str,
    omniglot: bool,
    ways: usize,
    shots: usize,
) -> Preset {
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

pub(super) const MAMLPP_NOTE: &str = "MAML++ with LSLR, MSL, DA, per-step batch-norm (BNWB + BNRS) and \
     cosine annealing as in the authors' configuration files; batch-norm scales and shifts are \
     not adapted in the inner loop (theirs neither); we test on 15 queries per class. Published \
     Omniglot 99.47 (5w1s), 97.65 +- 0.05 (20w1s); Mini-ImageNet 52.15 +- 0.26 (5w1s), \
     68.32 +- 0.44 (5w5s).";

/// Chen, Liu, Kira, Wang & Huang (2019), "A Closer Look at Few-shot Classification", ICLR,
/// sec. 4.1, and the authors' code (CloserLookFewShot).
pub(super) const BASELINE_PAPER: &str =
    "Chen et al. 2019 (Baseline, Baseline++), ICLR, sec. 4.1; authors' code";

/// A pre-training baseline row (Chen et al.): Conv4 with 64 filters and running batch-norm
/// statistics (the authors test in `eval()` mode), Adam 1e-3, 5 epochs of the training images on
/// Omniglot and 400 on Mini-ImageNet (standard augmentation), each test head fitted for 100
/// epochs. Batches are the images of `meta_batch` training tasks (1 query per class): 2 tasks ×
/// 5 classes × 2 images = 20 images (5-way 1-shot), one task of 30 (5-way 5-shot) or 40
/// (20-way 1-shot) images, where the authors draw 16 images at random.
pub(super) const fn baseline_row(
    name: &'static str,
    head: BaselineHead,
    omniglot: bool,
    ways: usize,
    shots: usize,
    note: &'static str,
) -> Preset {
    let mut row = metric_row(name, "baseline", ways, 1, BASELINE_PAPER, note);
    row.shots = shots;
    row.queries_train = 1;
    let per_task = ways * (shots + 1);
    row.meta_batch = if per_task < 20 { 20 / per_task } else { 1 };
    let batch = row.meta_batch * per_task;
    // Omniglot: 4,112 training classes × 20 images; Mini-ImageNet: 64 × 600.
    let (epochs, images) = if omniglot {
        (5, 4_112 * 20)
    } else {
        (400, 64 * 600)
    };
    row.iterations = epochs * images / batch;
    row.validate_every = if omniglot { 2_000 } else { 20_000 };
    row.hidden = Some(64);
    row.bn = Some(BnConfig {
        mode: BnMode::Running,
        momentum: 0.1,
        eps: 1e-5,
    });
    row.baseline = Some(head);
    if !omniglot {
        set(&mut row.dataset, "miniimagenet");
        row.augment = ImageAugment::STANDARD;
    }
    row
}

pub(super) const BASELINE_NOTE: &str = "Pre-training on all training classes with a linear head, then a new \
     linear head fitted on each test episode's support features. Batches are the images of \
     whole training tasks (20 to 40 images, from 5 to 20 classes), not 16 images drawn at random.";
pub(super) const BASELINEPP_NOTE: &str = "Baseline++: the cosine head (scale 10 over the 4,112 Omniglot \
     classes, 2 over Mini-ImageNet's 64 and over 5-way test heads). Batches are the images of \
     whole training tasks, not 16 images drawn at random. Published Mini-ImageNet 48.24 +- 0.75 \
     (5w1s), 66.43 +- 0.63 (5w5s).";

/// Prototypical Networks' rate: halved every 2,000 episodes (Snell et al. 2017, sec. 3.1).
pub(super) const PROTONET_SCHEDULE: Option<LrSchedule> = Some(LrSchedule::Step {
    every: 2_000,
    factor: 0.5,
});

pub(super) const MAML_MINI_NOTE: &str = "Training images augmented as in RFS/MetaOptNet/LibFewShot (crop \
     with padding 8, flip, colour jitter 0.4; the MAML paper used none); 15 queries, max-pool \
     Conv4-32 as in the paper. Published 48.70 +- 1.84 (1-shot), 63.11 +- 0.92 (5-shot).";
pub(super) const FOMAML_MINI_NOTE: &str = "First-order MAML, settings and augmentation as maml-miniimagenet-*. \
     Published 48.07 +- 1.75 (1-shot), 63.15 +- 0.91 (5-shot).";
pub(super) const ANIL_MINI_NOTE: &str = "MAML's Mini-ImageNet settings and augmentation; inner loop on the \
     head only. Published 46.7 +- 0.4 (1-shot), 61.5 +- 0.5 (5-shot) (Raghu et al., Table 2).";
pub(super) const PROTONET_MINI_NOTE: &str = "Paper: 30-way (1-shot) / 20-way (5-shot) training episodes and \
     no augmentation; we train at 5-way with the standard augmentation (crop with padding 8, flip, \
     colour jitter 0.4). Lr 1e-3 halved every 2000 episodes as in the paper. Published \
     49.42 +- 0.78 (1-shot), 68.20 +- 0.66 (5-shot).";
pub(super) const MATCHINGNET_MINI_NOTE: &str = "Cosine attention with full context embeddings (a \
     bidirectional support LSTM, 5 attention reads per query), Conv4-64, standard augmentation \
     (crop with padding 8, flip, colour jitter 0.4). Published (Vinyals et al., FCE) 46.6 \
     (1-shot), 60.0 (5-shot); Ravi & Larochelle's re-run 43.56 +- 0.84, 55.31 +- 0.73.";

/// `row` with Matching Networks' full context embeddings.
pub(super) const fn with_fce(mut row: Preset) -> Preset {
    row.matchingnet_fce = true;
    row
}

/// A CPU budget of a paper row (built with the name `…-cpu` and [`CPU_NOTE`]): its
/// hyper-parameters with `meta_batch` tasks per iteration, `iterations` iterations and a
/// validation of `val_episodes` episodes every `validate_every`, sized to finish in minutes on a
/// 2-core CPU with the default backend.
pub(super) const fn cpu_budget(
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

pub(super) const CPU_NOTE: &str = "CPU budget of the paper row without `-cpu`: same hyper-parameters, fewer \
     iterations (and tasks per iteration); measured accuracy and wall time in docs/results.md.";

/// Finn, Abbeel & Levine (2017), §5.1 and app. A.1: the sine-wave regression benchmark.
pub(super) const SINE_PAPER: &str = "Finn, Abbeel & Levine 2017 (MAML), ICML, sec. 5.1 / app. A.1";
pub(super) const SINE_NOTE: &str = "Amplitude U[0.1, 5], phase U[0, pi], x ~ U[-5, 5]; FcNet \
     1-40-40-1 ReLU; MSE; K support points and K query points per training task (the paper \
     samples K points per task for each); 10 test steps of rate 0.01 on the K points, 100 query \
     points per test task; 600 test tasks.";
pub(super) const SINE_PRETRAIN_NOTE: &str = "The paper's pretrained baseline: one network \
     regressing all training tasks' points (Adam 1e-3, 25 tasks per step), fine-tuned at test time \
     by 10 SGD steps of rate 0.02 on the K points (the step of the paper's Figure 3 legend for \
     K = 10 and 20).";
/// Nichol, Achiam & Schulman (2018): the sine demonstration of Reptile (the paper's Figure 1
/// and its published script).
pub(super) const REPTILE_SINE_PAPER: &str =
    "Nichol, Achiam & Schulman 2018 (Reptile), arXiv:1803.02999, fig. 1 and its sine script";
pub(super) const REPTILE_SINE_NOTE: &str = "Inner SGD of rate 0.02 over minibatches of 10 of \
     the task's 50 points (10 support + 40 query), inner batch 10, 5 steps (one epoch); outer \
     step 0.1 annealed linearly to 0, one task per step, 30,000 iterations; evaluated like MAML's \
     row (10 test steps of rate 0.02 on the 10 support points).";

/// A sine-wave row with MAML's settings (Finn et al. 2017, §5.1): K support and K query points
/// per task, one inner step of rate 0.01, meta-batch 25, Adam 1e-3, 70,000 iterations, 10 test
/// steps; MAML's sine network.
pub(super) const fn sine_row(
    name: &'static str,
    algo: &'static str,
    shots: usize,
    note: &'static str,
) -> Preset {
    let mut row = maml_row(name, algo, 1, SINE_PAPER, note);
    set(&mut row.dataset, "sine");
    set(&mut row.backbone, "fcnet");
    row.shots = shots;
    row.queries_train = shots;
    row.queries_test = 100;
    row.inner_steps_train = 1;
    row.inner_steps_test = 10;
    row.inner_lr = 0.01;
    row.meta_batch = 25;
    row.iterations = 70_000;
    row.validate_every = 5_000;
    row.sine_net = true;
    row
}

/// Meta-SGD's sine row: [`sine_row`] with one test step, as it is trained (Li et al. 2017
/// adapt in one step; its learned rates applied ten times diverge).
pub(super) const fn metasgd_sine_row(name: &'static str) -> Preset {
    let mut row = sine_row(name, "metasgd", 10, METASGD_SINE_NOTE);
    set(&mut row.reference, METASGD_PAPER);
    row.inner_steps_test = 1;
    row
}

pub(super) const METASGD_SINE_NOTE: &str = "MAML's sine setting (Finn et al. 2017, sec. 5.1) \
     with Meta-SGD's learned per-parameter rates, initialised uniformly in [0.005, 0.01] (the \
     CLI's init_low to inner_lr); one inner step at training and at test time.";

/// Reptile's sine row (Nichol et al. 2018, the sine script): see [`REPTILE_SINE_NOTE`].
pub(super) const fn reptile_sine_row(name: &'static str) -> Preset {
    let mut row = sine_row(name, "reptile", 10, REPTILE_SINE_NOTE);
    set(&mut row.reference, REPTILE_SINE_PAPER);
    row.queries_train = 40;
    row.inner_steps_train = 5;
    row.inner_lr = 0.02;
    row.meta_lr = 0.1;
    row.meta_batch = 1;
    row.iterations = 30_000;
    row.inner_batch = Some(10);
    row.inner_optimizer = Some(InnerOptimizer::Sgd);
    row
}

/// The pretrained baseline's sine row: [`sine_row`] with fine-tuning rate 0.02.
pub(super) const fn pretrain_sine_row(name: &'static str, shots: usize) -> Preset {
    let mut row = sine_row(name, "pretrain", shots, SINE_PRETRAIN_NOTE);
    row.inner_lr = 0.02;
    row
}
