//! The layers of a new run's configuration: a preset (by default the algorithm's own paper
//! preset), then a `--config` file, then flags; then every section the run uses is filled in.

use crate::config::{ConfigOverrides, RunConfig};
use anyhow::{Result, bail};

/// Preset < config file < flags. Without `--preset`, the first layer is the chosen algorithm's
/// Omniglot 5-way 1-shot paper preset (`<algo>-omniglot-5w1s`; `<algo>-sine-10shot` with
/// `--dataset sine` or for an algorithm without Omniglot rows), so that its own meta-batch,
/// learning rates and inner steps apply rather than MAML's.
pub fn layered(
    preset: Option<&str>,
    file: Option<&ConfigOverrides>,
    flags: &ConfigOverrides,
) -> Result<RunConfig> {
    let mut config = RunConfig::default();
    let algo = (flags.algo.as_ref()).or(file.and_then(|f| f.algo.as_ref()));
    let dataset = (flags.dataset.as_ref()).or(file.and_then(|f| f.dataset.as_ref()));
    let name = match preset {
        Some(name) => name.to_string(),
        None => default_preset(algo.unwrap_or(&config.algo), dataset.map(String::as_str)),
    };
    match meta_algos::presets::preset(&name) {
        Some(found) => {
            let mut layer = preset_overrides(found);
            // A preset's algorithm section is for its own algorithm only.
            if algo.is_some_and(|algo| *algo != found.algo) {
                layer.sections.remove(&*found.algo);
            }
            // So is its backbone section.
            let backbone = (flags.backbone.as_ref()).or(file.and_then(|f| f.backbone.as_ref()));
            if backbone.is_some_and(|backbone| *backbone != found.backbone) {
                layer.sections.remove(&*found.backbone);
            }
            config.apply(&layer)?
        }
        None if preset.is_some() => {
            bail!("unknown --preset `{name}`; `metalearn train --list-presets` lists them")
        }
        // An unknown --algo: `RunConfig::validate` names it.
        None => {}
    }
    if let Some(file) = file {
        config.apply(file)?;
    }
    config.apply(flags)?;
    config.fill_defaults();
    Ok(config)
}

/// The preset a run of `algo` on `dataset` starts from without `--preset`.
pub fn default_preset(algo: &str, dataset: Option<&str>) -> String {
    let sine = format!("{algo}-sine-10shot");
    let omniglot = format!("{algo}-omniglot-5w1s");
    let on_sine = dataset == Some(crate::data::SINE);
    if on_sine || meta_algos::presets::preset(&omniglot).is_none() {
        sine
    } else {
        omniglot
    }
}

/// The settings a preset fixes, as a configuration layer.
pub fn preset_overrides(preset: &meta_algos::presets::Preset) -> ConfigOverrides {
    let mut sections = toml::Table::new();
    // The algorithm's own section: every key a preset fixes there, in one table.
    let mut algo = toml::Table::new();
    if let Some(batch) = preset.inner_batch {
        algo.insert("inner_batch".into(), (batch as i64).into());
    }
    if let Some(toml::Value::Table(mamlpp)) = preset.mamlpp.as_ref().map(section_value) {
        algo.extend(mamlpp);
    }
    if let Some(head) = &preset.baseline {
        algo.insert("head".into(), section_value(head));
    }
    if preset.matchingnet_fce {
        algo.insert("fce".into(), true.into());
    }
    if let Some(optimizer) = &preset.inner_optimizer {
        algo.insert("inner_optimizer".into(), section_value(optimizer));
    }
    if !algo.is_empty() {
        sections.insert(preset.algo.to_string(), algo.into());
    }
    let mut backbone = toml::Table::new();
    if let Some(hidden) = preset.hidden {
        backbone.insert("hidden".into(), (hidden as i64).into());
    }
    if let Some(bn) = &preset.bn {
        backbone.insert("bn".into(), section_value(bn));
    }
    if preset.sine_net {
        let net = crate::sections::FcNetSection {
            layer_dims: vec![40, 40],
            dropout: 0.0,
            batch_norm: false,
            ..Default::default()
        };
        if let toml::Value::Table(net) = section_value(&net) {
            backbone.extend(net);
        }
    }
    if !backbone.is_empty() {
        sections.insert(preset.backbone.to_string(), backbone.into());
    }
    if preset.augment.is_active() {
        sections.insert("augment".into(), section_value(&preset.augment));
    }
    if let Some(schedule) = &preset.schedule {
        sections.insert("schedule".into(), section_value(schedule));
    }
    ConfigOverrides {
        sections,
        algo: Some(preset.algo.to_string()),
        dataset: Some(preset.dataset.to_string()),
        backbone: Some(preset.backbone.to_string()),
        ways: Some(preset.ways),
        shots: Some(preset.shots),
        queries: Some(preset.queries_train),
        test_queries: Some(preset.queries_test),
        inner_steps: Some(preset.inner_steps_train),
        test_inner_steps: Some(preset.inner_steps_test),
        inner_lr: Some(preset.inner_lr),
        meta_lr: Some(preset.meta_lr),
        meta_batch: Some(preset.meta_batch),
        iterations: Some(preset.iterations),
        validate_every: Some(preset.validate_every),
        val_episodes: Some(preset.val_episodes),
        image_size: Some(match &*preset.dataset {
            "omniglot" => 28,
            crate::data::SINE => 1,
            _ => 84,
        }),
        ..ConfigOverrides::default()
    }
}

