//! Which algorithms the CLI can train, and how a `RunConfig` builds each of them.

use crate::config::RunConfig;
use anyhow::{Result, bail};
use burn::tensor::backend::AutodiffBackend;
use meta_algos::{
    Anil, AnilConfig, Baseline, Boil, BoilConfig, Fomaml, FomamlConfig, Maml, MamlConfig,
    MamlPlusPlus, MatchingNet, MetaLearner, MetaNet, MetaNetEb, MetaSgd, Pretrain, PretrainConfig,
    ProtoNet, Reptile,
};
use meta_backbones::{
    BackboneConfig, Conv4Config, FcNetConfig, MetaNetCnnConfig, MetaNetEmbeddingConfig,
    ResNet12Config,
};

/// Every `--algo` value.
pub const ALGOS: &[&str] = &[
    "maml",
    "fomaml",
    "anil",
    "boil",
    "reptile",
    "metasgd",
    "mamlpp",
    "protonet",
    "matchingnet",
    "metanet",
    "metanet-eb",
    "baseline",
    "pretrain",
];

/// The algorithms with an inner loop of gradient steps: the ones that take `--loss` and learn
/// regression tasks.
pub const GRADIENT_STEP_ALGOS: &[&str] = &[
    "maml", "fomaml", "anil", "boil", "reptile", "metasgd", "pretrain",
];

/// Work that needs the concrete learner a run configuration describes.
pub trait LearnerJob<B: AutodiffBackend> {
    /// What the work returns.
    type Output;
    /// Runs the work with `learner`.
    fn run<L: MetaLearner<B> + 'static>(self, learner: L) -> Result<Self::Output>;
}

/// Every `--backbone` value.
pub const BACKBONES: &[&str] = &[
    "conv4",
    "resnet12",
    "fcnet",
    "metanet-embedding",
    "metanet-cnn",
];

