//! Backend parity: the same algorithm code, seed and episodes give the same numbers on every
//! compiled-in backend as on the reference backend, flex.
//!
//! For each backend other than flex (ndarray always; wgpu, tch and cuda when their cargo
//! feature is on) and each of MAML (exact second order), FOMAML, ANIL, Reptile, ProtoNet and
//! both Meta Networks:
//! - the meta-gradient of the initial meta-parameters on one meta-batch,
//! - the query losses of three meta-iterations (SGD outer steps, see [`trainer_config`]), and
//! - the meta-parameters after them
//!
//! match flex's within [`TOLERANCE`] ([`WGPU_TOLERANCE`] on wgpu; relative, per tensor). Both
//! trainers start from the same meta-parameters: flex's initial checkpoint, loaded on the other
//! backend — which also proves that a checkpoint moves between backends. For every backbone, the
//! forward pass, the support-set gradient and the exact second-order meta-gradient of one inner
//! step agree too.

use std::path::Path;

use burn::module::{AutodiffModule, Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Tensor, TensorData};
use meta_algos::checkpoint::{record_from_bytes, record_to_bytes};
use meta_algos::{
    Anil, Fomaml, InnerOptimizer, Maml, MamlConfig, MetaLearner, MetaNet, MetaNetConfig, MetaNetEb,
    MetaNetEbConfig, OuterOptimizer, ProtoNet, ProtoNetConfig, Reptile, ReptileConfig, Trainer,
    TrainerConfig,
};
use meta_backbones::{
    AnyBackbone, Backbone, BackboneConfig, Conv4Config, FcNetConfig, InnerLoop,
    MetaNetEmbeddingConfig, ParamGroup, ResNet12Config, adapt, cross_entropy, support_gradients,
};
use meta_data::{Episode, Task};

/// The backend every other one is compared with.
type Reference = burn::backend::Autodiff<burn::backend::Flex>;

/// Largest accepted relative difference: `‖a − b‖ / ‖b‖` per tensor, `|a − b| / |b|` per loss.
const TOLERANCE: f64 = 1e-4;
/// wgpu's tolerance. On lavapipe, the convolution kernel that wgpu's autotune picks for the
/// first layer's weight gradient (a sum over 15 images × 784 positions) depends on which
/// kernels ran before; one of them puts FOMAML's first-layer meta-gradient 1.9e-4 (relative)
/// from flex, where ndarray is 3.7e-6 from flex. A wrong formula moves results by O(1).
const WGPU_TOLERANCE: f64 = 5e-4;
/// Meta-iterations compared per algorithm.
const ITERATIONS: usize = 3;
const META_BATCH: usize = 2;
const WAYS: usize = 5;
const SHOTS: usize = 1;
const QUERIES: usize = 3;
const IMAGE: [usize; 3] = [1, 28, 28];

/// A deterministic pseudo-random stream (SplitMix64): the episodes are host data, identical for
/// every backend by construction.
struct SplitMix(u64);

