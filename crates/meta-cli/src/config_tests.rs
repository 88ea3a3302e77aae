//! Every key of a run configuration reaches it from a flag and from a config file; sections
//! merge key by key and refuse what they do not hold.

use super::*;
use crate::sections::MetaSgdInit;
use clap::Parser;
use meta_algos::{AdamParams, GradClip, InnerOptimizer, OuterOptimizer};
use meta_backbones::{BnConfig, BnMode, Conv4Variant};

/// Batch-norm settings that differ from the default in every key.
fn changed_bn(mode: BnMode) -> BnConfig {
    BnConfig {
        mode,
        momentum: 0.2,
        eps: 1e-3,
    }
}

/// A configuration that differs from the default in every key, sections included.
fn all_changed() -> RunConfig {
    RunConfig {
        algo: "protonet".into(),
        dataset: "miniimagenet".into(),
        omniglot_split: "lake".into(),
        data_dir: PathBuf::from("elsewhere"),
        backend: "ndarray".into(),
        backbone: "resnet12".into(),
        loss: meta_backbones::Loss::Mse,
        seed: 7,
        ways: 20,
        shots: 5,
        queries: 3,
        test_queries: 4,
        inner_steps: 2,
        test_inner_steps: 3,
        inner_lr: 0.05,
        meta_lr: 0.002,
        meta_batch: 3,
        iterations: 11,
        image_size: 84,
        validate_every: 5,
        val_episodes: 6,
        test_episodes: 8,
        checkpoint_every: 9,
        log_every: 2,
        folder: Some(FolderSection {
            channels: 1,
            split: Some(crate::data::FolderSplitKind::Fractions),
            fractions: Some([0.5, 0.25, 0.25]),
            split_seed: Some(7),
        }),
        label_column: Some("species".into()),
        csv: Some(crate::data::CsvSection {
            standardize: false,
            fractions: [0.5, 0.25, 0.25],
            split_seed: 7,
        }),
        sine: Some(crate::data::SineSection {
            amplitude: [1.0, 2.0],
            phase: [0.5, 1.0],
            x_range: [-1.0, 1.0],
        }),
        optimizer: Some(OptimizerSection {
            kind: Some(OuterOptimizer::Sgd),
            grad_clip: GradClip::Norm(2.5),
            adam: AdamParams {
                beta1: 0.5,
                beta2: 0.9,
                epsilon: 1e-6,
            },
        }),
        schedule: Some(LrSchedule::Cosine { floor: 1e-4 }),
        augment: Some(ImageAugment {
            crop_padding: 4,
            flip: true,
            brightness: 0.1,
            contrast: 0.2,
            saturation: 0.3,
        }),
        reptile: Some(ReptileSection {
            inner_optimizer: InnerOptimizer::Sgd,
            inner_batch: 5,
            train_on_query: false,
        }),
        metasgd: Some(MetaSgdSection {
            init: MetaSgdInit::Constant,
            init_low: 0.01,
        }),
        mamlpp: Some(meta_algos::MamlPlusPlusOptions {
            learn_rates: false,
            adapt_bn: true,
            multi_step_loss_epochs: 3,
            first_order_epochs: 2,
            epoch_iterations: 100,
        }),
        matchingnet: Some(MatchingNetConfig {
            temperature: 10.0,
            fce: true,
            read_steps: 3,
        }),
        protonet: Some(ProtoNetConfig {}),
        baseline: Some(meta_algos::BaselineConfig {
            classes: 64,
            head: meta_algos::BaselineHead::Cosine,
            scale: Some(3.0),
            finetune_epochs: 50,
            finetune_batch: 8,
            finetune_lr: 0.02,
            finetune_momentum: 0.5,
            finetune_dampening: 0.0,
            finetune_weight_decay: 0.0,
        }),
        metanet: Some(MetaNetConfig {
            meta_hidden: 32,
            task_chunks: 3,
            task_fast_weights: false,
            preprocess_k: 5.0,
            attention_temperature: 2.0,
            grad_clip: 5.0,
        }),
        metanet_eb: Some(MetaNetEbConfig {
            hidden: 64,
            grad_clip: 2.0,
        }),
        conv4: Some(Conv4Section {
            hidden: Some(16),
            variant: Conv4Variant::Strided,
            bn: changed_bn(BnMode::Running),
        }),
        resnet12: Some(ResNet12Section {
            widths: [8, 16, 32, 64],
            bn: changed_bn(BnMode::PerStep { steps: 3 }),
        }),
        fcnet: Some(FcNetSection {
            layer_dims: vec![32],
            dropout: 0.1,
            batch_norm: false,
            bn: changed_bn(BnMode::Running),
        }),
        metanet_embedding: Some(MetaNetEmbeddingSection {
            hidden: 32,
            bn: changed_bn(BnMode::Running),
        }),
        metanet_cnn: Some(MetaNetCnnSection {
            filters: 16,
            conv_layers: 4,
            fc_hidden: 32,
        }),
    }
}

