//! Which algorithms the CLI can train, and how a `RunConfig` builds each of them.

use crate::config::RunConfig;
use anyhow::{Result, bail};
use burn::tensor::backend::AutodiffBackend;
use meta_algos::{
    Anil, AnilConfig, Boil, BoilConfig, Fomaml, FomamlConfig, Maml, MamlConfig, MatchingNet,
    MatchingNetConfig, MetaLearner, MetaNet, MetaNetConfig, MetaNetEb, MetaNetEbConfig, MetaSgd,
    MetaSgdConfig, ProtoNet, ProtoNetConfig, Reptile, ReptileConfig,
};
use meta_backbones::{Conv4Config, Conv4Variant};

/// Every `--algo` value.
pub const ALGOS: &[&str] = &[
    "maml",
    "fomaml",
    "anil",
    "boil",
    "reptile",
    "metasgd",
    "protonet",
    "matchingnet",
    "metanet",
    "metanet-eb",
];

/// Work that needs the concrete learner a run configuration describes.
pub trait LearnerJob<B: AutodiffBackend> {
    /// What the work returns.
    type Output;
    /// Runs the work with `learner`.
    fn run<L: MetaLearner<B> + 'static>(self, learner: L) -> Result<Self::Output>;
}

/// The backbone configuration for `config` on images of `image_shape` (`[C, H, W]`).
fn backbone(config: &RunConfig, image_shape: [usize; 3]) -> Result<Conv4Config> {
    if config.backbone != "conv4" {
        bail!(
            "--backbone {} is not wired into the CLI yet; use --backbone conv4",
            config.backbone
        );
    }
    let [channels, height, width] = image_shape;
    if height != width {
        bail!("images must be square for conv4 (got {height}×{width})");
    }
    // Omniglot-style grey images get 64 filters, colour images 32 (Finn et al.).
    let hidden = if channels == 1 { 64 } else { 32 };
    let conv = Conv4Config {
        in_channels: channels,
        hidden,
        variant: Conv4Variant::MaxPool,
        image_size: height,
        num_classes: config.ways,
        ..Conv4Config::default()
    };
    conv.validate()
        .map_err(|e| anyhow::anyhow!("--backbone conv4 with --image-size {height}: {e}"))?;
    Ok(conv)
}

/// Builds the learner that `config` names and hands it to `job`.
pub fn with_learner<B, J>(config: &RunConfig, image_shape: [usize; 3], job: J) -> Result<J::Output>
where
    B: AutodiffBackend,
    J: LearnerJob<B>,
{
    let factory = backbone(config, image_shape)?;
    let (lr, train, test) = (config.inner_lr, config.inner_steps, config.test_inner_steps);
    match config.algo.as_str() {
        "maml" => job.run(Maml::new(
            factory,
            MamlConfig {
                inner_lr: lr,
                inner_steps_train: train,
                inner_steps_test: test,
            },
        )),
        "fomaml" => job.run(Fomaml::new(
            factory,
            FomamlConfig {
                inner_lr: lr,
                inner_steps_train: train,
                inner_steps_test: test,
            },
        )),
        "anil" => job.run(Anil::new(
            factory,
            AnilConfig {
                inner_lr: lr,
                inner_steps_train: train,
                inner_steps_test: test,
            },
        )),
        "boil" => job.run(Boil::new(
            factory,
            BoilConfig {
                inner_lr: lr,
                inner_steps_train: train,
                inner_steps_test: test,
            },
        )),
        "reptile" => job.run(Reptile::new(
            factory,
            ReptileConfig {
                inner_lr: lr,
                inner_steps_train: train,
                inner_steps_test: test,
                ..ReptileConfig::default()
            },
        )),
        "metasgd" => job.run(MetaSgd::new(
            factory,
            MetaSgdConfig {
                inner_steps_train: train,
                inner_steps_test: test,
                ..MetaSgdConfig::default()
            },
        )),
        "protonet" => job.run(ProtoNet::new(factory, ProtoNetConfig::default())),
        "matchingnet" => job.run(MatchingNet::new(factory, MatchingNetConfig::default())?),
        "metanet-eb" => job.run(MetaNetEb::new(factory, MetaNetEbConfig::default())?),
        "metanet" => job.run(MetaNet::new(
            factory,
            MetaNetConfig {
                ways: config.ways,
                ..MetaNetConfig::default()
            },
        )?),
        other => bail!(
            "unknown --algo `{other}`; choose one of {}",
            ALGOS.join(", ")
        ),
    }
}

/// The outer optimiser and learning-rate schedule an algorithm is trained with.
pub fn outer_optimizer(algo: &str) -> (meta_algos::OuterOptimizer, meta_algos::LrSchedule) {
    match algo {
        // Nichol et al.: SGD on the pseudo-gradient Φ − W, ε annealed linearly to 0.
        "reptile" => (
            meta_algos::OuterOptimizer::Sgd,
            meta_algos::LrSchedule::Linear { final_lr: 0.0 },
        ),
        _ => (
            meta_algos::OuterOptimizer::Adam,
            meta_algos::LrSchedule::Constant,
        ),
    }
}