/// A preset's typed setting as the TOML section a config file would hold.
fn section_value<T: serde::Serialize>(value: &T) -> toml::Value {
    toml::Value::try_from(value).expect("preset settings serialise to TOML")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The resolved configuration of preset `name` alone.
    fn resolved(name: &str) -> RunConfig {
        layered(Some(name), None, &ConfigOverrides::default())
            .unwrap_or_else(|e| panic!("{name}: {e:#}"))
    }

    #[test]
    fn every_algorithm_has_5_and_20_way_omniglot_presets() {
        // The pre-training regression baseline has no classification rows.
        for algo in crate::algos::ALGOS.iter().filter(|a| **a != "pretrain") {
            for ways in [5, 20] {
                let name = format!("{algo}-omniglot-{ways}w1s");
                let preset = meta_algos::presets::preset(&name)
                    .unwrap_or_else(|| panic!("no preset {name}"));
                assert_eq!((&*preset.algo, preset.ways), (*algo, ways), "{name}");
            }
        }
    }

    #[test]
    fn mamlpp_presets_carry_per_step_batch_norm_and_their_schedules() {
        use meta_algos::{LrSchedule, MamlPlusPlusOptions};
        use meta_backbones::BnMode;
        let omniglot = resolved("mamlpp-omniglot-20w1s");
        let conv4 = omniglot.conv4.clone().unwrap();
        assert_eq!(conv4.bn.mode, BnMode::PerStep { steps: 5 });
        assert_eq!(omniglot.mamlpp, Some(MamlPlusPlusOptions::OMNIGLOT));
        assert_eq!(omniglot.schedule, Some(LrSchedule::Cosine { floor: 1e-5 }));
        assert_eq!((omniglot.meta_batch, omniglot.queries), (8, 1));
        let mini = resolved("mamlpp-miniimagenet-5w5s");
        assert_eq!(mini.mamlpp, Some(MamlPlusPlusOptions::MINI_IMAGENET));
        assert_eq!(mini.conv4.clone().unwrap().hidden, Some(48));
        assert_eq!((mini.meta_batch, mini.inner_lr), (2, 0.01));
        // One learned rate per training step: more test steps are refused, naming the flag.
        let flags = ConfigOverrides {
            test_inner_steps: Some(6),
            ..ConfigOverrides::default()
        };
        let err = layered(Some("mamlpp-omniglot-5w1s"), None, &flags)
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(format!("{err:#}").contains("--test-inner-steps"), "{err:#}");
    }

    #[test]
    fn baseline_presets_set_their_head_batch_norm_and_batch() {
        use meta_algos::BaselineHead;
        use meta_backbones::BnMode;
        let plus = resolved("baselinepp-miniimagenet-5w5s");
        let section = plus.baseline.unwrap();
        // The class count comes from the data when training starts.
        assert_eq!((section.head, section.classes), (BaselineHead::Cosine, 0));
        let conv4 = plus.conv4.clone().unwrap();
        assert_eq!((conv4.bn.mode, conv4.hidden), (BnMode::Running, Some(64)));
        assert!(plus.augment.unwrap().is_active());
        let linear = resolved("baseline-omniglot-5w1s");
        assert_eq!(linear.baseline.unwrap().head, BaselineHead::Linear);
        // 2 tasks × 5 classes × (1 shot + 1 query) = 20 images; 5 epochs of 82,240 images.
        assert_eq!(
            (linear.meta_batch, linear.queries, linear.iterations),
            (2, 1, 20_560)
        );
    }

    #[test]
    fn matchingnet_uses_full_context_embeddings_on_mini_imagenet_only() {
        let mini = resolved("matchingnet-miniimagenet-5w1s")
            .matchingnet
            .unwrap();
        assert!(mini.fce && mini.read_steps == 5);
        assert!(
            !resolved("matchingnet-omniglot-5w1s")
                .matchingnet
                .unwrap()
                .fce
        );
    }

    #[test]
    fn every_preset_resolves_to_a_valid_config_with_its_settings() {
        for preset in meta_algos::presets::PRESETS {
            let config = resolved(&preset.name);
            config
                .validate()
                .unwrap_or_else(|e| panic!("{}: {e:#}", preset.name));
            assert_eq!(
                (
                    config.algo.as_str(),
                    config.ways,
                    config.meta_batch,
                    config.iterations,
                    config.validate_every,
                    config.val_episodes
                ),
                (
                    &*preset.algo,
                    preset.ways,
                    preset.meta_batch,
                    preset.iterations,
                    preset.validate_every,
                    preset.val_episodes
                ),
                "{}",
                preset.name
            );
        }
    }

    #[test]
    fn without_a_preset_the_algorithm_s_own_settings_apply() {
        let algo = |name: &str| ConfigOverrides {
            algo: Some(name.into()),
            ..ConfigOverrides::default()
        };
        let none = ConfigOverrides::default();
        for name in crate::algos::ALGOS {
            let config = layered(None, None, &algo(name)).unwrap();
            // The regression baseline has only sine rows.
            let row = if *name == "pretrain" {
                "sine-10shot"
            } else {
                "omniglot-5w1s"
            };
            assert_eq!(config, resolved(&format!("{name}-{row}")), "{name}");
        }
        // With --dataset sine, the algorithm's sine row.
        let sine = ConfigOverrides {
            dataset: Some("sine".into()),
            ..algo("fomaml")
        };
        assert_eq!(
            layered(None, None, &sine).unwrap(),
            resolved("fomaml-sine-10shot")
        );
        // ProtoNet trains on one episode per iteration, as in its paper, not MAML's 32 tasks.
        assert_eq!(
            layered(None, None, &algo("protonet")).unwrap().meta_batch,
            1
        );
        // The algorithm may come from the config file; flags still win over everything.
        let from_file = layered(None, Some(&algo("protonet")), &none).unwrap();
        assert_eq!(from_file.meta_batch, 1);
        let flags = ConfigOverrides {
            meta_batch: Some(3),
            ..algo("protonet")
        };
        assert_eq!(layered(None, None, &flags).unwrap().meta_batch, 3);
        assert_eq!(
            layered(None, None, &none).unwrap(),
            resolved("maml-omniglot-5w1s")
        );
        let err = layered(Some("nope"), None, &none).unwrap_err().to_string();
        assert!(
            err.contains("`nope`") && err.contains("--list-presets"),
            "{err}"
        );
    }

    #[test]
    fn a_section_for_another_algorithm_or_backbone_is_refused() {
        let file = |text: &str| toml::from_str::<ConfigOverrides>(text).unwrap();
        let none = ConfigOverrides::default();
        for (preset, text, words) in [
            (
                "maml-omniglot-5w1s",
                "[reptile]\ninner_batch = 5",
                ["[reptile]", "--algo", "`maml`"],
            ),
            (
                "protonet-omniglot-5w1s",
                "[resnet12]\nwidths = [8, 8, 8, 8]",
                ["[resnet12]", "--backbone", "`conv4`"],
            ),
        ] {
            let config = layered(Some(preset), Some(&file(text)), &none).unwrap();
            let err = config.validate().unwrap_err().to_string();
            for word in words {
                assert!(err.contains(word), "{err}");
            }
        }
        // A preset's own section does not follow it to another algorithm.
        let flags = ConfigOverrides {
            algo: Some("maml".into()),
            ..ConfigOverrides::default()
        };
        let config = layered(Some("reptile-omniglot-20w1s"), None, &flags).unwrap();
        config.validate().unwrap();
        assert_eq!(config.reptile, None);
    }

    #[test]
    fn miniimagenet_presets_augment_training_and_set_their_width_and_schedule() {
        for (name, shots, hidden, schedule) in [
            (
                "maml-miniimagenet-5w1s",
                1,
                32,
                meta_algos::LrSchedule::Constant,
            ),
            (
                "maml-miniimagenet-5w5s",
                5,
                32,
                meta_algos::LrSchedule::Constant,
            ),
            (
                "protonet-miniimagenet-5w5s-cpu",
                5,
                64,
                meta_algos::LrSchedule::Step {
                    every: 2000,
                    factor: 0.5,
                },
            ),
        ] {
            let config = resolved(name);
            config.validate().unwrap();
            assert_eq!(
                (config.dataset.as_str(), config.image_size, config.shots),
                ("miniimagenet", 84, shots),
                "{name}"
            );
            assert_eq!(config.augment, Some(meta_data::ImageAugment::STANDARD));
            assert_eq!(config.conv4().hidden, Some(hidden), "{name}");
            assert_eq!(config.schedule, Some(schedule), "{name}");
            let text = config.to_toml().unwrap();
            assert!(text.contains("[augment]\ncrop_padding = 8"), "{text}");
        }
        // Omniglot presets do not augment; another backbone drops the preset's [conv4].
        assert_eq!(
            resolved("protonet-omniglot-5w1s").augment,
            Some(meta_data::ImageAugment::NONE)
        );
        let flags = ConfigOverrides {
            backbone: Some("resnet12".into()),
            ..ConfigOverrides::default()
        };
        let config = layered(Some("protonet-miniimagenet-5w1s"), None, &flags).unwrap();
        config.validate().unwrap();
        assert_eq!(
            (config.conv4, config.augment),
            (None, Some(meta_data::ImageAugment::STANDARD))
        );
    }

    #[test]
    fn the_resolved_config_shows_every_section_the_run_uses() {
        let config = resolved("reptile-omniglot-20w1s");
        let text = config.to_toml().unwrap();
        for line in [
            "[optimizer]",
            "kind = \"sgd\"",
            "grad_clip = \"auto\"",
            "[optimizer.adam]",
            "beta1 = 0.9",
            "[schedule]",
            "kind = \"linear\"",
            "[reptile]",
            "inner_batch = 20",
            "inner_optimizer = \"adam\"",
            "[conv4]",
            "hidden = 64",
            "variant = \"max_pool\"",
            "[conv4.bn]",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        let back: RunConfig = toml::from_str(&text).unwrap();
        assert_eq!(back, config);
    }

    #[test]
    fn a_run_directory_written_before_the_sections_loads_with_the_defaults_it_ran_with() {
        let mut old = resolved("reptile-omniglot-20w1s");
        (old.optimizer, old.schedule, old.reptile, old.conv4) = (None, None, None, None);
        let dir = std::env::temp_dir().join(format!("metalearn-old-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.toml");
        std::fs::write(&path, old.to_toml().unwrap()).unwrap();
        let read = RunConfig::read(&path).unwrap();
        std::fs::remove_dir_all(&dir).ok();
        // Runs before the sections existed used ReptileConfig's default inner batch (10).
        assert_eq!(read.reptile.as_ref().map(|r| r.inner_batch), Some(10));
        assert_eq!(read.optimizer().kind, Some(meta_algos::OuterOptimizer::Sgd));
        assert_eq!(
            read.schedule,
            Some(meta_algos::LrSchedule::Linear { final_lr: 0.0 })
        );
        assert_eq!(read.conv4().hidden, Some(64));
    }
}
