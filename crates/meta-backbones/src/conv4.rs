//! Conv4: the four-block convolutional backbone of MAML, ProtoNets and most few-shot papers.

use burn::module::Module;
use burn::tensor::{Tensor, backend::Backend};
use serde::{Deserialize, Serialize};

use crate::backbone::Backbone;
use crate::block::ConvBlock;
use crate::bn::BnConfig;
use crate::error::{BackboneError, positive};
use crate::linear::Linear;
use crate::params::force_init;
use crate::pool::{flatten, global_mean_pool};

/// How Conv4 reduces resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Conv4Variant {
    /// conv3×3 (stride 1, padding 1) → BN → ReLU → 2×2 max-pool; features are the flattened
    /// final map (Finn et al.'s Mini-ImageNet net, Vinyals et al., Snell et al.).
    #[default]
    MaxPool,
    /// conv3×3 with stride 2 and padding 1 → BN → ReLU, no pooling; features are the spatial
    /// mean of the final map (Finn et al.'s Omniglot net, learn2learn's `OmniglotCNN`).
    Strided,
}

/// Configuration of [`Conv4`]. Defaults: Omniglot 5-way (1 channel, 64 filters, 28×28,
/// max-pool). Use `hidden: 32`, `in_channels: 3`, `image_size: 84` for Mini-ImageNet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Conv4Config {
    /// Input channels (1 Omniglot, 3 Mini-ImageNet).
    pub in_channels: usize,
    /// Filters per block (64 Omniglot, 32 Mini-ImageNet in MAML).
    pub hidden: usize,
    /// Max-pool or strided.
    pub variant: Conv4Variant,
    /// Side length of the (square) input images; sizes the head of the max-pool variant.
    pub image_size: usize,
    /// Logits of the head (the N of N-way).
    pub num_classes: usize,
    /// Batch-norm settings.
    pub bn: BnConfig,
}

impl Default for Conv4Config {
    fn default() -> Self {
        Self {
            in_channels: 1,
            hidden: 64,
            variant: Conv4Variant::MaxPool,
            image_size: 28,
            num_classes: 5,
            bn: BnConfig::default(),
        }
    }
}

impl Conv4Config {
    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), BackboneError> {
        positive("conv4", "in_channels", self.in_channels)?;
        positive("conv4", "hidden", self.hidden)?;
        positive("conv4", "num_classes", self.num_classes)?;
        if self.variant == Conv4Variant::MaxPool && self.image_size < 16 {
            return Err(BackboneError::ImageTooSmall {
                backbone: "conv4",
                image_size: self.image_size,
                min: 16,
            });
        }
        positive("conv4", "image_size", self.image_size)
    }

    /// Side length of the final feature map.
    fn final_size(&self) -> usize {
        (0..4).fold(self.image_size, |s, _| match self.variant {
            Conv4Variant::MaxPool => s / 2,
            Conv4Variant::Strided => s.div_ceil(2),
        })
    }

    /// Builds the network (every parameter initialised now, from the backend's RNG).
    pub fn try_init<B: Backend>(&self, device: &B::Device) -> Result<Conv4<B>, BackboneError> {
        self.validate()?;
        let (stride, pool) = match self.variant {
            Conv4Variant::MaxPool => (1, true),
            Conv4Variant::Strided => (2, false),
        };
        let blocks = (0..4)
            .map(|i| {
                let c_in = if i == 0 {
                    self.in_channels
                } else {
                    self.hidden
                };
                ConvBlock::new(c_in, self.hidden, stride, pool, &self.bn, device)
            })
            .collect();
        let feature_dim = match self.variant {
            Conv4Variant::MaxPool => self.hidden * self.final_size().pow(2),
            Conv4Variant::Strided => self.hidden,
        };
        let model = Conv4 {
            blocks,
            head: Linear::new(feature_dim, self.num_classes, device),
            variant: self.variant,
            feature_dim,
        };
        force_init(&model);
        Ok(model)
    }

    /// Builds the network.
    ///
    /// # Panics
    /// If [`validate`](Self::validate) fails; use [`try_init`](Self::try_init) for a `Result`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Conv4<B> {
        self.try_init(device).unwrap_or_else(|e| panic!("{e}"))
    }
}

/// Four conv blocks and a linear head; see [`Conv4Config`].
///
/// ```
/// use burn::backend::{Autodiff, Flex};
/// use burn::tensor::Tensor;
/// use meta_backbones::{Backbone, Conv4Config};
///
/// type B = Autodiff<Flex>;
/// let device = Default::default();
/// let model = Conv4Config { hidden: 8, ..Default::default() }.init::<B>(&device);
/// let logits = model.forward(Tensor::zeros([2, 1, 28, 28], &device));
/// assert_eq!(logits.dims(), [2, 5]);
/// ```
#[derive(Module, Debug)]
pub struct Conv4<B: Backend> {
    /// The four conv blocks.
    pub blocks: Vec<ConvBlock<B>>,
    /// Linear classifier.
    pub head: Linear<B>,
    #[module(skip)]
    variant: Conv4Variant,
    #[module(skip)]
    feature_dim: usize,
}

impl<B: Backend> Backbone<B> for Conv4<B> {
    fn embed(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        let x = self.blocks.iter().fold(x, |x, block| block.forward(x));
        match self.variant {
            Conv4Variant::MaxPool => flatten(x),
            Conv4Variant::Strided => global_mean_pool(x),
        }
    }
    fn head(&self, features: Tensor<B, 2>) -> Tensor<B, 2> {
        self.head.forward(features)
    }
    fn feature_dim(&self) -> usize {
        self.feature_dim
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
