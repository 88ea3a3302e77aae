//! BOIL, "Body Only update in Inner Loop" (Oh, Yoo, Kim & Yun 2021, "BOIL: Towards
//! Representation Change for Few-shot Learning").
//!
//! ```text
//! for each task τ in the meta-batch:
//!     φ'_τ ← φ − α ∇φ L_τ^support(w; f_φ)   (body φ only; head w frozen)
//! (φ, w) ← (φ, w) − β ∇ mean_τ L_τ^query(w; f_φ'_τ)
//! ```
//!
//! The inner step is `meta_backbones::adapt` with [`ParamGroup::Body`] and second order: the
//! head is never changed by adaptation, but it is meta-learned by the outer step.

use meta_backbones::{GradOrder, ParamGroup};

use crate::maml::MamlConfig;
use crate::maml_family::{MamlFamily, MamlVariant};

/// BOIL's hyper-parameters: [`MamlConfig`]. Defaults: MAML's Omniglot 5-way values (inner rate
/// 0.4, 1 step; Oh et al. tune the body rate to 0.5 on miniImageNet), with 10 test-time steps.
pub type BoilConfig = MamlConfig;

/// BOIL's variant of [`MamlFamily`]: second-order inner loop over the body only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BoilKind;

impl MamlVariant for BoilKind {
    const NAME: &'static str = "boil";
    const ORDER: GradOrder = GradOrder::Second;
    const GROUP: ParamGroup = ParamGroup::Body;
}

/// BOIL over backbones built by `F`.
pub type Boil<F> = MamlFamily<F, BoilKind>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MetaLearner;
    use crate::maml_family::test_util::{factory, flat, flat_grads, task};

    #[test]
    fn boil_freezes_the_head_in_the_inner_loop_but_meta_learns_it() {
        let device = Default::default();
        meta_backbones::rng::seed(13);
        let boil = Boil::new(factory(), BoilConfig::default());
        let model = boil.init_model(&device);
        let t = task(&device);

        let adapted =
            MetaLearner::adapt(&boil, &model, t.support_x.clone(), t.support_y.clone(), 3);
        assert_eq!(
            flat(&adapted.model.head),
            flat(&model.head),
            "head changed by BOIL's inner loop"
        );
        assert_ne!(
            flat(&adapted.model.body),
            flat(&model.body),
            "body not adapted"
        );

        let (grads, _) = boil.meta_gradients(&model, &[t]);
        let head = flat_grads(&model.head, &grads);
        let body = flat_grads(&model.body, &grads);
        assert!(
            head.iter().any(|g| g.abs() > 1e-6),
            "head gets no meta-gradient"
        );
        assert!(
            body.iter().any(|g| g.abs() > 1e-6),
            "body gets no meta-gradient"
        );
    }
}
