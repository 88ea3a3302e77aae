//! Run configuration: paper preset < config file < command-line flags, resolved into one
//! `RunConfig` that is written to `runs/<name>/config.toml`.

use crate::data::{CSV_PREFIX, CsvSection, FolderSection, SINE, SineSection};
use crate::sections::{
    Conv4Section, FcNetSection, MetaNetCnnSection, MetaNetEmbeddingSection, MetaSgdSection,
    OptimizerSection, ReptileSection, ResNet12Section,
};
use anyhow::{Context, Result, bail};
use clap::Args;
use meta_algos::{
    BaselineConfig, LrSchedule, MamlPlusPlusOptions, MatchingNetConfig, MetaNetConfig,
    MetaNetEbConfig, ProtoNetConfig,
};
use meta_data::ImageAugment;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where data sets live unless `--data-dir` says otherwise.
pub const DEFAULT_DATA_DIR: &str = "datasets";

/// Every setting of a training run, fully resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Algorithm: maml, fomaml, anil, boil, reptile, metasgd, mamlpp, protonet, matchingnet, metanet,
    /// metanet-eb, baseline.
    pub algo: String,
    /// `omniglot`, `miniimagenet`, `sine` (generated regression tasks), `csv:PATH` (vector
    /// data) or `folder:PATH`.
    pub dataset: String,
    /// The class-label column of a `csv:PATH` data set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_column: Option<String>,
    /// Omniglot class split: `vinyals`, `l2l` or `lake`.
    pub omniglot_split: String,
    /// Where data sets live.
    pub data_dir: PathBuf,
    /// Backend name: flex, ndarray, wgpu, tch, cuda.
    pub backend: String,
    /// Backbone: conv4, resnet12, fcnet, metanet-embedding, metanet-cnn.
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
    /// The loss of the inner and outer loops: `auto` (cross-entropy for class labels, mean
    /// squared error for real values), `cross_entropy` or `mse`. For the algorithms with an
    /// inner loop of gradient steps (maml, fomaml, anil, boil, reptile, metasgd, pretrain).
    #[serde(default)]
    pub loss: meta_backbones::Loss,
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
    /// `[folder]`: a `folder:PATH` data set's channels and class split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folder: Option<FolderSection>,
    /// `[sine]`: the `sine` data set's amplitude, phase and input ranges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sine: Option<SineSection>,
    /// `[csv]`: a `csv:PATH` data set's standardisation and class split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csv: Option<CsvSection>,
    /// `[optimizer]`: outer optimizer, Adam's β₁/β₂/ε, gradient clipping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optimizer: Option<OptimizerSection>,
    /// `[schedule]`: the outer learning rate over the run: `kind = "constant"`, `"linear"`
    /// (with `final_lr`) or `"cosine"` (with `floor`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<LrSchedule>,
    /// `[augment]`: per-image augmentation of the training episodes (random crop with
    /// `crop_padding`, `flip`, colour jitter `brightness` / `contrast` / `saturation`); none by
    /// default. Validation and test episodes are never augmented.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub augment: Option<ImageAugment>,
    /// `[reptile]`: Reptile's inner optimizer, inner batch, training on the query set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reptile: Option<ReptileSection>,
    /// `[metasgd]`: how Meta-SGD's learned rates start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metasgd: Option<MetaSgdSection>,
    /// `[mamlpp]`: MAML++'s learned rates, batch-norm adaptation, multi-step loss and
    /// derivative-order schedules (its inner rate and steps are the top-level keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mamlpp: Option<MamlPlusPlusOptions>,
    /// `[matchingnet]`: Matching Networks' attention temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matchingnet: Option<MatchingNetConfig>,
    /// `[baseline]`: the pre-training baselines' head (`"linear"`: Baseline, `"cosine"`:
    /// Baseline++), its scale, and how each test episode's head is fitted; `classes = 0` (the
    /// default) is replaced by the training split's class count when training starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineConfig>,
    /// `[protonet]`: Prototypical Networks (no settings of their own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protonet: Option<ProtoNetConfig>,
    /// `[metanet]`: Meta Networks' meta-learners, task chunks, preprocessing and attention.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metanet: Option<MetaNetConfig>,
    /// `[metanet-eb]`: embedding-based Meta Networks' fast-weight width and clipping.
    #[serde(
        default,
        rename = "metanet-eb",
        skip_serializing_if = "Option::is_none"
    )]
    pub metanet_eb: Option<MetaNetEbConfig>,
    /// `[conv4]`: Conv4's width, variant and batch-norm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conv4: Option<Conv4Section>,
    /// `[resnet12]`: ResNet-12's widths and batch-norm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resnet12: Option<ResNet12Section>,
    /// `[fcnet]`: FcNet's hidden widths, dropout and batch-norm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fcnet: Option<FcNetSection>,
    /// `[metanet-embedding]`: the Meta Networks embedding's width and batch-norm.
    #[serde(
        default,
        rename = "metanet-embedding",
        skip_serializing_if = "Option::is_none"
    )]
    pub metanet_embedding: Option<MetaNetEmbeddingSection>,
    /// `[metanet-cnn]`: the sizes of Meta Networks' layer-augmented CNN.
    #[serde(
        default,
        rename = "metanet-cnn",
        skip_serializing_if = "Option::is_none"
    )]
    pub metanet_cnn: Option<MetaNetCnnSection>,
}

