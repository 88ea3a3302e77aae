//! User data: any folder of class sub-folders, `root/<class>/<image>`, and how its classes are
//! divided into train, validation and test (split folders, or seeded fractions of one folder).

use std::fmt;
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::decode::{DecodeSpec, decode_parallel, image_files, read_file, sub_dirs};
use crate::error::{DataError, Result};
use crate::split::{Augmentation, ClassSplit, Split};
use crate::store::{ImageStore, PixelScale};

/// How to decode a folder data set.
#[derive(Debug, Clone, PartialEq)]
pub struct FolderOptions {
    /// Output height.
    pub height: usize,
    /// Output width.
    pub width: usize,
    /// 1 (every image converted to grayscale) or 3 (RGB).
    pub channels: usize,
    /// Classes with fewer images are an error.
    pub min_images: usize,
    /// Store `255 - v` (dark ink on light paper becomes 1.0).
    pub invert: bool,
    /// How pixels become `f32`.
    pub scale: PixelScale,
}

impl Default for FolderOptions {
    /// 84×84 RGB, at least 2 images per class, `v / 255`.
    fn default() -> Self {
        FolderOptions {
            height: 84,
            width: 84,
            channels: 3,
            min_images: 2,
            invert: false,
            scale: PixelScale::Unit,
        }
    }
}

/// Loads `root/<class>/<image>` (every format the `image` crate reads; hidden files and unknown
/// extensions are skipped), classes sorted by folder name, images by file name.
pub fn load_image_folder(root: &Path, options: &FolderOptions) -> Result<ImageStore> {
    let spec = DecodeSpec {
        channels: options.channels,
        height: options.height,
        width: options.width,
        invert: options.invert,
    };
    spec.check()?;
    if !root.is_dir() {
        return Err(DataError::MissingDataset {
            dataset: "image folder".into(),
            path: root.to_path_buf(),
            hint: "pass a folder holding one sub-folder of images per class".into(),
        });
    }
    let mut names = Vec::new();
    let mut counts = Vec::new();
    let mut files = Vec::new();
    for class_dir in sub_dirs(root)? {
        let images = image_files(&class_dir)?;
        if images.len() < options.min_images.max(1) {
            return Err(DataError::ClassTooSmall {
                path: class_dir,
                have: images.len(),
                min: options.min_images.max(1),
            });
        }
        names.push(
            class_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
        counts.push(images.len());
        files.extend(images);
    }
    if names.is_empty() {
        return Err(DataError::WrongLayout {
            path: root.to_path_buf(),
            problem: "no class sub-folders".into(),
            expected: "root/<class>/<image>".into(),
        });
    }
    let pixels = decode_parallel(files.len(), &spec, || Ok(()), |_, i| read_file(&files[i]))?;
    ImageStore::new(names, &counts, spec.shape(), pixels, options.scale.clone())
}

/// Default seed of the shuffle that divides a single folder's classes ([`ClassFractions`]).
pub const FOLDER_SPLIT_SEED: u64 = 42;

/// Which share of a single folder's classes goes to train, validation and test, and the seed of
/// the shuffle that picks them.
///
/// Classes are sorted by name, shuffled with ChaCha8 seeded by `seed`, and cut in that order:
/// validation and test get `round(fraction × classes)` classes each, training the rest. The same
/// names and seed give the same split on every machine; the three splits never share a class.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClassFractions {
    /// Share of training classes (> 0).
    pub train: f64,
    /// Share of validation classes (0: no validation split).
    pub val: f64,
    /// Share of test classes (> 0).
    pub test: f64,
    /// Seed of the class shuffle.
    pub seed: u64,
}

impl Default for ClassFractions {
    /// 0.64 / 0.16 / 0.20 (Mini-ImageNet's 64/16/20 classes), seed [`FOLDER_SPLIT_SEED`].
    fn default() -> Self {
        ClassFractions {
            train: 0.64,
            val: 0.16,
            test: 0.20,
            seed: FOLDER_SPLIT_SEED,
        }
    }
}

