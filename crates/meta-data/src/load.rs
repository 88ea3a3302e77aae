//! High-level entry points for the CLI: pick a data set by kind, get a sampler for a split, report
//! what a data directory holds. Decoded data sets are cached and shared between samplers.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock};

use crate::error::{DataError, Result};
use crate::folder::{FolderDataset, FolderOptions, FolderSplit, load_image_folder};
use crate::miniimagenet::{MINIIMAGENET_DEFAULT_SIZE, load_miniimagenet};
use crate::omniglot::{OMNIGLOT_DEFAULT_SIZE, Omniglot};
use crate::sampler::EpisodeSampler;
use crate::spec::EpisodeSpec;
use crate::split::{Augmentation, ClassSplit, OmniglotSplit, Split};
use crate::store::ImageStore;

/// Which data set to load from a data directory.
#[derive(Debug, Clone, PartialEq)]
pub enum DatasetKind {
    /// `<data-dir>/omniglot/` (zips or extracted folders); the split scheme applies.
    Omniglot,
    /// `<data-dir>/miniimagenet/<split>/<wnid>/*.jpg` or a `.tar` there; Ravi & Larochelle split.
    MiniImageNet,
    /// A folder of class folders: `train/`, `val/`, `test/` sub-folders, or one folder of classes
    /// divided by seeded fractions (see [`FolderDataset`]).
    Folder(FolderDataset),
}

impl DatasetKind {
    /// Short name (`omniglot`, `miniimagenet`, `folder`).
    pub fn name(&self) -> &'static str {
        match self {
            DatasetKind::Omniglot => "omniglot",
            DatasetKind::MiniImageNet => "miniimagenet",
            DatasetKind::Folder(_) => "folder",
        }
    }

    /// Default square image size: 28 for Omniglot, 84 otherwise.
    pub fn default_size(&self) -> usize {
        match self {
            DatasetKind::Omniglot => OMNIGLOT_DEFAULT_SIZE,
            _ => MINIIMAGENET_DEFAULT_SIZE,
        }
    }
}

