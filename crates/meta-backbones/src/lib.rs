//! Backbones for few-shot learning, usable as burn Modules and with explicit fast weights.

pub mod backbone;

pub use backbone::{Backbone, ParamGroup};
