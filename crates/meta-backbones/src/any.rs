//! One backbone type chosen at run time: [`AnyBackbone`] and its configuration
//! [`BackboneConfig`].
//!
//! Algorithms are generic over their backbone type. A program that picks the backbone from a
//! command line would otherwise instantiate every algorithm once per backbone; with
//! [`AnyBackbone`] it instantiates them once. The enum is an ordinary `#[derive(Module)]`
//! module, so it is an [`AdaptableBackbone`](crate::AdaptableBackbone) like the concrete
//! backbones, and every [`Backbone`] method delegates to the wrapped network.
//!
//! # Parameter paths
//!
//! burn's derive visits an enum module by entering a module named after the active variant
//! (`"Conv4"`, `"ResNet12"`, `"FcNet"`, `"MetaNetEmbedding"`, `"MetaNetCnn"`) before visiting the wrapped
//! network's fields. [`AnyBackbone::param_role`](Backbone::param_role) strips that first path
//! element and asks the wrapped type, so head / body / state roles (ANIL, BOIL) are exactly
//! those of the concrete backbone.
//!
//! ```
//! use burn::backend::{Autodiff, Flex};
//! use burn::tensor::Tensor;
//! use meta_backbones::{Backbone, BackboneConfig, Conv4Config};
//!
//! type B = Autodiff<Flex>;
//! let device = Default::default();
//! let cfg = BackboneConfig::Conv4(Conv4Config { hidden: 8, ..Default::default() });
//! assert_eq!(cfg.name(), "conv4");
//! let model = cfg.init::<B>(&device);
//! assert_eq!(model.forward(Tensor::zeros([2, 1, 28, 28], &device)).dims(), [2, 5]);
//! ```

use burn::module::Module;
use burn::tensor::{Tensor, backend::Backend};
use serde::{Deserialize, Serialize};

use crate::backbone::{Backbone, ParamRole};
use crate::conv4::{Conv4, Conv4Config};
use crate::error::BackboneError;
use crate::fcnet::{FcNet, FcNetConfig};
use crate::metanet::{MetaNetEmbedding, MetaNetEmbeddingConfig};
use crate::metanet_cnn::{MetaNetCnn, MetaNetCnnConfig};
use crate::resnet12::{ResNet12, ResNet12Config};

/// Configuration of any backbone of this crate; builds an [`AnyBackbone`].
///
/// Serialised with a `"kind"` tag next to the wrapped configuration's fields, e.g.
/// `{"kind": "conv4", "hidden": 32, "in_channels": 3, "image_size": 84}`; omitted fields take
/// the wrapped configuration's defaults. Tags: `conv4`, `resnet12`, `fcnet`,
/// `metanet_embedding` (the same strings as [`name`](Self::name)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum BackboneConfig {
    /// [`Conv4`].
    #[serde(rename = "conv4")]
    Conv4(Conv4Config),
    /// [`ResNet12`].
    #[serde(rename = "resnet12")]
    ResNet12(ResNet12Config),
    /// [`FcNet`].
    #[serde(rename = "fcnet")]
    FcNet(FcNetConfig),
    /// [`MetaNetEmbedding`].
    #[serde(rename = "metanet_embedding")]
    MetaNetEmbedding(MetaNetEmbeddingConfig),
    /// [`MetaNetCnn`].
    #[serde(rename = "metanet_cnn")]
    MetaNetCnn(MetaNetCnnConfig),
}

impl Default for BackboneConfig {
    /// [`Conv4Config::default`].
    fn default() -> Self {
        BackboneConfig::Conv4(Conv4Config::default())
    }
}