impl FromStr for DatasetKind {
    type Err = DataError;
    /// `omniglot`, `miniimagenet` (or `mini-imagenet`), or `folder:<path>` (RGB, split detected).
    fn from_str(s: &str) -> Result<Self> {
        let lower = s.to_ascii_lowercase();
        match lower.as_str() {
            "omniglot" => Ok(DatasetKind::Omniglot),
            "miniimagenet" | "mini-imagenet" | "mini_imagenet" => Ok(DatasetKind::MiniImageNet),
            _ if lower.starts_with("folder:") => {
                Ok(DatasetKind::Folder(FolderDataset::new(&s[7..])))
            }
            _ => Err(DataError::InvalidParameter {
                name: "dataset",
                value: s.to_string(),
                hint: "use omniglot, miniimagenet or folder:<path>".into(),
            }),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    kind: &'static str,
    path: PathBuf,
    split: Option<Split>,
    size: usize,
    channels: usize,
}

type Cache<V> = Mutex<HashMap<CacheKey, V>>;

fn omniglot_cache() -> &'static Cache<Arc<Omniglot>> {
    static CACHE: OnceLock<Cache<Arc<Omniglot>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

fn store_cache() -> &'static Cache<Arc<ImageStore>> {
    static CACHE: OnceLock<Cache<Arc<ImageStore>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Drops every cached decoded data set (memory is freed once no sampler holds it).
pub fn clear_cache() {
    omniglot_cache()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clear();
    store_cache()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clear();
}

fn cached<V: Clone>(
    cache: &Cache<V>,
    key: CacheKey,
    load: impl FnOnce() -> Result<V>,
) -> Result<V> {
    let key = CacheKey {
        path: key.path.canonicalize().unwrap_or(key.path),
        ..key
    };
    // Holding the lock while loading makes concurrent callers wait for one decode.
    let mut map = cache.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(hit) = map.get(&key) {
        return Ok(hit.clone());
    }
    let value = load()?;
    map.insert(key, value.clone());
    Ok(value)
}

fn check_data_dir(data_dir: &Path) -> Result<()> {
    if data_dir.is_dir() {
        Ok(())
    } else {
        Err(DataError::MissingDataDir {
            path: data_dir.to_path_buf(),
        })
    }
}

/// Omniglot from `<data_dir>/omniglot`, decoded once per (directory, size) and shared.
pub fn load_omniglot_cached(data_dir: &Path, size: usize) -> Result<Arc<Omniglot>> {
    check_data_dir(data_dir)?;
    let dir = data_dir.join("omniglot");
    let key = CacheKey {
        kind: "omniglot",
        path: dir.clone(),
        split: None,
        size,
        channels: 1,
    };
    cached(omniglot_cache(), key, || {
        Ok(Arc::new(Omniglot::load(&dir, size)?))
    })
}

/// The decoded images and classes of `split` of `kind`; `scheme` applies to Omniglot only.
/// `image_size` defaults to [`DatasetKind::default_size`]. A folder data set given by an
/// absolute path does not need `data_dir` to exist.
pub fn load_split(
    data_dir: &Path,
    kind: &DatasetKind,
    scheme: OmniglotSplit,
    split: Split,
    image_size: Option<usize>,
) -> Result<(Arc<ImageStore>, ClassSplit)> {
    if !matches!(kind, DatasetKind::Folder(_)) {
        check_data_dir(data_dir)?;
    }
    let size = image_size.unwrap_or_else(|| kind.default_size());
    if size == 0 {
        return Err(DataError::ZeroParameter { name: "image size" });
    }
    match kind {
        DatasetKind::Omniglot => {
            let omniglot = load_omniglot_cached(data_dir, size)?;
            let classes = omniglot.split(scheme, split)?;
            Ok((Arc::clone(omniglot.store()), classes))
        }
        DatasetKind::MiniImageNet => {
            let dir = data_dir.join("miniimagenet");
            let key = CacheKey {
                kind: "miniimagenet",
                path: dir.clone(),
                split: Some(split),
                size,
                channels: 3,
            };
            let store = cached(store_cache(), key, || {
                Ok(Arc::new(load_miniimagenet(&dir, split, size)?))
            })?;
            let classes = ClassSplit::all(split, store.num_classes());
            Ok((store, classes))
        }
        DatasetKind::Folder(folder) => {
            let root = folder.root(data_dir);
            let (dir, one_split) = folder.split_dir(&root, split)?;
            let key = CacheKey {
                kind: "folder",
                path: dir.clone(),
                split: one_split.then_some(split),
                size,
                channels: folder.channels,
            };
            let options = FolderOptions {
                height: size,
                width: size,
                channels: folder.channels,
                ..FolderOptions::default()
            };
            let store = cached(store_cache(), key, || {
                Ok(Arc::new(load_image_folder(&dir, &options)?))
            })?;
            let classes = folder.class_split(&root, &store, split)?;
            Ok((store, classes))
        }
    }
}

/// An episode sampler for `split` of `kind` in `data_dir`, validated against `spec`.
///
/// `scheme` picks the Omniglot class split (ignored otherwise); the scheme's augmentation
/// (per-task rotations for `l2l`) is applied. Episode `i` depends only on `(seed, split, i)`.
pub fn load_split_sampler(
    data_dir: &Path,
    kind: &DatasetKind,
    scheme: OmniglotSplit,
    split: Split,
    spec: EpisodeSpec,
    seed: u64,
    image_size: Option<usize>,
) -> Result<EpisodeSampler> {
    spec.check_values()?;
    let (store, classes) = load_split(data_dir, kind, scheme, split, image_size)?;
    EpisodeSampler::new(store, classes, spec, seed)
}

/// Classes and images of one split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitInfo {
    /// The split.
    pub split: Split,
    /// Number of classes (rotated copies count as classes where the scheme says so).
    pub classes: usize,
    /// Number of images (summed over the split's classes).
    pub images: usize,
    /// Fewest images in one class.
    pub min_images_per_class: usize,
    /// Per-task augmentation.
    pub augmentation: Augmentation,
}

/// What a data set in a data directory holds (for `metalearn data info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataInfo {
    /// Data set name.
    pub dataset: String,
    /// Split scheme name.
    pub scheme: String,
    /// Image shape `[C, H, W]` after decoding.
    pub image_shape: [usize; 3],
    /// One entry per split the scheme defines.
    pub splits: Vec<SplitInfo>,
}

/// Loads (or takes from the cache) every split of `kind` and counts classes and images.
pub fn info(
    data_dir: &Path,
    kind: &DatasetKind,
    scheme: OmniglotSplit,
    image_size: Option<usize>,
) -> Result<DataInfo> {
    let mut splits = Vec::new();
    let mut image_shape = [0; 3];
    for split in Split::ALL {
        let (store, classes) = match load_split(data_dir, kind, scheme, split, image_size) {
            Ok(x) => x,
            Err(DataError::NoSuchSplit { .. }) => continue,
            Err(e) => return Err(e),
        };
        image_shape = store.image_shape();
        let counts: Vec<usize> = classes
            .classes
            .iter()
            .map(|c| store.class_len(c.class))
            .collect();
        splits.push(SplitInfo {
            split,
            classes: counts.len(),
            images: counts.iter().sum(),
            min_images_per_class: counts.iter().copied().min().unwrap_or(0),
            augmentation: classes.augmentation,
        });
    }
    Ok(DataInfo {
        dataset: kind.name().to_string(),
        scheme: match kind {
            DatasetKind::Omniglot => scheme.name().to_string(),
            DatasetKind::MiniImageNet => "ravi".to_string(),
            DatasetKind::Folder(folder) => match folder.split_at(&folder.root(data_dir)) {
                FolderSplit::Folders => "folders".to_string(),
                FolderSplit::Fractions(fractions) => format!("fractions {fractions}"),
            },
        },
        image_shape,
        splits,
    })
}