/// The default configuration with every section present at its default values.
fn default_with_every_section() -> RunConfig {
    RunConfig {
        folder: Some(Default::default()),
        sine: Some(Default::default()),
        csv: Some(Default::default()),
        optimizer: Some(RunConfig::default().optimizer()),
        schedule: Some(LrSchedule::default()),
        augment: Some(ImageAugment::default()),
        reptile: Some(Default::default()),
        metasgd: Some(Default::default()),
        mamlpp: Some(Default::default()),
        matchingnet: Some(Default::default()),
        protonet: Some(Default::default()),
        baseline: Some(Default::default()),
        metanet: Some(Default::default()),
        metanet_eb: Some(Default::default()),
        conv4: Some(RunConfig::default().conv4()),
        resnet12: Some(Default::default()),
        fcnet: Some(Default::default()),
        metanet_embedding: Some(Default::default()),
        metanet_cnn: Some(Default::default()),
        ..RunConfig::default()
    }
}

/// `config`'s keys as dotted paths with their TOML values (an empty section is one key).
fn leaves(config: &RunConfig) -> Vec<(String, toml::Value)> {
    fn walk(path: &str, value: &toml::Value, out: &mut Vec<(String, toml::Value)>) {
        match value {
            toml::Value::Table(table) if !table.is_empty() => {
                for (key, inner) in table {
                    walk(&crate::merge::join(path, key), inner, out);
                }
            }
            other => out.push((path.to_string(), other.clone())),
        }
    }
    let mut out = Vec::new();
    walk("", &toml::Value::try_from(config).unwrap(), &mut out);
    out
}

/// `all_changed`'s keys, checked to differ from the default everywhere.
fn changed_leaves() -> Vec<(String, toml::Value)> {
    let default = leaves(&default_with_every_section());
    let changed = leaves(&all_changed());
    for (key, value) in &changed {
        if value.as_table().is_some_and(toml::Table::is_empty) {
            continue; // a section without keys ([protonet]) has nothing to change
        }
        let before = default.iter().find(|(k, _)| k == key).map(|(_, v)| v);
        assert_ne!(before, Some(value), "all_changed() keeps the default {key}");
    }
    // Every default key is changed (no key of a section is missing from all_changed()).
    for (key, _) in &default {
        let covered = changed
            .iter()
            .any(|(k, _)| k == key || k.starts_with(&format!("{key}.")));
        let variant = key.ends_with(".mode") || key.ends_with(".grad_clip");
        assert!(covered || variant, "all_changed() lacks {key}");
    }
    changed
}

#[derive(Parser)]
struct Flags {
    #[command(flatten)]
    overrides: ConfigOverrides,
}

#[test]
fn every_flag_and_set_item_reaches_the_resolved_config() {
    let mut argv = vec!["metalearn".to_string()];
    for (key, value) in changed_leaves() {
        if key.contains('.') || value.is_table() {
            argv.push("--set".into());
            argv.push(format!("{key}={value}"));
        } else {
            argv.push(format!("--{}", key.replace('_', "-")));
            argv.push(match value {
                toml::Value::String(text) => text,
                other => other.to_string(),
            });
        }
    }
    let flags = Flags::try_parse_from(&argv).expect("every RunConfig key is a flag");
    let mut config = RunConfig::default();
    config.apply(&flags.overrides).unwrap();
    assert_eq!(config, all_changed());
}