impl BackboneConfig {
    /// The kind of backbone: `"conv4"`, `"resnet12"`, `"fcnet"` or `"metanet_embedding"`
    /// (the serde tag).
    pub fn name(&self) -> &'static str {
        match self {
            BackboneConfig::Conv4(_) => "conv4",
            BackboneConfig::ResNet12(_) => "resnet12",
            BackboneConfig::FcNet(_) => "fcnet",
            BackboneConfig::MetaNetEmbedding(_) => "metanet_embedding",
            BackboneConfig::MetaNetCnn(_) => "metanet_cnn",
        }
    }

    /// Checks the wrapped configuration.
    pub fn validate(&self) -> Result<(), BackboneError> {
        match self {
            BackboneConfig::Conv4(c) => c.validate(),
            BackboneConfig::ResNet12(c) => c.validate(),
            BackboneConfig::FcNet(c) => c.validate(),
            BackboneConfig::MetaNetEmbedding(c) => c.validate(),
            BackboneConfig::MetaNetCnn(c) => c.validate(),
        }
    }

    /// Builds the network (every parameter initialised now, from the backend's RNG), wrapped
    /// in the matching [`AnyBackbone`] variant.
    pub fn try_init<B: Backend>(
        &self,
        device: &B::Device,
    ) -> Result<AnyBackbone<B>, BackboneError> {
        Ok(match self {
            BackboneConfig::Conv4(c) => AnyBackbone::Conv4(c.try_init(device)?),
            BackboneConfig::ResNet12(c) => AnyBackbone::ResNet12(c.try_init(device)?),
            BackboneConfig::FcNet(c) => AnyBackbone::FcNet(c.try_init(device)?),
            BackboneConfig::MetaNetEmbedding(c) => {
                AnyBackbone::MetaNetEmbedding(c.try_init(device)?)
            }
            BackboneConfig::MetaNetCnn(c) => AnyBackbone::MetaNetCnn(c.try_init(device)?),
        })
    }

    /// Builds the network.
    ///
    /// # Panics
    /// If [`validate`](Self::validate) fails; use [`try_init`](Self::try_init) for a `Result`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> AnyBackbone<B> {
        self.try_init(device).unwrap_or_else(|e| panic!("{e}"))
    }
}

impl From<Conv4Config> for BackboneConfig {
    fn from(c: Conv4Config) -> Self {
        BackboneConfig::Conv4(c)
    }
}

impl From<ResNet12Config> for BackboneConfig {
    fn from(c: ResNet12Config) -> Self {
        BackboneConfig::ResNet12(c)
    }
}

impl From<FcNetConfig> for BackboneConfig {
    fn from(c: FcNetConfig) -> Self {
        BackboneConfig::FcNet(c)
    }
}

impl From<MetaNetEmbeddingConfig> for BackboneConfig {
    fn from(c: MetaNetEmbeddingConfig) -> Self {
        BackboneConfig::MetaNetEmbedding(c)
    }
}

impl From<MetaNetCnnConfig> for BackboneConfig {
    fn from(c: MetaNetCnnConfig) -> Self {
        BackboneConfig::MetaNetCnn(c)
    }
}

/// Any backbone of this crate, chosen at run time; see the [module docs](self).
///
/// Every [`Backbone`] method (including [`fast_copy`](Backbone::fast_copy) and
/// [`param_role`](Backbone::param_role)) delegates to the wrapped network, so forward passes,
/// inner loops and meta-gradients are exactly those of the wrapped network. Records
/// (checkpoints) carry the variant: loading a record of another variant panics.
#[derive(Module, Debug)]
pub enum AnyBackbone<B: Backend> {
    /// A [`Conv4`].
    Conv4(Conv4<B>),
    /// A [`ResNet12`].
    ResNet12(ResNet12<B>),
    /// An [`FcNet`].
    FcNet(FcNet<B>),
    /// A [`MetaNetEmbedding`].
    MetaNetEmbedding(MetaNetEmbedding<B>),
    /// A [`MetaNetCnn`].
    MetaNetCnn(MetaNetCnn<B>),
}

impl<B: Backend> AnyBackbone<B> {
    /// The kind of the wrapped backbone, as [`BackboneConfig::name`] spells it.
    pub fn name(&self) -> &'static str {
        match self {
            AnyBackbone::Conv4(_) => "conv4",
            AnyBackbone::ResNet12(_) => "resnet12",
            AnyBackbone::FcNet(_) => "fcnet",
            AnyBackbone::MetaNetEmbedding(_) => "metanet_embedding",
            AnyBackbone::MetaNetCnn(_) => "metanet_cnn",
        }
    }
}

