//! `metalearn data fetch|info`, and turning a run's data settings into episode samplers.

use crate::args::DataCommand;
use anyhow::{Context, Result, bail};
use meta_data::{
    ClassFractions, CsvDataset, CsvOptions, DataError, DatasetKind, EpisodeSampler, EpisodeSource,
    EpisodeSpec, FetchOptions, FetchOutcome, FolderDataset, FolderSplit, ImageAugment,
    OmniglotSplit, SineConfig, SineTasks, Split,
};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;

/// The `--dataset` of generated sine-wave regression tasks.
pub const SINE: &str = "sine";

/// `[sine]`: the sine-wave task family's ranges (Finn et al. 2017, §5.1, by default); points
/// per task are `--shots` (support) and `--queries` / `--test-queries`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SineSection {
    /// Amplitude range `[low, high]`.
    pub amplitude: [f64; 2],
    /// Phase range `[low, high]`, radians.
    pub phase: [f64; 2],
    /// Input range `[low, high]`.
    pub x_range: [f64; 2],
}

impl Default for SineSection {
    /// The paper's ranges.
    fn default() -> Self {
        let paper = SineConfig::default();
        Self {
            amplitude: paper.amplitude,
            phase: paper.phase,
            x_range: paper.x_range,
        }
    }
}

impl SineSection {
    /// The task family with `shots` support and `queries` query points per task.
    pub fn config(&self, shots: usize, queries: usize) -> SineConfig {
        SineConfig {
            amplitude: self.amplitude,
            phase: self.phase,
            x_range: self.x_range,
            shots,
            queries,
        }
    }
}

/// The `--dataset csv:PATH` prefix: few-shot classification of a CSV file's rows.
pub const CSV_PREFIX: &str = "csv:";

/// `[csv]`: how a `csv:PATH` data set's rows are read and its classes divided (the label
/// column is the top-level `label_column`, `--label-column`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CsvSection {
    /// Standardise every feature by the training classes' mean and standard deviation.
    pub standardize: bool,
    /// Shares of train, validation and test classes.
    pub fractions: [f64; 3],
    /// Seed of the class shuffle (independent of `seed`).
    pub split_seed: u64,
}

impl Default for CsvSection {
    /// Standardised features, classes split 0.64 / 0.16 / 0.20 with seed 42.
    fn default() -> Self {
        let f = ClassFractions::default();
        Self {
            standardize: true,
            fractions: [f.train, f.val, f.test],
            split_seed: f.seed,
        }
    }
}

impl CsvSection {
    /// The library's options with `label_column`.
    pub fn options(&self, label_column: &str) -> CsvOptions {
        let [train, val, test] = self.fractions;
        CsvOptions {
            label_column: label_column.into(),
            fractions: ClassFractions {
                train,
                val,
                test,
                seed: self.split_seed,
            },
            standardize: self.standardize,
        }
    }
}

/// One split's episodes, whatever makes them.
#[derive(Clone)]
pub struct Episodes {
    /// The episodes.
    pub source: Arc<dyn EpisodeSource>,
    /// Classes of the split (0 for generated regression tasks).
    pub classes: usize,
}

/// How a `folder:PATH` data set's classes are divided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FolderSplitKind {
    /// `PATH/train/<class>/`, `PATH/test/<class>/` and optionally `PATH/val/<class>/`.
    Folders,
    /// `PATH/<class>/`, divided by `fractions` with `split_seed`.
    Fractions,
}

/// `[folder]`: how a `folder:PATH` data set is decoded and divided into train/val/test classes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FolderSection {
    /// 1: every image converted to grayscale; 3: RGB (default, as torchvision's `ImageFolder`).
    pub channels: usize,
    /// `"folders"` or `"fractions"`. Default: `"folders"` when `PATH/train/` holds class
    /// folders, else `"fractions"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split: Option<FolderSplitKind>,
    /// Shares of train, validation and test classes (`split = "fractions"`); default
    /// `[0.64, 0.16, 0.2]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fractions: Option<[f64; 3]>,
    /// Seed of the class shuffle (`split = "fractions"`); default 42, independent of `seed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split_seed: Option<u64>,
}

impl Default for FolderSection {
    /// RGB, split detected from the folder's layout.
    fn default() -> Self {
        FolderSection {
            channels: 3,
            split: None,
            fractions: None,
            split_seed: None,
        }
    }
}

