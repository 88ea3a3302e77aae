//! Picking the backend at run time: one function generic over `AutodiffBackend` meta-trains
//! ProtoNet, and a string chooses which concrete backend runs it — the pattern the `metalearn`
//! binary uses (`--backend`). The episodes are the same on every backend, so the two results
//! differ only by floating-point rounding.
//!
//! ```sh
//! cargo run --release -p meta-algos --example pick_backend -- [flex|ndarray|both] [--quick]
//! ```
//!
//! Omniglot is read from `META_DATA_DIR`, else `datasets/`. `--quick` trains 10 episodes.

use std::time::Instant;

use burn::backend::{Autodiff, Flex, NdArray};
use burn::tensor::backend::AutodiffBackend;
use meta_algos::{
    EvalConfig, EvalReport, ProtoNet, ProtoNetConfig, Trainer, TrainerConfig, evaluate_sampler,
};
use meta_backbones::Conv4Config;
use meta_data::{DatasetKind, EpisodeSpec, OmniglotSplit, Split, load_split_sampler};

/// Meta-trains ProtoNet (Conv4 with 16 filters) for `iterations` episodes on backend `B` and
/// tests it on `episodes` test episodes.
fn train<B: AutodiffBackend>(
    iterations: u64,
    episodes: usize,
) -> Result<EvalReport, Box<dyn std::error::Error>> {
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
    let backbone = Conv4Config {
        hidden: 16,
        ..Conv4Config::default()
    };
    let learner = ProtoNet::new(backbone, ProtoNetConfig::default());
    let device = B::Device::default();
    let config = TrainerConfig {
        iterations,
        meta_batch: 1,
        ..TrainerConfig::default()
    };
    let mut trainer = Trainer::<B, _>::new(learner, config, &device)?;
    trainer.run(train, None, None, |_| {})?;
    let eval = EvalConfig { episodes, seed: 3 };
    Ok(evaluate_sampler(
        trainer.learner(),
        trainer.model(),
        &test,
        &eval,
        &device,
    )?)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let (iterations, episodes) = if quick { (10, 20) } else { (200, 100) };
    let choice = args.iter().find(|a| !a.starts_with("--"));
    let names: &[&str] = match choice.map(String::as_str) {
        None | Some("both") => &["flex", "ndarray"],
        Some("flex") => &["flex"],
        Some("ndarray") => &["ndarray"],
        Some(other) => {
            return Err(format!("unknown backend `{other}`: flex, ndarray or both").into());
        }
    };
    for name in names {
        let start = Instant::now();
        // The only place a concrete backend is named: everything below `train` is generic.
        let report = match *name {
            "flex" => train::<Autodiff<Flex>>(iterations, episodes)?,
            _ => train::<Autodiff<NdArray>>(iterations, episodes)?,
        };
        let seconds = start.elapsed().as_secs_f64();
        println!("{name}: ProtoNet after {iterations} episodes: {report} ({seconds:.1} s)");
    }
    Ok(())
}
