//! [`EpisodeSampler`]: deterministic N-way K-shot Q-query episodes from an [`ImageStore`].

use std::sync::Arc;

use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::augment::ImageAugment;
use crate::episode::{Episode, EpisodeSource};
use crate::error::{DataError, Result};
use crate::spec::{CheckedSpec, EpisodeSpec};
use crate::split::{Augmentation, ClassRef, ClassSplit};
use crate::store::ImageStore;

/// Samples episodes of one split. Episode `i` is a pure function of `(seed, split, i)`: each episode
/// draws from its own ChaCha8 generator seeded with those three numbers, so the result does not
/// depend on thread count, call order or backend.
///
/// `Episode::classes[label]` is an index into [`EpisodeSampler::classes`] (a data set class plus a
/// fixed rotation), so it is unique within an episode even when rotations are classes.
#[derive(Debug, Clone)]
pub struct EpisodeSampler {
    store: Arc<ImageStore>,
    split: ClassSplit,
    spec: CheckedSpec,
    seed: u64,
    affine: Vec<(f32, f32)>,
    image_augment: ImageAugment,
}

/// The RNG of episode `index` of split `split_id` under `seed`.
pub fn episode_rng(seed: u64, split_id: u64, index: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&split_id.to_le_bytes());
    key[16..24].copy_from_slice(&index.to_le_bytes());
    key[24..].copy_from_slice(b"episode\0");
    ChaCha8Rng::from_seed(key)
}

/// `k` distinct values from `0..n` in uniformly random order (requires `k <= n`).
pub(crate) fn sample_distinct(rng: &mut ChaCha8Rng, n: usize, k: usize, out: &mut Vec<usize>) {
    out.clear();
    if k <= 32 {
        // Floyd's algorithm, then a shuffle for a uniform order.
        for j in n - k..n {
            let t = rng.random_range(0..=j);
            if out.contains(&t) {
                out.push(j);
            } else {
                out.push(t);
            }
        }
        out.shuffle(rng);
    } else {
        out.extend(0..n);
        for i in 0..k {
            let j = rng.random_range(i..n);
            out.swap(i, j);
        }
        out.truncate(k);
    }
}

impl EpisodeSampler {
    /// A sampler over `split` of `store`, validating `spec` against it.
    ///
    /// Fails when the spec does not fit the split (see [`EpisodeSpec::check`]) or when rotations
    /// are asked for on non-square images.
    pub fn new(
        store: Arc<ImageStore>,
        split: ClassSplit,
        spec: EpisodeSpec,
        seed: u64,
    ) -> Result<Self> {
        let spec = spec.check(&store, &split)?;
        let sampler = EpisodeSampler {
            affine: store.pixel_scale().affine(store.image_shape()[0]),
            store,
            split,
            spec,
            seed,
            image_augment: ImageAugment::NONE,
        };
        sampler.check_rotations()?;
        Ok(sampler)
    }

    fn check_rotations(&self) -> Result<()> {
        let [_, h, w] = self.store.image_shape();
        let rotates = self.split.augmentation == Augmentation::Rotate90
            || self.split.classes.iter().any(|c| c.rotation != 0);
        if rotates && h != w {
            return Err(DataError::InvalidParameter {
                name: "augmentation",
                value: format!("90° rotations on {h}×{w} images"),
                hint: "rotations need square images; use Augmentation::None".into(),
            });
        }
        Ok(())
    }

    /// Replaces the split's per-task augmentation.
    pub fn with_augmentation(mut self, augmentation: Augmentation) -> Result<Self> {
        self.split.augmentation = augmentation;
        self.check_rotations()?;
        Ok(self)
    }

    /// Augments every image of every episode with `augment` (meant for training samplers; the
    /// draws come from each episode's own generator). Fails when the settings do not fit the
    /// images (see [`ImageAugment::check`]).
    pub fn with_image_augment(mut self, augment: ImageAugment) -> Result<Self> {
        augment.check(self.store.image_shape())?;
        self.image_augment = augment;
        Ok(self)
    }

    /// The per-image augmentation (none unless [`with_image_augment`](Self::with_image_augment)).
    pub fn image_augment(&self) -> ImageAugment {
        self.image_augment
    }

