//! Tests of the meta-training loop ([`super`]).

use super::*;
use crate::protonet::{ProtoNet, ProtoNetConfig};
use crate::test_util::{Synthetic, TB, TinyNet, param_values, tiny_factory};
use crate::{MetaNetEb, MetaNetEbConfig, StepStats};
use burn::tensor::{Tensor, TensorData};
use std::sync::atomic::{AtomicU64, Ordering};

fn dev() -> burn::tensor::Device<TB> {
    Default::default()
}

fn quiet(iterations: u64) -> TrainerConfig {
    TrainerConfig {
        iterations,
        meta_batch: 2,
        val_every: 0,
        prefetch_threads: 0,
        lr: 1e-2,
        ..TrainerConfig::default()
    }
}

#[test]
fn global_norm_clipping_scales_all_tensors_by_one_factor() {
    let device = dev();
    let net = TinyNet::<TB>::new(2, 1, 1, &device); // w1 [2,1], b1 [1], w2 [1,1]
    let mut grads = GradientsParams::new();
    let g = |v: Vec<f32>, s: [usize; 2]| {
        Tensor::<burn::backend::Flex, 2>::from_data(TensorData::new(v, s), &device)
    };
    grads.register(net.w1.id, g(vec![3.0, 0.0], [2, 1]));
    grads.register(
        net.b1.id,
        Tensor::<burn::backend::Flex, 1>::from_floats([0.0], &device),
    );
    grads.register(net.w2.id, g(vec![4.0], [1, 1]));
    assert!((global_grad_norm::<TB, _>(&net, &grads) - 5.0).abs() < 1e-6);
    let (norm, clipped) = clip_grad_global_norm::<TB, _>(&net, &mut grads, 1.0);
    assert!(clipped && (norm - 5.0).abs() < 1e-6);
    let w1: Vec<f32> = grads
        .get::<burn::backend::Flex, 2>(net.w1.id)
        .map(|t| t.into_data().to_vec().unwrap_or_default())
        .unwrap_or_default();
    let w2: Vec<f32> = grads
        .get::<burn::backend::Flex, 2>(net.w2.id)
        .map(|t| t.into_data().to_vec().unwrap_or_default())
        .unwrap_or_default();
    // Per-tensor clipping would give 1.0 and 1.0; global clipping keeps the 3:4 ratio.
    assert!((w1[0] - 0.6).abs() < 1e-5, "{w1:?}");
    assert!((w2[0] - 0.8).abs() < 1e-5, "{w2:?}");
    assert!((global_grad_norm::<TB, _>(&net, &grads) - 1.0).abs() < 1e-5);
    // Below the threshold nothing changes.
    let (_, clipped) = clip_grad_global_norm::<TB, _>(&net, &mut grads, 2.0);
    assert!(!clipped);
}

#[test]
fn lr_schedules_hit_their_endpoints() {
    let mut c = TrainerConfig {
        iterations: 11,
        lr: 1.0,
        schedule: LrSchedule::Cosine { floor: 0.1 },
        ..TrainerConfig::default()
    };
    assert!((c.lr_at(0) - 1.0).abs() < 1e-12);
    assert!((c.lr_at(5) - 0.55).abs() < 1e-12);
    assert!((c.lr_at(10) - 0.1).abs() < 1e-12);
    c.schedule = LrSchedule::Linear { final_lr: 0.0 };
    assert!((c.lr_at(5) - 0.5).abs() < 1e-12);
    assert!(c.lr_at(10).abs() < 1e-12);
    c.schedule = LrSchedule::Step {
        every: 4,
        factor: 0.5,
    };
    let rates: Vec<f64> = (0..11).map(|it| c.lr_at(it)).collect();
    let halved = [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25];
    assert_eq!(rates, halved);
    for (every, factor) in [(0, 0.5), (4, 0.0), (4, 1.5), (4, f64::NAN)] {
        c.schedule = LrSchedule::Step { every, factor };
        let err = c.check().expect_err("bad step schedule").to_string();
        assert!(err.contains("schedule step"), "{err}");
    }
}

#[test]
fn invalid_trainer_config_is_rejected_naming_the_field() {
    let c = TrainerConfig {
        meta_batch: 0,
        ..TrainerConfig::default()
    };
    let e = c.check().err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("meta_batch"), "{e}");
    let c = TrainerConfig {
        grad_clip: GradClip::Norm(-1.0),
        ..TrainerConfig::default()
    };
    assert!(c.check().is_err());
}

