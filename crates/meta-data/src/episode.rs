//! One few-shot task on the host, and its conversion to burn tensors.

use std::sync::Arc;

use burn::tensor::{Int, Tensor, TensorData, backend::Backend};
pub use meta_backbones::Targets;

/// One few-shot task held in host memory: an N-way K-shot Q-query classification task, or a
/// regression task with K support and Q query points (`value_dim > 0`).
///
/// Inputs are `f32` in `[C, H, W]` order, concatenated; vectors of width D travel as
/// `[D, 1, 1]` (every backbone flattens them). In a classification task support inputs are
/// grouped by label (all shots of label 0, then label 1, …), and so are query inputs; labels
/// are `0..ways`.
#[derive(Debug, Clone, PartialEq)]
pub struct Episode {
    /// Number of classes in the task (N); 1 for a regression task.
    pub ways: usize,
    /// Support inputs per class (K).
    pub shots: usize,
    /// Query inputs per class (Q).
    pub queries: usize,
    /// Input shape `[C, H, W]`.
    pub image_shape: [usize; 3],
    /// `[ways * shots, C, H, W]` support inputs.
    pub support_images: Vec<f32>,
    /// `[ways * shots]` support labels in `0..ways` (empty in a regression task).
    pub support_labels: Vec<i64>,
    /// `[ways * queries, C, H, W]` query inputs.
    pub query_images: Vec<f32>,
    /// `[ways * queries]` query labels in `0..ways` (empty in a regression task).
    pub query_labels: Vec<i64>,
    /// Data set class index behind each task label: `classes[label]` (empty in a regression
    /// task).
    pub classes: Vec<usize>,
    /// Width D of the real-valued targets of a regression task; 0 in a classification task.
    pub value_dim: usize,
    /// `[shots, value_dim]` support targets of a regression task (empty otherwise).
    pub support_values: Vec<f32>,
    /// `[queries, value_dim]` query targets of a regression task (empty otherwise).
    pub query_values: Vec<f32>,
}

/// One task as tensors on a device, ready for an algorithm.
#[derive(Debug, Clone)]
pub struct Task<B: Backend> {
    /// Number of classes in the task (1 for a regression task).
    pub ways: usize,
    /// `[ways * shots, C, H, W]`.
    pub support_x: Tensor<B, 4>,
    /// `[ways * shots]` labels, or `[shots, D]` real values.
    pub support_y: Targets<B>,
    /// `[ways * queries, C, H, W]`.
    pub query_x: Tensor<B, 4>,
    /// `[ways * queries]` labels, or `[queries, D]` real values.
    pub query_y: Targets<B>,
    /// The split's class behind each task label (`classes[label]`, an index into the sampler's
    /// classes), for algorithms that classify over all training classes (the pre-training
    /// baselines); empty when the task does not come from a data set.
    pub classes: Vec<usize>,
}

impl Episode {
    /// A regression episode: `shots` support and `queries` query inputs of shape `input_shape`
    /// with real-valued targets of width `value_dim` (row-major, one row per input).
    ///
    /// # Panics
    /// If a buffer's length does not match the counts and shapes.
    pub fn regression(
        input_shape: [usize; 3],
        value_dim: usize,
        support: (Vec<f32>, Vec<f32>),
        query: (Vec<f32>, Vec<f32>),
    ) -> Self {
        let len: usize = input_shape.iter().product();
        assert!(
            len > 0 && value_dim > 0,
            "empty input shape or target width"
        );
        let (shots, queries) = (support.1.len() / value_dim, query.1.len() / value_dim);
        assert_eq!(support.0.len(), shots * len, "support inputs vs targets");
        assert_eq!(query.0.len(), queries * len, "query inputs vs targets");
        Self {
            ways: 1,
            shots,
            queries,
            image_shape: input_shape,
            support_images: support.0,
            support_labels: Vec::new(),
            query_images: query.0,
            query_labels: Vec::new(),
            classes: Vec::new(),
            value_dim,
            support_values: support.1,
            query_values: query.1,
        }
    }

    /// Whether this is a regression episode (real-valued targets).
    pub fn is_regression(&self) -> bool {
        self.value_dim > 0
    }

    /// Number of support inputs.
    pub fn support_len(&self) -> usize {
        self.support_images.len() / self.image_shape.iter().product::<usize>().max(1)
    }

    /// Number of query inputs.
    pub fn query_len(&self) -> usize {
        self.query_images.len() / self.image_shape.iter().product::<usize>().max(1)
    }

    /// Copies the episode to `device` as tensors.
    pub fn to_task<B: Backend>(&self, device: &B::Device) -> Task<B> {
        let [c, h, w] = self.image_shape;
        let images = |pixels: &[f32], n: usize| {
            Tensor::<B, 4>::from_data(TensorData::new(pixels.to_vec(), [n, c, h, w]), device)
        };
        let targets = |labels: &[i64], values: &[f32], n: usize| -> Targets<B> {
            if self.is_regression() {
                let data = TensorData::new(values.to_vec(), [n, self.value_dim]);
                Targets::Values(Tensor::from_data(data, device))
            } else {
                let data = TensorData::new(labels.to_vec(), [labels.len()]);
                Targets::Classes(Tensor::<B, 1, Int>::from_data(data, device))
            }
        };
        let (ns, nq) = (self.support_len(), self.query_len());
        Task {
            ways: self.ways,
            support_x: images(&self.support_images, ns),
            support_y: targets(&self.support_labels, &self.support_values, ns),
            query_x: images(&self.query_images, nq),
            query_y: targets(&self.query_labels, &self.query_values, nq),
            classes: self.classes.clone(),
        }
    }
}

impl<B: Backend> Task<B> {
    /// Whether this is a regression task (real-valued targets).
    pub fn is_regression(&self) -> bool {
        self.support_y.is_regression()
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
