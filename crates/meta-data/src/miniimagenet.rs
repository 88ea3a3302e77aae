//! Mini-ImageNet with the Ravi & Larochelle (2017) class split: 64/16/20 classes, 84×84 RGB.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::decode::{DecodeSpec, decode_parallel, image_files, read_file};
use crate::error::{DataError, Result, one_level_too_deep};
use crate::split::Split;
use crate::store::{ImageStore, PixelScale};

/// Default side length of Mini-ImageNet images.
pub const MINIIMAGENET_DEFAULT_SIZE: usize = 84;

const RAVI_TRAIN: &str = include_str!("../splits/ravi/train.txt");
const RAVI_VAL: &str = include_str!("../splits/ravi/val.txt");
const RAVI_TEST: &str = include_str!("../splits/ravi/test.txt");

/// The class (wnid) list of `split` in the Ravi & Larochelle split, in CSV order.
pub fn miniimagenet_wnids(split: Split) -> Vec<&'static str> {
    let text = match split {
        Split::Train => RAVI_TRAIN,
        Split::Val => RAVI_VAL,
        Split::Test => RAVI_TEST,
    };
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect()
}

const LAYOUT: &str = "<data-dir>/miniimagenet/<split>/<wnid>/*.jpg (or a .tar holding [<prefix>/]<split>/<wnid>/*.jpg)";

/// Loads the `split` classes of Mini-ImageNet from `dir` (the `miniimagenet` folder of a data
/// directory), resized to `size`×`size` RGB, normalised with the usual per-channel mean/std.
///
/// Reads `<dir>/<split>/<wnid>/*` when that folder exists, else the first `*.tar` in `dir`
/// (e.g. `subset20.tar`) directly, without extracting it.
pub fn load_miniimagenet(dir: &Path, split: Split, size: usize) -> Result<ImageStore> {
    let spec = DecodeSpec {
        channels: 3,
        height: size,
        width: size,
        invert: false,
    };
    spec.check()?;
    if !dir.is_dir() {
        return Err(missing(dir));
    }
    let split_dir = dir.join(split.name());
    if split_dir.is_dir() {
        return load_from_folder(&split_dir, split, &spec);
    }
    match find_tar(dir)? {
        Some(tar) => load_from_tar(&tar, split, &spec),
        None => Err(missing(dir)),
    }
}

fn missing(dir: &Path) -> DataError {
    let hint = one_level_too_deep("Mini-ImageNet", dir, |d| d.join(Split::Train.name()).is_dir())
        .unwrap_or_else(|| {
            format!(
                "it has no public download; place a copy laid out as {LAYOUT} in the data directory (CLI: --data-dir <data-dir>)"
            )
        });
    DataError::MissingDataset {
        dataset: "Mini-ImageNet".into(),
        path: dir.to_path_buf(),
        hint,
    }
}

fn find_tar(dir: &Path) -> Result<Option<PathBuf>> {
    let mut tars = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))? {
        let path = entry.map_err(|e| DataError::io(dir, e))?.path();
        if path.is_file() && path.extension().is_some_and(|e| e == "tar") {
            tars.push(path);
        }
    }
    tars.sort();
    Ok(tars.into_iter().next())
}

fn load_from_folder(split_dir: &Path, split: Split, spec: &DecodeSpec) -> Result<ImageStore> {
    let wnids = miniimagenet_wnids(split);
    let mut files = Vec::new();
    let mut counts = Vec::new();
    for wnid in &wnids {
        let class_dir = split_dir.join(wnid);
        if !class_dir.is_dir() {
            return Err(DataError::WrongLayout {
                path: class_dir,
                problem: format!("class folder {wnid} of the {split} split is missing"),
                expected: LAYOUT.into(),
            });
        }
        let images = image_files(&class_dir)?;
        if images.is_empty() {
            return Err(DataError::ClassTooSmall {
                path: class_dir,
                have: 0,
                min: 1,
            });
        }
        counts.push(images.len());
        files.extend(images);
    }
    let pixels = decode_parallel(files.len(), spec, || Ok(()), |_, i| read_file(&files[i]))?;
    let names = wnids.iter().map(|w| w.to_string()).collect();
    ImageStore::new(
        names,
        &counts,
        spec.shape(),
        pixels,
        PixelScale::miniimagenet(),
    )
}

fn load_from_tar(tar_path: &Path, split: Split, spec: &DecodeSpec) -> Result<ImageStore> {
    let wnids = miniimagenet_wnids(split);
    let wanted: HashMap<&str, usize> = wnids.iter().enumerate().map(|(i, w)| (*w, i)).collect();
    let archive_err = |e: std::io::Error| DataError::Archive {
        path: tar_path.to_path_buf(),
        reason: e.to_string(),
    };
    let file = std::fs::File::open(tar_path).map_err(|e| DataError::io(tar_path, e))?;
    let mut archive = tar::Archive::new(std::io::BufReader::new(file));
    // (class index, entry path, bytes)
    let mut images: Vec<(usize, String, Vec<u8>)> = Vec::new();
    for entry in archive.entries().map_err(archive_err)? {
        let mut entry = entry.map_err(archive_err)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry
            .path()
            .map_err(archive_err)?
            .to_string_lossy()
            .into_owned();
        let parts: Vec<&str> = name.split('/').filter(|p| !p.is_empty()).collect();
        let n = parts.len();
        if n < 3 || parts[n - 3] != split.name() {
            continue;
        }
        let Some(&class) = wanted.get(parts[n - 2]) else {
            continue;
        };
        let file_name = parts[n - 1];
        if file_name.starts_with('.') || image::ImageFormat::from_path(file_name).is_err() {
            continue;
        }
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| DataError::BadImage {
                name: format!("{}!{name}", tar_path.display()),
                reason: format!("cannot read from the archive: {e}"),
            })?;
        images.push((class, name, bytes));
    }
    images.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    let mut counts = vec![0usize; wnids.len()];
    for (class, _, _) in &images {
        counts[*class] += 1;
    }
    if let Some(empty) = counts.iter().position(|&c| c == 0) {
        return Err(DataError::WrongLayout {
            path: tar_path.to_path_buf(),
            problem: format!(
                "no images of class {} ({} split) in the archive",
                wnids[empty], split
            ),
            expected: LAYOUT.into(),
        });
    }
    let pixels = decode_parallel(
        images.len(),
        spec,
        || Ok(()),
        |_, i| {
            let (_, name, bytes) = &images[i];
            Ok((bytes.clone(), format!("{}!{name}", tar_path.display())))
        },
    )?;
    let names = wnids.iter().map(|w| w.to_string()).collect();
    ImageStore::new(
        names,
        &counts,
        spec.shape(),
        pixels,
        PixelScale::miniimagenet(),
    )
}
