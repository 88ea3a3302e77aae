//! [`ImageStore`]: a data set decoded once into compact `u8` memory, indexed by class.

use crate::error::{DataError, Result};

/// How stored `u8` pixels become `f32` when an episode is built.
#[derive(Debug, Clone, PartialEq)]
pub enum PixelScale {
    /// `v / 255`, in `[0, 1]`.
    Unit,
    /// `(v / 255 - mean[c]) / std[c]` per channel `c`.
    MeanStd {
        /// Per-channel mean of `v / 255`.
        mean: Vec<f32>,
        /// Per-channel standard deviation of `v / 255`.
        std: Vec<f32>,
    },
}

impl PixelScale {
    /// The usual Mini-ImageNet normalisation (learn2learn, fewshotbench).
    pub fn miniimagenet() -> Self {
        PixelScale::MeanStd {
            mean: vec![120.395_86 / 255.0, 115.593_61 / 255.0, 104.540_12 / 255.0],
            std: vec![70.681_88 / 255.0, 68.276_35 / 255.0, 72.545_05 / 255.0],
        }
    }

    /// Per channel `(scale, offset)` with `f32 = v * scale + offset` (what episodes use: an affine
    /// map vectorises, a table lookup does not).
    pub fn affine(&self, channels: usize) -> Vec<(f32, f32)> {
        (0..channels)
            .map(|c| match self {
                PixelScale::Unit => (1.0 / 255.0, 0.0),
                PixelScale::MeanStd { mean, std } => {
                    let m = mean.get(c).copied().unwrap_or(0.0);
                    let s = std.get(c).copied().unwrap_or(1.0);
                    (1.0 / (255.0 * s), -m / s)
                }
            })
            .collect()
    }

    /// One 256-entry lookup table per channel: `table[c][v]` is the `f32` for stored value `v`.
    pub fn lookup_tables(&self, channels: usize) -> Vec<[f32; 256]> {
        (0..channels)
            .map(|c| {
                let mut table = [0f32; 256];
                for (v, slot) in table.iter_mut().enumerate() {
                    let unit = v as f32 / 255.0;
                    *slot = match self {
                        PixelScale::Unit => unit,
                        PixelScale::MeanStd { mean, std } => {
                            let m = mean.get(c).copied().unwrap_or(0.0);
                            let s = std.get(c).copied().unwrap_or(1.0);
                            (unit - m) / s
                        }
                    };
                }
                table
            })
            .collect()
    }
}

/// All images of a data set as `u8` pixels in `[C, H, W]` order, grouped by class.
///
/// Class `c` owns images `offsets[c]..offsets[c + 1]`; image `i` occupies
/// `pixels[i * C*H*W .. (i + 1) * C*H*W]`.
#[derive(Debug, Clone)]
pub struct ImageStore {
    class_names: Vec<String>,
    offsets: Vec<usize>,
    shape: [usize; 3],
    pixels: Vec<u8>,
    scale: PixelScale,
}

impl ImageStore {
    /// Builds a store from class names, per-class image counts and the concatenated pixels.
    ///
    /// Fails when the pixel buffer does not hold exactly `sum(counts)` images of `shape`.
    pub fn new(
        class_names: Vec<String>,
        counts: &[usize],
        shape: [usize; 3],
        pixels: Vec<u8>,
        scale: PixelScale,
    ) -> Result<Self> {
        if class_names.len() != counts.len() {
            return Err(DataError::InvalidParameter {
                name: "class counts",
                value: format!("{} counts for {} classes", counts.len(), class_names.len()),
                hint: "give one image count per class".into(),
            });
        }
        let mut offsets = Vec::with_capacity(counts.len() + 1);
        offsets.push(0);
        for &n in counts {
            offsets.push(offsets[offsets.len() - 1] + n);
        }
        let images = offsets[offsets.len() - 1];
        let image_len = shape.iter().product::<usize>();
        if image_len == 0 || pixels.len() != images * image_len {
            return Err(DataError::InvalidParameter {
                name: "pixel buffer",
                value: format!("{} bytes", pixels.len()),
                hint: format!(
                    "{images} images of shape {shape:?} need {} bytes",
                    images * image_len
                ),
            });
        }
        Ok(ImageStore {
            class_names,
            offsets,
            shape,
            pixels,
            scale,
        })
    }

