//! The embedding network of Meta Networks (Munkhdalai & Yu 2017): four conv blocks with
//! batch-norm giving a 64-d embedding.

use burn::module::Module;
use burn::tensor::{Tensor, backend::Backend};
use serde::{Deserialize, Serialize};

use crate::backbone::Backbone;
use crate::block::ConvBlock;
use crate::bn::BnConfig;
use crate::error::{BackboneError, positive};
use crate::linear::Linear;
use crate::params::force_init;
use crate::pool::global_mean_pool;

/// Configuration of [`MetaNetEmbedding`]. Defaults: Omniglot (1 channel), 64 filters, so a
/// 64-d embedding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MetaNetEmbeddingConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Filters per block = embedding width (64 in the paper).
    pub hidden: usize,
    /// Logits of the head.
    pub num_classes: usize,
    /// Batch-norm settings.
    pub bn: BnConfig,
}

impl Default for MetaNetEmbeddingConfig {
    fn default() -> Self {
        Self {
            in_channels: 1,
            hidden: 64,
            num_classes: 5,
            bn: BnConfig::default(),
        }
    }
}

impl MetaNetEmbeddingConfig {
    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), BackboneError> {
        positive("metanet", "in_channels", self.in_channels)?;
        positive("metanet", "hidden", self.hidden)?;
        positive("metanet", "num_classes", self.num_classes)
    }

    /// Builds the network (every parameter initialised now, from the backend's RNG).
    pub fn try_init<B: Backend>(
        &self,
        device: &B::Device,
    ) -> Result<MetaNetEmbedding<B>, BackboneError> {
        self.validate()?;
        let blocks = (0..4)
            .map(|i| {
                let c_in = if i == 0 {
                    self.in_channels
                } else {
                    self.hidden
                };
                ConvBlock::new(c_in, self.hidden, 1, true, &self.bn, device)
            })
            .collect();
        let model = MetaNetEmbedding {
            blocks,
            head: Linear::new(self.hidden, self.num_classes, device),
        };
        force_init(&model);
        Ok(model)
    }

    /// Builds the network.
    ///
    /// # Panics
    /// If [`validate`](Self::validate) fails; use [`try_init`](Self::try_init) for a `Result`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> MetaNetEmbedding<B> {
        self.try_init(device).unwrap_or_else(|e| panic!("{e}"))
    }
}

/// Four conv3×3 → BN → ReLU → 2×2 max-pool blocks, then the spatial mean: a `hidden`-d
/// embedding (for 28×28 Omniglot the final map is 1×1, so this is the paper's flattened
/// 64-d output). The head is a linear layer `hidden → num_classes`, the base learner's
/// classifier; Meta Networks' fast-weight machinery belongs to the algorithm, which uses
/// [`Backbone::embed`].
///
/// ```
/// use burn::backend::{Autodiff, Flex};
/// use burn::tensor::Tensor;
/// use meta_backbones::{Backbone, MetaNetEmbeddingConfig};
///
/// type B = Autodiff<Flex>;
/// let device = Default::default();
/// let model = MetaNetEmbeddingConfig::default().init::<B>(&device);
/// let features = model.embed(Tensor::zeros([2, 1, 28, 28], &device));
/// assert_eq!(features.dims(), [2, 64]);
/// ```
#[derive(Module, Debug)]
pub struct MetaNetEmbedding<B: Backend> {
    /// The four conv blocks.
    pub blocks: Vec<ConvBlock<B>>,
    /// Linear classifier.
    pub head: Linear<B>,
}

impl<B: Backend> Backbone<B> for MetaNetEmbedding<B> {
    fn embed(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        global_mean_pool(self.blocks.iter().fold(x, |x, b| b.forward(x)))
    }
    fn head(&self, features: Tensor<B, 2>) -> Tensor<B, 2> {
        self.head.forward(features)
    }
    fn feature_dim(&self) -> usize {
        self.head.weight.val().dims()[0]
    }
    fn num_classes(&self) -> usize {
        self.head.d_out()
    }
    fn fast_copy(&self, step: usize) -> Self {
        let mut copy = self.clone();
        copy.blocks = self.blocks.iter().map(|b| b.fast_copy(step)).collect();
        copy
    }
}
