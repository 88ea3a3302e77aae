//! Fast weights and the exact, differentiable MAML inner loop.
//!
//! # How the inner gradient stays differentiable
//!
//! burn's autodiff records one level. To differentiate *through* an inner gradient step, the
//! inner loop runs one level up (docs/architecture.md §3): the current fast model (on the caller's
//! autodiff backend `B`) is lifted onto `Autodiff<B>` with [`AutodiffModule::from_inner`], the
//! support loss is back-propagated on that outer tape, and the gradients come back as `B`
//! tensors that are still recorded on `B`'s tape (the outer tape's backward pass is itself run
//! with `B` operations). The update `θ' = θ − α·g` is applied with a [`ModuleMapper`] to a
//! copy of the model on `B`, keeping every `ParamId`. A query loss of the adapted model is
//! therefore a function of the original parameters, Hessian-vector terms included, and one
//! `backward()` followed by `GradientsParams::from_grads(grads, &model)` gives the exact MAML
//! meta-gradient for the *original* model.
//!
//! This needs every operation in the forward pass to support a second backward pass, which
//! is why the backbones use this crate's [`Linear`](crate::linear::Linear), pooling and
//! batch-norm instead of burn's fused ones.
//!
//! The alternative, a hand-written backward pass per layer, was not built: a probe before the
//! first session measured it 1.8× slower than nesting (500 ms vs 280 ms per task, burn 0.21,
//! flex, 2 cores) and it needs a backward for every layer type; nesting reuses burn's backward.
//!
//! First order ([`GradOrder::First`]) skips the lifting: the support gradient is taken on a
//! detached copy on `B` itself, so FOMAML/Reptile pay for one tape only.
//!
//! Measured (`cargo bench -p meta-backbones`, Conv4-64, 5-way 1-shot, 75 queries, 1 step,
//! flex, 2 shared cores): exact second order costs about 1.35× first order (see
//! `docs/benchmarks.md`), inside the 2.5× target, so the simplest exact route is also fast.
//!
//! Verified numerically in `tests/backbones.rs`, which asserts: meta-gradients within 1e-5
//! (relative) of f64 central finite differences for every backbone, every batch-norm mode and
//! 1 and 3 inner steps (the test prints each error); the inner gradient within 1e-5 (f32) and
//! 1e-9 (f64) of burn's ordinary gradient.
//!
//! # Bounds
//!
//! Callers need `B: AutodiffBackend` and `M: AdaptableBackbone<B>`; every backbone of this
//! crate (and any `#[derive(Module)]` type implementing [`Backbone`] for all backends)
//! satisfies it through the blanket implementation.

use burn::backend::Autodiff;
use burn::module::{AutodiffModule, Module, ModuleMapper, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorPrimitive};
use serde::{Deserialize, Serialize};

use crate::backbone::{Backbone, ParamGroup, ParamRole};
use crate::loss::{Loss, Targets, TaskLoss};
use crate::params::{for_each_tensor, param_roles};

/// Whether the inner-loop gradient is differentiated through (exact MAML) or treated as a
/// constant (first-order MAML, Reptile).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum GradOrder {
    /// Inner gradients detached: FOMAML.
    First,
    /// Exact meta-gradient, Hessian-vector products included: MAML.
    #[default]
    Second,
}

/// Hyper-parameters of an inner loop of plain SGD on the support loss.
///
/// Defaults are MAML's Omniglot 5-way setting (Finn et al. 2017): 1 step of rate 0.4,
/// second order, all parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InnerLoop {
    /// Number of gradient steps on the support set.
    pub steps: usize,
    /// Step size α.
    pub lr: f64,
    /// First or second order.
    pub order: GradOrder,
    /// Which parameters are adapted (ANIL: `Head`, BOIL: `Body`).
    pub group: ParamGroup,
}

impl Default for InnerLoop {
    fn default() -> Self {
        Self {
            steps: 1,
            lr: 0.4,
            order: GradOrder::Second,
            group: ParamGroup::All,
        }
    }
}