impl fmt::Display for ClassFractions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "train {} / val {} / test {} (seed {})",
            self.train, self.val, self.test, self.seed
        )
    }
}

impl ClassFractions {
    /// Checks that the fractions are finite, in `[0, 1]`, sum to 1 (within 1e-6), and give
    /// training and test classes.
    pub fn check(&self) -> Result<()> {
        let all = [self.train, self.val, self.test];
        let in_range = all.iter().all(|f| f.is_finite() && (0.0..=1.0).contains(f));
        let sum: f64 = all.iter().sum();
        // Shown to 6 decimals: 0.7 + 0.2 + 0.2 prints as 1.1, not 1.0999999999999999.
        let shown = (sum * 1e6).round() / 1e6;
        if !in_range || self.train == 0.0 || self.test == 0.0 || (sum - 1.0).abs() > 1e-6 {
            return Err(DataError::InvalidParameter {
                name: "class fractions",
                value: self.to_string(),
                hint: format!(
                    "train, val and test must each lie in [0, 1] and sum to 1 (they sum to {shown}), \
                     with train and test above 0; e.g. 0.64 / 0.16 / 0.20, or val 0 for no \
                     validation split"
                ),
            });
        }
        Ok(())
    }

    /// The class indices of train, validation and test (each sorted) for classes named `names`
    /// (index = position); `root` names the folder in errors.
    pub fn assign(&self, names: &[String], root: &Path) -> Result<[Vec<usize>; 3]> {
        self.check()?;
        let n = names.len();
        let count = |f: f64| (f * n as f64).round() as usize;
        let (val, test) = (count(self.val), count(self.test));
        let train = n.saturating_sub(val + test);
        for (split, share, have) in [
            ("train", self.train, train),
            ("val", self.val, val),
            ("test", self.test, test),
        ] {
            if (share > 0.0 && have == 0) || val + test > n {
                return Err(DataError::WrongLayout {
                    path: root.to_path_buf(),
                    problem: format!(
                        "{n} classes are too few for the class fractions {self}: the \
                         {split} split would get {have} classes"
                    ),
                    expected: "at least one class per split whose fraction is above 0: add \
                               classes (class folders, or labels of a CSV file) or change the \
                               fractions"
                        .into(),
                });
            }
        }
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| names[a].cmp(&names[b]));
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(self.seed));
        let mut parts = [
            order[..train].to_vec(),
            order[train..train + val].to_vec(),
            order[train + val..].to_vec(),
        ];
        for part in &mut parts {
            part.sort_unstable();
        }
        Ok(parts)
    }
}

/// How a folder data set's classes are divided into train, validation and test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FolderSplit {
    /// `root/{train,val,test}/<class>/<image>`: each split is its own folder (`val/` optional).
    Folders,
    /// `root/<class>/<image>`: the classes divided by [`ClassFractions`].
    Fractions(ClassFractions),
}

impl FolderSplit {
    /// `folders` or `fractions`.
    pub fn name(&self) -> &'static str {
        match self {
            FolderSplit::Folders => "folders",
            FolderSplit::Fractions(_) => "fractions",
        }
    }

    /// [`FolderSplit::Folders`] when `root/train/` holds class folders, else the default fractions.
    pub fn detect(root: &Path) -> Self {
        if has_split_folders(root) {
            FolderSplit::Folders
        } else {
            FolderSplit::Fractions(ClassFractions::default())
        }
    }
}

/// Whether `root/train/` exists and holds at least one class folder.
pub fn has_split_folders(root: &Path) -> bool {
    sub_dirs(&root.join("train")).is_ok_and(|dirs| !dirs.is_empty())
}

