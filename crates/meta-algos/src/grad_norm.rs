//! The global L2 norm of a model's gradients, and scaling and clipping by it.

use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{ElementConversion as _, Tensor, backend::AutodiffBackend};

/// Global L2 norm over every gradient of `model`'s parameters in `grads` (one device sync).
pub fn global_grad_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    model: &M,
    grads: &GradientsParams,
) -> f64 {
    struct Norm<'a, B: AutodiffBackend> {
        grads: &'a GradientsParams,
        sum: Option<Tensor<B::InnerBackend, 1>>,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for Norm<'_, B> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if let Some(g) = self.grads.get::<B::InnerBackend, D>(param.id) {
                let sq = g.powi_scalar(2).sum();
                self.sum = Some(match self.sum.take() {
                    Some(s) => s + sq,
                    None => sq,
                });
            }
        }
    }
    let mut v = Norm::<B> { grads, sum: None };
    model.visit(&mut v);
    match v.sum {
        Some(s) => {
            let sq: f64 = s.into_scalar().elem();
            sq.sqrt()
        }
        None => 0.0,
    }
}

/// Multiplies every gradient of `model`'s parameters in `grads` by `factor`.
pub fn scale_grads<B: AutodiffBackend, M: AutodiffModule<B>>(
    model: &M,
    grads: &mut GradientsParams,
    factor: f64,
) {
    struct Scale<'a> {
        grads: &'a mut GradientsParams,
        factor: f64,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for Scale<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if let Some(g) = self.grads.remove::<B::InnerBackend, D>(param.id) {
                self.grads.register(param.id, g.mul_scalar(self.factor));
            }
        }
    }
    model.visit(&mut Scale { grads, factor });
}

/// Clips `grads` to global norm `max_norm`; returns the norm before clipping and whether it
/// was clipped.
pub fn clip_grad_global_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    model: &M,
    grads: &mut GradientsParams,
    max_norm: f64,
) -> (f64, bool) {
    let norm = global_grad_norm::<B, M>(model, grads);
    if norm.is_finite() && norm > max_norm {
        scale_grads::<B, M>(model, grads, max_norm / (norm + 1e-12));
        (norm, true)
    } else {
        (norm, false)
    }
}