#[test]
fn adam_params_change_the_outer_step_and_are_checked() {
    let source = Synthetic { seed: 3 };
    let tasks: Vec<Task<TB>> = (0..2).map(|i| source.episode(i).to_task(&dev())).collect();
    let learner = || ProtoNet::new(tiny_factory(8), ProtoNetConfig::default());
    let trained = |adam: AdamParams| {
        let config = TrainerConfig { adam, ..quiet(4) };
        let mut trainer = Trainer::new(learner(), config, &dev()).expect("trainer");
        for _ in 0..2 {
            trainer.step_tasks(&tasks).expect("step");
        }
        param_values::<TB, _>(trainer.model())
    };
    let default = trained(AdamParams::default());
    assert_eq!(default, trained(AdamParams::default()));
    for changed in [
        AdamParams {
            beta1: 0.0,
            ..AdamParams::default()
        },
        AdamParams {
            beta2: 0.5,
            ..AdamParams::default()
        },
        AdamParams {
            epsilon: 1.0,
            ..AdamParams::default()
        },
    ] {
        assert_ne!(default, trained(changed), "{changed:?}");
    }
    for (bad, field) in [(1.0, "beta1"), (-0.1, "beta1")] {
        let c = TrainerConfig {
            adam: AdamParams {
                beta1: bad,
                ..AdamParams::default()
            },
            ..TrainerConfig::default()
        };
        let e = c.check().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains(field), "{e}");
    }
    let c = TrainerConfig {
        adam: AdamParams {
            epsilon: 0.0,
            ..AdamParams::default()
        },
        ..TrainerConfig::default()
    };
    assert!(c.check().is_err());
}

#[test]
fn timed_step_updates_like_step_tasks_and_splits_its_time() {
    let source = Synthetic { seed: 3 };
    let tasks: Vec<Task<TB>> = (0..2).map(|i| source.episode(i).to_task(&dev())).collect();
    let learner = || ProtoNet::new(tiny_factory(8), ProtoNetConfig::default());
    let mut plain = Trainer::new(learner(), quiet(4), &dev()).expect("trainer");
    let mut timed = Trainer::new(learner(), quiet(4), &dev()).expect("trainer");
    let m = plain.step_tasks(&tasks).expect("step");
    let (mt, t) = timed.step_tasks_timed(&tasks).expect("timed step");
    assert_eq!((m.loss, m.grad_norm), (mt.loss, mt.grad_norm));
    assert_eq!(
        param_values::<TB, _>(plain.model()),
        param_values::<TB, _>(timed.model())
    );
    assert!(t.meta_grad_s > 0.0 && t.outer_s >= 0.0, "{t:?}");
    assert!(
        (t.meta_grad_s + t.outer_s - mt.seconds).abs() < 1e-9,
        "{t:?} {mt:?}"
    );
}

/// ProtoNet that reports a NaN loss from its `nan_from`-th call on.
struct Flaky {
    inner: ProtoNet<crate::FnFactory<TB, TinyNet<TB>>>,
    calls: AtomicU64,
    nan_from: u64,
}

impl MetaLearner<TB> for Flaky {
    type Model = TinyNet<TB>;
    type Adapted = crate::protonet::Prototypes<TB, TinyNet<TB>>;
    fn name(&self) -> &'static str {
        "flaky"
    }
    fn init_model(&self, device: &burn::tensor::Device<TB>) -> TinyNet<TB> {
        self.inner.init_model(device)
    }
    fn meta_gradients(
        &self,
        model: &TinyNet<TB>,
        tasks: &[Task<TB>],
    ) -> (GradientsParams, StepStats) {
        let (g, mut s) = self.inner.meta_gradients(model, tasks);
        if self.calls.fetch_add(1, Ordering::SeqCst) >= self.nan_from {
            s.loss = f64::NAN;
        }
        (g, s)
    }
    fn adapt(
        &self,
        m: &TinyNet<TB>,
        x: Tensor<TB, 4>,
        y: meta_data::Targets<TB>,
        ways: usize,
    ) -> Self::Adapted {
        self.inner.adapt(m, x, y, ways)
    }
}