    /// Concatenates stores with the same image shape and pixel scale (classes of `other` follow `self`'s).
    pub fn concat(mut self, other: ImageStore) -> Result<Self> {
        if self.shape != other.shape || self.scale != other.scale {
            return Err(DataError::InvalidParameter {
                name: "image shape",
                value: format!("{:?}", other.shape),
                hint: format!(
                    "stores to concatenate must share shape {:?} and pixel scale",
                    self.shape
                ),
            });
        }
        let base = self.images();
        self.class_names.extend(other.class_names);
        self.offsets
            .extend(other.offsets.iter().skip(1).map(|o| o + base));
        self.pixels.extend(other.pixels);
        Ok(self)
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    /// Total number of images.
    pub fn images(&self) -> usize {
        self.offsets[self.offsets.len() - 1]
    }

    /// Image shape `[C, H, W]`.
    pub fn image_shape(&self) -> [usize; 3] {
        self.shape
    }

    /// Bytes per image (`C * H * W`).
    pub fn image_len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Name of class `class` (e.g. `Latin/character01` or a wnid). Panics if out of range.
    pub fn class_name(&self, class: usize) -> &str {
        &self.class_names[class]
    }

    /// All class names, in class order.
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    /// Index of the class called `name`, if any.
    pub fn class_index(&self, name: &str) -> Option<usize> {
        self.class_names.iter().position(|n| n == name)
    }

    /// Number of images of class `class`. Panics if out of range.
    pub fn class_len(&self, class: usize) -> usize {
        self.offsets[class + 1] - self.offsets[class]
    }

    /// Pixels of image `index` of class `class` (`[C, H, W]`, `u8`). Panics if out of range.
    pub fn image(&self, class: usize, index: usize) -> &[u8] {
        assert!(index < self.class_len(class), "image index out of range");
        let i = self.offsets[class] + index;
        let len = self.image_len();
        &self.pixels[i * len..(i + 1) * len]
    }

    /// How pixels become `f32` in episodes.
    pub fn pixel_scale(&self) -> &PixelScale {
        &self.scale
    }

    /// All pixels, image after image.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_tables_scale_and_normalise() {
        let unit = PixelScale::Unit.lookup_tables(1);
        assert_eq!((unit[0][0], unit[0][255]), (0.0, 1.0));
        let norm = PixelScale::miniimagenet().lookup_tables(3);
        let expected = (200.0 / 255.0 - 115.593_61 / 255.0) / (68.276_35 / 255.0);
        assert!((norm[1][200] - expected).abs() < 1e-5);
        let (a, b) = PixelScale::miniimagenet().affine(3)[1];
        assert!((200.0 * a + b - expected).abs() < 1e-5);
        assert_eq!(PixelScale::Unit.affine(1)[0].0 * 255.0, 1.0);
    }

    #[test]
    fn store_checks_buffer_size_and_indexes_classes() {
        let bad = ImageStore::new(
            vec!["a".into()],
            &[2],
            [1, 2, 2],
            vec![0; 7],
            PixelScale::Unit,
        );
        assert!(bad.is_err());
        let store = ImageStore::new(
            vec!["a".into(), "b".into()],
            &[1, 2],
            [1, 1, 2],
            vec![1, 2, 3, 4, 5, 6],
            PixelScale::Unit,
        )
        .expect("store");
        assert_eq!(store.image(1, 1), &[5, 6]);
        let both = store.clone().concat(store).expect("concat");
        assert_eq!(
            (both.num_classes(), both.images(), both.image(3, 0)),
            (4, 6, &[3u8, 4][..])
        );
    }
}
