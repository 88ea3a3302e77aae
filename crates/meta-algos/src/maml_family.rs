//! Pieces shared by the MAML family (MAML, FOMAML, ANIL, BOIL, Reptile, MetaSGD): the adapted-model
//! predictor, and summing/scaling of per-task gradients so that each task's graph is freed right
//! after its backward pass.

use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{ElementConversion, Tensor, backend::AutodiffBackend};
use meta_backbones::{Backbone, accuracy, cross_entropy};
use meta_data::Task;

use crate::learner::Predictor;

/// The value of a one-element tensor as `f64`.
pub(crate) fn scalar<B: burn::tensor::backend::Backend>(t: Tensor<B, 1>) -> f64 {
    t.into_scalar().elem::<f64>()
}

/// A backbone whose parameters were adapted to one task's support set.
#[derive(Debug, Clone)]
pub struct AdaptedModel<M> {
    /// The adapted network (fast weights).
    pub model: M,
}

impl<B: AutodiffBackend, M: Backbone<B>> Predictor<B> for AdaptedModel<M> {
    fn predict(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        self.model.forward(x)
    }
}

/// Adds each parameter's gradient in `new` into `acc` (by parameter id of `model`).
pub(crate) fn accumulate<B: AutodiffBackend, M: AutodiffModule<B>>(
    acc: &mut GradientsParams,
    mut new: GradientsParams,
    model: &M,
) {
    struct Sum<'a> {
        acc: &'a mut GradientsParams,
        new: &'a mut GradientsParams,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for Sum<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let id = param.id;
            if let Some(g) = self.new.remove::<B::InnerBackend, D>(id) {
                let sum = match self.acc.remove::<B::InnerBackend, D>(id) {
                    Some(a) => a + g,
                    None => g,
                };
                self.acc.register(id, sum);
            }
        }
    }
    model.visit(&mut Sum {
        acc,
        new: &mut new,
    });
}

/// Multiplies every gradient of `model`'s parameters in `grads` by `factor`.
pub(crate) fn scale<B: AutodiffBackend, M: AutodiffModule<B>>(
    grads: &mut GradientsParams,
    factor: f64,
    model: &M,
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

/// Averages per-task gradients: runs `task_grads` for each of `n` tasks, each returning the
/// gradients of its own loss and its (loss, accuracy), and returns the mean gradient and stats.
pub(crate) fn mean_over_tasks<B, M, F>(
    model: &M,
    n: usize,
    mut task_grads: F,
) -> (GradientsParams, crate::StepStats)
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    F: FnMut(usize) -> (GradientsParams, f64, f64),
{
    let mut acc = GradientsParams::new();
    let (mut loss, mut accuracy) = (0.0, 0.0);
    for i in 0..n {
        let (g, l, a) = task_grads(i);
        accumulate::<B, M>(&mut acc, g, model);
        loss += l;
        accuracy += a;
    }
    let denom = n.max(1) as f64;
    scale::<B, M>(&mut acc, 1.0 / denom, model);
    (
        acc,
        crate::StepStats {
            loss: loss / denom,
            accuracy: accuracy / denom,
        },
    )
}

/// Meta-gradient contribution of one task: the query cross-entropy of `adapted` (a function of
/// `model`'s parameters when adapted with second order), back-propagated to the ORIGINAL
/// meta-model `model`. Returns the gradients, the query loss and the query accuracy.
pub(crate) fn query_gradients<B, P, M>(
    model: &P,
    adapted: &M,
    task: &Task<B>,
) -> (GradientsParams, f64, f64)
where
    B: AutodiffBackend,
    P: AutodiffModule<B>,
    M: Backbone<B>,
{
    let logits = adapted.forward(task.query_x.clone());
    let acc = accuracy(logits.clone().detach(), task.query_y.clone());
    let loss = cross_entropy(logits, task.query_y.clone());
    let value = scalar(loss.clone().detach());
    (GradientsParams::from_grads(loss.backward(), model), value, acc)
}
