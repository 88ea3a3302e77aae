//! The table of every preset.

use super::Preset;
use super::rows::*;
use crate::baseline::BaselineHead;

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
    metanet_row("metanet-omniglot-5w1s", 5),
    metanet_row("metanet-omniglot-20w1s", 20),
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
    with_fce(metric_miniimagenet_row(
        "matchingnet-miniimagenet-5w1s",
        "matchingnet",
        1,
        None,
        RAVI_PAPER,
        MATCHINGNET_MINI_NOTE,
    )),
    with_fce(metric_miniimagenet_row(
        "matchingnet-miniimagenet-5w5s",
        "matchingnet",
        5,
        None,
        RAVI_PAPER,
        MATCHINGNET_MINI_NOTE,
    )),
    metanet_miniimagenet_row("metanet-miniimagenet-5w1s"),
    // --- MAML++: learned per-step rates, multi-step loss, per-step batch-norm.
    mamlpp_row("mamlpp-omniglot-5w1s", true, 5, 1),
    mamlpp_row("mamlpp-omniglot-20w1s", true, 20, 1),
    mamlpp_row("mamlpp-miniimagenet-5w1s", false, 5, 1),
    mamlpp_row("mamlpp-miniimagenet-5w5s", false, 5, 5),
    // --- Pre-training baselines: one classifier over all training classes, a new head per episode.
    baseline_row(
        "baseline-omniglot-5w1s",
        BaselineHead::Linear,
        true,
        5,
        1,
        BASELINE_NOTE,
    ),
    baseline_row(
        "baseline-omniglot-20w1s",
        BaselineHead::Linear,
        true,
        20,
        1,
        BASELINE_NOTE,
    ),
    baseline_row(
        "baselinepp-omniglot-5w1s",
        BaselineHead::Cosine,
        true,
        5,
        1,
        BASELINEPP_NOTE,
    ),
    baseline_row(
        "baselinepp-omniglot-20w1s",
        BaselineHead::Cosine,
        true,
        20,
        1,
        BASELINEPP_NOTE,
    ),
    baseline_row(
        "baseline-miniimagenet-5w1s",
        BaselineHead::Linear,
        false,
        5,
        1,
        BASELINE_NOTE,
    ),
    baseline_row(
        "baseline-miniimagenet-5w5s",
        BaselineHead::Linear,
        false,
        5,
        5,
        BASELINE_NOTE,
    ),
    baseline_row(
        "baselinepp-miniimagenet-5w1s",
        BaselineHead::Cosine,
        false,
        5,
        1,
        BASELINEPP_NOTE,
    ),
    baseline_row(
        "baselinepp-miniimagenet-5w5s",
        BaselineHead::Cosine,
        false,
        5,
        5,
        BASELINEPP_NOTE,
    ),
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
    // --- Sine-wave regression (Finn et al. 2017, sec. 5.1), K support points per task.
    sine_row("maml-sine-5shot", "maml", 5, SINE_NOTE),
    sine_row("maml-sine-10shot", "maml", 10, SINE_NOTE),
    sine_row("maml-sine-20shot", "maml", 20, SINE_NOTE),
    sine_row("fomaml-sine-10shot", "fomaml", 10, SINE_NOTE),
    metasgd_sine_row("metasgd-sine-10shot"),
    pretrain_sine_row("pretrain-sine-10shot", 10),
    reptile_sine_row("reptile-sine-10shot"),
];
