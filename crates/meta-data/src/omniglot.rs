//! Omniglot (Lake et al. 2015): read from the upstream zips or their extracted folders.

use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::decode::{DecodeSpec, decode_parallel, image_files, read_file, sub_dirs};
use crate::error::{DataError, Result, one_level_too_deep};
use crate::store::{ImageStore, PixelScale};

/// The two upstream archives, background (964 characters) then evaluation (659 characters).
pub const OMNIGLOT_PARTS: [&str; 2] = ["images_background", "images_evaluation"];

/// Default side length of decoded Omniglot images (28×28, as in Vinyals et al.).
pub const OMNIGLOT_DEFAULT_SIZE: usize = 28;

/// Omniglot decoded into memory: 1623 character classes × 20 drawings, ink = 1.0.
///
/// Classes are `Alphabet/characterNN`, background classes first (sorted), then evaluation classes.
#[derive(Debug, Clone)]
pub struct Omniglot {
    store: Arc<ImageStore>,
    background_classes: usize,
}

impl Omniglot {
    /// Loads `<dir>/images_background` and `<dir>/images_evaluation`, each from `<part>.zip` if present,
    /// else from the extracted folder `<part>/<Alphabet>/<characterNN>/*.png`, resized to `size`×`size`.
    ///
    /// `dir` is the `omniglot` folder of a data directory.
    pub fn load(dir: &Path, size: usize) -> Result<Self> {
        if !dir.is_dir() {
            return Err(missing(dir));
        }
        let background = load_part(&part_source(dir, OMNIGLOT_PARTS[0])?, size)?;
        let evaluation = load_part(&part_source(dir, OMNIGLOT_PARTS[1])?, size)?;
        Self::from_parts(background, evaluation)
    }

    /// Joins a decoded background part and evaluation part.
    pub fn from_parts(background: ImageStore, evaluation: ImageStore) -> Result<Self> {
        let background_classes = background.num_classes();
        Ok(Omniglot {
            store: Arc::new(background.concat(evaluation)?),
            background_classes,
        })
    }

    /// The decoded images (shared).
    pub fn store(&self) -> &Arc<ImageStore> {
        &self.store
    }

    /// Number of background classes (964 upstream); classes `0..background_classes()` are background.
    pub fn background_classes(&self) -> usize {
        self.background_classes
    }
}

fn missing(dir: &Path) -> DataError {
    let part = OMNIGLOT_PARTS[0];
    let hint = one_level_too_deep("Omniglot", dir, |d| {
        d.join(format!("{part}.zip")).is_file() || d.join(part).is_dir()
    })
    .unwrap_or_else(|| {
        "expected images_background.zip and images_evaluation.zip (or their extracted folders) \
         there; download it with `meta_data::fetch_omniglot` (CLI: `metalearn data fetch omniglot --data-dir <data-dir>`)"
            .into()
    });
    DataError::MissingDataset {
        dataset: "Omniglot".into(),
        path: dir.to_path_buf(),
        hint,
    }
}

/// Finds `<dir>/<part>.zip`, or else the extracted folder `<dir>/<part>` (also `<dir>/<part>/<part>`).
pub fn part_source(dir: &Path, part: &str) -> Result<PathBuf> {
    let zip = dir.join(format!("{part}.zip"));
    if zip.is_file() {
        return Ok(zip);
    }
    let folder = dir.join(part);
    let nested = folder.join(part);
    if nested.is_dir() {
        return Ok(nested);
    }
    if folder.is_dir() {
        return Ok(folder);
    }
    Err(DataError::MissingDataset {
        dataset: "Omniglot".into(),
        path: zip,
        hint: format!(
            "neither {part}.zip nor the folder {part}/ exists in {}; download it with `meta_data::fetch_omniglot` (CLI: `metalearn data fetch omniglot --data-dir <data-dir>`)",
            dir.display()
        ),
    })
}

