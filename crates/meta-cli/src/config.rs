//! Run configuration: paper preset < config file < command-line flags, resolved into one
//! `RunConfig` that is written to `runs/<name>/config.toml`.

use anyhow::{Context, Result, bail};
use clap::Args;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where data sets live unless `--data-dir` says otherwise.
pub const DEFAULT_DATA_DIR: &str = "datasets";

/// Every setting of a training run, fully resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Algorithm: maml, fomaml, anil, boil, reptile, metasgd, protonet, matchingnet, metanet, metanet-eb.
    pub algo: String,
    /// `omniglot`, `miniimagenet` or `folder:PATH`.
    pub dataset: String,
    /// Omniglot class split: `vinyals`, `l2l` or `lake`.
    pub omniglot_split: String,
    /// Where data sets live.
    pub data_dir: PathBuf,
    /// Backend name: flex, ndarray, wgpu, tch, cuda.
    pub backend: String,
    /// Backbone: conv4, resnet12, fcnet, metanet-embedding.
    pub backbone: String,
    /// Seed of everything: initialisation and episodes.
    pub seed: u64,
    /// Classes per task (N).
    pub ways: usize,
    /// Support images per class (K).
    pub shots: usize,
    /// Query images per class during meta-training.
    pub queries: usize,
    /// Query images per class during validation and test.
    pub test_queries: usize,
    /// Inner-loop steps during meta-training.
    pub inner_steps: usize,
    /// Inner-loop steps at validation and test time.
    pub test_inner_steps: usize,
    /// Inner-loop learning rate.
    pub inner_lr: f64,
    /// Outer (meta) learning rate.
    pub meta_lr: f64,
    /// Tasks per meta-iteration.
    pub meta_batch: usize,
    /// Meta-iterations.
    pub iterations: usize,
    /// Side of the square input images (Omniglot 28, Mini-ImageNet 84).
    pub image_size: usize,
    /// Validate every this many iterations (0: never).
    pub validate_every: usize,
    /// Validation episodes (fixed set).
    pub val_episodes: usize,
    /// Test episodes evaluated at the end of training (0: skip).
    pub test_episodes: usize,
    /// Save the latest checkpoint every this many iterations.
    pub checkpoint_every: usize,
    /// Write a metrics line every this many iterations.
    pub log_every: usize,
}

/// Optional settings from a config file or the command line; `None` keeps the lower layer's value.
#[derive(Debug, Clone, Default, PartialEq, Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigOverrides {
    /// Algorithm: maml, fomaml, anil, boil, reptile, metasgd, protonet, matchingnet, metanet, metanet-eb.
    #[arg(long)]
    pub algo: Option<String>,
    /// Data set: omniglot, miniimagenet or folder:PATH.
    #[arg(long)]
    pub dataset: Option<String>,
    /// Omniglot class split: vinyals (default), l2l or lake.
    #[arg(long)]
    pub omniglot_split: Option<String>,
    /// Where data sets live (default `datasets`).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Backend: flex (default), ndarray, wgpu, tch, cuda (the last three need their cargo feature).
    #[arg(long)]
    pub backend: Option<String>,
    /// Backbone: conv4, resnet12, fcnet, metanet-embedding.
    #[arg(long)]
    pub backbone: Option<String>,
    /// Seed of initialisation and episodes.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Classes per task (N).
    #[arg(long)]
    pub ways: Option<usize>,
    /// Support images per class (K).
    #[arg(long)]
    pub shots: Option<usize>,
    /// Query images per class during meta-training.
    #[arg(long)]
    pub queries: Option<usize>,
    /// Query images per class at validation/test time.
    #[arg(long)]
    pub test_queries: Option<usize>,
    /// Inner-loop steps during meta-training.
    #[arg(long)]
    pub inner_steps: Option<usize>,
    /// Inner-loop steps at validation/test time.
    #[arg(long)]
    pub test_inner_steps: Option<usize>,
    /// Inner-loop learning rate.
    #[arg(long)]
    pub inner_lr: Option<f64>,
    /// Outer (meta) learning rate.
    #[arg(long)]
    pub meta_lr: Option<f64>,
    /// Tasks per meta-iteration.
    #[arg(long)]
    pub meta_batch: Option<usize>,
    /// Meta-iterations.
    #[arg(long)]
    pub iterations: Option<usize>,
    /// Side of the square input images.
    #[arg(long)]
    pub image_size: Option<usize>,
    /// Validate every this many iterations (0: never).
    #[arg(long)]
    pub validate_every: Option<usize>,
    /// Validation episodes.
    #[arg(long)]
    pub val_episodes: Option<usize>,
    /// Test episodes at the end of training (0: skip).
    #[arg(long)]
    pub test_episodes: Option<usize>,
    /// Save the latest checkpoint every this many iterations.
    #[arg(long)]
    pub checkpoint_every: Option<usize>,
    /// Write a metrics line every this many iterations.
    #[arg(long)]
    pub log_every: Option<usize>,
}

impl Default for RunConfig {
    /// MAML on Omniglot 5-way 1-shot with Finn et al.'s settings, on the default CPU backend.
    fn default() -> Self {
        Self {
            algo: "maml".into(),
            dataset: "omniglot".into(),
            omniglot_split: "vinyals".into(),
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            backend: crate::backend::DEFAULT_BACKEND.into(),
            backbone: "conv4".into(),
            seed: 42,
            ways: 5,
            shots: 1,
            queries: 15,
            test_queries: 15,
            inner_steps: 1,
            test_inner_steps: 10,
            inner_lr: 0.4,
            meta_lr: 1e-3,
            meta_batch: 32,
            iterations: 60_000,
            image_size: 28,
            validate_every: 500,
            val_episodes: 100,
            test_episodes: 600,
            checkpoint_every: 100,
            log_every: 10,
        }
    }
}