#[test]
fn every_config_file_key_reaches_the_resolved_config() {
    let text = toml::to_string(&all_changed()).unwrap();
    let overrides: ConfigOverrides =
        toml::from_str(&text).expect("every RunConfig key is a config-file key");
    let mut config = RunConfig::default();
    config.apply(&overrides).unwrap();
    assert_eq!(config, all_changed());
}

#[test]
fn a_layer_changes_only_the_section_keys_it_sets() {
    let mut config = all_changed();
    let overrides: ConfigOverrides = toml::from_str(
        "[reptile]\ninner_batch = 7\n[optimizer.adam]\nbeta2 = 0.95\n[conv4.bn]\nmomentum = 0.3",
    )
    .unwrap();
    config.apply(&overrides).unwrap();
    let mut expected = all_changed();
    expected.reptile.as_mut().unwrap().inner_batch = 7;
    expected.optimizer.as_mut().unwrap().adam.beta2 = 0.95;
    expected.conv4.as_mut().unwrap().bn.momentum = 0.3;
    assert_eq!(config, expected);
    // A schedule of another kind replaces the section: its keys belong to the old kind.
    let flags = Flags::try_parse_from([
        "metalearn",
        "--set",
        "schedule.kind=linear",
        "--set",
        "schedule.final_lr=0.5",
    ])
    .unwrap();
    config.apply(&flags.overrides).unwrap();
    assert_eq!(config.schedule, Some(LrSchedule::Linear { final_lr: 0.5 }));
}

#[test]
fn unknown_keys_are_refused_naming_section_key_and_valid_keys() {
    for (text, wanted) in [
        (
            "[reptile]\ninner_bach = 5",
            &["[reptile]", "inner_bach", "inner_batch"][..],
        ),
        (
            "[optimizer.adam]\nbeta3 = 0.5",
            &["[optimizer.adam]", "beta3", "beta2"],
        ),
        // BnConfig itself accepts unknown keys; the round trip refuses them.
        (
            "[conv4.bn]\nmomentun = 0.5",
            &["conv4.bn.momentun", "momentum"],
        ),
        ("[maml]\ninner_lr = 0.1", &["maml", "inner_lr"]),
        ("wayz = 5", &["wayz", "ways"]),
    ] {
        let overrides: ConfigOverrides = toml::from_str(text).unwrap();
        let err = RunConfig::default()
            .apply(&overrides)
            .map(|_| ())
            .unwrap_err();
        let err = format!("{err:#}");
        for word in wanted {
            assert!(err.contains(word), "{text}: {err}");
        }
    }
}

#[test]
fn non_finite_values_are_kept_for_validation_to_refuse() {
    let mut config = RunConfig::default();
    let overrides = ConfigOverrides {
        meta_lr: Some(f64::NAN),
        ..ConfigOverrides::default()
    };
    config.apply(&overrides).unwrap();
    assert!(config.meta_lr.is_nan());
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("--meta-lr"), "{err}");
}

#[test]
fn unset_overrides_change_nothing() {
    let mut config = all_changed();
    config.apply(&ConfigOverrides::default()).unwrap();
    assert_eq!(config, all_changed());
}

/// The first TOML example under README heading `heading`, as a configuration layer.
fn readme_example(heading: &str) -> ConfigOverrides {
    let readme = include_str!("../../../README.md");
    let example = readme
        .split(heading)
        .nth(1)
        .and_then(|rest| rest.split("```toml\n").nth(1))
        .and_then(|rest| rest.split("```").next())
        .unwrap_or_else(|| panic!("README has no TOML example under {heading}"));
    toml::from_str(example).unwrap()
}

#[test]
fn the_readme_config_example_is_accepted_as_written() {
    let overrides = readme_example("### Configuration files");
    let mut config = RunConfig {
        algo: "protonet".into(),
        ..RunConfig::default()
    };
    config.apply(&overrides).unwrap();
    config.fill_defaults();
    config.validate().unwrap();
    assert_eq!(config.schedule, Some(LrSchedule::Cosine { floor: 1e-5 }));
}