impl SplitMix {
    fn next_f32(&mut self) -> f32 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// Episode `index`: smooth class-dependent blobs plus noise, so that the models have a signal
/// to fit and gradients are not dominated by noise.
fn episode(index: u64) -> Episode {
    let mut rng = SplitMix(0x5eed ^ index.wrapping_mul(0x1000_0000_01b3));
    let [c, h, w] = IMAGE;
    let mut images = |per_class: usize| {
        let mut pixels = Vec::with_capacity(WAYS * per_class * c * h * w);
        for class in 0..WAYS {
            let (cy, cx) = (4.0 + 4.0 * class as f32, 24.0 - 4.0 * class as f32);
            for _ in 0..per_class * c {
                for y in 0..h {
                    for x in 0..w {
                        let d2 = (y as f32 - cy).powi(2) + (x as f32 - cx).powi(2);
                        pixels.push((-d2 / 18.0).exp() + 0.3 * rng.next_f32());
                    }
                }
            }
        }
        pixels
    };
    let labels = |per_class: usize| {
        (0..WAYS as i64)
            .flat_map(|l| std::iter::repeat_n(l, per_class))
            .collect()
    };
    Episode {
        ways: WAYS,
        shots: SHOTS,
        queries: QUERIES,
        image_shape: IMAGE,
        support_images: images(SHOTS),
        support_labels: labels(SHOTS),
        query_images: images(QUERIES),
        query_labels: labels(QUERIES),
        classes: (0..WAYS).collect(),
    }
}

/// The tasks of meta-iteration `it` on `device`.
fn tasks<B: AutodiffBackend>(it: usize, device: &B::Device) -> Vec<Task<B>> {
    (0..META_BATCH)
        .map(|t| episode((it * META_BATCH + t) as u64).to_task(device))
        .collect()
}

/// Every float parameter of `module` (or its gradient in `grads`), flattened, in visiting order.
fn tensors<B: AutodiffBackend, M: Module<B>>(
    module: &M,
    grads: Option<&GradientsParams>,
) -> Vec<Vec<f64>> {
    struct Collect<'a> {
        grads: Option<&'a GradientsParams>,
        out: Vec<Vec<f64>>,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for Collect<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let data = match self.grads {
                Some(grads) => match grads.get::<B::InnerBackend, D>(param.id) {
                    Some(g) => g.into_data(),
                    None => return,
                },
                None => param.val().into_data(),
            };
            self.out.push(data.iter::<f64>().collect());
        }
    }
    let mut collect = Collect {
        grads,
        out: Vec::new(),
    };
    module.visit(&mut collect);
    collect.out
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// Worst relative difference over paired tensors (`b`: the reference): `‖a − b‖ / ‖b‖`, where a
/// tensor smaller than the mean tensor norm `‖b_all‖ / √n` is measured against that mean instead.
/// Some tensors are zero up to round-off (the gradient of a convolution bias that batch-norm
/// cancels): their round-off differs between backends and says nothing about them.
fn worst_relative(what: &str, a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    assert_eq!(a.len(), b.len(), "{what}: different numbers of tensors");
    let total: f64 = b.iter().map(|t| norm(t).powi(2)).sum::<f64>().sqrt();
    let floor = (total / (b.len() as f64).sqrt()).max(1e-12);
    a.iter()
        .zip(b)
        .map(|(a, b)| {
            assert_eq!(a.len(), b.len(), "{what}: tensor sizes differ");
            assert!(a.iter().all(|x| x.is_finite()), "{what}: non-finite values");
            let diff: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
            let r = norm(&diff) / norm(b).max(floor);
            if std::env::var("PARITY_DEBUG").is_ok() {
                eprintln!(
                    "  {what}: len {} |b| {:.3e} |a-b| {:.3e} rel {r:.2e}",
                    b.len(),
                    norm(b),
                    norm(&diff)
                );
            }
            r
        })
        .fold(0.0, f64::max)
}

/// The tolerance of the backend named `backend` (a test module's name).
fn tolerance(backend: &str) -> f64 {
    if backend == "wgpu" {
        WGPU_TOLERANCE
    } else {
        TOLERANCE
    }
}

fn assert_close(backend: &str, what: &str, rel: f64, tol: f64) {
    eprintln!("{backend}: {what}: worst relative difference to flex {rel:.2e}");
    assert!(
        rel <= tol,
        "{backend}: {what} differs from flex by {rel:.2e} (relative; tolerance {tol:.0e})"
    );
}

/// Moves `module` from flex to backend `B` through burn's record encoding (bit-exact f32).
fn transfer<B: AutodiffBackend, M: Module<Reference>, N: Module<B>>(
    module: &M,
    blank: N,
    device: &B::Device,
) -> N {
    let bytes = record_to_bytes::<Reference, _>(module.clone().into_record()).expect("encode");
    let record = record_from_bytes::<B, N::Record>(bytes, device, Path::new("parity"))
        .expect("the record decodes on the other backend");
    blank.load_record(record)
}

/// Plain SGD outer steps: Adam would turn the round-off-level gradients of batch-norm-cancelled
/// biases into full ±lr steps whose sign is the round-off's, on any two implementations.
fn trainer_config() -> TrainerConfig {
    TrainerConfig {
        meta_batch: META_BATCH,
        iterations: ITERATIONS as u64,
        val_every: 0,
        seed: 5,
        optimizer: OuterOptimizer::Sgd,
        lr: 0.02,
        ..TrainerConfig::default()
    }
}

