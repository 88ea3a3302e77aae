//! The trait every backbone implements, and the parameter groups that inner loops adapt.

use burn::module::Module;
use burn::tensor::{Tensor, backend::Backend};
use serde::{Deserialize, Serialize};

/// Which parameters an inner loop adapts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ParamGroup {
    /// Every parameter (MAML, FOMAML, Reptile, MetaSGD).
    #[default]
    All,
    /// The classifier head only (ANIL).
    Head,
    /// Everything but the head (BOIL).
    Body,
}

/// A network that maps images `[N, C, H, W]` to features (body) and logits (head).
///
/// Contract (shared by every crate): `forward(x) == head(embed(x))`.
pub trait Backbone<B: Backend>: Module<B> + Clone + core::fmt::Debug + Send {
    /// Body: images `[N, C, H, W]` to features `[N, feature_dim]`.
    fn embed(&self, x: Tensor<B, 4>) -> Tensor<B, 2>;
    /// Head: features `[N, feature_dim]` to logits `[N, num_classes]`.
    fn head(&self, features: Tensor<B, 2>) -> Tensor<B, 2>;
    /// Images to logits.
    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        self.head(self.embed(x))
    }
    /// Width of `embed`'s output.
    fn feature_dim(&self) -> usize;
    /// Number of logits `head` produces.
    fn num_classes(&self) -> usize;
}