/// Loads one Omniglot part (a `.zip` file or an extracted folder), resized to `size`×`size`, ink = 255.
pub fn load_part(source: &Path, size: usize) -> Result<ImageStore> {
    let spec = DecodeSpec {
        channels: 1,
        height: size,
        width: size,
        invert: true,
    };
    spec.check()?;
    if source.is_dir() {
        load_folder_part(source, &spec)
    } else {
        load_zip_part(source, &spec)
    }
}

const LAYOUT: &str = "images_<part>/<Alphabet>/<characterNN>/<id>_<drawer>.png";

/// Groups sorted `(class, item)` pairs into class names and counts.
fn group(keys: &[(String, usize)]) -> (Vec<String>, Vec<usize>) {
    let mut names: Vec<String> = Vec::new();
    let mut counts = Vec::new();
    for (class, _) in keys {
        if names.last() != Some(class) {
            names.push(class.clone());
            counts.push(0);
        }
        if let Some(c) = counts.last_mut() {
            *c += 1;
        }
    }
    (names, counts)
}

fn load_zip_part(path: &Path, spec: &DecodeSpec) -> Result<ImageStore> {
    let data = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let archive_err = |e: zip::result::ZipError| DataError::Archive {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let archive = zip::ZipArchive::new(Cursor::new(&data[..])).map_err(archive_err)?;
    // (class "Alphabet/characterNN", sort key "file", entry index)
    let mut entries: Vec<(String, String, usize)> = Vec::new();
    for (index, name) in archive.file_names().enumerate() {
        let parts: Vec<&str> = name.split('/').filter(|p| !p.is_empty()).collect();
        if parts
            .iter()
            .any(|p| p.starts_with("__MACOSX") || p.starts_with('.'))
        {
            continue;
        }
        if let [_, alphabet, character, file] = parts[..]
            && file.to_ascii_lowercase().ends_with(".png")
        {
            entries.push((format!("{alphabet}/{character}"), file.to_string(), index));
        }
    }
    if entries.is_empty() {
        return Err(DataError::WrongLayout {
            path: path.to_path_buf(),
            problem: "no PNG entries three folders deep".into(),
            expected: LAYOUT.into(),
        });
    }
    entries.sort();
    let keys: Vec<(String, usize)> = entries.iter().map(|(c, _, i)| (c.clone(), *i)).collect();
    let (names, counts) = group(&keys);
    let pixels = decode_parallel(
        entries.len(),
        spec,
        || Ok(archive.clone()),
        |archive, i| {
            let index = entries[i].2;
            let mut file = archive.by_index(index).map_err(archive_err)?;
            let name = format!("{}!{}", path.display(), file.name());
            let mut bytes = Vec::with_capacity(file.size() as usize);
            file.read_to_end(&mut bytes)
                .map_err(|e| DataError::BadImage {
                    name: name.clone(),
                    reason: format!("cannot read from the archive: {e}"),
                })?;
            Ok((bytes, name))
        },
    )?;
    ImageStore::new(names, &counts, spec.shape(), pixels, PixelScale::Unit)
}

fn load_folder_part(root: &Path, spec: &DecodeSpec) -> Result<ImageStore> {
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    for alphabet in sub_dirs(root)? {
        for character in sub_dirs(&alphabet)? {
            let class = format!("{}/{}", file_name(&alphabet), file_name(&character));
            for file in image_files(&character)? {
                files.push((class.clone(), file));
            }
        }
    }
    if files.is_empty() {
        return Err(DataError::WrongLayout {
            path: root.to_path_buf(),
            problem: "no images found two folders deep".into(),
            expected: LAYOUT.into(),
        });
    }
    files.sort();
    let keys: Vec<(String, usize)> = files.iter().map(|(c, _)| (c.clone(), 0)).collect();
    let (names, counts) = group(&keys);
    let pixels = decode_parallel(files.len(), spec, || Ok(()), |_, i| read_file(&files[i].1))?;
    ImageStore::new(names, &counts, spec.shape(), pixels, PixelScale::Unit)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
