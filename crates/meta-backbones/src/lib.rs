//! Backbones for few-shot learning, usable as burn Modules and with explicit fast weights.

pub mod adapt;
pub mod backbone;
pub mod block;
pub mod bn;
pub mod conv4;
pub mod error;
pub mod fcnet;
pub mod linear;
pub mod loss;
pub mod metanet;
pub mod params;
pub mod pool;
pub mod resnet12;

pub use adapt::{
    AdaptableBackbone, GradOrder, InnerLoop, adapt, adapt_with_lrs, support_gradients,
};
pub use backbone::{Backbone, ParamGroup, ParamRole};
pub use bn::{BatchNorm, BnConfig, BnMode};
pub use conv4::{Conv4, Conv4Config, Conv4Variant};
pub use error::BackboneError;
pub use fcnet::{FcNet, FcNetConfig};
pub use linear::Linear;
pub use loss::{accuracy, cross_entropy};
pub use metanet::{MetaNetEmbedding, MetaNetEmbeddingConfig};
pub use params::{force_init, param_difference, param_roles};
pub use resnet12::{ResNet12, ResNet12Config};