#[test]
fn nan_loss_stops_with_typed_error_naming_iteration_and_leaves_model_unchanged() {
    let learner = Flaky {
        inner: ProtoNet::new(tiny_factory(8), ProtoNetConfig::default()),
        calls: AtomicU64::new(0),
        nan_from: 3,
    };
    let mut trainer = Trainer::new(learner, quiet(10), &dev()).expect("trainer");
    let source: Arc<dyn EpisodeSource> = Arc::new(Synthetic { seed: 1 });
    let mut before = Vec::new();
    let mut seen = 0;
    let err = trainer
        .run(Arc::clone(&source), None, None, |_| seen += 1)
        .err();
    // Model at the moment of failure must equal the model after iteration 2.
    before.push(param_values::<TB, _>(trainer.model()));
    match err {
        Some(AlgoError::NonFiniteLoss { iteration, .. }) => assert_eq!(iteration, 3),
        other => panic!("expected NonFiniteLoss, got {other:?}"),
    }
    assert_eq!(seen, 3);
    assert_eq!(trainer.iteration(), 3);
    let msg = AlgoError::NonFiniteLoss {
        iteration: 3,
        loss: f64::NAN,
    }
    .to_string();
    assert!(
        msg.contains("iteration 3") && msg.contains("no update"),
        "{msg}"
    );

    // Reference: 3 clean iterations give exactly the same parameters.
    let clean = ProtoNet::new(tiny_factory(8), ProtoNetConfig::default());
    let mut reference = Trainer::new(clean, quiet(3), &dev()).expect("trainer");
    reference
        .run(source, None, None, |_| {})
        .expect("clean run");
    assert_eq!(before[0], param_values::<TB, _>(reference.model()));
}

fn resume_is_exact<L: MetaLearner<TB> + Clone>(learner: L, config: TrainerConfig) {
    let dir = tempfile::tempdir().expect("tempdir");
    let source: Arc<dyn EpisodeSource> = Arc::new(Synthetic { seed: 7 });
    let val = Synthetic { seed: 99 };
    let n = config.iterations;

    let mut full = Trainer::new(learner.clone(), config.clone(), &dev()).expect("trainer");
    full.run(Arc::clone(&source), Some(&val), None, |_| {})
        .expect("full run");

    let mut first = Trainer::new(learner.clone(), config.clone(), &dev()).expect("trainer");
    first
        .run_until(n / 2, Arc::clone(&source), Some(&val), None, |_| {})
        .expect("first half");
    let path = dir.path().join("latest.ckpt");
    first.save_checkpoint(&path).expect("save");
    drop(first);
    let mut second = Trainer::resume(learner, config, &dev(), &path).expect("resume");
    assert_eq!(second.iteration(), n / 2);
    assert_eq!(second.sampler_position(), (n / 2) * 2);
    second
        .run(source, Some(&val), None, |_| {})
        .expect("second half");

    assert_eq!(
        param_values::<TB, _>(full.model()),
        param_values::<TB, _>(second.model()),
        "resumed run diverged from the uninterrupted run"
    );
    // The best validation goes through the JSON header (serde_json parses floats to within
    // one ulp), so compare the numbers with a tolerance and the iteration exactly.
    let (a, b) = (full.best_validation(), second.best_validation());
    assert_eq!(a.map(|v| v.iteration), b.map(|v| v.iteration));
    let close = |x: f64, y: f64| (x - y).abs() < 1e-12;
    assert!(
        a.zip(b)
            .is_none_or(|(a, b)| close(a.mean, b.mean) && close(a.ci95, b.ci95))
    );
}

#[test]
fn resume_from_checkpoint_matches_uninterrupted_run_adam_cosine() {
    let config = TrainerConfig {
        iterations: 8,
        val_every: 2,
        val_episodes: 3,
        prefetch_threads: 1,
        schedule: LrSchedule::Cosine { floor: 1e-4 },
        ..quiet(8)
    };
    resume_is_exact(
        ProtoNet::new(tiny_factory(8), ProtoNetConfig::default()),
        config,
    );
}

#[test]
fn resume_from_checkpoint_matches_uninterrupted_run_sgd_linear_clipped() {
    let config = TrainerConfig {
        iterations: 6,
        optimizer: OuterOptimizer::Sgd,
        schedule: LrSchedule::Linear { final_lr: 0.0 },
        lr: 0.5,
        ..quiet(6)
    };
    let learner = MetaNetEb::new(tiny_factory(8), MetaNetEbConfig::default()).expect("config");
    resume_is_exact(learner, config);
}
