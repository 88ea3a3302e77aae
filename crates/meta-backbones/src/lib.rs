//! Backbones for few-shot learning — [`FcNet`], [`Conv4`], [`ResNet12`] and the Meta Networks
//! [`MetaNetEmbedding`] and layer-augmented [`MetaNetCnn`] — as ordinary burn `Module`s, plus the exact, differentiable inner loop
//! that the MAML family needs ([`adapt()`], [`adapt_with_lrs`]). [`AnyBackbone`] (built from a
//! [`BackboneConfig`]) wraps any of them in one type chosen at run time.
//!
//! Every layer an inner loop differentiates through is built from operations that support a
//! second backward pass (own [`Linear`], [`pool`], [`BatchNorm`]); see [`adapt`](mod@adapt) for
//! how exact second-order gradients are obtained from burn's first-order autodiff.
//!
//! # Example: one MAML meta-gradient
//!
//! ```
//! use burn::backend::{Autodiff, Flex};
//! use burn::optim::GradientsParams;
//! use burn::tensor::{Distribution, Int, Tensor, TensorData};
//! use meta_backbones::{adapt, cross_entropy, Backbone, Conv4Config, GradOrder, InnerLoop};
//!
//! type B = Autodiff<Flex>;
//! let device = Default::default();
//! let model = Conv4Config { hidden: 8, num_classes: 2, ..Default::default() }.init::<B>(&device);
//! let x = Tensor::<B, 4>::random([4, 1, 28, 28], Distribution::Normal(0.0, 1.0), &device);
//! let y = Tensor::<B, 1, Int>::from_data(TensorData::new(vec![0i64, 1, 0, 1], [4]), &device);
//!
//! // Inner loop on the support set (here reused as the query set), exact second order.
//! let cfg = InnerLoop { steps: 1, lr: 0.4, order: GradOrder::Second, ..Default::default() };
//! let adapted = adapt(&model, x.clone(), y.clone(), &cfg);
//! let query_loss = cross_entropy(adapted.forward(x), y);
//! // Meta-gradient with respect to the ORIGINAL model's parameters.
//! let grads = GradientsParams::from_grads(query_loss.backward(), &model);
//! assert!(!grads.is_empty());
//! ```

#![warn(missing_docs)]
// Without the `flex` feature the kernel dispatch compiles to its fallback and its helpers idle.
#![cfg_attr(not(feature = "flex"), allow(unused_imports, dead_code))]

pub mod adapt;
pub mod any;
pub mod backbone;
pub mod block;
pub mod bn;
pub mod channel;
pub mod conv;
pub mod conv4;
mod dispatch;
pub mod error;
pub mod fcnet;
#[cfg(feature = "flex")]
mod flex;
#[cfg(feature = "tch")]
mod libtorch;
pub mod linear;
pub mod loss;
pub mod maxpool;
pub mod metanet;
pub mod metanet_cnn;
pub mod params;
pub mod pool;
pub mod resnet12;
pub mod rng;

pub use adapt::{
    AdaptableBackbone, GradOrder, InnerLoop, adapt, adapt_head, adapt_per_step, adapt_trajectory,
    adapt_with_loss, adapt_with_lrs, support_gradients,
};
pub use any::{AnyBackbone, BackboneConfig};
pub use backbone::{Backbone, ParamGroup, ParamRole};
pub use bn::{BatchNorm, BnConfig, BnMode};
pub use conv4::{Conv4, Conv4Config, Conv4Variant};
pub use error::BackboneError;
pub use fcnet::{FcNet, FcNetConfig};
pub use linear::Linear;
pub use loss::{Loss, Targets, TaskLoss, accuracy, cross_entropy, mse, score};
pub use metanet::{MetaNetEmbedding, MetaNetEmbeddingConfig};
pub use metanet_cnn::{CnnOutput, MetaNetCnn, MetaNetCnnConfig};
pub use params::{force_init, param_difference, param_paths, param_roles, step_dependent};
pub use resnet12::{ResNet12, ResNet12Config};
