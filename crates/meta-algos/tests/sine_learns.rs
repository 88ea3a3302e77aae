//! MAML adapts on the sine waves of Finn et al. (2017, §5.1) and the pre-trained baseline does
//! not: both are trained for the same small CPU budget on the same tasks (FcNet 1→40→40→1 ReLU,
//! meta-batch 25, Adam 1e-3, inner rate 0.01, one inner step while training, mean squared
//! error), then evaluated on the same test tasks after 0…10 steps of fine-tuning on K = 10
//! points. The untrained network, adapted the same way, is the control.
//!
//! `SINE_ITERS=<n>` overrides the iteration count (for probing).

use burn::backend::{Autodiff, Flex};
use meta_algos::{
    EvalConfig, FnFactory, Maml, MamlConfig, MetaLearner, Pretrain, PretrainConfig, StepsReport,
    Trainer, TrainerConfig, evaluate_steps,
};
use meta_backbones::{FcNet, FcNetConfig, Loss};
use meta_data::{SineConfig, SineTasks, Split};

type B = Autodiff<Flex>;

const ITERS: u64 = 4000;
const STEPS: usize = 10;
const TEST_TASKS: usize = 100;
const SEED: u64 = 5;

/// MAML's sine network.
fn network() -> FnFactory<B, FcNet<B>> {
    FnFactory::new("fcnet-1-40-40-1", |device| {
        FcNetConfig {
            x_dim: 1,
            layer_dims: vec![40, 40],
            dropout: 0.0,
            num_classes: 1,
            batch_norm: false,
            ..FcNetConfig::default()
        }
        .init(device)
    })
}

fn iterations() -> u64 {
    std::env::var("SINE_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(ITERS)
}

/// Trains `learner` for the budget (or not at all with `iterations` 0) and evaluates the MSE
/// after 0…STEPS fine-tuning steps on the test tasks.
fn train_and_evaluate<L: MetaLearner<B> + 'static>(learner: L, iterations: u64) -> StepsReport {
    let device = Default::default();
    let sine = SineConfig::default();
    let train = SineTasks::new(sine, Split::Train, SEED).unwrap();
    let config = TrainerConfig {
        iterations,
        meta_batch: 25,
        lr: 1e-3,
        val_every: 0,
        seed: SEED,
        ..TrainerConfig::default()
    };
    let mut trainer = Trainer::new(learner, config, &device).unwrap();
    trainer.run(train, None, None, |_| {}).unwrap();
    let test = SineTasks::new(
        SineConfig {
            queries: 50,
            ..sine
        },
        Split::Test,
        SEED,
    )
    .unwrap();
    let eval = EvalConfig {
        episodes: TEST_TASKS,
        seed: SEED,
    };
    evaluate_steps(
        trainer.learner(),
        trainer.model(),
        &test,
        &eval,
        STEPS,
        &device,
    )
    .unwrap()
}

fn maml() -> Maml<FnFactory<B, FcNet<B>>> {
    Maml::new(
        network(),
        MamlConfig {
            inner_lr: 0.01,
            inner_steps_train: 1,
            inner_steps_test: STEPS,
            loss: Loss::Mse,
        },
    )
}

#[test]
fn maml_adapts_to_sine_waves_and_the_pretrained_baseline_does_not() {
    let iters = iterations();
    let start = std::time::Instant::now();
    let trained = train_and_evaluate(maml(), iters);
    let maml_s = start.elapsed().as_secs_f64();
    let control = train_and_evaluate(maml(), 0);
    let pretrained = train_and_evaluate(Pretrain::new(network(), PretrainConfig::default()), iters);
    let show = |r: &StepsReport| {
        [0, 1, STEPS]
            .map(|k| format!("{k} steps {:.3} ± {:.3}", r.mse[k], r.ci95[k]))
            .join(", ")
    };
    println!("{iters} iterations × 25 tasks, K = 10, {TEST_TASKS} test tasks (MAML {maml_s:.0} s)");
    println!("MAML:       {}", show(&trained));
    println!("pretrained: {}", show(&pretrained));
    println!("untrained:  {}", show(&control));
    let (maml_10, base_10, control_10) = (
        trained.mse[STEPS],
        pretrained.mse[STEPS],
        control.mse[STEPS],
    );
    // MAML's adapted error is well below the baseline's and the untrained network's, with room
    // for their confidence intervals.
    assert!(
        maml_10 + trained.ci95[STEPS] < 0.6 * (base_10 - pretrained.ci95[STEPS]),
        "MAML after {STEPS} steps {maml_10:.3} is not clearly below the pretrained {base_10:.3}"
    );
    assert!(
        maml_10 < 0.5 * control_10,
        "MAML after {STEPS} steps {maml_10:.3} vs untrained {control_10:.3}"
    );
    // MAML learned to adapt: fine-tuning cuts its error by a far larger factor than the
    // baseline's (whose 10 steps of rate 0.01 do lower its error somewhat).
    let gain = |r: &StepsReport| r.mse[STEPS] / r.mse[0];
    assert!(
        gain(&trained) < 0.5 * gain(&pretrained),
        "MAML's error after/before fine-tuning {:.3} vs the baseline's {:.3}",
        gain(&trained),
        gain(&pretrained)
    );
}
