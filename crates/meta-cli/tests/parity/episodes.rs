//! The episodes of the parity tests: host data from a fixed pseudo-random stream, identical on
//! every backend by construction.

use burn::tensor::backend::AutodiffBackend;
use meta_data::{Episode, Task};

use super::{IMAGE, META_BATCH, QUERIES, SHOTS, WAYS};

/// A deterministic pseudo-random stream (SplitMix64): the episodes are host data, identical for
/// every backend by construction.
struct SplitMix(u64);

impl SplitMix {
    fn next_f32(&mut self) -> f32 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// Episode `index`: smooth class-dependent blobs plus noise, so that the models have a signal
/// to fit and gradients are not dominated by noise.
fn episode(index: u64) -> Episode {
    let mut rng = SplitMix(0x5eed ^ index.wrapping_mul(0x1000_0000_01b3));
    let [c, h, w] = IMAGE;
    let mut images = |per_class: usize| {
        let mut pixels = Vec::with_capacity(WAYS * per_class * c * h * w);
        for class in 0..WAYS {
            let (cy, cx) = (4.0 + 4.0 * class as f32, 24.0 - 4.0 * class as f32);
            for _ in 0..per_class * c {
                for y in 0..h {
                    for x in 0..w {
                        let d2 = (y as f32 - cy).powi(2) + (x as f32 - cx).powi(2);
                        pixels.push((-d2 / 18.0).exp() + 0.3 * rng.next_f32());
                    }
                }
            }
        }
        pixels
    };
    let labels = |per_class: usize| {
        (0..WAYS as i64)
            .flat_map(|l| std::iter::repeat_n(l, per_class))
            .collect()
    };
    Episode {
        ways: WAYS,
        shots: SHOTS,
        queries: QUERIES,
        image_shape: IMAGE,
        support_images: images(SHOTS),
        support_labels: labels(SHOTS),
        query_images: images(QUERIES),
        query_labels: labels(QUERIES),
        classes: (0..WAYS).collect(),
        value_dim: 0,
        support_values: Vec::new(),
        query_values: Vec::new(),
    }
}

/// The tasks of meta-iteration `it` on `device`.
pub fn tasks<B: AutodiffBackend>(it: usize, device: &B::Device) -> Vec<Task<B>> {
    (0..META_BATCH)
        .map(|t| episode((it * META_BATCH + t) as u64).to_task(device))
        .collect()
}