impl FolderSection {
    /// The class fractions of `split = "fractions"`, defaults filled in.
    pub fn class_fractions(&self) -> ClassFractions {
        let default = ClassFractions::default();
        let [train, val, test] =
            self.fractions
                .unwrap_or([default.train, default.val, default.test]);
        ClassFractions {
            train,
            val,
            test,
            seed: self.split_seed.unwrap_or(default.seed),
        }
    }

    /// The section with the split the folder at `root` gets and its values filled in.
    pub fn resolved(&self, root: &Path) -> Self {
        let kind = self.split.unwrap_or(match FolderSplit::detect(root) {
            FolderSplit::Folders => FolderSplitKind::Folders,
            FolderSplit::Fractions(_) => FolderSplitKind::Fractions,
        });
        let mut section = FolderSection {
            split: Some(kind),
            ..self.clone()
        };
        if kind == FolderSplitKind::Fractions {
            let f = self.class_fractions();
            section.fractions = Some([f.train, f.val, f.test]);
            section.split_seed = Some(f.seed);
        }
        section
    }

    /// Checks the channel count, that fractions go with the fractions split, and the fractions.
    pub fn check(&self) -> Result<()> {
        if self.channels != 1 && self.channels != 3 {
            bail!(
                "[folder] channels must be 1 (grayscale) or 3 (RGB), got {}",
                self.channels
            );
        }
        if self.split == Some(FolderSplitKind::Folders)
            && (self.fractions.is_some() || self.split_seed.is_some())
        {
            bail!(
                "[folder] fractions and split_seed divide a single folder of classes, but split \
                 is \"folders\" (PATH/train, PATH/val, PATH/test): remove them or set split = \
                 \"fractions\""
            );
        }
        if self.split == Some(FolderSplitKind::Fractions) {
            self.class_fractions()
                .check()
                .context("[folder] fractions / split_seed")?;
        }
        Ok(())
    }

    /// The library's description of the folder data set at `path`.
    pub fn dataset(&self, path: &Path) -> FolderDataset {
        FolderDataset {
            path: path.to_path_buf(),
            channels: self.channels,
            split: self.split.map(|kind| match kind {
                FolderSplitKind::Folders => FolderSplit::Folders,
                FolderSplitKind::Fractions => FolderSplit::Fractions(self.class_fractions()),
            }),
        }
    }
}

/// Environment variable that replaces the upstream Omniglot download address (mirrors, tests).
pub const OMNIGLOT_URL_ENV: &str = "METALEARN_OMNIGLOT_URL";

/// Runs a `metalearn data …` command.
pub fn run(command: DataCommand) -> Result<()> {
    match command {
        DataCommand::Fetch { dataset, data_dir } => fetch(&dataset, &data_dir),
        DataCommand::Info {
            dataset,
            data_dir,
            omniglot_split,
            config,
            set,
        } => {
            // The same layers as `metalearn train`, so `[folder]` means what it means there.
            let file = config
                .as_deref()
                .map(crate::config::read_overrides)
                .transpose()?;
            let flags = crate::config::ConfigOverrides {
                dataset: Some(dataset),
                data_dir: Some(data_dir),
                omniglot_split: Some(omniglot_split),
                set,
                ..Default::default()
            };
            let mut run = crate::config::RunConfig::default();
            if let Some(file) = &file {
                run.apply(file)?;
            }
            if let Some(key) = flags
                .set
                .iter()
                .find(|item| !(item.starts_with("folder.") || item.starts_with("seed=")))
            {
                bail!(
                    "`data info --set {key}`: only the data settings (`folder.*`, `seed`) shape \
                     the splits it shows"
                );
            }
            run.apply(&flags)?;
            run.fill_defaults();
            run.validate_folder()?;
            info(&run)
        }
    }
}

