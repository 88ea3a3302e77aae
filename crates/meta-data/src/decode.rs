//! Image decoding into the compact `u8` layout, in parallel over scoped threads.

use image::{DynamicImage, imageops::FilterType};

use crate::error::{DataError, Result};

/// Target layout for decoded images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeSpec {
    /// 1 (grayscale) or 3 (RGB).
    pub channels: usize,
    /// Output height in pixels.
    pub height: usize,
    /// Output width in pixels.
    pub width: usize,
    /// Store `255 - v` (Omniglot: black ink becomes 1.0).
    pub invert: bool,
}

impl DecodeSpec {
    /// Bytes per decoded image.
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Image shape `[C, H, W]`.
    pub fn shape(&self) -> [usize; 3] {
        [self.channels, self.height, self.width]
    }

    /// Checks channels ∈ {1, 3} and a non-zero size.
    pub fn check(&self) -> Result<()> {
        if self.height == 0 || self.width == 0 {
            return Err(DataError::ZeroParameter { name: "image size" });
        }
        if self.channels != 1 && self.channels != 3 {
            return Err(DataError::InvalidParameter {
                name: "channels",
                value: self.channels.to_string(),
                hint: "use 1 (grayscale) or 3 (RGB)".into(),
            });
        }
        Ok(())
    }
}

/// Number of decoding threads: all available cores, at least 2.
pub(crate) fn decode_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(2, 32)
}

/// Decodes one encoded image (any format the `image` crate reads) into `out` (`[C, H, W]` u8),
/// resizing with a triangle (bilinear, area-weighted when shrinking) filter when needed.
/// `name` is used in errors.
pub fn decode_into(bytes: &[u8], name: &str, spec: &DecodeSpec, out: &mut [u8]) -> Result<()> {
    let bad = |reason: String| DataError::BadImage {
        name: name.to_string(),
        reason,
    };
    if out.len() != spec.image_len() {
        return Err(bad(format!(
            "output buffer of {} bytes, expected {}",
            out.len(),
            spec.image_len()
        )));
    }
    let img: DynamicImage = image::load_from_memory(bytes).map_err(|e| bad(e.to_string()))?;
    let (w, h) = (spec.width as u32, spec.height as u32);
    let filter = FilterType::Triangle;
    match spec.channels {
        1 => {
            let mut gray = img.into_luma8();
            if gray.dimensions() != (w, h) {
                gray = image::imageops::resize(&gray, w, h, filter);
            }
            for (o, &p) in out.iter_mut().zip(gray.as_raw()) {
                *o = if spec.invert { 255 - p } else { p };
            }
        }
        3 => {
            let mut rgb = img.into_rgb8();
            if rgb.dimensions() != (w, h) {
                rgb = image::imageops::resize(&rgb, w, h, filter);
            }
            let plane = spec.height * spec.width;
            for (i, px) in rgb.as_raw().chunks_exact(3).enumerate() {
                for c in 0..3 {
                    let p = px[c];
                    out[c * plane + i] = if spec.invert { 255 - p } else { p };
                }
            }
        }
        other => {
            return Err(DataError::InvalidParameter {
                name: "channels",
                value: other.to_string(),
                hint: "use 1 (grayscale) or 3 (RGB)".into(),
            });
        }
    }
    Ok(())
}

/// Decodes `count` images in parallel into one contiguous buffer, image `i` at `i * image_len`.
///
/// Each thread calls `init` once for its own reader state (e.g. a clone of a zip archive), then
/// `read(&mut state, i)` for the encoded bytes and display name of image `i`.
pub(crate) fn decode_parallel<S, I, R>(
    count: usize,
    spec: &DecodeSpec,
    init: I,
    read: R,
) -> Result<Vec<u8>>
where
    I: Fn() -> Result<S> + Sync,
    R: Fn(&mut S, usize) -> Result<(Vec<u8>, String)> + Sync,
{
    spec.check()?;
    let len = spec.image_len();
    let mut pixels = vec![0u8; count * len];
    if count == 0 {
        return Ok(pixels);
    }
    let threads = decode_threads().min(count);
    let per_thread = count.div_ceil(threads);
    let results: Vec<Result<()>> = std::thread::scope(|scope| {
        let handles: Vec<_> = pixels
            .chunks_mut(per_thread * len)
            .enumerate()
            .map(|(t, chunk)| {
                let (init, read) = (&init, &read);
                scope.spawn(move || -> Result<()> {
                    let mut state = init()?;
                    for (j, out) in chunk.chunks_exact_mut(len).enumerate() {
                        let (bytes, name) = read(&mut state, t * per_thread + j)?;
                        decode_into(&bytes, &name, spec, out)?;
                    }
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(DataError::BadImage {
                        name: "<decoder thread>".into(),
                        reason: "a decoder thread panicked".into(),
                    })
                })
            })
            .collect()
    });
    for r in results {
        r?;
    }
    Ok(pixels)
}

/// Sorted image files (by name) in `dir`, skipping hidden files and files whose extension the
/// `image` crate does not know.
pub(crate) fn image_files(dir: &std::path::Path) -> Result<Vec<std::path::PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))? {
        let path = entry.map_err(|e| DataError::io(dir, e))?.path();
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_none_or(|n| n.starts_with('.'));
        if !hidden && path.is_file() && image::ImageFormat::from_path(&path).is_ok() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Sorted, non-hidden sub-directories of `dir`.
pub(crate) fn sub_dirs(dir: &std::path::Path) -> Result<Vec<std::path::PathBuf>> {
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))? {
        let path = entry.map_err(|e| DataError::io(dir, e))?.path();
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_none_or(|n| n.starts_with('.') || n == "__MACOSX");
        if !hidden && path.is_dir() {
            dirs.push(path);
        }
    }
    dirs.sort();
    Ok(dirs)
}

/// Reads a file, naming it in the error.
pub(crate) fn read_file(path: &std::path::Path) -> Result<(Vec<u8>, String)> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    Ok((bytes, path.display().to_string()))
}