/// A user's folder data set: where it is, how its images are decoded, how its classes are split.
#[derive(Debug, Clone, PartialEq)]
pub struct FolderDataset {
    /// The folder; a relative path is tried as given, then under the data directory.
    pub path: PathBuf,
    /// 1: every image is converted to grayscale (the `image` crate's luma,
    /// `0.2126 R + 0.7152 G + 0.0722 B`, rounded); 3: to RGB (a gray value in all three).
    pub channels: usize,
    /// How classes are divided; `None`: [`FolderSplit::detect`].
    pub split: Option<FolderSplit>,
}

impl FolderDataset {
    /// RGB, split detected from the layout.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FolderDataset {
            path: path.into(),
            channels: 3,
            split: None,
        }
    }

    /// The folder: `path` if it exists or is absolute, else `path` under `data_dir`.
    pub fn root(&self, data_dir: &Path) -> PathBuf {
        if self.path.is_relative() && !self.path.exists() {
            data_dir.join(&self.path)
        } else {
            self.path.clone()
        }
    }

    /// The split scheme used for the folder at `root`.
    pub fn split_at(&self, root: &Path) -> FolderSplit {
        self.split.unwrap_or_else(|| FolderSplit::detect(root))
    }

    /// The folder holding the classes of `split` (checked against the layout), and whether it
    /// holds only that split's classes (`Folders`) or every class (`Fractions`).
    pub fn split_dir(&self, root: &Path, split: Split) -> Result<(PathBuf, bool)> {
        if !root.is_dir() {
            return Err(DataError::MissingDataset {
                dataset: "image folder".into(),
                path: root.to_path_buf(),
                hint: "pass folder:PATH with PATH/<class>/<image>, or PATH/train/<class>/<image> \
                       and PATH/test/<class>/<image> (PATH/val/ optional); a relative PATH is \
                       looked for in the current folder, then in the data directory"
                    .into(),
            });
        }
        match self.split_at(root) {
            FolderSplit::Folders => {
                let complete = has_split_folders(root) && root.join("test").is_dir();
                if !complete {
                    return Err(DataError::WrongLayout {
                        path: root.to_path_buf(),
                        problem: "the folders split needs train/ and test/ folders of class \
                                  folders"
                            .into(),
                        expected: "PATH/train/<class>/<image> and PATH/test/<class>/<image> \
                                   (PATH/val/ optional); for PATH/<class>/<image> use the \
                                   fractions split"
                            .into(),
                    });
                }
                let dir = root.join(split.name());
                if !dir.is_dir() {
                    return Err(DataError::NoSuchSplit {
                        scheme: "folders".into(),
                        split: split.name().into(),
                        hint: format!("{} has no {split}/ folder", root.display()),
                    });
                }
                Ok((dir, true))
            }
            FolderSplit::Fractions(fractions) => {
                fractions.check()?;
                if has_split_folders(root) {
                    return Err(DataError::WrongLayout {
                        path: root.to_path_buf(),
                        problem: "train/ holds class folders: the data set is split already".into(),
                        expected: "the folders split for PATH/{train,val,test}/<class>/, or \
                                   PATH/<class>/<image> for the fractions split"
                            .into(),
                    });
                }
                Ok((root.to_path_buf(), false))
            }
        }
    }

    /// The classes of `split` among `store`'s (all of them for `Folders`); `root` as in
    /// [`FolderDataset::split_dir`].
    pub fn class_split(&self, root: &Path, store: &ImageStore, split: Split) -> Result<ClassSplit> {
        let FolderSplit::Fractions(fractions) = self.split_at(root) else {
            return Ok(ClassSplit::all(split, store.num_classes()));
        };
        let [train, val, test] = fractions.assign(store.class_names(), root)?;
        let chosen = match split {
            Split::Train => train,
            Split::Val => val,
            Split::Test => test,
        };
        if chosen.is_empty() {
            return Err(DataError::NoSuchSplit {
                scheme: "fractions".into(),
                split: split.name().into(),
                hint: format!("the {split} fraction is 0 ({fractions})"),
            });
        }
        Ok(ClassSplit::unrotated(split, chosen, Augmentation::None))
    }
}