/// A backbone whose inner loop can be differentiated: it can be lifted onto `Autodiff<B>`.
///
/// Blanket-implemented for every [`Backbone<B>`] derived with `#[derive(Module)]` (all
/// backbones of this crate), so callers write the single bound `M: AdaptableBackbone<B>`.
pub trait AdaptableBackbone<B: AutodiffBackend>: Backbone<B> + AutodiffModule<B> {
    /// The same backbone one autodiff level up.
    type Lifted: Backbone<Autodiff<B>> + AutodiffModule<Autodiff<B>, InnerModule = Self>;
}

impl<B, M> AdaptableBackbone<B> for M
where
    B: AutodiffBackend,
    M: Backbone<B> + AutodiffModule<B> + burn::module::HasAutodiffModule<Autodiff<B>>,
    M::TrainModule: Backbone<Autodiff<B>>,
{
    type Lifted = M::TrainModule;
}

/// Adapts `model` to the support set `(x, y)` with `cfg.steps` SGD steps of rate `cfg.lr` on
/// the [`Loss::Auto`] loss (mean cross-entropy for class labels, mean squared error for real
/// values), returning the adapted model (same `ParamId`s). `y` is a [`Targets`] or anything
/// that converts into one (`Tensor<B, 1, Int>` labels, `Tensor<B, 2>` values).
///
/// With [`GradOrder::Second`] the adapted parameters are differentiable functions of
/// `model`'s: back-propagating a query loss of the result and calling
/// `GradientsParams::from_grads(grads, model)` yields the exact MAML meta-gradient. With
/// [`GradOrder::First`] the same yields the FOMAML gradient. Only parameters in `cfg.group`
/// change. Batch-norm layers use the statistics of inner step `k` during step `k` and of step
/// `cfg.steps` in the returned model; `model`'s running statistics are never modified.
pub fn adapt<B, M>(model: &M, x: Tensor<B, 4>, y: impl Into<Targets<B>>, cfg: &InnerLoop) -> M
where
    B: AutodiffBackend,
    M: AdaptableBackbone<B>,
{
    adapt_with_loss(model, x, y, cfg, &Loss::Auto)
}

/// [`adapt`] on the support loss `loss` (any [`TaskLoss`], yours included).
pub fn adapt_with_loss<B, M>(
    model: &M,
    x: Tensor<B, 4>,
    y: impl Into<Targets<B>>,
    cfg: &InnerLoop,
    loss: &impl TaskLoss,
) -> M
where
    B: AutodiffBackend,
    M: AdaptableBackbone<B>,
{
    let mask = group_mask(model, cfg.group);
    run_inner_loop(
        model,
        Input::Images(x),
        &y.into(),
        loss,
        cfg.steps,
        cfg.order,
        &mask,
        Rates::Scalar(cfg.lr),
        |_, _| {},
    )
}

/// The models along [`adapt_with_loss`]'s inner loop: `model` itself (a fast copy, 0 steps),
/// then the model after each of the `cfg.steps` steps, so `cfg.steps + 1` models. What an
/// error-versus-steps curve needs (Finn et al. 2017, Figure 3) without re-running the loop per
/// step count.
pub fn adapt_trajectory<B, M>(
    model: &M,
    x: Tensor<B, 4>,
    y: impl Into<Targets<B>>,
    cfg: &InnerLoop,
    loss: &impl TaskLoss,
) -> Vec<M>
where
    B: AutodiffBackend,
    M: AdaptableBackbone<B>,
{
    let mask = group_mask(model, cfg.group);
    let mut models = vec![model.fast_copy(0)];
    run_inner_loop(
        model,
        Input::Images(x),
        &y.into(),
        loss,
        cfg.steps,
        cfg.order,
        &mask,
        Rates::Scalar(cfg.lr),
        |_, m| models.push(m.clone()),
    );
    models
}