/// Optional settings from a config file or the command line; `None` keeps the lower layer's value.
/// Keys and sections that [`RunConfig`] does not have are refused when the layer is applied.
#[derive(Debug, Clone, Default, PartialEq, Args, Serialize, Deserialize)]
pub struct ConfigOverrides {
    /// Algorithm: maml, fomaml, anil, boil, reptile, metasgd, mamlpp, protonet, matchingnet, metanet,
    /// metanet-eb, baseline.
    #[arg(long)]
    pub algo: Option<String>,
    /// Data set: omniglot, miniimagenet, sine (regression), csv:PATH (vector data) or
    /// folder:PATH.
    #[arg(long)]
    pub dataset: Option<String>,
    /// The class-label column of a csv:PATH data set (its header name).
    #[arg(long)]
    pub label_column: Option<String>,
    /// Omniglot class split: vinyals (default), l2l or lake.
    #[arg(long)]
    pub omniglot_split: Option<String>,
    /// Where data sets live (default `datasets`).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Backend: flex (default), ndarray, wgpu, tch, cuda (the last three need their cargo feature).
    #[arg(long)]
    pub backend: Option<String>,
    /// Backbone: conv4, resnet12, fcnet, metanet-embedding, metanet-cnn.
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
    /// Loss of the inner and outer loops: auto (default), cross_entropy or mse.
    #[arg(long)]
    pub loss: Option<String>,
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
    /// Any setting by its config-file key, sections joined with dots (`reptile.inner_batch=5`,
    /// `optimizer.adam.beta1=0.5`, `optimizer.grad_clip={norm=10.0}`); VALUE is TOML, a bare
    /// word is a string. Repeatable; applied after the other flags.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    #[serde(skip)]
    pub set: Vec<String>,
    /// The sections (`[reptile]`, `[optimizer]`, …) and any other keys of a config file; checked
    /// against [`RunConfig`] when the layer is applied.
    #[arg(skip)]
    #[serde(flatten)]
    pub sections: toml::Table,
}

