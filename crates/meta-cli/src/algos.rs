//! Which algorithms the CLI can train, and how a `RunConfig` builds each of them.

use crate::config::RunConfig;
use anyhow::{Result, bail};
use burn::tensor::backend::AutodiffBackend;
use meta_algos::{
    Anil, AnilConfig, Boil, BoilConfig, Fomaml, FomamlConfig, Maml, MamlConfig, MatchingNet,
    MatchingNetConfig, MetaLearner, MetaNet, MetaNetConfig, MetaNetEb, MetaNetEbConfig, MetaSgd,
    MetaSgdConfig, ProtoNet, ProtoNetConfig, Reptile, ReptileConfig,
};
use meta_backbones::{
    BackboneConfig, Conv4Config, Conv4Variant, FcNetConfig, MetaNetEmbeddingConfig, ResNet12Config,
};

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

/// Every `--backbone` value.
pub const BACKBONES: &[&str] = &["conv4", "resnet12", "fcnet", "metanet-embedding"];

/// The backbone `config` names, sized for images of `image_shape` (`[C, H, W]`) and
/// `config.ways` logits.
fn backbone(config: &RunConfig, image_shape: [usize; 3]) -> Result<BackboneConfig> {
    let [channels, height, width] = image_shape;
    let num_classes = config.ways;
    let backbone: BackboneConfig = match config.backbone.as_str() {
        "conv4" => {
            if height != width {
                bail!("--backbone conv4 needs square images (got {height}×{width})");
            }
            Conv4Config {
                in_channels: channels,
                // Grey Omniglot-style images get 64 filters, colour images 32 (Finn et al.).
                hidden: if channels == 1 { 64 } else { 32 },
                variant: Conv4Variant::MaxPool,
                image_size: height,
                num_classes,
                ..Conv4Config::default()
            }
            .into()
        }
        "resnet12" => ResNet12Config {
            in_channels: channels,
            num_classes,
            ..ResNet12Config::default()
        }
        .into(),
        "fcnet" => FcNetConfig {
            x_dim: channels * height * width,
            num_classes,
            ..FcNetConfig::default()
        }
        .into(),
        "metanet-embedding" => MetaNetEmbeddingConfig {
            in_channels: channels,
            num_classes,
            ..MetaNetEmbeddingConfig::default()
        }
        .into(),
        other => bail!(
            "unknown --backbone `{other}`; choose one of {}",
            BACKBONES.join(", ")
        ),
    };
    backbone.validate().map_err(|e| {
        anyhow::anyhow!(
            "--backbone {} with --image-size {height}: {e}",
            config.backbone
        )
    })?;
    Ok(backbone)
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