/// ANIL's inner loop on features: [`adapt`] restricted to the head, with the support set given
/// as `features = model.embed(x)`, computed once by the caller, so that the inner steps run
/// the head alone. `cfg.group` is ignored (the head is adapted).
///
/// Equal to `adapt(model, x, y, cfg)` with [`ParamGroup::Head`] whenever the body does not
/// depend on the inner step, i.e. unless [`step_dependent`](crate::params::step_dependent)
/// (MAML++ per-step batch-norm). The meta-gradient reaches the body through `features` (keep
/// them on `B`'s tape) and, with [`GradOrder::Second`], through the inner gradient as well.
pub fn adapt_head<B, M>(
    model: &M,
    features: Tensor<B, 2>,
    y: impl Into<Targets<B>>,
    cfg: &InnerLoop,
    loss: &impl TaskLoss,
) -> M
where
    B: AutodiffBackend,
    M: AdaptableBackbone<B>,
{
    let mask = group_mask(model, ParamGroup::Head);
    run_inner_loop(
        model,
        Input::Features(features),
        &y.into(),
        loss,
        cfg.steps,
        cfg.order,
        &mask,
        Rates::Scalar(cfg.lr),
        |_, _| {},
    )
}

/// MetaSGD's inner loop: like [`adapt_with_loss`] with [`GradOrder::Second`], but each parameter
/// tensor θ has its own element-wise learning rates α (the matching tensor of `lrs`, a second
/// instance of the same module type): `θ' = θ − α ⊙ ∇θ`.
///
/// Tensors are paired by visit order, so `lrs` must have `model`'s architecture (build it
/// with the same config and fill its tensors, e.g. with `Module::map`). The learning rates
/// are part of the graph: `GradientsParams::from_grads(grads, lrs)` (or on a module holding
/// both) gives their meta-gradients too.
pub fn adapt_with_lrs<B, M>(
    model: &M,
    x: Tensor<B, 4>,
    y: impl Into<Targets<B>>,
    steps: usize,
    lrs: &M,
    group: ParamGroup,
    loss: &impl TaskLoss,
) -> M
where
    B: AutodiffBackend,
    M: AdaptableBackbone<B>,
{
    let mask = group_mask(model, group);
    let mut rates = Vec::new();
    for_each_tensor(lrs, |_, _, t| rates.push(t));
    assert_eq!(
        rates.len(),
        mask.len(),
        "lrs must have the model's architecture"
    );
    run_inner_loop(
        model,
        Input::Images(x),
        &y.into(),
        loss,
        steps,
        GradOrder::Second,
        &mask,
        Rates::PerParam(rates),
        |_, _| {},
    )
}

/// MAML++'s inner loop (Antoniou et al. 2019, LSLR): SGD steps on the support loss `loss` in
/// which tensor `j` (visit order, as [`param_paths`](crate::params::param_paths) lists them) is
/// adapted with its own learned rate per step, `θ_{k+1} = θ_k − rates[j][k] · ∇θ_k`, and not at
/// all where `rates[j]` is `None` (state tensors are never adapted). The number of steps is the
/// rate vectors' length; per-step batch-norm uses slot `k` during step `k` as in [`adapt`].
///
/// `on_step(k, θ_{k+1})` is called after every step `k` (0-based) with the model adapted so far,
/// so a caller can add each step's query loss (MAML++'s multi-step loss); the last call's model
/// is also returned. The rates stay on the tape: a loss of any intermediate or final model
/// back-propagates to `model`'s parameters (exactly, with [`GradOrder::Second`]) and to the
/// rates.
///
/// # Panics
/// If `rates` does not hold one entry per tensor of `model`, or the vectors' lengths differ.
pub fn adapt_per_step<B, M>(
    model: &M,
    x: Tensor<B, 4>,
    y: impl Into<Targets<B>>,
    order: GradOrder,
    rates: &[Option<Tensor<B, 1>>],
    loss: &impl TaskLoss,
    on_step: impl FnMut(usize, &M),
) -> M
where
    B: AutodiffBackend,
    M: AdaptableBackbone<B>,
{
    let roles = param_roles(model);
    assert_eq!(
        rates.len(),
        roles.len(),
        "adapt_per_step: one entry of `rates` per tensor of the model"
    );
    let mask: Vec<bool> = roles
        .iter()
        .zip(rates)
        .map(|((_, role), r)| r.is_some() && *role != ParamRole::State)
        .collect();
    let steps = rates.iter().flatten().next().map_or(0, |r| r.dims()[0]);
    assert!(
        rates.iter().flatten().all(|r| r.dims()[0] == steps),
        "adapt_per_step: every rate vector needs one rate per step"
    );
    let per_tensor = rates
        .iter()
        .map(|r| r.as_ref().map(|r| r.clone().into_primitive()))
        .collect();
    run_inner_loop(
        model,
        Input::Images(x),
        &y.into(),
        loss,
        steps,
        order,
        &mask,
        Rates::PerStep(per_tensor),
        on_step,
    )
}