/// Meta-gradient, losses and meta-parameters of `learner` on backend `B` against flex.
fn learner_parity<B, L>(backend: &str, device: B::Device, learner: L)
where
    B: AutodiffBackend,
    L: MetaLearner<B> + MetaLearner<Reference> + Clone,
{
    let tol = tolerance(backend);
    let name = format!("{backend}/{}", MetaLearner::<B>::name(&learner));
    let dir = tempfile::tempdir().expect("temp dir");
    let init = dir.path().join("init.ckpt");
    let flex_device = Default::default();
    let mut reference =
        Trainer::<Reference, L>::new(learner.clone(), trainer_config(), &flex_device)
            .expect("trainer");
    reference.save_checkpoint(&init).expect("checkpoint");
    let mut other = Trainer::<B, L>::resume(learner.clone(), trainer_config(), &device, &init)
        .unwrap_or_else(|e| panic!("{name}: flex's checkpoint does not load: {e}"));
    let start = worst_relative(
        "initial parameters",
        &tensors(other.model(), None),
        &tensors(reference.model(), None),
    );
    assert_eq!(
        start, 0.0,
        "{name}: the checkpoint did not move bit-exactly"
    );

    let (ref_grads, ref_stats) = reference
        .learner()
        .meta_gradients(reference.model(), &tasks::<Reference>(0, &flex_device));
    let (grads, stats) = other
        .learner()
        .meta_gradients(other.model(), &tasks::<B>(0, &device));
    let rel = worst_relative(
        "meta-gradient",
        &tensors(other.model(), Some(&grads)),
        &tensors(reference.model(), Some(&ref_grads)),
    );
    assert_close(&name, "meta-gradient", rel, tol);
    assert_close(
        &name,
        "query loss",
        (stats.loss - ref_stats.loss).abs() / ref_stats.loss.abs(),
        tol,
    );

    for it in 0..ITERATIONS {
        let a = other.step_tasks(&tasks::<B>(it, &device)).expect("step");
        let b = reference
            .step_tasks(&tasks::<Reference>(it, &flex_device))
            .expect("step");
        let rel = (a.loss - b.loss).abs() / b.loss.abs();
        assert_close(&name, &format!("loss of meta-iteration {it}"), rel, tol);
    }
    let rel = worst_relative(
        "meta-parameters",
        &tensors(other.model(), None),
        &tensors(reference.model(), None),
    );
    assert_close(
        &name,
        &format!("meta-parameters after {ITERATIONS} meta-iterations"),
        rel,
        tol,
    );
}

/// A small Conv4 (16 filters) for the algorithm parity runs: quick even on slow backends.
fn conv4() -> Conv4Config {
    Conv4Config {
        in_channels: IMAGE[0],
        hidden: 16,
        image_size: IMAGE[1],
        num_classes: WAYS,
        ..Conv4Config::default()
    }
}

/// The backbones whose forward pass, support gradient and meta-gradient are compared.
fn backbones() -> Vec<(&'static str, BackboneConfig)> {
    vec![
        ("conv4", conv4().into()),
        (
            "resnet12",
            ResNet12Config {
                in_channels: IMAGE[0],
                widths: [8, 8, 16, 16],
                num_classes: WAYS,
                ..ResNet12Config::default()
            }
            .into(),
        ),
        (
            "fcnet",
            FcNetConfig {
                x_dim: IMAGE.iter().product(),
                layer_dims: vec![64, 32],
                dropout: 0.0, // dropout masks come from each backend's own RNG
                num_classes: WAYS,
                ..FcNetConfig::default()
            }
            .into(),
        ),
        (
            "metanet-embedding",
            MetaNetEmbeddingConfig {
                in_channels: IMAGE[0],
                hidden: 16,
                num_classes: WAYS,
                ..MetaNetEmbeddingConfig::default()
            }
            .into(),
        ),
    ]
}

/// What is compared for a backbone on one task: training-mode logits, the support-set
/// gradient, the second-order meta-gradient of one inner step, and evaluation-mode logits.
fn backbone_probe<B: AutodiffBackend>(
    model: &AnyBackbone<B>,
    task: &Task<B>,
) -> Vec<(&'static str, Vec<Vec<f64>>)> {
    let flat = |data: TensorData| vec![data.iter::<f64>().collect::<Vec<f64>>()];
    let logits = flat(model.forward(task.query_x.clone()).into_data());
    let support = support_gradients(
        model,
        task.support_x.clone(),
        task.support_y.clone(),
        ParamGroup::All,
    );
    let inner = InnerLoop {
        lr: 0.1,
        ..InnerLoop::default()
    };
    let adapted = adapt(
        model,
        task.support_x.clone(),
        task.support_y.clone(),
        &inner,
    );
    let loss = cross_entropy(adapted.forward(task.query_x.clone()), task.query_y.clone());
    let meta = GradientsParams::from_grads(loss.backward(), model);
    let eval_logits = model.valid().forward(task.query_x.clone().inner());
    vec![
        ("training-mode logits", logits),
        ("support-set gradient", tensors(model, Some(&support))),
        (
            "second-order meta-gradient (1 inner step)",
            tensors(model, Some(&meta)),
        ),
        ("evaluation-mode logits", flat(eval_logits.into_data())),
    ]
}

