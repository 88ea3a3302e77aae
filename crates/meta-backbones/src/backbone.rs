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
///
/// # Implementing it
///
/// - **Every backend.** Implement it for all `B: Backend` (`impl<B: Backend> Backbone<B> for
///   MyNet<B>`) on a `#[derive(Module)]` type: the algorithms run it on `B`, on `B`'s inner
///   backend (evaluation without a graph) and, for exact second-order MAML, on `Autodiff<B>`.
/// - **Twice differentiable.** MAML, ANIL, BOIL and Meta-SGD differentiate the inner-loop
///   gradient once more (docs/architecture.md §3), so every operation of the forward pass needs
///   a second backward pass in burn 0.21:
///
///   | safe | not twice differentiable in burn 0.21 → use instead |
///   |---|---|
///   | `nn::conv::Conv2d`, `module::conv2d`, [`conv`](crate::conv) | `nn::Linear`, `module::linear` → [`Linear`](crate::Linear) |
///   | element-wise ops, `matmul`, `relu`, `tanh`, `sigmoid` | `nn::pool::MaxPool2d`, `module::max_pool2d` → [`pool`](crate::pool) |
///   | `log_softmax`, `max_dim`, `mean_dim`, `sum_dim`, `reshape` | `avg_pool2d`, `adaptive_avg_pool2d` → [`pool`](crate::pool) |
///   | [`BatchNorm`](crate::BatchNorm); `nn::BatchNorm` (tensor ops, but see below) | `interpolate`, `nn::Embedding` → no replacement here |
///
///   FOMAML, Reptile and the metric methods take only first-order gradients and accept any
///   layer. The MAML family checks this before its first meta-iteration
///   (`meta_algos::preflight`) and names the layers to replace.
/// - **Head and body.** ANIL adapts only the head, BOIL only the body. By default the head is
///   everything under a top-level field named `head`, and tensors whose last field starts with
///   `running_` are state (never adapted); override [`param_role`](Backbone::param_role) for
///   another layout. ANIL and BOIL refuse a backbone whose group is empty.
/// - **Running statistics.** A backbone with running state overrides
///   [`fast_copy`](Backbone::fast_copy) so that inner-loop copies never write to the
///   meta-model's statistics; [`BatchNorm`](crate::BatchNorm) does this, a clone of burn's
///   `nn::BatchNorm` shares them with the original.
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
