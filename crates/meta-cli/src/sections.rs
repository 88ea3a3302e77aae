//! The sections of a run configuration that belong to one algorithm, backbone or the outer
//! optimizer (`[reptile]`, `[conv4]`, `[optimizer]`, `[schedule]`, …): their types, their
//! defaults (filled into the resolved configuration so that it shows every value used) and the
//! check that no section is given for an algorithm or backbone that is not run.
//!
//! Where a library config holds only the algorithm's own settings it is the section itself
//! (`[matchingnet]` is [`meta_algos::MatchingNetConfig`]); where it also holds values that come from the
//! top-level keys (inner rate and steps, N-way, image size, channels), the section holds the rest
//! and builds the library config from both.

use crate::config::RunConfig;
use anyhow::{Result, bail};
use meta_algos::{
    AdamParams, GradClip, InnerOptimizer, LrInit, LrSchedule, MamlPlusPlusConfig, MetaNetConfig,
    MetaSgdConfig, OuterOptimizer, ReptileConfig,
};
use meta_backbones::{
    BnConfig, Conv4Variant, FcNetConfig, MetaNetCnnConfig, MetaNetEmbeddingConfig, ResNet12Config,
};
use serde::{Deserialize, Serialize};

/// `[optimizer]`: the outer (meta) optimizer.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OptimizerSection {
    /// `adam` or `sgd`. Default: `sgd` for Reptile (its pseudo-gradient step), `adam` otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<OuterOptimizer>,
    /// Global-norm gradient clipping: `"auto"` (the algorithm's recommendation: Meta Networks
    /// clip at their `grad_clip`, the others not at all), `"off"`, or `{ norm = 10.0 }`.
    pub grad_clip: GradClip,
    /// `[optimizer.adam]`: β₁, β₂ and ε of Adam; only with `kind = "adam"`.
    pub adam: AdamParams,
}

/// `[reptile]`: Reptile's own settings (its inner rate and steps are the top-level keys).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReptileSection {
    /// Inner-loop optimizer: `adam` (β₁ = 0, Nichol et al.'s) or `sgd`.
    pub inner_optimizer: InnerOptimizer,
    /// Images per inner step; 0 uses all of the task's training images in every step.
    pub inner_batch: usize,
    /// Meta-train the inner loop on support ∪ query (the paper's "train shots").
    pub train_on_query: bool,
}

impl Default for ReptileSection {
    /// [`ReptileConfig::default`]'s settings.
    fn default() -> Self {
        let paper = ReptileConfig::default();
        Self {
            inner_optimizer: paper.inner_optimizer,
            inner_batch: paper.inner_batch.unwrap_or(0),
            train_on_query: paper.train_on_query,
        }
    }
}

/// How Meta-SGD's learned inner rates start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetaSgdInit {
    /// Each rate drawn uniformly from `[init_low, inner_lr]` (Li et al.: `[0.005, 0.1]`).
    #[default]
    Uniform,
    /// Every rate equal to `inner_lr`.
    Constant,
}

/// `[metasgd]`: how Meta-SGD's learned rates start; the top-level `inner_lr` is the constant
/// rate or the top of the uniform range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetaSgdSection {
    /// `uniform` or `constant`.
    pub init: MetaSgdInit,
    /// Lower end of the uniform initialisation. Default: 0.005 (Li et al.).
    pub init_low: f64,
}

impl Default for MetaSgdSection {
    /// [`MetaSgdConfig::default`]'s lower end, uniform.
    fn default() -> Self {
        let init_low = match MetaSgdConfig::default().lr_init {
            LrInit::Uniform { low, .. } => low,
            LrInit::Constant { value } => value,
        };
        Self {
            init: MetaSgdInit::Uniform,
            init_low,
        }
    }
}

/// `[conv4]`: Conv4's width, variant and batch-norm.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Conv4Section {
    /// Filters per block. Default: 64 on Omniglot, 32 on colour images (Finn et al.).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hidden: Option<usize>,
    /// `max_pool` or `strided`.
    pub variant: Conv4Variant,
    /// `[conv4.bn]`: `mode` (`"batch"`, `"running"` or `{ per_step = { steps = 5 } }`),
    /// `momentum`, `eps`.
    pub bn: BnConfig,
}

/// `[resnet12]`: ResNet-12's stage widths and batch-norm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResNet12Section {
    /// Output width of each of the four stages.
    pub widths: [usize; 4],
    /// `[resnet12.bn]`: as `[conv4.bn]`.
    pub bn: BnConfig,
}

impl Default for ResNet12Section {
    /// [`ResNet12Config::default`]'s settings.
    fn default() -> Self {
        let paper = ResNet12Config::default();
        Self {
            widths: paper.widths,
            bn: paper.bn,
        }
    }
}

/// `[fcnet]`: FcNet's hidden widths, dropout and batch-norm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FcNetSection {
    /// Widths of the hidden blocks.
    pub layer_dims: Vec<usize>,
    /// Dropout probability after each block, in `[0, 1)`.
    pub dropout: f64,
    /// Batch-norm after each hidden linear layer (default true; the sine presets turn it off).
    pub batch_norm: bool,
    /// `[fcnet.bn]`: as `[conv4.bn]` (used when `batch_norm`).
    pub bn: BnConfig,
}