/// Every backbone's [`backbone_probe`] on backend `B` against flex.
fn backbone_parity<B: AutodiffBackend>(backend: &str, device: B::Device) {
    let tol = tolerance(backend);
    let flex_device = Default::default();
    for (label, config) in backbones() {
        <Reference as burn::tensor::backend::Backend>::seed(&flex_device, 9);
        let reference = config.init::<Reference>(&flex_device);
        let model = transfer(&reference, config.init::<B>(&device), &device);
        let expected = backbone_probe(&reference, &tasks::<Reference>(0, &flex_device)[0]);
        let found = backbone_probe(&model, &tasks::<B>(0, &device)[0]);
        for ((what, a), (_, b)) in found.iter().zip(&expected) {
            let rel = worst_relative(what, a, b);
            assert_close(&format!("{backend}/{label}"), what, rel, tol);
        }
    }
}

/// MAML's Omniglot setting (Finn et al.): one inner step of rate 0.4.
fn maml_config() -> MamlConfig {
    MamlConfig {
        inner_lr: 0.4,
        inner_steps_train: 1,
        inner_steps_test: 1,
    }
}

/// The parity tests of one backend: `backend_parity!(module, "feature", Backend, device)`.
macro_rules! backend_parity {
    ($module:ident, $feature:literal, $backend:ty, $device:expr) => {
        #[cfg(feature = $feature)]
        mod $module {
            use super::*;

            type B = $backend;
            const NAME: &str = stringify!($module);

            fn device() -> burn::tensor::Device<B> {
                $device
            }

            #[test]
            fn backbones_forward_and_gradients_match_flex() {
                backbone_parity::<B>(NAME, device());
            }

            #[test]
            fn maml_matches_flex() {
                learner_parity::<B, _>(NAME, device(), Maml::new(conv4(), maml_config()));
            }

            #[test]
            fn fomaml_matches_flex() {
                learner_parity::<B, _>(NAME, device(), Fomaml::new(conv4(), maml_config()));
            }

            #[test]
            fn anil_matches_flex() {
                learner_parity::<B, _>(NAME, device(), Anil::new(conv4(), maml_config()));
            }

            #[test]
            fn reptile_matches_flex() {
                // SGD inner steps, for the reason given at `trainer_config`.
                let config = ReptileConfig {
                    inner_steps_train: 3,
                    inner_batch: Some(10),
                    inner_optimizer: InnerOptimizer::Sgd,
                    inner_lr: 0.1,
                    ..ReptileConfig::default()
                };
                learner_parity::<B, _>(NAME, device(), Reptile::new(conv4(), config));
            }

            #[test]
            fn protonet_matches_flex() {
                let learner = ProtoNet::new(conv4(), ProtoNetConfig::default());
                learner_parity::<B, _>(NAME, device(), learner);
            }

            #[test]
            fn metanet_eb_matches_flex() {
                let learner = MetaNetEb::new(conv4(), MetaNetEbConfig::default()).expect("config");
                learner_parity::<B, _>(NAME, device(), learner);
            }

            #[test]
            fn metanet_matches_flex() {
                let config = MetaNetConfig {
                    ways: WAYS,
                    ..MetaNetConfig::default()
                };
                let learner = MetaNet::new(conv4(), config).expect("config");
                learner_parity::<B, _>(NAME, device(), learner);
            }
        }
    };
}

backend_parity!(
    ndarray,
    "ndarray",
    burn::backend::Autodiff<burn::backend::NdArray>,
    Default::default()
);
backend_parity!(
    wgpu,
    "wgpu",
    burn::backend::Autodiff<burn::backend::Wgpu>,
    Default::default()
);
backend_parity!(
    tch,
    "tch",
    burn::backend::Autodiff<burn::backend::LibTorch>,
    burn::backend::libtorch::LibTorchDevice::Cpu
);
backend_parity!(
    cuda,
    "cuda",
    burn::backend::Autodiff<burn::backend::Cuda>,
    Default::default()
);
