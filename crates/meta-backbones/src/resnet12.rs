//! ResNet-12 (Oreshkin et al. 2018; Lee et al. 2019): four residual stages, each three
//! conv3×3 + BN with a 1×1 shortcut, then a 2×2 max-pool.

use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Tensor, backend::Backend};
use serde::{Deserialize, Serialize};

use crate::backbone::Backbone;
use crate::bn::{BatchNorm, BnConfig};
use crate::conv::forward_module;
use crate::error::{BackboneError, positive};
use crate::linear::Linear;
use crate::params::force_init;
use crate::pool::{global_mean_pool, max_pool2x2};

/// Slope of the leaky ReLU (0.1, as in MetaOptNet's ResNet-12).
const LEAK: f64 = 0.1;

/// Configuration of [`ResNet12`]. Defaults: widths 64-160-320-640 (MetaOptNet), RGB input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ResNet12Config {
    /// Input channels.
    pub in_channels: usize,
    /// Output width of each of the four stages.
    pub widths: [usize; 4],
    /// Logits of the head.
    pub num_classes: usize,
    /// Batch-norm settings.
    pub bn: BnConfig,
}

impl Default for ResNet12Config {
    fn default() -> Self {
        Self {
            in_channels: 3,
            widths: [64, 160, 320, 640],
            num_classes: 5,
            bn: BnConfig::default(),
        }
    }
}

impl ResNet12Config {
    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), BackboneError> {
        positive("resnet12", "in_channels", self.in_channels)?;
        positive("resnet12", "num_classes", self.num_classes)?;
        for w in self.widths {
            positive("resnet12", "widths", w)?;
        }
        Ok(())
    }

    /// Builds the network (every parameter initialised now, from the backend's RNG).
    pub fn try_init<B: Backend>(&self, device: &B::Device) -> Result<ResNet12<B>, BackboneError> {
        self.validate()?;
        let mut c_in = self.in_channels;
        let mut stages = Vec::new();
        for w in self.widths {
            stages.push(ResBlock::new(c_in, w, &self.bn, device));
            c_in = w;
        }
        let model = ResNet12 {
            stages,
            head: Linear::new(c_in, self.num_classes, device),
        };
        force_init(&model);
        Ok(model)
    }

    /// Builds the network.
    ///
    /// # Panics
    /// If [`validate`](Self::validate) fails; use [`try_init`](Self::try_init) for a `Result`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> ResNet12<B> {
        self.try_init(device).unwrap_or_else(|e| panic!("{e}"))
    }
}

fn conv<B: Backend>(c_in: usize, c_out: usize, k: usize, device: &B::Device) -> Conv2d<B> {
    let p = k / 2;
    crate::rng::conv2d(
        &Conv2dConfig::new([c_in, c_out], [k, k])
            .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
            .with_bias(false),
        device,
    )
}

/// Leaky ReLU composed of two ReLUs (double-backward safe).
fn leaky<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    relu(x.clone()) - relu(x.neg()).mul_scalar(LEAK)
}

/// One residual stage.
#[derive(Module, Debug)]
pub struct ResBlock<B: Backend> {
    /// Three 3×3 convolutions.
    pub convs: Vec<Conv2d<B>>,
    /// Their batch-norms.
    pub bns: Vec<BatchNorm<B>>,
    /// 1×1 shortcut convolution.
    pub shortcut: Conv2d<B>,
    /// Shortcut batch-norm.
    pub shortcut_bn: BatchNorm<B>,
}

impl<B: Backend> ResBlock<B> {
    fn new(c_in: usize, c_out: usize, bn: &BnConfig, device: &B::Device) -> Self {
        Self {
            convs: vec![
                conv(c_in, c_out, 3, device),
                conv(c_out, c_out, 3, device),
                conv(c_out, c_out, 3, device),
            ],
            bns: (0..3).map(|_| bn.init(c_out, device)).collect(),
            shortcut: conv(c_in, c_out, 1, device),
            shortcut_bn: bn.init(c_out, device),
        }
    }

    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let residual = self
            .shortcut_bn
            .forward4(forward_module(&self.shortcut, x.clone()));
        let mut h = x;
        for (i, (conv, bn)) in self.convs.iter().zip(&self.bns).enumerate() {
            h = bn.forward4(forward_module(conv, h));
            if i < 2 {
                h = leaky(h);
            }
        }
        max_pool2x2(leaky(h + residual))
    }

    fn fast_copy(&self, step: usize) -> Self {
        let mut copy = self.clone();
        copy.bns = self.bns.iter().map(|b| b.fast_copy(step)).collect();
        copy.shortcut_bn = self.shortcut_bn.fast_copy(step);
        copy
    }
}

/// Four residual stages, spatial mean, linear head; see [`ResNet12Config`].
///
/// ```no_run
/// use burn::backend::{Autodiff, Flex};
/// use burn::tensor::Tensor;
/// use meta_backbones::{Backbone, ResNet12Config};
///
/// type B = Autodiff<Flex>;
/// let device = Default::default();
/// let model = ResNet12Config::default().init::<B>(&device);
/// let logits = model.forward(Tensor::zeros([2, 3, 84, 84], &device));
/// assert_eq!(logits.dims(), [2, 5]);
/// ```
#[derive(Module, Debug)]
pub struct ResNet12<B: Backend> {
    /// The four residual stages.
    pub stages: Vec<ResBlock<B>>,
    /// Linear classifier.
    pub head: Linear<B>,
}

impl<B: Backend> Backbone<B> for ResNet12<B> {
    fn embed(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        global_mean_pool(self.stages.iter().fold(x, |x, s| s.forward(x)))
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
        copy.stages = self.stages.iter().map(|s| s.fast_copy(step)).collect();
        copy
    }
}