impl Default for RunConfig {
    /// MAML on Omniglot 5-way 1-shot with Finn et al.'s settings, on the default CPU backend.
    fn default() -> Self {
        Self {
            algo: "maml".into(),
            dataset: "omniglot".into(),
            label_column: None,
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
            loss: meta_backbones::Loss::Auto,
            meta_lr: 1e-3,
            meta_batch: 32,
            iterations: 60_000,
            image_size: 28,
            validate_every: 500,
            val_episodes: 100,
            test_episodes: 600,
            checkpoint_every: 100,
            log_every: 10,
            folder: None,
            sine: None,
            csv: None,
            optimizer: None,
            schedule: None,
            augment: None,
            reptile: None,
            metasgd: None,
            mamlpp: None,
            matchingnet: None,
            baseline: None,
            protonet: None,
            metanet: None,
            metanet_eb: None,
            conv4: None,
            resnet12: None,
            fcnet: None,
            metanet_embedding: None,
            metanet_cnn: None,
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
        let toml::Value::Table(mut layer) = toml::Value::try_from(overrides)? else {
            bail!("configuration overrides serialise to a table");
        };
        for item in &overrides.set {
            crate::merge::set_dotted(&mut layer, item)?;
        }
        crate::merge::merge_tables(&mut merged, layer);
        *self = crate::merge::deserialize_strictly(merged)?;
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
        if self.algo == "pretrain" && self.dataset != SINE {
            bail!(
                "--algo pretrain is the regression baseline (--dataset sine); for classification \
                 use --algo baseline (pre-training over all training classes)"
            );
        }
        self.validate_csv()?;
        if self.dataset == SINE {
            self.validate_sine()?;
        } else if self.ways < 2 {
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
        if self.algo == "metanet" && self.backbone != "metanet-cnn" {
            bail!(
                "--algo metanet trains its own layer-augmented networks: run it with --backbone \
                 metanet-cnn (sizes in [metanet-cnn]), not --backbone {}",
                self.backbone
            );
        }
        let gradient = crate::algos::GRADIENT_STEP_ALGOS;
        if self.loss != meta_backbones::Loss::Auto && !gradient.contains(&self.algo.as_str()) {
            bail!(
                "--loss {} applies to the algorithms with an inner loop of gradient steps ({}); \
                 --algo {} has its own loss: remove --loss",
                meta_backbones::TaskLoss::name(&self.loss),
                gradient.join(", "),
                self.algo
            );
        }
        crate::backend::check_compiled(&self.backend)?;
        self.validate_sections()?;
        // The backbone's own ranges (widths, dropout, sizes), before any data is read.
        crate::algos::backbone(self, [self.channels(), self.image_size, self.image_size])?;
        Ok(())
    }

    /// What `--dataset csv:PATH` needs (a label column, `--image-size 1`, a backbone for
    /// vectors), and that its settings come with it.
    fn validate_csv(&self) -> Result<()> {
        let csv = self.dataset.starts_with(CSV_PREFIX);
        if !csv {
            if self.label_column.is_some() {
                bail!(
                    "--label-column names a column of a CSV file, but --dataset is `{}`: remove \
                     it or use --dataset csv:PATH",
                    self.dataset
                );
            }
            if self.csv.is_some() {
                bail!(
                    "the configuration has a [csv] section but --dataset is `{}`: remove the \
                     section or use --dataset csv:PATH",
                    self.dataset
                );
            }
            return Ok(());
        }
        if self.label_column.is_none() {
            bail!(
                "--dataset {} needs --label-column NAME (the header of its class column)",
                self.dataset
            );
        }
        if self.image_size != 1 {
            bail!(
                "--dataset {} holds vectors: use --image-size 1 (got {})",
                self.dataset,
                self.image_size
            );
        }
        if self.backbone != "fcnet" {
            bail!(
                "--dataset {} holds vectors: use --backbone fcnet, not --backbone {}",
                self.dataset,
                self.backbone
            );
        }
        if self.augment.is_some_and(|a| a.is_active()) {
            bail!(
                "[augment] transforms images; --dataset {} has none: remove the section",
                self.dataset
            );
        }
        if let Some(section) = &self.csv {
            section
                .options("")
                .fractions
                .check()
                .context("[csv] fractions / split_seed")?;
        }
        Ok(())
    }

    /// What `--dataset sine` needs: one output per point (`--ways 1`), scalar inputs
    /// (`--image-size 1`), a backbone for vectors, no image augmentation.
    fn validate_sine(&self) -> Result<()> {
        let gradient = crate::algos::GRADIENT_STEP_ALGOS;
        if !gradient.contains(&self.algo.as_str()) {
            bail!(
                "--algo {} classifies; --dataset sine is regression: use one of {}",
                self.algo,
                gradient.join(", ")
            );
        }
        if self.ways != 1 {
            bail!(
                "--dataset sine is regression with one output per point: use --ways 1 (got {})",
                self.ways
            );
        }
        if self.image_size != 1 {
            bail!(
                "--dataset sine has scalar inputs: use --image-size 1 (got {})",
                self.image_size
            );
        }
        if self.backbone != "fcnet" {
            bail!(
                "--dataset sine has scalar inputs: use --backbone fcnet, not --backbone {}",
                self.backbone
            );
        }
        if self.loss == meta_backbones::Loss::CrossEntropy {
            bail!(
                "--loss cross_entropy needs class labels; --dataset sine has real-valued targets: \
                 use --loss mse (or auto)"
            );
        }
        if self.augment.is_some_and(|a| a.is_active()) {
            bail!("[augment] transforms images; --dataset sine has none: remove the section");
        }
        Ok(())
    }

    /// Input channels of the data set: Omniglot 1, Mini-ImageNet 3, sine 1 (a scalar), a folder
    /// as its `[folder]` section says.
    pub fn channels(&self) -> usize {
        match self.dataset.as_str() {
            "omniglot" | SINE => 1,
            "miniimagenet" => 3,
            _ => self.folder.clone().unwrap_or_default().channels,
        }
    }

    /// Default run-directory name: `<algo>-<dataset>-<N>w<K>s-s<seed>`.
    pub fn default_run_name(&self) -> String {
        let dataset = self
            .dataset
            .strip_prefix("folder:")
            .or_else(|| self.dataset.strip_prefix(CSV_PREFIX))
            .map(|p| {
                Path::new(p)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "folder".into())
            })
            .unwrap_or_else(|| self.dataset.clone());
        if self.dataset == SINE {
            return format!("{}-sine-{}shot-s{}", self.algo, self.shots, self.seed);
        }
        format!(
            "{}-{}-{}w{}s-s{}",
            self.algo, dataset, self.ways, self.shots, self.seed
        )
    }

    /// Reads a resolved configuration (a run's `config.toml`). Sections that a run directory
    /// written before they existed lacks are filled with the defaults it ran with.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read run config {}", path.display()))?;
        let mut config: Self = toml::from_str(&text)
            .with_context(|| format!("invalid run config {}", path.display()))?;
        config.fill_defaults();
        Ok(config)
    }

    /// The configuration as TOML text.
    pub fn to_toml(&self) -> Result<String> {
        Ok(toml::to_string_pretty(self)?)
    }
}

/// Reads a user's partial config file; its keys and sections are checked here, so that an
/// error names the file.
pub fn read_overrides(path: &Path) -> Result<ConfigOverrides> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read --config file {}", path.display()))?;
    let context = || {
        format!(
            "--config file {} is not valid: keys are the train flags with `_` for `-`, and the \
             sections of README's \"Configuration files\"",
            path.display()
        )
    };
    let overrides: ConfigOverrides = toml::from_str(&text).with_context(context)?;
    RunConfig::default()
        .apply(&overrides)
        .with_context(context)?;
    Ok(overrides)
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
