//! Per-image training augmentation: random crop with zero padding, horizontal flip and colour
//! jitter (brightness, contrast, saturation), as in the Mini-ImageNet training code of RFS
//! (Tian et al. 2020), MetaOptNet and LibFewShot (`RandomCrop(84, padding=8)`,
//! `RandomHorizontalFlip()`, `ColorJitter(0.4, 0.4, 0.4)`).
//!
//! This is independent of [`Augmentation`](crate::Augmentation), which rotates whole classes per
//! task (Omniglot). Every random draw comes from the episode's own generator, so an augmented
//! episode is still a pure function of `(seed, split, index)`.

use rand::RngExt;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};

/// Which per-image augmentations the sampler applies, and how strongly. The default applies
/// none; [`ImageAugment::STANDARD`] is the papers' Mini-ImageNet setting.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImageAugment {
    /// Zero padding added on each side before a random crop back to the image size (0: no crop).
    pub crop_padding: usize,
    /// Flip each image left-right with probability 1/2.
    pub flip: bool,
    /// Brightness jitter b: pixels scaled by a factor uniform in `[max(0, 1 − b), 1 + b]`.
    pub brightness: f32,
    /// Contrast jitter c: pixels blended with the image's mean grey level by a factor uniform in
    /// `[max(0, 1 − c), 1 + c]`.
    pub contrast: f32,
    /// Saturation jitter s: pixels blended with their own grey level by a factor uniform in
    /// `[max(0, 1 − s), 1 + s]` (no effect on single-channel images).
    pub saturation: f32,
}

impl Default for ImageAugment {
    fn default() -> Self {
        Self::NONE
    }
}

/// One colour-jitter operation; torchvision applies them in a random order per image.
#[derive(Debug, Clone, Copy)]
enum Jitter {
    Brightness(f32),
    Contrast(f32),
    Saturation(f32),
}

impl ImageAugment {
    /// No augmentation.
    pub const NONE: Self = Self {
        crop_padding: 0,
        flip: false,
        brightness: 0.0,
        contrast: 0.0,
        saturation: 0.0,
    };

    /// RFS / MetaOptNet / LibFewShot Mini-ImageNet training augmentation: crop with padding 8,
    /// flip, colour jitter 0.4 / 0.4 / 0.4.
    pub const STANDARD: Self = Self {
        crop_padding: 8,
        flip: true,
        brightness: 0.4,
        contrast: 0.4,
        saturation: 0.4,
    };

    /// Whether any augmentation is switched on.
    pub fn is_active(&self) -> bool {
        *self != Self::NONE
    }

    /// Checks the settings against images of `[channels, height, width]`.
    pub fn check(&self, [_, h, w]: [usize; 3]) -> Result<()> {
        if self.crop_padding >= h.min(w) {
            return Err(DataError::InvalidParameter {
                name: "crop_padding",
                value: self.crop_padding.to_string(),
                hint: format!("the padding must be smaller than the {h}×{w} images (8 for 84×84)"),
            });
        }
        for (name, value) in [
            ("brightness", self.brightness),
            ("contrast", self.contrast),
            ("saturation", self.saturation),
        ] {
            if !(value.is_finite() && (0.0..=1.0).contains(&value)) {
                return Err(DataError::InvalidParameter {
                    name,
                    value: value.to_string(),
                    hint: "a jitter strength lies in [0, 1] (0.4 in the papers; 0 turns it off)"
                        .into(),
                });
            }
        }
        Ok(())
    }