/// Downloads Omniglot on first use when a run reads it from the default data directory
/// (`datasets/`) and it is not there yet; an explicit `--data-dir` is never written to.
pub fn fetch_default_omniglot(dataset: &str, data_dir: &Path) -> Result<()> {
    let default_dir = Path::new(crate::config::DEFAULT_DATA_DIR);
    if dataset != "omniglot" || data_dir != default_dir {
        return Ok(());
    }
    let omniglot = data_dir.join("omniglot");
    let present = ["images_background", "images_evaluation"]
        .iter()
        .all(|part| omniglot.join(format!("{part}.zip")).is_file() || omniglot.join(part).is_dir());
    if present {
        return Ok(());
    }
    tracing::info!(
        "Omniglot is not in {}/ yet: downloading it (about 9 MB)",
        data_dir.display()
    );
    fetch("omniglot", data_dir)
}

fn fetch(dataset: &str, data_dir: &Path) -> Result<()> {
    let files = match dataset_kind(dataset)? {
        DatasetKind::Omniglot => {
            let mut options = FetchOptions::default();
            if let Ok(url) = std::env::var(OMNIGLOT_URL_ENV) {
                options.base_url = url;
            }
            meta_data::fetch_omniglot(data_dir, &options)?
        }
        DatasetKind::MiniImageNet => meta_data::fetch_miniimagenet(data_dir)?,
        DatasetKind::Folder(folder) => bail!(
            "folder data sets are yours already: nothing to fetch for {}",
            folder.path.display()
        ),
    };
    for file in files {
        let what = match file.outcome {
            FetchOutcome::Downloaded => "downloaded",
            FetchOutcome::AlreadyPresent => "already present",
        };
        println!("{what}: {} (sha256 {})", file.path.display(), file.sha256);
    }
    Ok(())
}

fn info(run: &crate::config::RunConfig) -> Result<()> {
    let data_dir = &run.data_dir;
    // The data set and class split exactly as training resolves them.
    let (kind, scheme) = crate::train::data_settings(run).kind_and_scheme()?;
    let info = meta_data::info(data_dir, &kind, scheme, None)?;
    let [c, h, w] = info.image_shape;
    println!(
        "{} ({} split), images {c}×{h}×{w}, from {}",
        info.dataset,
        info.scheme,
        data_dir.display()
    );
    println!(
        "{:<6} {:>8} {:>8} {:>10}",
        "split", "classes", "images", "min/class"
    );
    for split in &info.splits {
        println!(
            "{:<6} {:>8} {:>8} {:>10}",
            split.split.name(),
            split.classes,
            split.images,
            split.min_images_per_class
        );
    }
    Ok(())
}

/// Parses `--dataset` (an image data set; `sine` is handled by [`DataSettings::episodes`]).
pub fn dataset_kind(dataset: &str) -> Result<DatasetKind> {
    if dataset == SINE || dataset.starts_with(CSV_PREFIX) {
        bail!("--dataset {dataset} is not an image data set: there is nothing to fetch or list");
    }
    dataset.parse::<DatasetKind>().with_context(|| {
        format!("--dataset `{dataset}`: use omniglot, miniimagenet, sine, csv:PATH or folder:PATH")
    })
}

/// Parses `--omniglot-split` (`vinyals`, `l2l` or `lake`); `seed` draws l2l's random split.
pub fn omniglot_scheme(name: &str, seed: u64) -> Result<OmniglotSplit> {
    Ok(match name {
        "vinyals" => OmniglotSplit::Vinyals,
        "l2l" | "learn2learn" => OmniglotSplit::Learn2Learn { seed },
        "lake" => OmniglotSplit::Lake,
        other => bail!("unknown --omniglot-split `{other}`; choose vinyals, l2l or lake"),
    })
}

/// Where a run's episodes come from.
#[derive(Debug, Clone)]
pub struct DataSettings<'a> {
    /// The data directory.
    pub data_dir: &'a Path,
    /// `--dataset`.
    pub dataset: &'a str,
    /// `--omniglot-split`.
    pub omniglot_split: &'a str,
    /// Side of the square images.
    pub image_size: usize,
    /// Seed of the episodes.
    pub seed: u64,
    /// `[folder]` (for `folder:PATH`; `None`: RGB, split detected).
    pub folder: Option<&'a FolderSection>,
    /// `[sine]` (for `sine`; `None`: the paper's ranges).
    pub sine: Option<&'a SineSection>,
    /// `[csv]` and the label column (for `csv:PATH`).
    pub csv: Option<(CsvSection, &'a str)>,
}

