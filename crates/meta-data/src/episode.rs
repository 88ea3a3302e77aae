//! One few-shot task on the host, and its conversion to burn tensors.

use std::sync::Arc;

use burn::tensor::{Int, Tensor, TensorData, backend::Backend};

/// One N-way K-shot Q-query task, held in host memory.
///
/// Images are `f32` in `[C, H, W]` order, concatenated; support images are grouped by label
/// (all shots of label 0, then label 1, …), and so are query images. Labels are `0..ways`.
#[derive(Debug, Clone, PartialEq)]
pub struct Episode {
    /// Number of classes in the task (N).
    pub ways: usize,
    /// Support images per class (K).
    pub shots: usize,
    /// Query images per class (Q).
    pub queries: usize,
    /// Image shape `[C, H, W]`.
    pub image_shape: [usize; 3],
    /// `[ways * shots, C, H, W]` support pixels.
    pub support_images: Vec<f32>,
    /// `[ways * shots]` support labels in `0..ways`.
    pub support_labels: Vec<i64>,
    /// `[ways * queries, C, H, W]` query pixels.
    pub query_images: Vec<f32>,
    /// `[ways * queries]` query labels in `0..ways`.
    pub query_labels: Vec<i64>,
    /// Data set class index behind each task label: `classes[label]`.
    pub classes: Vec<usize>,
}

/// One task as tensors on a device, ready for an algorithm.
#[derive(Debug, Clone)]
pub struct Task<B: Backend> {
    /// Number of classes in the task.
    pub ways: usize,
    /// `[ways * shots, C, H, W]`.
    pub support_x: Tensor<B, 4>,
    /// `[ways * shots]`.
    pub support_y: Tensor<B, 1, Int>,
    /// `[ways * queries, C, H, W]`.
    pub query_x: Tensor<B, 4>,
    /// `[ways * queries]`.
    pub query_y: Tensor<B, 1, Int>,
    /// The split's class behind each task label (`classes[label]`, an index into the sampler's
    /// classes), for algorithms that classify over all training classes (the pre-training
    /// baselines); empty when the task does not come from a data set.
    pub classes: Vec<usize>,
}

impl Episode {
    /// Copies the episode to `device` as tensors.
    pub fn to_task<B: Backend>(&self, device: &B::Device) -> Task<B> {
        let [c, h, w] = self.image_shape;
        let images = |pixels: &[f32], n: usize| {
            Tensor::<B, 4>::from_data(TensorData::new(pixels.to_vec(), [n, c, h, w]), device)
        };
        let labels = |labels: &[i64]| {
            Tensor::<B, 1, Int>::from_data(TensorData::new(labels.to_vec(), [labels.len()]), device)
        };
        Task {
            ways: self.ways,
            support_x: images(&self.support_images, self.support_labels.len()),
            support_y: labels(&self.support_labels),
            query_x: images(&self.query_images, self.query_labels.len()),
            query_y: labels(&self.query_labels),
            classes: self.classes.clone(),
        }
    }
}

/// Anything that yields episode `index` of a fixed split as a pure function of its seed and `index`.
pub trait EpisodeSource: Send + Sync {
    /// Returns episode number `index`.
    fn episode(&self, index: u64) -> Episode;
    /// The `(ways, shots, queries)` of every episode.
    fn shape(&self) -> (usize, usize, usize);
    /// Image shape `[C, H, W]`.
    fn image_shape(&self) -> [usize; 3];
}

/// An episode source that can be shared with background (prefetch) threads: any
/// [`EpisodeSource`] by value (an [`EpisodeSampler`](crate::EpisodeSampler), your own type), or
/// one already behind an `Arc`. What `meta_algos::Trainer::run` takes for its training episodes.
pub trait IntoSharedSource {
    /// The source behind an `Arc`.
    fn into_shared(self) -> Arc<dyn EpisodeSource>;
}

impl<S: EpisodeSource + 'static> IntoSharedSource for S {
    fn into_shared(self) -> Arc<dyn EpisodeSource> {
        Arc::new(self)
    }
}

impl<S: EpisodeSource + 'static> IntoSharedSource for Arc<S> {
    fn into_shared(self) -> Arc<dyn EpisodeSource> {
        self
    }
}

impl IntoSharedSource for Arc<dyn EpisodeSource> {
    fn into_shared(self) -> Arc<dyn EpisodeSource> {
        self
    }
}