    /// Augments one image in place: `image` is `[channels, height, width]` in pixel units
    /// (0–255), `scratch` any buffer (reused between calls).
    pub fn apply<R: RngExt + ?Sized>(
        &self,
        rng: &mut R,
        image: &mut [f32],
        [channels, h, w]: [usize; 3],
        scratch: &mut Vec<f32>,
    ) {
        debug_assert_eq!(image.len(), channels * h * w);
        let p = self.crop_padding;
        let (dy, dx) = if p > 0 {
            (rng.random_range(0..=2 * p), rng.random_range(0..=2 * p))
        } else {
            (p, p)
        };
        let flip = self.flip && rng.random_bool(0.5);
        if (dy, dx) != (p, p) || flip {
            scratch.clear();
            scratch.extend_from_slice(image);
            for (plane_out, plane_in) in image
                .chunks_exact_mut(h * w)
                .zip(scratch.chunks_exact(h * w))
            {
                for (y, row) in plane_out.chunks_exact_mut(w).enumerate() {
                    // Row y of the crop is row y + dy − p of the image (zero outside it).
                    let sy = (y + dy).checked_sub(p).filter(|&sy| sy < h);
                    for (x, out) in row.iter_mut().enumerate() {
                        let cx = if flip { w - 1 - x } else { x };
                        let sx = (cx + dx).checked_sub(p).filter(|&sx| sx < w);
                        *out = match (sy, sx) {
                            (Some(sy), Some(sx)) => plane_in[sy * w + sx],
                            _ => 0.0,
                        };
                    }
                }
            }
        }
        let mut jitters = Vec::with_capacity(3);
        let factor = |rng: &mut R, strength: f32| {
            rng.random_range((1.0 - strength).max(0.0)..=1.0 + strength)
        };
        if self.brightness > 0.0 {
            jitters.push(Jitter::Brightness(factor(rng, self.brightness)));
        }
        if self.contrast > 0.0 {
            jitters.push(Jitter::Contrast(factor(rng, self.contrast)));
        }
        if self.saturation > 0.0 && channels == 3 {
            jitters.push(Jitter::Saturation(factor(rng, self.saturation)));
        }
        jitters.shuffle(rng);
        for jitter in jitters {
            apply_jitter(jitter, image, channels, h * w, scratch);
        }
    }
}

/// `ratio · a + (1 − ratio) · b`, clipped to the pixel range (torchvision's `_blend`).
#[inline]
fn blend(ratio: f32, a: f32, b: f32) -> f32 {
    (ratio * a + (1.0 - ratio) * b).clamp(0.0, 255.0)
}

/// Grey level of every pixel into `grey` (ITU-R 601 luma for RGB, the value itself otherwise).
fn grey_levels(image: &[f32], channels: usize, plane: usize, grey: &mut Vec<f32>) {
    grey.clear();
    if channels == 3 {
        let (r, rest) = image.split_at(plane);
        let (g, b) = rest.split_at(plane);
        grey.extend(
            r.iter()
                .zip(g)
                .zip(b)
                .map(|((r, g), b)| 0.299 * r + 0.587 * g + 0.114 * b),
        );
    } else {
        grey.extend_from_slice(&image[..plane]);
    }
}

