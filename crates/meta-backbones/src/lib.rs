//! Backbones for few-shot learning, usable as burn Modules and with explicit fast weights.

pub mod adapt;
pub mod backbone;
pub mod loss;
pub mod params;

pub use adapt::{
    AdaptableBackbone, GradOrder, InnerLoop, adapt, adapt_with_lrs, support_gradients,
};
pub use backbone::{Backbone, ParamGroup, ParamRole};
pub use loss::{accuracy, cross_entropy};
pub use params::{param_difference, param_roles};