    /// A sampler with the same data and split but another shape (e.g. more queries for testing).
    pub fn with_spec(&self, spec: EpisodeSpec) -> Result<Self> {
        Ok(EpisodeSampler {
            spec: spec.check(&self.store, &self.split)?,
            ..self.clone()
        })
    }

    /// A sampler with the same data, split and shape but another seed.
    pub fn with_seed(&self, seed: u64) -> Self {
        EpisodeSampler {
            seed,
            ..self.clone()
        }
    }

    /// The validated episode shape.
    pub fn spec(&self) -> CheckedSpec {
        self.spec
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The split's classes; `Episode::classes` indexes this.
    pub fn classes(&self) -> &[ClassRef] {
        &self.split.classes
    }

    /// The class split (classes, split id, augmentation).
    pub fn class_split(&self) -> &ClassSplit {
        &self.split
    }

    /// The underlying images.
    pub fn store(&self) -> &Arc<ImageStore> {
        &self.store
    }

    /// A readable name of split class `i`: the data set class name, with `/rotDDD` if rotated.
    /// Panics if `i >= classes().len()`.
    pub fn class_name(&self, i: usize) -> String {
        let c = self.split.classes[i];
        let name = self.store.class_name(c.class);
        if c.rotation == 0 {
            name.to_string()
        } else {
            format!("{name}/rot{:03}", u32::from(c.rotation) * 90)
        }
    }

    /// An empty episode with buffers of the right size, for [`EpisodeSampler::fill`].
    pub fn empty_episode(&self) -> Episode {
        let (n, k, q) = (self.spec.ways(), self.spec.shots(), self.spec.queries());
        let len = self.store.image_len();
        Episode {
            ways: n,
            shots: k,
            queries: q,
            image_shape: self.store.image_shape(),
            support_images: vec![0.0; n * k * len],
            support_labels: (0..n)
                .flat_map(|l| std::iter::repeat_n(l as i64, k))
                .collect(),
            query_images: vec![0.0; n * q * len],
            query_labels: (0..n)
                .flat_map(|l| std::iter::repeat_n(l as i64, q))
                .collect(),
            classes: vec![0; n],
            value_dim: 0,
            support_values: Vec::new(),
            query_values: Vec::new(),
        }
    }

    /// Writes episode `index` into `episode` (which must come from [`EpisodeSampler::empty_episode`]
    /// of this sampler), reusing its buffers.
    pub fn fill(&self, index: u64, episode: &mut Episode) {
        let (n, k, q) = (self.spec.ways(), self.spec.shots(), self.spec.queries());
        let len = self.store.image_len();
        let [channels, h, w] = self.store.image_shape();
        let plane = h * w;
        debug_assert_eq!(episode.support_images.len(), n * k * len);
        let mut rng = episode_rng(self.seed, self.split.split.id(), index);
        let mut chosen = Vec::with_capacity(n);
        sample_distinct(&mut rng, self.split.classes.len(), n, &mut chosen);
        let mut picks = Vec::with_capacity(k + q);
        let mut scratch = Vec::new();
        let mut augment_scratch = Vec::new();
        let augment = self.image_augment.is_active();
        for (label, &split_class) in chosen.iter().enumerate() {
            episode.classes[label] = split_class;
            let ClassRef { class, rotation } = self.split.classes[split_class];
            let extra = match self.split.augmentation {
                Augmentation::None => 0,
                Augmentation::Rotate90 => rng.random_range(0..4u8),
            };
            let turns = (rotation + extra) % 4;
            sample_distinct(&mut rng, self.store.class_len(class), k + q, &mut picks);
            for (j, &image) in picks.iter().enumerate() {
                let dst = if j < k {
                    let at = (label * k + j) * len;
                    &mut episode.support_images[at..at + len]
                } else {
                    let at = (label * q + j - k) * len;
                    &mut episode.query_images[at..at + len]
                };
                let src = self.store.image(class, image);
                for c in 0..channels {
                    let range = c * plane..(c + 1) * plane;
                    // Augmentation works in pixel units; the affine map follows it.
                    let affine = if augment { (1.0, 0.0) } else { self.affine[c] };
                    convert_plane(
                        &src[range.clone()],
                        &mut dst[range],
                        affine,
                        w,
                        turns,
                        &mut scratch,
                    );
                }
                if augment {
                    self.image_augment
                        .apply(&mut rng, dst, [channels, h, w], &mut augment_scratch);
                    for (channel, &(scale, offset)) in dst.chunks_exact_mut(plane).zip(&self.affine)
                    {
                        channel.iter_mut().for_each(|v| *v = *v * scale + offset);
                    }
                }
            }
        }
    }
}

/// Copies one `[H, W]` plane as `v * scale + offset`, rotated by `turns` quarter turns
/// counter-clockwise (square planes when `turns` is odd). Odd turns first rotate the `u8` plane
/// into `scratch` (bytes, in L1), so every `f32` pass is a contiguous loop that vectorises.
#[inline]
fn convert_plane(
    src: &[u8],
    dst: &mut [f32],
    (scale, offset): (f32, f32),
    w: usize,
    turns: u8,
    scratch: &mut Vec<u8>,
) {
    let convert = |dst: &mut [f32], src: &[u8]| {
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = f32::from(s) * scale + offset;
        }
    };
    match turns {
        0 => convert(dst, src),
        2 => {
            for (d, &s) in dst.iter_mut().zip(src.iter().rev()) {
                *d = f32::from(s) * scale + offset;
            }
        }
        _ => {
            scratch.clear();
            scratch.resize(src.len(), 0);
            for (r, row) in src.chunks_exact(w).enumerate() {
                for (c, &v) in row.iter().enumerate() {
                    // 90° counter-clockwise: in[r][c] -> out[w-1-c][r];
                    // 270°: in[r][c] -> out[c][h-1-r].
                    let at = if turns == 1 {
                        (w - 1 - c) * w + r
                    } else {
                        c * w + (w - 1 - r)
                    };
                    scratch[at] = v;
                }
            }
            convert(dst, scratch);
        }
    }
}