/// Plain, detached gradients of the support loss `loss` of `model` on `(x, y)` for the
/// parameters in `group`, keyed by `model`'s `ParamId`s (inner-backend tensors, as optimizers
/// take them). One ordinary backward pass; `model`'s own graph is left untouched.
pub fn support_gradients<B, M>(
    model: &M,
    x: Tensor<B, 4>,
    y: impl Into<Targets<B>>,
    group: ParamGroup,
    loss: &impl TaskLoss,
) -> GradientsParams
where
    B: AutodiffBackend,
    M: Backbone<B> + AutodiffModule<B>,
{
    let mask = group_mask(model, group);
    let ids: Vec<ParamId> = param_roles(model)
        .into_iter()
        .zip(&mask)
        .filter_map(|((id, _), &adapted)| adapted.then_some(id))
        .collect();
    let detached = model.fast_copy(0).map(&mut SetRequireGrad {
        mask: &mask,
        index: 0,
    });
    let mut grads = loss.loss(detached.forward(x), &y.into()).backward();
    GradientsParams::from_params(&mut grads, &detached, &ids)
}

/// Per-tensor flag (visit order): adapted or not.
fn group_mask<B: burn::tensor::backend::Backend, M: Backbone<B>>(
    model: &M,
    group: ParamGroup,
) -> Vec<bool> {
    param_roles(model)
        .into_iter()
        .map(|(_, role): (ParamId, ParamRole)| group.contains(role))
        .collect()
}

enum Rates<B: AutodiffBackend> {
    Scalar(f64),
    PerParam(Vec<TensorPrimitive<B>>),
    /// A `[steps]` vector per tensor (visit order; `None` where not adapted).
    PerStep(Vec<Option<TensorPrimitive<B>>>),
}

/// What the inner loop feeds the network: images through the whole backbone, or features that
/// the body already computed through the head alone.
enum Input<B: Backend> {
    Images(Tensor<B, 4>),
    Features(Tensor<B, 2>),
}

impl<B: Backend> Input<B> {
    fn logits<M: Backbone<B>>(&self, model: &M) -> Tensor<B, 2> {
        match self {
            Input::Images(x) => model.forward(x.clone()),
            Input::Features(f) => model.head(f.clone()),
        }
    }
}

impl<B: AutodiffBackend> Input<B> {
    /// The same input one autodiff level up (still recorded on `B`'s tape).
    fn lift(&self) -> Input<Autodiff<B>> {
        match self {
            Input::Images(x) => Input::Images(Tensor::from_inner(x.clone())),
            Input::Features(f) => Input::Features(Tensor::from_inner(f.clone())),
        }
    }

    /// The same input as a constant of `B`'s tape: a first-order inner step must not
    /// back-propagate into the graph that the outer backward pass will use.
    fn detached(&self) -> Input<B> {
        match self {
            Input::Images(x) => Input::Images(x.clone()),
            Input::Features(f) => Input::Features(f.clone().detach()),
        }
    }
}

// The loop's inputs, its update rule and its observer; a struct would only rename them.
#[allow(clippy::too_many_arguments)]
fn run_inner_loop<B, M>(
    model: &M,
    input: Input<B>,
    y: &Targets<B>,
    loss: &impl TaskLoss,
    steps: usize,
    order: GradOrder,
    mask: &[bool],
    rates: Rates<B>,
    mut on_step: impl FnMut(usize, &M),
) -> M
where
    B: AutodiffBackend,
    M: AdaptableBackbone<B>,
{
    let mut current = model.fast_copy(0);
    for step in 0..steps {
        let grads = match order {
            GradOrder::Second => second_order_grads(&current, &input, y, loss, mask),
            GradOrder::First => first_order_grads(&current, &input, y, loss, mask),
        };
        current = current
            .map(&mut Update {
                grads,
                rates: &rates,
                step,
                index: 0,
            })
            .fast_copy(step + 1);
        on_step(step, &current);
    }
    current
}

