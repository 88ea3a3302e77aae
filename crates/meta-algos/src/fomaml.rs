//! First-order MAML (Finn, Abbeel & Levine 2017, §5.2): MAML with the inner gradient treated as
//! a constant, so the meta-gradient is the query-loss gradient at the adapted weights.
//!
//! ```text
//! for each task τ in the meta-batch:
//!     θ'_τ ← θ − α stop_grad(∇θ L_τ^support(θ))   (k steps)
//! θ ← θ − β mean_τ ∇θ'_τ L_τ^query(θ'_τ)         (outer Adam step, taken by the trainer)
//! ```
//!
//! The inner step is `meta_backbones::adapt` with [`GradOrder::First`]: `θ'_τ = θ − const`, so
//! back-propagating the query loss to θ gives exactly `∇θ' L^query(θ')`.

use meta_backbones::{GradOrder, ParamGroup};

use crate::maml::MamlConfig;
use crate::maml_family::{MamlFamily, MamlVariant};

/// First-order MAML's hyper-parameters: [`MamlConfig`], with its defaults (Finn et al. 2017,
/// Omniglot 5-way: inner rate 0.4, 1 step; 10 test-time steps).
pub type FomamlConfig = MamlConfig;

/// FOMAML's variant of [`MamlFamily`]: first-order inner loop over all parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FomamlKind;

impl MamlVariant for FomamlKind {
    const NAME: &'static str = "fomaml";
    const ORDER: GradOrder = GradOrder::First;
    const GROUP: ParamGroup = ParamGroup::All;
}

/// FOMAML over backbones built by `F`.
pub type Fomaml<F> = MamlFamily<F, FomamlKind>;
