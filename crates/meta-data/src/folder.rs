//! User data: any folder of class sub-folders, `root/<class>/<image>`.

use std::path::Path;

use crate::decode::{DecodeSpec, decode_parallel, image_files, read_file, sub_dirs};
use crate::error::{DataError, Result};
use crate::store::{ImageStore, PixelScale};

/// How to decode a folder data set.
#[derive(Debug, Clone, PartialEq)]
pub struct FolderOptions {
    /// Output height.
    pub height: usize,
    /// Output width.
    pub width: usize,
    /// 1 (grayscale) or 3 (RGB).
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