impl Default for FcNetSection {
    /// [`FcNetConfig::default`]'s settings.
    fn default() -> Self {
        let paper = FcNetConfig::default();
        Self {
            layer_dims: paper.layer_dims,
            dropout: paper.dropout,
            batch_norm: paper.batch_norm,
            bn: paper.bn,
        }
    }
}

/// `[metanet-cnn]`: the sizes of Meta Networks' layer-augmented CNN (input channels, image size
/// and logits follow the data set and `--ways`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetaNetCnnSection {
    /// Filters of every conv layer.
    pub filters: usize,
    /// Number of conv layers (each followed by a 2×2 max-pool).
    pub conv_layers: usize,
    /// Width of the fully connected layer (the embedding and key width).
    pub fc_hidden: usize,
}

impl Default for MetaNetCnnSection {
    /// [`MetaNetCnnConfig::default`]'s sizes (the authors' Omniglot network).
    fn default() -> Self {
        let paper = MetaNetCnnConfig::default();
        Self {
            filters: paper.filters,
            conv_layers: paper.conv_layers,
            fc_hidden: paper.fc_hidden,
        }
    }
}

/// `[metanet-embedding]`: the Meta Networks embedding's width and batch-norm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetaNetEmbeddingSection {
    /// Filters per block = embedding width.
    pub hidden: usize,
    /// `[metanet-embedding.bn]`: as `[conv4.bn]`.
    pub bn: BnConfig,
}

impl Default for MetaNetEmbeddingSection {
    /// [`MetaNetEmbeddingConfig::default`]'s settings.
    fn default() -> Self {
        let paper = MetaNetEmbeddingConfig::default();
        Self {
            hidden: paper.hidden,
            bn: paper.bn,
        }
    }
}

/// The sections of [`RunConfig`] as they will be used: a missing section or value is its
/// default for the run's algorithm, backbone and data set.
impl RunConfig {
    /// The outer optimizer settings.
    pub fn optimizer(&self) -> OptimizerSection {
        let mut section = self.optimizer.clone().unwrap_or_default();
        section.kind.get_or_insert(match self.algo.as_str() {
            // Nichol et al.: SGD on the pseudo-gradient Φ − W.
            "reptile" => OuterOptimizer::Sgd,
            _ => OuterOptimizer::Adam,
        });
        section
    }

    /// The outer learning-rate schedule.
    pub fn schedule(&self) -> LrSchedule {
        self.schedule.unwrap_or(match self.algo.as_str() {
            // Nichol et al.: ε annealed linearly to 0.
            "reptile" => LrSchedule::Linear { final_lr: 0.0 },
            _ => LrSchedule::Constant,
        })
    }

    /// Reptile's configuration.
    pub fn reptile_config(&self) -> ReptileConfig {
        let section = self.reptile.clone().unwrap_or_default();
        ReptileConfig {
            inner_steps_train: self.inner_steps,
            inner_steps_test: self.test_inner_steps,
            inner_lr: self.inner_lr,
            inner_optimizer: section.inner_optimizer,
            inner_batch: (section.inner_batch > 0).then_some(section.inner_batch),
            train_on_query: section.train_on_query,
            loss: self.loss,
        }
    }

    /// Meta-SGD's configuration.
    pub fn metasgd_config(&self) -> MetaSgdConfig {
        let section = self.metasgd.clone().unwrap_or_default();
        MetaSgdConfig {
            lr_init: match section.init {
                MetaSgdInit::Uniform => LrInit::Uniform {
                    low: section.init_low,
                    high: self.inner_lr,
                },
                MetaSgdInit::Constant => LrInit::Constant {
                    value: self.inner_lr,
                },
            },
            inner_steps_train: self.inner_steps,
            inner_steps_test: self.test_inner_steps,
            loss: self.loss,
        }
    }

    /// MAML++'s configuration.
    pub fn mamlpp_config(&self) -> MamlPlusPlusConfig {
        MamlPlusPlusConfig {
            inner_lr: self.inner_lr,
            inner_steps_train: self.inner_steps,
            inner_steps_test: self.test_inner_steps,
            options: self.mamlpp.unwrap_or_default(),
        }
    }

    /// Meta Networks' configuration.
    pub fn metanet_config(&self) -> MetaNetConfig {
        self.metanet.unwrap_or_default()
    }

    /// Conv4's settings, with the width filled in for the data set.
    pub fn conv4(&self) -> Conv4Section {
        let mut section = self.conv4.clone().unwrap_or_default();
        section
            .hidden
            .get_or_insert(if self.dataset == "omniglot" { 64 } else { 32 });
        section
    }