fn apply_jitter(
    jitter: Jitter,
    image: &mut [f32],
    channels: usize,
    plane: usize,
    grey: &mut Vec<f32>,
) {
    match jitter {
        Jitter::Brightness(f) => image.iter_mut().for_each(|v| *v = blend(f, *v, 0.0)),
        Jitter::Contrast(f) => {
            grey_levels(image, channels, plane, grey);
            let mean = grey.iter().sum::<f32>() / plane as f32;
            image.iter_mut().for_each(|v| *v = blend(f, *v, mean));
        }
        Jitter::Saturation(f) => {
            grey_levels(image, channels, plane, grey);
            for channel in image.chunks_exact_mut(plane) {
                for (v, g) in channel.iter_mut().zip(grey.iter()) {
                    *v = blend(f, *v, *g);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::episode_rng;

    fn ramp(channels: usize, h: usize, w: usize) -> Vec<f32> {
        (0..channels * h * w).map(|i| (i % 251) as f32).collect()
    }

    #[test]
    fn none_leaves_the_image_unchanged_and_draws_nothing() {
        let mut image = ramp(3, 5, 4);
        let before = image.clone();
        let mut rng = episode_rng(1, 0, 0);
        let mut twin = rng.clone();
        ImageAugment::NONE.apply(&mut rng, &mut image, [3, 5, 4], &mut Vec::new());
        assert_eq!(image, before);
        assert_eq!(rng.random::<u64>(), twin.random::<u64>());
    }

    #[test]
    fn crop_and_flip_equal_an_explicitly_padded_crop() {
        let (h, w, p) = (5, 6, 2);
        let original = ramp(2, h, w);
        let augment = ImageAugment {
            crop_padding: p,
            flip: true,
            ..ImageAugment::NONE
        };
        let (mut shifted, mut flipped) = (0, 0);
        for i in 0..40 {
            let mut rng = episode_rng(3, 0, i);
            // The draws, in the order the augmentation makes them.
            let mut twin = rng.clone();
            let (dy, dx) = (twin.random_range(0..=2 * p), twin.random_range(0..=2 * p));
            let flip = twin.random_bool(0.5);
            let mut image = original.clone();
            augment.apply(&mut rng, &mut image, [2, h, w], &mut Vec::new());
            let (ph, pw) = (h + 2 * p, w + 2 * p);
            for c in 0..2 {
                let mut padded = vec![0.0; ph * pw];
                for y in 0..h {
                    for x in 0..w {
                        padded[(y + p) * pw + x + p] = original[(c * h + y) * w + x];
                    }
                }
                for y in 0..h {
                    for x in 0..w {
                        let cx = if flip { w - 1 - x } else { x };
                        let want = padded[(y + dy) * pw + cx + dx];
                        assert_eq!(
                            image[(c * h + y) * w + x],
                            want,
                            "episode {i} ({c},{y},{x})"
                        );
                    }
                }
            }
            shifted += usize::from((dy, dx) != (p, p));
            flipped += usize::from(flip);
        }
        assert!(
            shifted > 20 && (10..30).contains(&flipped),
            "{shifted} {flipped}"
        );
    }

    #[test]
    fn colour_jitter_stays_in_range_and_matches_torchvision_formulas() {
        let shape = [3, 4, 4];
        let plane = 16;
        let image: Vec<f32> = (0..48).map(|i| (i * 5) as f32).collect();
        // Brightness alone: every pixel scaled by one factor in [0.6, 1.4], clipped at 255.
        let brightness = ImageAugment {
            brightness: 0.4,
            ..ImageAugment::NONE
        };
        let mut out = image.clone();
        brightness.apply(&mut episode_rng(5, 0, 0), &mut out, shape, &mut Vec::new());
        let f = out[1] / image[1];
        assert!((0.6..=1.4).contains(&f), "factor {f}");
        for (o, i) in out.iter().zip(&image) {
            assert!((o - (i * f).min(255.0)).abs() < 1e-3, "{o} vs {i}·{f}");
        }
        // Saturation 1 → factor in [0, 2]; blend with the pixel's luma.
        let saturation = ImageAugment {
            saturation: 1.0,
            ..ImageAugment::NONE
        };
        let mut out = image.clone();
        saturation.apply(&mut episode_rng(6, 0, 0), &mut out, shape, &mut Vec::new());
        let luma = |img: &[f32], p: usize| {
            0.299 * img[p] + 0.587 * img[plane + p] + 0.114 * img[2 * plane + p]
        };
        let g0 = luma(&image, 0);
        let s = (out[0] - g0) / (image[0] - g0);
        for p in 0..plane {
            let g = luma(&image, p);
            for c in 0..3 {
                let want = (s * image[c * plane + p] + (1.0 - s) * g).clamp(0.0, 255.0);
                assert!((out[c * plane + p] - want).abs() < 1e-2);
            }
        }
        // Everything at once stays in the pixel range.
        let mut out = image.clone();
        ImageAugment::STANDARD.check([3, 84, 84]).unwrap();
        let all = ImageAugment {
            crop_padding: 1,
            ..ImageAugment::STANDARD
        };
        all.apply(&mut episode_rng(7, 0, 0), &mut out, shape, &mut Vec::new());
        assert!(out.iter().all(|v| (0.0..=255.0).contains(v)));
        assert_ne!(out, image);
    }

    #[test]
    fn check_refuses_out_of_range_settings_naming_them() {
        let bad = [
            (
                ImageAugment {
                    crop_padding: 28,
                    ..ImageAugment::NONE
                },
                "crop_padding",
            ),
            (
                ImageAugment {
                    contrast: -0.1,
                    ..ImageAugment::NONE
                },
                "contrast",
            ),
            (
                ImageAugment {
                    brightness: f32::NAN,
                    ..ImageAugment::NONE
                },
                "brightness",
            ),
        ];
        for (augment, name) in bad {
            let err = augment.check([1, 28, 28]).unwrap_err().to_string();
            assert!(err.contains(name), "{err}");
        }
    }
}
