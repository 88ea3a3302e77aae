//! `metalearn data fetch|info`, and turning a run's data settings into episode samplers.

use crate::args::DataCommand;
use anyhow::{Context, Result, bail};
use meta_data::{
    DatasetKind, EpisodeSampler, EpisodeSpec, FetchOptions, FetchOutcome, OmniglotSplit, Split,
};
use std::path::Path;

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
        } => info(&dataset, &data_dir, &omniglot_split),
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
        DatasetKind::Folder(path) => bail!(
            "folder data sets are yours already: nothing to fetch for {}",
            path.display()
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

fn info(dataset: &str, data_dir: &Path, omniglot_split: &str) -> Result<()> {
    let kind = dataset_kind(dataset)?;
    let scheme = omniglot_scheme(omniglot_split, 0)?;
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

/// Parses `--dataset`.
pub fn dataset_kind(dataset: &str) -> Result<DatasetKind> {
    dataset.parse::<DatasetKind>().with_context(|| {
        format!("--dataset `{dataset}`: use omniglot, miniimagenet or folder:PATH")
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
}

impl DataSettings<'_> {
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
        let kind = dataset_kind(self.dataset)?;
        let scheme = omniglot_scheme(self.omniglot_split, self.seed)?;
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
            Err(meta_data::DataError::NoSuchSplit { .. }) => Ok(None),
            Err(err) => Err(with_fetch_hint(err.into(), &kind, self.data_dir)),
        }
    }
}

/// Adds "how to get the data" to a data error.
fn with_fetch_hint(err: anyhow::Error, kind: &DatasetKind, data_dir: &Path) -> anyhow::Error {
    match kind {
        DatasetKind::Omniglot if !data_dir.join("omniglot").exists() => err.context(format!(
            "Omniglot is not in {}: run `metalearn data fetch omniglot --data-dir {}`",
            data_dir.display(),
            data_dir.display()
        )),
        _ => err,
    }
}
