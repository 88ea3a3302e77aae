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

/// Taps of an area (box) filter along one axis: output `j` averages input `[j*s, (j+1)*s)`,
/// `s = input/output`, weighting partly covered input pixels by their overlap.
struct AreaAxis {
    input: usize,
    taps: Vec<(usize, Vec<f32>)>,
}

impl AreaAxis {
    fn new(input: usize, output: usize) -> Self {
        let scale = input as f64 / output as f64;
        let taps = (0..output)
            .map(|j| {
                let (lo, hi) = (j as f64 * scale, (j + 1) as f64 * scale);
                let start = lo.floor() as usize;
                let end = (hi.ceil() as usize).min(input);
                let weights = (start..end)
                    .map(|i| {
                        let overlap = (hi.min(i as f64 + 1.0) - lo.max(i as f64)).max(0.0);
                        (overlap / scale) as f32
                    })
                    .collect();
                (start, weights)
            })
            .collect();
        AreaAxis { input, taps }
    }
}

/// Shrinks one `[in_h, in_w]` u8 plane (row stride `stride`, pixel step `step`) to `[out_h, out_w]`
/// with an exact area filter (as OpenCV's `INTER_AREA`).
#[allow(clippy::too_many_arguments)]
fn area_resize_plane(
    src: &[u8],
    in_h: usize,
    stride: usize,
    step: usize,
    cols: &AreaAxis,
    rows: &AreaAxis,
    tmp: &mut Vec<f32>,
    out: &mut [u8],
    invert: bool,
) {
    let out_w = cols.taps.len();
    let in_w = cols.input;
    // Horizontal pass, transposed: tmp[x * in_h + y], so the vertical pass reads contiguously.
    tmp.clear();
    tmp.resize(in_h * out_w + in_w, 0.0);
    let (cols_tmp, row_f) = tmp.split_at_mut(in_h * out_w);
    for y in 0..in_h {
        let row = &src[y * stride..];
        for (x, v) in row_f.iter_mut().enumerate() {
            *v = f32::from(row[x * step]);
        }
        for (x, (start, weights)) in cols.taps.iter().enumerate() {
            cols_tmp[x * in_h + y] = dot(&row_f[*start..*start + weights.len()], weights);
        }
    }
    for (y, (start, weights)) in rows.taps.iter().enumerate() {
        for x in 0..out_w {
            let column = &cols_tmp[x * in_h..(x + 1) * in_h];
            let acc = dot(&column[*start..*start + weights.len()], weights);
            let v = acc.round().clamp(0.0, 255.0) as u8;
            out[y * out_w + x] = if invert { 255 - v } else { v };
        }
    }
}

#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = 0.0;
    for (x, y) in a.iter().zip(b) {
        acc += x * y;
    }
    acc
}

/// Decodes one encoded image (any format the `image` crate reads) into `out` (`[C, H, W]` u8).
/// Shrinking uses an exact area (box) filter; enlarging uses a triangle (bilinear) filter.
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
    let (in_w, in_h) = (img.width(), img.height());
    if (in_w, in_h) != (w, h) && in_w >= w && in_h >= h {
        let (cols, rows) = (
            AreaAxis::new(in_w as usize, spec.width),
            AreaAxis::new(in_h as usize, spec.height),
        );
        let mut tmp = Vec::new();
        let plane = spec.height * spec.width;
        let (raw, step) = if spec.channels == 1 {
            (img.into_luma8().into_raw(), 1)
        } else {
            (img.into_rgb8().into_raw(), 3)
        };
        for c in 0..spec.channels {
            area_resize_plane(
                &raw[c..],
                in_h as usize,
                in_w as usize * step,
                step,
                &cols,
                &rows,
                &mut tmp,
                &mut out[c * plane..(c + 1) * plane],
                spec.invert,
            );
        }
        return Ok(());
    }
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
