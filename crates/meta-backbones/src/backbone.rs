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

/// What a tensor found while visiting a backbone is: a head parameter, a body parameter, or
/// non-trainable state (batch-norm running statistics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamRole {
    /// A parameter of the classifier head.
    Head,
    /// A parameter of the body (feature extractor).
    Body,
    /// Non-trainable state, never adapted and never given a gradient.
    State,
}

impl ParamGroup {
    /// Whether a parameter with role `role` belongs to this group (state never does).
    pub fn contains(self, role: ParamRole) -> bool {
        matches!(
            (self, role),
            (ParamGroup::All, ParamRole::Head | ParamRole::Body)
                | (ParamGroup::Head, ParamRole::Head)
                | (ParamGroup::Body, ParamRole::Body)
        )
    }
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

    /// A copy for fast weights at inner step `step`: its batch-norm layers use the statistics
    /// (and, for MAML++ per-step mode, the affine parameters) of step `step`, and its running
    /// statistics are detached from `self`'s, so that no forward through the copy can change
    /// the meta-model's running statistics. Parameters (and their `ParamId`s) are shared.
    ///
    /// The default is a plain clone, right for backbones without running state.
    fn fast_copy(&self, step: usize) -> Self {
        let _ = step;
        self.clone()
    }

    /// The role of the tensor at `path` (field names from the backbone's root to the tensor, as
    /// given by `ModuleVisitor::enter_module`).
    ///
    /// Default convention: a last field named `running_*` is [`ParamRole::State`]; anything
    /// under a top-level field named `head` is [`ParamRole::Head`]; the rest is
    /// [`ParamRole::Body`].
    fn param_role(path: &[String]) -> ParamRole
    where
        Self: Sized,
    {
        if path.last().is_some_and(|n| n.starts_with("running_")) {
            ParamRole::State
        } else if path.first().is_some_and(|n| n == "head") {
            ParamRole::Head
        } else {
            ParamRole::Body
        }
    }
}
