//! ANIL, "Almost No Inner Loop" (Raghu, Raghu, Bengio & Vinyals 2020, "Rapid Learning or
//! Feature Reuse? Towards Understanding the Effectiveness of MAML").
//!
//! ```text
//! for each task τ in the meta-batch:
//!     w'_τ ← w − α ∇w L_τ^support(w; f_φ)   (head w only, over the body's features f_φ)
//! (φ, w) ← (φ, w) − β ∇ mean_τ L_τ^query(w'_τ; f_φ)
//! ```
//!
//! The inner step is `meta_backbones::adapt` with [`ParamGroup::Head`] and second order: the
//! body φ is never changed by adaptation, and receives its meta-gradient both through the query
//! features and through the support features that the head's inner gradient depends on.

use meta_backbones::{GradOrder, ParamGroup};

use crate::maml::MamlConfig;
use crate::maml_family::{MamlFamily, MamlVariant};

/// ANIL's hyper-parameters: [`MamlConfig`]. Raghu et al. (2020) reuse MAML's: defaults are MAML's
/// Omniglot 5-way values (inner rate 0.4, 1 step), with 10 test-time steps.
pub type AnilConfig = MamlConfig;

/// ANIL's variant of [`MamlFamily`]: second-order inner loop over the head only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AnilKind;

impl MamlVariant for AnilKind {
    const NAME: &'static str = "anil";
    const ORDER: GradOrder = GradOrder::Second;
    const GROUP: ParamGroup = ParamGroup::Head;
}

/// ANIL over backbones built by `F`.
pub type Anil<F> = MamlFamily<F, AnilKind>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MetaLearner;
    use crate::maml_family::test_util::{factory, flat, flat_grads, task};
    use meta_backbones::adapt;

    #[test]
    fn anil_adapts_only_the_head_and_still_meta_learns_the_body() {
        let device = Default::default();
        meta_backbones::rng::seed(11);
        let anil = Anil::new(factory(), AnilConfig::default());
        let model = anil.init_model(&device);
        let t = task(&device);

        let adapted = adapt(
            &model,
            t.support_x.clone(),
            t.support_y.clone(),
            &anil.train_inner_loop(),
        );
        assert_eq!(
            flat(&adapted.body),
            flat(&model.body),
            "body changed by ANIL's inner loop"
        );
        assert_ne!(flat(&adapted.head), flat(&model.head), "head not adapted");

        let (grads, stats) = anil.meta_gradients(&model, &[t]);
        assert!(stats.loss.is_finite());
        let body = flat_grads(&model.body, &grads);
        let head = flat_grads(&model.head, &grads);
        assert!(
            body.iter().any(|g| g.abs() > 1e-6),
            "body gets no meta-gradient"
        );
        assert!(
            head.iter().any(|g| g.abs() > 1e-6),
            "head gets no meta-gradient"
        );
    }
}