    /// Replaces every missing section of the run's algorithm, backbone, outer optimizer and
    /// folder data set with the values the run uses, so that the configuration shows them all.
    pub fn fill_defaults(&mut self) {
        if let Some(path) = self.dataset.strip_prefix("folder:") {
            let root = meta_data::FolderDataset::new(path).root(&self.data_dir);
            self.folder = Some(self.folder.clone().unwrap_or_default().resolved(&root));
        }
        if self.dataset == crate::data::SINE {
            _ = self.sine.get_or_insert_default();
        }
        if self.dataset.starts_with(crate::data::CSV_PREFIX) {
            _ = self.csv.get_or_insert_default();
        }
        self.optimizer = Some(self.optimizer());
        self.schedule = Some(self.schedule());
        _ = self.augment.get_or_insert_default();
        match self.algo.as_str() {
            "reptile" => _ = self.reptile.get_or_insert_default(),
            "metasgd" => _ = self.metasgd.get_or_insert_default(),
            "mamlpp" => _ = self.mamlpp.get_or_insert_default(),
            "matchingnet" => _ = self.matchingnet.get_or_insert_default(),
            "protonet" => _ = self.protonet.get_or_insert_default(),
            "baseline" => _ = self.baseline.get_or_insert_default(),
            "metanet" => _ = self.metanet.get_or_insert_default(),
            "metanet-eb" => _ = self.metanet_eb.get_or_insert_default(),
            _ => {}
        }
        match self.backbone.as_str() {
            "conv4" => self.conv4 = Some(self.conv4()),
            "resnet12" => _ = self.resnet12.get_or_insert_default(),
            "fcnet" => _ = self.fcnet.get_or_insert_default(),
            "metanet-embedding" => _ = self.metanet_embedding.get_or_insert_default(),
            "metanet-cnn" => _ = self.metanet_cnn.get_or_insert_default(),
            _ => {}
        }
    }

    /// Checks the `[folder]` section: only with a `folder:PATH` data set, and every value in
    /// range.
    pub fn validate_folder(&self) -> Result<()> {
        if let Some(folder) = &self.folder {
            if !self.dataset.starts_with("folder:") {
                bail!(
                    "the configuration has a [folder] section but --dataset is `{}`: remove the \
                     section or use --dataset folder:PATH",
                    self.dataset
                );
            }
            folder.check()?;
        }
        Ok(())
    }

    /// Checks the sections: none for an algorithm or backbone other than the run's, and every
    /// value in range.
    pub fn validate_sections(&self) -> Result<()> {
        let toml::Value::Table(table) = toml::Value::try_from(self)? else {
            bail!("a run configuration serialises to a table");
        };
        if let Some(sine) = &self.sine {
            if self.dataset != crate::data::SINE {
                bail!(
                    "the configuration has a [sine] section but --dataset is `{}`: remove the \
                     section or use --dataset sine",
                    self.dataset
                );
            }
            sine.config(self.shots, self.queries)
                .validate()
                .map_err(|e| anyhow::anyhow!("[sine]: {e}"))?;
        }
        for (names, chosen, flag) in [
            (crate::algos::ALGOS, &self.algo, "--algo"),
            (crate::algos::BACKBONES, &self.backbone, "--backbone"),
        ] {
            if let Some(other) = names
                .iter()
                .find(|name| *name != chosen && table.contains_key(**name))
            {
                bail!(
                    "the configuration has a [{other}] section but {flag} is `{chosen}`: \
                     remove the section or run {flag} {other}"
                );
            }
        }
        self.validate_folder()?;
        if let Some(augment) = &self.augment {
            augment
                .check([0, self.image_size, self.image_size])
                .map_err(|e| anyhow::anyhow!("[augment]: {e}"))?;
        }
        let section = |name: &str, e: meta_algos::AlgoError| anyhow::anyhow!("[{name}]: {e}");
        if let Some(s) = &self.metasgd
            && !(s.init_low.is_finite() && s.init_low >= 0.0 && s.init_low <= self.inner_lr)
        {
            bail!(
                "[metasgd] init_low must be finite, >= 0 and <= --inner-lr {} (the top of the \
                 uniform range), got {}",
                self.inner_lr,
                s.init_low
            );
        }
        if self.mamlpp.is_some() {
            self.mamlpp_config()
                .check()
                .map_err(|e| section("mamlpp", e))?;
        }
        if let Some(c) = self.matchingnet {
            c.check().map_err(|e| section("matchingnet", e))?;
        }
        if let Some(c) = self.baseline {
            // `classes = 0` is filled from the data when training starts.
            let classes = if c.classes == 0 { 2 } else { c.classes };
            meta_algos::BaselineConfig { classes, ..c }
                .check()
                .map_err(|e| section("baseline", e))?;
        }
        if let Some(c) = self.metanet_eb {
            c.check().map_err(|e| section("metanet-eb", e))?;
        }
        if self.metanet.is_some() {
            self.metanet_config()
                .check()
                .map_err(|e| section("metanet", e))?;
        }
        let optimizer = self.optimizer();
        if optimizer.kind == Some(OuterOptimizer::Sgd) && optimizer.adam != AdamParams::default() {
            bail!(
                "[optimizer.adam] is set but [optimizer] kind is \"sgd\": remove it or use \"adam\""
            );
        }
        crate::train::trainer_config(self)
            .check()
            .map_err(|e| anyhow::anyhow!("[optimizer] or [schedule]: {e}"))?;
        Ok(())
    }
}
