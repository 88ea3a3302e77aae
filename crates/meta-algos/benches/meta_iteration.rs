//! One meta-iteration (meta-gradients of a meta-batch + one outer Adam step) per algorithm on
//! the Omniglot 5-way 1-shot workload: Conv4-64 (max-pool, 28×28, 1 channel), meta-batch 32,
//! 15 queries per class (80 images per task), 1 inner step for the MAML family.
//!
//! Pixels are random: the cost of an iteration does not depend on their values, and the bench
//! then needs no data set. Backends: `BENCH_BACKENDS=flex,ndarray,tch` (default `flex`; `tch`
//! needs this crate's `tch` feature and libtorch, and runs on the CPU). `BENCH_META_BATCH=<n>`
//! shrinks the meta-batch for quick runs.
//!
//! Adding an algorithm: write a `fn my_algo<B: AutodiffBackend>() -> impl MetaLearner<B>` and
//! one `bench_learner(group, "my_algo", my_algo::<B>(), &tasks)` line in `bench_backend`.

use std::time::Duration;

use burn::backend::{Autodiff, Flex, NdArray};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use criterion::{
    BenchmarkGroup, Criterion, SamplingMode, criterion_group, criterion_main, measurement::WallTime,
};
use meta_algos::{
    MatchingNet, MatchingNetConfig, MetaLearner, MetaNet, MetaNetConfig, MetaNetEb,
    MetaNetEbConfig, ProtoNet, ProtoNetConfig, Trainer, TrainerConfig,
};
// MAML family (1 inner step; Reptile: 1 inner step on all 80 images of the task).
use meta_algos::{
    Anil, AnilConfig, Boil, BoilConfig, Fomaml, FomamlConfig, Maml, MamlConfig, MetaSgd,
    MetaSgdConfig, Reptile, ReptileConfig,
};
use meta_backbones::{Conv4Config, MetaNetCnnConfig};
use meta_data::Task;

const WAYS: usize = 5;
const SHOTS: usize = 1;
const QUERIES: usize = 15;

fn meta_batch() -> usize {
    std::env::var("BENCH_META_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32)
}

fn tasks<B: AutodiffBackend>(device: &B::Device) -> Vec<Task<B>> {
    let labels = |per: usize| {
        let v: Vec<i64> = (0..WAYS as i64)
            .flat_map(|c| std::iter::repeat_n(c, per))
            .collect();
        Tensor::<B, 1, Int>::from_data(TensorData::new(v, [WAYS * per]), device)
    };
    let images =
        |n: usize| Tensor::<B, 4>::random([n, 1, 28, 28], Distribution::Uniform(0.0, 1.0), device);
    (0..meta_batch())
        .map(|_| Task {
            ways: WAYS,
            support_x: images(WAYS * SHOTS),
            support_y: labels(SHOTS).into(),
            query_x: images(WAYS * QUERIES),
            query_y: labels(QUERIES).into(),
            classes: Vec::new(),
        })
        .collect()
}

fn bench_learner<B: AutodiffBackend, L: MetaLearner<B>>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    learner: L,
    tasks: &[Task<B>],
) {
    let config = TrainerConfig {
        meta_batch: tasks.len(),
        iterations: u64::MAX,
        val_every: 0,
        ..TrainerConfig::default()
    };
    let device = tasks[0].support_x.device();
    let Ok(mut trainer) = Trainer::<B, L>::new(learner, config, &device) else {
        eprintln!("{name}: invalid trainer config, skipped");
        return;
    };
    group.bench_function(name, |b| {
        b.iter(|| {
            if let Err(e) = trainer.step_tasks(tasks) {
                eprintln!("{name}: {e}");
            }
        })
    });
}

fn bench_backend<B: AutodiffBackend>(c: &mut Criterion, backend: &str) {
    let device = B::Device::default();
    let tasks = tasks::<B>(&device);
    let mut group = c.benchmark_group(format!("meta_iteration/{backend}/mb{}", tasks.len()));
    // One iteration takes seconds: flat sampling runs each of the 10 samples once instead of
    // criterion's linear 1, 2, …, 10 iterations (55 in all).
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(20));
    let conv4 = Conv4Config::default(); // 64 filters, max-pool, 28×28, 5-way head
    bench_learner(
        &mut group,
        "protonet",
        ProtoNet::new(conv4.clone(), ProtoNetConfig::default()),
        &tasks,
    );
    if let Ok(l) = MatchingNet::new(conv4.clone(), MatchingNetConfig::default()) {
        bench_learner(&mut group, "matchingnet", l, &tasks);
    }
    if let Ok(l) = MetaNetEb::new(conv4.clone(), MetaNetEbConfig::default()) {
        bench_learner(&mut group, "metanet_eb", l, &tasks);
    }
    // Meta Networks train their own networks (the authors' Omniglot CNN).
    if let Ok(l) = MetaNet::new(MetaNetCnnConfig::default(), MetaNetConfig::default()) {
        bench_learner(&mut group, "metanet", l, &tasks);
    }
    // MAML family.
    bench_learner(
        &mut group,
        "maml",
        Maml::new(conv4.clone(), MamlConfig::default()),
        &tasks,
    );
    bench_learner(
        &mut group,
        "fomaml",
        Fomaml::new(conv4.clone(), FomamlConfig::default()),
        &tasks,
    );
    bench_learner(
        &mut group,
        "anil",
        Anil::new(conv4.clone(), AnilConfig::default()),
        &tasks,
    );
    bench_learner(
        &mut group,
        "boil",
        Boil::new(conv4.clone(), BoilConfig::default()),
        &tasks,
    );
    let reptile = ReptileConfig {
        inner_steps_train: 1,
        inner_batch: None,
        ..ReptileConfig::default()
    };
    bench_learner(
        &mut group,
        "reptile",
        Reptile::new(conv4.clone(), reptile),
        &tasks,
    );
    bench_learner(
        &mut group,
        "metasgd",
        MetaSgd::new(conv4.clone(), MetaSgdConfig::default()),
        &tasks,
    );
    group.finish();
}

/// The backends `BENCH_BACKENDS` names (default `flex`).
fn backends() -> Vec<String> {
    std::env::var("BENCH_BACKENDS")
        .unwrap_or_else(|_| "flex".into())
        .split(',')
        .map(|b| b.trim().to_string())
        .filter(|b| !b.is_empty())
        .collect()
}

fn meta_iteration(c: &mut Criterion) {
    for backend in backends() {
        match backend.as_str() {
            "flex" => bench_backend::<Autodiff<Flex>>(c, "flex"),
            "ndarray" => bench_backend::<Autodiff<NdArray>>(c, "ndarray"),
            #[cfg(feature = "tch")]
            "tch" => bench_backend::<Autodiff<burn::backend::LibTorch>>(c, "tch"),
            other => eprintln!(
                "BENCH_BACKENDS: unknown or not compiled-in backend `{other}` (flex, ndarray; \
                 tch with `--features tch`), skipped"
            ),
        }
    }
}

criterion_group!(benches, meta_iteration);
criterion_main!(benches);