impl EpisodeSource for EpisodeSampler {
    fn episode(&self, index: u64) -> Episode {
        let mut episode = self.empty_episode();
        self.fill(index, &mut episode);
        episode
    }

    fn shape(&self) -> (usize, usize, usize) {
        (self.spec.ways(), self.spec.shots(), self.spec.queries())
    }

    fn image_shape(&self) -> [usize; 3] {
        self.store.image_shape()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_distinct_gives_k_distinct_values_in_range_and_uniform_first_pick() {
        let mut rng = episode_rng(1, 0, 0);
        let mut out = Vec::new();
        let mut first = [0usize; 10];
        for (n, k) in [(10, 10), (10, 3), (100, 40), (5000, 20)] {
            for _ in 0..200 {
                sample_distinct(&mut rng, n, k, &mut out);
                assert_eq!(out.len(), k);
                assert!(out.iter().all(|&v| v < n));
                let mut sorted = out.clone();
                sorted.sort_unstable();
                sorted.dedup();
                assert_eq!(sorted.len(), k);
            }
        }
        for _ in 0..5000 {
            sample_distinct(&mut rng, 10, 3, &mut out);
            first[out[0]] += 1;
        }
        // Every value leads about 500 times in 5000 draws.
        assert!(first.iter().all(|&c| (380..620).contains(&c)), "{first:?}");
    }

    #[test]
    fn episode_rngs_differ_by_seed_split_and_index() {
        use rand::Rng;
        let draw = |s, p, i| episode_rng(s, p, i).next_u64();
        assert_eq!(draw(1, 0, 5), draw(1, 0, 5));
        assert_ne!(draw(1, 0, 5), draw(2, 0, 5));
        assert_ne!(draw(1, 0, 5), draw(1, 1, 5));
        assert_ne!(draw(1, 0, 5), draw(1, 0, 6));
    }

    #[test]
    fn convert_plane_rotates_counter_clockwise() {
        // 2×2 [[a, b], [c, d]] turned 90° counter-clockwise is [[b, d], [a, c]].
        let src = [1u8, 2, 3, 4];
        let mut dst = [0f32; 4];
        let mut scratch = Vec::new();
        for (turns, expected) in [
            (0, [1.0, 2.0, 3.0, 4.0]),
            (1, [2.0, 4.0, 1.0, 3.0]),
            (2, [4.0, 3.0, 2.0, 1.0]),
            (3, [3.0, 1.0, 4.0, 2.0]),
        ] {
            convert_plane(&src, &mut dst, (1.0, 0.0), 2, turns, &mut scratch);
            assert_eq!(dst, expected, "turns = {turns}");
        }
    }
}
