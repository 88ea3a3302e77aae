//! The exact inner loop (`meta_backbones::adapt`) in a hand-written MAML training loop with
//! burn's own Adam, no `Trainer`: episodes from the sampler, a Conv4, meta-gradients from one
//! `backward()`. Prints the test accuracy after adaptation before and after meta-training.
//!
//! ```sh
//! cargo run --release -p meta-algos --example custom_loop -- [ITERATIONS | --quick]
//! ```
//!
//! Omniglot is read from `META_DATA_DIR`, else `datasets/`. `--quick` trains 20 iterations.

use burn::backend::{Autodiff, Flex};
use burn::module::{AutodiffModule, Module};
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use meta_backbones::{
    Backbone, Conv4, Conv4Config, GradOrder, InnerLoop, accuracy, adapt, cross_entropy, force_init,
};
use meta_data::{
    DatasetKind, EpisodeSampler, EpisodeSource, EpisodeSpec, OmniglotSplit, Split,
    load_split_sampler,
};

type B = Autodiff<Flex>;

/// Mean query accuracy over `episodes` test episodes after 10 first-order inner steps.
fn test_accuracy(model: &Conv4<B>, test: &EpisodeSampler, episodes: u64) -> f64 {
    let device = Default::default();
    let inner = InnerLoop {
        steps: 10,
        order: GradOrder::First,
        ..InnerLoop::default()
    };
    let total: f64 = (0..episodes)
        .map(|i| {
            let task = test.episode(i).to_task::<B>(&device);
            // Untracked parameters: evaluation leaves nothing on the autodiff graph.
            let adapted = adapt(
                &model.clone().no_grad(),
                task.support_x,
                task.support_y,
                &inner,
            );
            accuracy(
                adapted.valid().forward(task.query_x.inner()),
                task.query_y.labels().inner(),
            )
        })
        .sum();
    total / episodes as f64
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arg = std::env::args().nth(1);
    let (iterations, test_episodes) = match arg.as_deref() {
        Some("--quick") => (20, 50),
        Some(n) => (n.parse()?, 600),
        None => (200, 600),
    };
    let data = std::env::var("META_DATA_DIR").unwrap_or_else(|_| "datasets".into());
    let sampler = |split, seed| {
        let (kind, spec) = (DatasetKind::Omniglot, EpisodeSpec::new(5, 1, 15));
        load_split_sampler(
            data.as_ref(),
            &kind,
            OmniglotSplit::Vinyals,
            split,
            spec,
            seed,
            None,
        )
    };
    let (train, test) = (sampler(Split::Train, 1)?, sampler(Split::Test, 2)?);

    let device = Default::default();
    // Initial weights (and dropout masks) come from this thread's seeded generator.
    meta_backbones::rng::seed(0);
    let config = Conv4Config {
        hidden: 32,
        ..Conv4Config::default()
    };
    let mut model: Conv4<B> = config.init(&device);
    // Parameters a module leaves lazy are read now, so that clones share one initialisation.
    force_init(&model);
    let mut optim = AdamConfig::new().init();
    let inner = InnerLoop::default(); // 1 step of 0.4, exact second order, every parameter
    let before = test_accuracy(&model, &test, test_episodes);

    let meta_batch = 4;
    for it in 0..iterations {
        let mut loss = None;
        for t in 0..meta_batch {
            let task = train.episode(it * meta_batch + t).to_task::<B>(&device);
            let adapted = adapt(&model, task.support_x, task.support_y, &inner);
            let task_loss = cross_entropy(adapted.forward(task.query_x), task.query_y.labels());
            loss = Some(loss.map_or(task_loss.clone(), |sum| sum + task_loss));
        }
        let loss = loss.expect("meta_batch > 0") / meta_batch as f32;
        if it % 10 == 0 {
            println!(
                "iteration {it}: query loss {:.3}",
                loss.clone().into_scalar()
            );
        }
        // One backward pass through the inner step: the exact MAML meta-gradient.
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(1e-3, model, grads);
    }
    let after = test_accuracy(&model, &test, test_episodes);
    println!(
        "MAML by hand, {iterations} iterations × {meta_batch} tasks: test accuracy {:.1}% \
         before, {:.1}% after ({test_episodes} episodes, 10 inner steps)",
        100.0 * before,
        100.0 * after
    );
    Ok(())
}