/// The backbone `config` names, sized for images of `image_shape` (`[C, H, W]`) and
/// `config.ways` logits, with its section's settings.
pub fn backbone(config: &RunConfig, image_shape: [usize; 3]) -> Result<BackboneConfig> {
    let [channels, height, width] = image_shape;
    let num_classes = config.ways;
    let backbone: BackboneConfig = match config.backbone.as_str() {
        "conv4" => {
            if height != width {
                bail!("--backbone conv4 needs square images (got {height}×{width})");
            }
            let section = config.conv4();
            Conv4Config {
                in_channels: channels,
                hidden: section.hidden.unwrap_or(Conv4Config::default().hidden),
                variant: section.variant,
                image_size: height,
                num_classes,
                bn: section.bn,
            }
            .into()
        }
        "resnet12" => {
            let section = config.resnet12.clone().unwrap_or_default();
            ResNet12Config {
                in_channels: channels,
                widths: section.widths,
                num_classes,
                bn: section.bn,
            }
            .into()
        }
        "fcnet" => {
            let section = config.fcnet.clone().unwrap_or_default();
            FcNetConfig {
                x_dim: channels * height * width,
                layer_dims: section.layer_dims,
                dropout: section.dropout,
                num_classes,
                batch_norm: section.batch_norm,
                bn: section.bn,
            }
            .into()
        }
        "metanet-embedding" => {
            let section = config.metanet_embedding.clone().unwrap_or_default();
            MetaNetEmbeddingConfig {
                in_channels: channels,
                hidden: section.hidden,
                num_classes,
                bn: section.bn,
            }
            .into()
        }
        "metanet-cnn" => {
            if height != width {
                bail!("--backbone metanet-cnn needs square images (got {height}×{width})");
            }
            let section = config.metanet_cnn.clone().unwrap_or_default();
            MetaNetCnnConfig {
                in_channels: channels,
                image_size: height,
                filters: section.filters,
                conv_layers: section.conv_layers,
                fc_hidden: section.fc_hidden,
                num_classes,
            }
            .into()
        }
        other => bail!(
            "unknown --backbone `{other}`; choose one of {}",
            BACKBONES.join(", ")
        ),
    };
    backbone.validate().map_err(|e| {
        anyhow::anyhow!(
            "--backbone {} with --image-size {height} and its [{}] section: {e}",
            config.backbone,
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
                loss: config.loss,
            },
        )),
        "fomaml" => job.run(Fomaml::new(
            factory,
            FomamlConfig {
                inner_lr: lr,
                inner_steps_train: train,
                inner_steps_test: test,
                loss: config.loss,
            },
        )),
        "anil" => job.run(Anil::new(
            factory,
            AnilConfig {
                inner_lr: lr,
                inner_steps_train: train,
                inner_steps_test: test,
                loss: config.loss,
            },
        )),
        "boil" => job.run(Boil::new(
            factory,
            BoilConfig {
                inner_lr: lr,
                inner_steps_train: train,
                inner_steps_test: test,
                loss: config.loss,
            },
        )),
        "reptile" => job.run(Reptile::new(factory, config.reptile_config())),
        "metasgd" => job.run(MetaSgd::new(factory, config.metasgd_config())),
        "mamlpp" => job.run(MamlPlusPlus::new(factory, config.mamlpp_config())?),
        "protonet" => job.run(ProtoNet::new(factory, config.protonet.unwrap_or_default())),
        "matchingnet" => job.run(MatchingNet::new(
            factory,
            config.matchingnet.unwrap_or_default(),
        )?),
        "metanet-eb" => job.run(MetaNetEb::new(
            factory,
            config.metanet_eb.unwrap_or_default(),
        )?),
        "metanet" => match factory {
            BackboneConfig::MetaNetCnn(net) => job.run(MetaNet::new(net, config.metanet_config())?),
            _ => bail!(
                "--algo metanet trains its own layer-augmented networks: run it with --backbone \
                 metanet-cnn, not --backbone {}",
                config.backbone
            ),
        },
        "baseline" => job.run(Baseline::new(factory, config.baseline.unwrap_or_default())?),
        "pretrain" => job.run(Pretrain::new(
            factory,
            PretrainConfig {
                inner_lr: lr,
                inner_steps_test: test,
                loss: config.loss,
            },
        )),
        other => bail!(
            "unknown --algo `{other}`; choose one of {}",
            ALGOS.join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigOverrides;
    use crate::layers::layered;
    use meta_backbones::Conv4Variant;

    type B = burn::backend::Autodiff<burn::backend::Flex>;

    /// The configuration the built learner reports.
    struct ConfigJson;

    impl LearnerJob<B> for ConfigJson {
        type Output = serde_json::Value;
        fn run<L: MetaLearner<B> + 'static>(self, learner: L) -> Result<serde_json::Value> {
            Ok(learner.config_json())
        }
    }

    /// `preset` with the config file `text` and the flags `flags` on top, resolved and checked.
    fn resolved(preset: &str, text: &str, flags: &[&str]) -> RunConfig {
        use clap::Parser;
        #[derive(Parser)]
        struct Flags {
            #[command(flatten)]
            overrides: ConfigOverrides,
        }
        let file: ConfigOverrides = toml::from_str(text).unwrap();
        let argv = std::iter::once("metalearn").chain(flags.iter().copied());
        let flags = Flags::try_parse_from(argv).unwrap().overrides;
        let config = layered(Some(preset), Some(&file), &flags).unwrap();
        config.validate().unwrap();
        config
    }

    fn learner_json(config: &RunConfig) -> serde_json::Value {
        with_learner::<B, _>(config, [1, 28, 28], ConfigJson).unwrap()
    }

    #[test]
    fn algorithm_sections_reach_the_built_learner() {
        let config = resolved(
            "matchingnet-omniglot-5w1s",
            "[matchingnet]\ntemperature = 10.0",
            &[],
        );
        assert_eq!(learner_json(&config)["temperature"], 10.0);

        // Meta-SGD's rates start in [0.005, inner_lr]; the preset's inner_lr is Li et al.'s 0.1.
        let config = resolved("metasgd-omniglot-5w1s", "", &["--inner-lr", "0.2"]);
        let json = learner_json(&config);
        assert_eq!(json["lr_init"]["high"], 0.2, "{json}");
        assert_eq!(json["lr_init"]["low"], 0.005, "{json}");
        let config = resolved(
            "metasgd-omniglot-5w1s",
            "[metasgd]\ninit = \"constant\"",
            &[],
        );
        let json = learner_json(&config);
        assert_eq!(json["lr_init"]["kind"], "constant", "{json}");
        assert_eq!(json["lr_init"]["value"], 0.1, "{json}");

        // The 20-way preset runs Nichol et al.'s inner batch 20; a file changes one key only.
        let config = resolved("reptile-omniglot-20w1s", "", &[]);
        assert_eq!(learner_json(&config)["inner_batch"], 20);
        let config = resolved(
            "reptile-omniglot-20w1s",
            "[reptile]\ninner_optimizer = \"sgd\"",
            &["--set", "reptile.train_on_query=false"],
        );
        let json = learner_json(&config);
        assert_eq!(
            (
                &json["inner_batch"],
                &json["inner_optimizer"],
                &json["train_on_query"]
            ),
            (&20.into(), &"sgd".into(), &false.into()),
            "{json}"
        );
        let config = resolved(
            "metanet-omniglot-20w1s",
            "[metanet]\nmeta_hidden = 16\n[metanet-cnn]\nfilters = 8",
            &[],
        );
        let json = learner_json(&config);
        assert_eq!(json["meta_hidden"], 16, "{json}");
        let BackboneConfig::MetaNetCnn(net) = backbone(&config, [1, 28, 28]).unwrap() else {
            panic!("not metanet-cnn")
        };
        assert_eq!((net.filters, net.conv_layers, net.num_classes), (8, 5, 20));
    }

    #[test]
    fn metanet_refuses_another_backbone_naming_the_flag() {
        use clap::Parser;
        #[derive(Parser)]
        struct Flags {
            #[command(flatten)]
            overrides: ConfigOverrides,
        }
        let argv = ["metalearn", "--algo", "metanet", "--backbone", "conv4"];
        let flags = Flags::try_parse_from(argv).unwrap().overrides;
        let config = layered(None, None, &flags).unwrap();
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("--backbone metanet-cnn"), "{err}");
        // Without --backbone the algorithm's preset picks the right one.
        let flags = Flags::try_parse_from(["metalearn", "--algo", "metanet"]).unwrap();
        let config = layered(None, None, &flags.overrides).unwrap();
        assert_eq!(config.backbone, "metanet-cnn");
        config.validate().unwrap();
    }

    #[test]
    fn backbone_and_optimizer_sections_reach_the_backbone_and_trainer() {
        let config = resolved(
            "protonet-omniglot-5w1s",
            "[conv4]\nhidden = 16\nvariant = \"strided\"\n[conv4.bn]\nmode = \"running\"\n\
             [optimizer]\ngrad_clip = { norm = 3.0 }\n[optimizer.adam]\nbeta1 = 0.5\n\
             [schedule]\nkind = \"cosine\"\nfloor = 1e-5",
            &["--set", "optimizer.adam.epsilon=1e-6"],
        );
        let BackboneConfig::Conv4(conv4) = backbone(&config, [1, 28, 28]).unwrap() else {
            panic!("not conv4")
        };
        assert_eq!(
            (conv4.hidden, conv4.variant, conv4.bn.mode),
            (16, Conv4Variant::Strided, meta_backbones::BnMode::Running)
        );
        let trainer = crate::train::trainer_config(&config);
        assert_eq!(trainer.grad_clip, meta_algos::GradClip::Norm(3.0));
        assert_eq!((trainer.adam.beta1, trainer.adam.epsilon), (0.5, 1e-6));
        assert_eq!(trainer.adam.beta2, 0.999);
        assert_eq!(
            trainer.schedule,
            meta_algos::LrSchedule::Cosine { floor: 1e-5 }
        );
        let config = resolved(
            "protonet-omniglot-5w1s",
            "backbone = \"fcnet\"\n[fcnet]\nlayer_dims = [32, 16]\ndropout = 0.0",
            &[],
        );
        let BackboneConfig::FcNet(fcnet) = backbone(&config, [1, 28, 28]).unwrap() else {
            panic!("not fcnet")
        };
        assert_eq!((fcnet.layer_dims, fcnet.dropout), (vec![32, 16], 0.0));
    }
}