#[test]
fn a_folder_dataset_shows_the_split_its_layout_gets_and_refuses_settings_it_cannot_use() {
    let tmp = tempfile::tempdir().unwrap();
    let (split, single) = (tmp.path().join("split"), tmp.path().join("single"));
    for dir in ["train/a", "test/b"] {
        std::fs::create_dir_all(split.join(dir)).unwrap();
    }
    std::fs::create_dir_all(single.join("a")).unwrap();
    let resolve = |root: &Path, set: &[&str]| {
        let dataset = format!("--dataset=folder:{}", root.display());
        let mut argv = vec!["metalearn", "--algo", "protonet", &dataset];
        for item in set {
            argv.extend(["--set", item]);
        }
        let flags = Flags::try_parse_from(argv).unwrap();
        crate::layers::layered(None, None, &flags.overrides).unwrap()
    };
    let config = resolve(&split, &[]);
    config.validate().unwrap();
    let text = config.to_toml().unwrap();
    assert!(
        text.contains("[folder]\nchannels = 3\nsplit = \"folders\"\n"),
        "{text}"
    );
    assert!(
        !text.contains("fractions") && !text.contains("split_seed"),
        "{text}"
    );
    let config = resolve(&single, &["folder.channels=1"]);
    config.validate().unwrap();
    let folder = config.folder.as_ref().unwrap();
    assert_eq!(
        (
            folder.channels,
            folder.split,
            folder.fractions,
            folder.split_seed
        ),
        (
            1,
            Some(crate::data::FolderSplitKind::Fractions),
            Some([0.64, 0.16, 0.2]),
            Some(42)
        )
    );
    let back: RunConfig = toml::from_str(&config.to_toml().unwrap()).unwrap();
    assert_eq!(back, config);
    for (root, set, needle) in [
        (&split, "folder.split_seed=3", "split is \"folders\""),
        (&single, "folder.fractions=[0.7, 0.2, 0.2]", "sum to 1.1"),
        (&single, "folder.channels=4", "got 4"),
    ] {
        let err = format!("{:#}", resolve(root, &[set]).validate().unwrap_err());
        assert!(
            err.contains("[folder]") && err.contains(needle),
            "{set}: {err}"
        );
    }
    // Other data sets get no [folder] section.
    let mut omniglot = RunConfig::default();
    omniglot.fill_defaults();
    assert_eq!(omniglot.folder, None);
}

#[test]
fn the_readme_folder_example_is_accepted_as_written() {
    let overrides = readme_example("### Your own images");
    let mut config = RunConfig::default();
    config.apply(&overrides).unwrap();
    config.fill_defaults();
    config.validate().unwrap();
    assert_eq!(config.dataset, "folder:my-glyphs");
    assert_eq!(
        config.folder,
        Some(FolderSection {
            channels: 1,
            split: Some(crate::data::FolderSplitKind::Fractions),
            fractions: Some([0.7, 0.1, 0.2]),
            split_seed: Some(0),
        })
    );
}

#[test]
fn backbone_settings_out_of_range_are_refused_before_any_data_is_read() {
    let refused = |text: &str| {
        let mut config = RunConfig::default();
        config.apply(&toml::from_str(text).unwrap()).unwrap();
        config.validate().unwrap_err().to_string()
    };
    let err = refused("[conv4]\nhidden = 0");
    assert!(err.contains("[conv4]") && err.contains("hidden"), "{err}");
    let err = refused("backbone = \"fcnet\"\n[fcnet]\ndropout = 1.5");
    assert!(err.contains("[fcnet]") && err.contains("dropout"), "{err}");
    let err = refused("image_size = 8");
    assert!(err.contains("--image-size 8"), "{err}");
    let err = refused("[augment]\ncrop_padding = 28");
    assert!(
        err.contains("[augment]") && err.contains("crop_padding"),
        "{err}"
    );
    let err = refused("[schedule]\nkind = \"step\"\nevery = 0\nfactor = 0.5");
    assert!(err.contains("[schedule]") && err.contains("every"), "{err}");
}