impl RunConfig {
    /// Applies every setting that `overrides` carries. The two types are merged through their
    /// serde forms (a key that `overrides` sets replaces the same key here; unset keys are
    /// absent), so no field can be left out of the merge; an override key without a `RunConfig`
    /// field is an error.
    pub fn apply(&mut self, overrides: &ConfigOverrides) -> Result<()> {
        // TOML, not JSON: JSON would turn a NaN or infinite value into "unset".
        let toml::Value::Table(mut merged) = toml::Value::try_from(&*self)? else {
            bail!("a run configuration serialises to a table");
        };
        let toml::Value::Table(set) = toml::Value::try_from(overrides)? else {
            bail!("configuration overrides serialise to a table");
        };
        merged.extend(set);
        *self = merged
            .try_into()
            .context("merging configuration overrides")?;
        Ok(())
    }

    /// Checks the combination of settings; errors name the flag and what to do.
    pub fn validate(&self) -> Result<()> {
        for (flag, value) in [
            ("--ways", self.ways),
            ("--shots", self.shots),
            ("--queries", self.queries),
            ("--test-queries", self.test_queries),
            ("--meta-batch", self.meta_batch),
            ("--image-size", self.image_size),
        ] {
            if value == 0 {
                bail!("{flag} must be at least 1 (got 0)");
            }
        }
        if self.ways < 2 {
            bail!(
                "--ways must be at least 2 for a classification task (got {})",
                self.ways
            );
        }
        for (flag, value) in [("--inner-lr", self.inner_lr), ("--meta-lr", self.meta_lr)] {
            if !value.is_finite() || value < 0.0 {
                bail!("{flag} must be a finite, non-negative number (got {value})");
            }
        }
        if !crate::algos::ALGOS.contains(&self.algo.as_str()) {
            bail!(
                "unknown --algo `{}`; choose one of {}",
                self.algo,
                crate::algos::ALGOS.join(", ")
            );
        }
        if !crate::algos::BACKBONES.contains(&self.backbone.as_str()) {
            bail!(
                "unknown --backbone `{}`; choose one of {}",
                self.backbone,
                crate::algos::BACKBONES.join(", ")
            );
        }
        crate::backend::check_compiled(&self.backend)?;
        Ok(())
    }

    /// Default run-directory name: `<algo>-<dataset>-<N>w<K>s-s<seed>`.
    pub fn default_run_name(&self) -> String {
        let dataset = self
            .dataset
            .strip_prefix("folder:")
            .map(|p| {
                Path::new(p)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "folder".into())
            })
            .unwrap_or_else(|| self.dataset.clone());
        format!(
            "{}-{}-{}w{}s-s{}",
            self.algo, dataset, self.ways, self.shots, self.seed
        )
    }

    /// Reads a resolved configuration (a run's `config.toml`).
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read run config {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("invalid run config {}", path.display()))
    }

    /// The configuration as TOML text.
    pub fn to_toml(&self) -> Result<String> {
        Ok(toml::to_string_pretty(self)?)
    }
}

/// Reads a user's partial config file.
pub fn read_overrides(path: &Path) -> Result<ConfigOverrides> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read --config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| {
        format!(
            "--config file {} is not valid: keys are the train flags with `_` for `-`",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// A configuration that differs from the default in every field.
    fn all_changed() -> RunConfig {
        RunConfig {
            algo: "protonet".into(),
            dataset: "miniimagenet".into(),
            omniglot_split: "lake".into(),
            data_dir: PathBuf::from("elsewhere"),
            backend: "ndarray".into(),
            backbone: "resnet12".into(),
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
        }
    }

    /// `all_changed` as a map from key to value, checked to differ from the default everywhere.
    fn changed_keys() -> serde_json::Map<String, serde_json::Value> {
        let default = serde_json::to_value(RunConfig::default()).unwrap();
        let serde_json::Value::Object(changed) = serde_json::to_value(all_changed()).unwrap()
        else {
            unreachable!("a struct serialises to a map")
        };
        for (key, value) in &changed {
            assert_ne!(
                &default[key], value,
                "all_changed() keeps the default {key}"
            );
        }
        changed
    }

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        overrides: ConfigOverrides,
    }

    #[test]
    fn every_flag_reaches_the_resolved_config() {
        let mut argv = vec!["metalearn".to_string()];
        for (key, value) in changed_keys() {
            argv.push(format!("--{}", key.replace('_', "-")));
            argv.push(match value {
                serde_json::Value::String(text) => text,
                other => other.to_string(),
            });
        }
        let flags = Flags::try_parse_from(&argv).expect("every RunConfig key is a flag");
        let mut config = RunConfig::default();
        config.apply(&flags.overrides).unwrap();
        assert_eq!(config, all_changed());
    }

    #[test]
    fn every_config_file_key_reaches_the_resolved_config() {
        let text = toml::to_string(&serde_json::Value::Object(changed_keys())).unwrap();
        let overrides: ConfigOverrides =
            toml::from_str(&text).expect("every RunConfig key is a config-file key");
        let mut config = RunConfig::default();
        config.apply(&overrides).unwrap();
        assert_eq!(config, all_changed());
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
}