impl DataSettings<'_> {
    /// The data set (with its `[folder]` settings) and the Omniglot class split these settings
    /// name; the seed draws learn2learn's random split.
    pub fn kind_and_scheme(&self) -> Result<(DatasetKind, OmniglotSplit)> {
        let mut kind = dataset_kind(self.dataset)?;
        if let (DatasetKind::Folder(folder), Some(section)) = (&mut kind, self.folder) {
            *folder = section.dataset(&folder.path);
        }
        Ok((kind, omniglot_scheme(self.omniglot_split, self.seed)?))
    }

    /// The episodes of `split` with `ways`/`shots`/`queries` (`ways` is 1 for sine tasks), the
    /// training split's images augmented by `augment`; `None` when the data set has no such
    /// split.
    pub fn episodes(
        &self,
        split: Split,
        (ways, shots, queries): (usize, usize, usize),
        seed: u64,
        augment: Option<ImageAugment>,
    ) -> Result<Option<Episodes>> {
        if self.dataset == SINE {
            let config = self
                .sine
                .copied()
                .unwrap_or_default()
                .config(shots, queries);
            let tasks = SineTasks::new(config, split, seed).context("[sine]")?;
            return Ok(Some(Episodes {
                source: Arc::new(tasks),
                classes: 0,
            }));
        }
        if let Some(path) = self.dataset.strip_prefix(CSV_PREFIX) {
            let (section, label) = self
                .csv
                .context("--dataset csv:PATH needs --label-column NAME")?;
            let path = meta_data::FolderDataset::new(path).root(self.data_dir);
            let data = Arc::new(CsvDataset::load(&path, &section.options(label))?);
            let tasks = data.tasks(split, (ways, shots, queries), seed)?;
            return Ok(Some(Episodes {
                classes: tasks.num_classes(),
                source: Arc::new(tasks),
            }));
        }
        let Some(sampler) = self.sampler(split, ways, shots, queries, seed)? else {
            return Ok(None);
        };
        let sampler = match augment {
            Some(augment) => sampler.with_image_augment(augment).context("[augment]")?,
            None => sampler,
        };
        Ok(Some(Episodes {
            classes: sampler.classes().len(),
            source: Arc::new(sampler),
        }))
    }

    /// The episode sampler of `split` with `ways`/`shots`/`queries`; `None` when the data set has
    /// no such split (Lake's Omniglot split has no validation classes).
    pub fn sampler(
        &self,
        split: Split,
        ways: usize,
        shots: usize,
        queries: usize,
        seed: u64,
    ) -> Result<Option<EpisodeSampler>> {
        let (kind, scheme) = self.kind_and_scheme()?;
        match meta_data::load_split_sampler(
            self.data_dir,
            &kind,
            scheme,
            split,
            EpisodeSpec::new(ways, shots, queries),
            seed,
            Some(self.image_size),
        ) {
            Ok(sampler) => Ok(Some(sampler)),
            Err(DataError::NoSuchSplit { .. }) => Ok(None),
            Err(err) => Err(with_fetch_hint(err, &kind, self.data_dir)),
        }
    }
}

/// Adds "how to get the data" (Omniglot), or which `[folder]` setting made a split too small.
fn with_fetch_hint(err: DataError, kind: &DatasetKind, data_dir: &Path) -> anyhow::Error {
    match (kind, &err) {
        (DatasetKind::Omniglot, _) if !data_dir.join("omniglot").exists() => {
            anyhow::Error::from(err).context(format!(
                "Omniglot is not in {}: run `metalearn data fetch omniglot --data-dir {}`",
                data_dir.display(),
                data_dir.display()
            ))
        }
        (DatasetKind::Folder(folder), DataError::TooManyWays { split, .. }) => {
            let root = folder.root(data_dir);
            let how = match folder.split_at(&root) {
                FolderSplit::Folders => format!(
                    "{} holds the {split} classes: add class folders there",
                    root.join(split).display()
                ),
                FolderSplit::Fractions(f) => format!(
                    "{} is split by [folder] fractions = [{}, {}, {}] (split_seed = {}): add \
                     class folders or raise the {split} fraction",
                    root.display(),
                    f.train,
                    f.val,
                    f.test,
                    f.seed
                ),
            };
            anyhow::Error::from(err).context(how)
        }
        _ => err.into(),
    }
}