/// Support gradients (visit order; `None` where not adapted) that are themselves recorded on
/// `B`'s tape.
fn second_order_grads<B, M>(
    current: &M,
    input: &Input<B>,
    y: &Targets<B>,
    loss: &impl TaskLoss,
    mask: &[bool],
) -> Vec<Option<TensorPrimitive<B>>>
where
    B: AutodiffBackend,
    M: AdaptableBackbone<B>,
{
    let lifted = M::Lifted::from_inner(current.clone()).map(&mut SetRequireGrad { mask, index: 0 });
    let logits = input.lift().logits(&lifted);
    let grads = loss.loss(logits, &y.lift()).backward();
    let mut out = Vec::with_capacity(mask.len());
    for_each_tensor(&lifted, |_, _, t| {
        let g = match (mask[out.len()], t) {
            (true, TensorPrimitive::Float(t)) => {
                <Autodiff<B> as AutodiffBackend>::grad(&t, &grads).map(TensorPrimitive::Float)
            }
            _ => None,
        };
        out.push(g);
    });
    out
}

/// Support gradients taken on a detached copy: constants for the outer tape.
fn first_order_grads<B, M>(
    current: &M,
    input: &Input<B>,
    y: &Targets<B>,
    loss: &impl TaskLoss,
    mask: &[bool],
) -> Vec<Option<TensorPrimitive<B>>>
where
    B: AutodiffBackend,
    M: Backbone<B>,
{
    let detached = current.clone().map(&mut SetRequireGrad { mask, index: 0 });
    let grads = loss
        .loss(input.detached().logits(&detached), &y.detach())
        .backward();
    let mut out = Vec::with_capacity(mask.len());
    for_each_tensor(&detached, |_, _, t| {
        let g = match (mask[out.len()], t) {
            (true, TensorPrimitive::Float(t)) => {
                B::grad(&t, &grads).map(|g| TensorPrimitive::Float(B::from_inner(g)))
            }
            _ => None,
        };
        out.push(g);
    });
    out
}

/// Detaches every tensor and marks those selected by `mask` (visit order) as leaves that
/// require a gradient.
struct SetRequireGrad<'a> {
    mask: &'a [bool],
    index: usize,
}

impl<B: AutodiffBackend> ModuleMapper<B> for SetRequireGrad<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        let flag = self.mask.get(self.index).copied().unwrap_or(false);
        self.index += 1;
        Param::from_mapped_value(id, tensor.detach().set_require_grad(flag), mapper)
    }
}

/// `θ ← θ − α g` for the tensors that have a gradient.
struct Update<'a, B: AutodiffBackend> {
    grads: Vec<Option<TensorPrimitive<B>>>,
    rates: &'a Rates<B>,
    step: usize,
    index: usize,
}

impl<B: AutodiffBackend> ModuleMapper<B> for Update<'_, B> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let index = self.index;
        self.index += 1;
        let Some(grad) = self.grads.get_mut(index).and_then(Option::take) else {
            return param;
        };
        let (id, theta, mapper) = param.consume();
        let grad = Tensor::<B, D>::from_primitive(grad);
        let step = match self.rates {
            Rates::Scalar(lr) => grad.mul_scalar(*lr),
            Rates::PerParam(rates) => grad * Tensor::<B, D>::from_primitive(rates[index].clone()),
            Rates::PerStep(rates) => {
                let Some(Some(r)) = rates.get(index) else {
                    return Param::from_mapped_value(id, theta, mapper);
                };
                let rate = Tensor::<B, 1>::from_primitive(r.clone())
                    .narrow(0, self.step, 1)
                    .reshape([1; D]);
                grad * rate
            }
        };
        Param::from_mapped_value(id, theta - step, mapper)
    }
}
