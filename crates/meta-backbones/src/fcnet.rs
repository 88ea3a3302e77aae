//! FcNet: a fully connected backbone for vector data (fewshotbench's `FCNet`).

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Tensor, backend::Backend};
use serde::{Deserialize, Serialize};

use crate::backbone::Backbone;
use crate::bn::{BatchNorm, BnConfig};
use crate::error::{BackboneError, positive};
use crate::linear::Linear;
use crate::params::force_init;
use crate::pool::flatten;

/// Configuration of [`FcNet`]. Defaults follow fewshotbench's `FCNet`: two hidden layers of
/// 64 units, dropout 0.2.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FcNetConfig {
    /// Input width; inputs `[N, C, H, W]` are flattened and must have `C·H·W == x_dim`.
    pub x_dim: usize,
    /// Widths of the hidden blocks.
    pub layer_dims: Vec<usize>,
    /// Dropout probability after each block (only while the backend records gradients).
    pub dropout: f64,
    /// Logits of the head.
    pub num_classes: usize,
    /// Batch-norm after each hidden linear layer (fewshotbench's `FCNet`); `false` gives
    /// plain Linear → ReLU blocks (MAML's sine-regression network).
    pub batch_norm: bool,
    /// Batch-norm settings (used when `batch_norm`).
    pub bn: BnConfig,
}

impl Default for FcNetConfig {
    fn default() -> Self {
        Self {
            x_dim: 784,
            layer_dims: vec![64, 64],
            dropout: 0.2,
            num_classes: 5,
            batch_norm: true,
            bn: BnConfig::default(),
        }
    }
}

impl FcNetConfig {
    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), BackboneError> {
        positive("fcnet", "x_dim", self.x_dim)?;
        positive("fcnet", "num_classes", self.num_classes)?;
        for &d in &self.layer_dims {
            positive("fcnet", "layer_dims", d)?;
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(BackboneError::Dropout {
                backbone: "fcnet",
                value: self.dropout,
            });
        }
        Ok(())
    }

    /// Builds the network (every parameter initialised now, from the backend's RNG).
    pub fn try_init<B: Backend>(&self, device: &B::Device) -> Result<FcNet<B>, BackboneError> {
        self.validate()?;
        let mut blocks = Vec::new();
        let mut d_in = self.x_dim;
        for &d in &self.layer_dims {
            blocks.push(FcBlock {
                linear: Linear::new(d_in, d, device),
                bn: self.batch_norm.then(|| self.bn.init(d, device)),
                dropout: DropoutConfig::new(self.dropout).init(),
            });
            d_in = d;
        }
        let model = FcNet {
            blocks,
            head: Linear::new(d_in, self.num_classes, device),
            feature_dim: d_in,
        };
        force_init(&model);
        Ok(model)
    }

    /// Builds the network.
    ///
    /// # Panics
    /// If [`validate`](Self::validate) fails; use [`try_init`](Self::try_init) for a `Result`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> FcNet<B> {
        self.try_init(device).unwrap_or_else(|e| panic!("{e}"))
    }
}

/// Linear → BatchNorm1d (optional) → ReLU → Dropout.
#[derive(Module, Debug)]
pub struct FcBlock<B: Backend> {
    /// The linear layer.
    pub linear: Linear<B>,
    /// Its batch-norm, if the network has them.
    pub bn: Option<BatchNorm<B>>,
    /// Dropout after the block (its masks come from [`rng`](crate::rng)).
    pub dropout: Dropout,
}

/// Fully connected blocks and a linear head; see [`FcNetConfig`].
///
/// ```
/// use burn::backend::{Autodiff, Flex};
/// use burn::tensor::Tensor;
/// use meta_backbones::{Backbone, FcNetConfig};
///
/// type B = Autodiff<Flex>;
/// let device = Default::default();
/// let model = FcNetConfig { x_dim: 12, ..Default::default() }.init::<B>(&device);
/// let logits = model.forward(Tensor::zeros([4, 3, 2, 2], &device));
/// assert_eq!(logits.dims(), [4, 5]);
/// ```
#[derive(Module, Debug)]
pub struct FcNet<B: Backend> {
    /// Hidden blocks.
    pub blocks: Vec<FcBlock<B>>,
    /// Linear classifier.
    pub head: Linear<B>,
    #[module(skip)]
    feature_dim: usize,
}

impl<B: Backend> Backbone<B> for FcNet<B> {
    fn embed(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        self.blocks.iter().fold(flatten(x), |x, b| {
            let h = b.linear.forward(x);
            let h = match &b.bn {
                Some(bn) => bn.forward2(h),
                None => h,
            };
            crate::rng::dropout(relu(h), b.dropout.prob)
        })
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
        for b in &mut copy.blocks {
            b.bn = b.bn.as_ref().map(|bn| bn.fast_copy(step));
        }
        copy
    }
}