impl<B: Backend> From<Conv4<B>> for AnyBackbone<B> {
    fn from(m: Conv4<B>) -> Self {
        AnyBackbone::Conv4(m)
    }
}

impl<B: Backend> From<ResNet12<B>> for AnyBackbone<B> {
    fn from(m: ResNet12<B>) -> Self {
        AnyBackbone::ResNet12(m)
    }
}

impl<B: Backend> From<FcNet<B>> for AnyBackbone<B> {
    fn from(m: FcNet<B>) -> Self {
        AnyBackbone::FcNet(m)
    }
}

impl<B: Backend> From<MetaNetEmbedding<B>> for AnyBackbone<B> {
    fn from(m: MetaNetEmbedding<B>) -> Self {
        AnyBackbone::MetaNetEmbedding(m)
    }
}

impl<B: Backend> From<MetaNetCnn<B>> for AnyBackbone<B> {
    fn from(m: MetaNetCnn<B>) -> Self {
        AnyBackbone::MetaNetCnn(m)
    }
}

/// `$body` with `$m` bound to the wrapped network, whatever the variant.
macro_rules! delegate {
    ($self:expr, $m:ident => $body:expr) => {
        match $self {
            AnyBackbone::Conv4($m) => $body,
            AnyBackbone::ResNet12($m) => $body,
            AnyBackbone::FcNet($m) => $body,
            AnyBackbone::MetaNetEmbedding($m) => $body,
            AnyBackbone::MetaNetCnn($m) => $body,
        }
    };
}

impl<B: Backend> Backbone<B> for AnyBackbone<B> {
    fn embed(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        delegate!(self, m => m.embed(x))
    }
    fn head(&self, features: Tensor<B, 2>) -> Tensor<B, 2> {
        delegate!(self, m => m.head(features))
    }
    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        delegate!(self, m => m.forward(x))
    }
    fn feature_dim(&self) -> usize {
        delegate!(self, m => m.feature_dim())
    }
    fn num_classes(&self) -> usize {
        delegate!(self, m => m.num_classes())
    }
    fn fast_copy(&self, step: usize) -> Self {
        match self {
            AnyBackbone::Conv4(m) => AnyBackbone::Conv4(m.fast_copy(step)),
            AnyBackbone::ResNet12(m) => AnyBackbone::ResNet12(m.fast_copy(step)),
            AnyBackbone::FcNet(m) => AnyBackbone::FcNet(m.fast_copy(step)),
            AnyBackbone::MetaNetEmbedding(m) => AnyBackbone::MetaNetEmbedding(m.fast_copy(step)),
            AnyBackbone::MetaNetCnn(m) => AnyBackbone::MetaNetCnn(m.fast_copy(step)),
        }
    }

    /// Strips the variant name that burn's enum derive puts first in every path and asks the
    /// wrapped type. A path that does not start with a variant name (never produced by
    /// visiting an `AnyBackbone`) is classified with the default convention.
    fn param_role(path: &[String]) -> ParamRole {
        let Some((variant, rest)) = path.split_first() else {
            return default_role(path);
        };
        match variant.as_str() {
            "Conv4" => <Conv4<B> as Backbone<B>>::param_role(rest),
            "ResNet12" => <ResNet12<B> as Backbone<B>>::param_role(rest),
            "FcNet" => <FcNet<B> as Backbone<B>>::param_role(rest),
            "MetaNetEmbedding" => <MetaNetEmbedding<B> as Backbone<B>>::param_role(rest),
            "MetaNetCnn" => <MetaNetCnn<B> as Backbone<B>>::param_role(rest),
            _ => default_role(path),
        }
    }
}

/// [`Backbone::param_role`]'s default convention.
fn default_role(path: &[String]) -> ParamRole {
    if path.last().is_some_and(|n| n.starts_with("running_")) {
        ParamRole::State
    } else if path.first().is_some_and(|n| n == "head") {
        ParamRole::Head
    } else {
        ParamRole::Body
    }
}
