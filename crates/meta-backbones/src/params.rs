//! Walking a backbone's tensors in visit order: roles (head / body / state), forced
//! initialisation, and differences of two modules' parameters (Reptile).

use burn::module::{AutodiffModule, Module, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorMetadata, TensorPrimitive};

use crate::backbone::{Backbone, ParamRole};

/// Visits every float tensor of a module, in the module's visit order, with its path.
struct PathVisitor<F> {
    path: Vec<String>,
    f: F,
}

impl<B: Backend, F: FnMut(&[String], ParamId, TensorPrimitive<B>)> ModuleVisitor<B>
    for PathVisitor<F>
{
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        (self.f)(&self.path, param.id, param.val().into_primitive());
    }
}

/// Calls `f(path, id, tensor)` for every float tensor of `module` in visit order (the order
/// that `Module::map` also follows). Reading each tensor forces lazy initialisation.
pub(crate) fn for_each_tensor<B: Backend, M: Module<B>>(
    module: &M,
    f: impl FnMut(&[String], ParamId, TensorPrimitive<B>),
) {
    let mut visitor = PathVisitor {
        path: Vec::new(),
        f,
    };
    module.visit(&mut visitor);
}

/// `(id, role)` of every float tensor of `model`, in visit order.
pub fn param_roles<B: Backend, M: Backbone<B>>(model: &M) -> Vec<(ParamId, ParamRole)> {
    let mut out = Vec::new();
    for_each_tensor(model, |path, id, _| out.push((id, M::param_role(path))));
    out
}

/// `(path, role)` of every float tensor of `model`, in visit order: the field names from the
/// backbone's root to the tensor (e.g. `["blocks", "0", "bn", "gamma"]`) and its role.
pub fn param_paths<B: Backend, M: Backbone<B>>(model: &M) -> Vec<(Vec<String>, ParamRole)> {
    let mut out = Vec::new();
    for_each_tensor(model, |path, _, _| {
        out.push((path.to_vec(), M::param_role(path)))
    });
    out
}

/// Whether `model`'s forward pass depends on the inner step it is copied for
/// ([`Backbone::fast_copy`]): true when some `[slots, channels]` state tensor holds more than
/// one slot (MAML++ per-step batch-norm). Inner loops may cache body features only when this is false.
pub fn step_dependent<B: Backend, M: Backbone<B>>(model: &M) -> bool {
    let mut per_step = false;
    for_each_tensor(model, |path, _, t| {
        let dims = t.shape().to_vec();
        per_step |= M::param_role(path) == ParamRole::State && dims.len() == 2 && dims[0] > 1;
    });
    per_step
}

/// Initialises every lazily-initialised parameter of `module` now (docs/architecture.md §3: clones of a
/// never-read module would otherwise each draw their own random initialisation).
pub fn force_init<B: Backend, M: Module<B>>(module: &M) {
    for_each_tensor(module, |_, _, _| {});
}

/// `a − b` for every trainable parameter (state excluded), keyed by `a`'s `ParamId`s, as
/// detached inner-backend tensors — the form an optimizer takes.
///
/// Reptile's pseudo-gradient is `param_difference(&phi, &adapted)` (= Φ − W): an SGD step
/// with rate ε on it gives Φ + ε(W − Φ). Parameters are paired by visit order, so `a` and `b`
/// must have the same architecture (e.g. `b` adapted from `a`).
///
/// # Panics
/// If `a` and `b` do not have the same number of tensors.
pub fn param_difference<B: AutodiffBackend, M: Backbone<B> + AutodiffModule<B>>(
    a: &M,
    b: &M,
) -> GradientsParams {
    let mut b_tensors = Vec::new();
    for_each_tensor(b, |_, _, t| b_tensors.push(t));
    let mut grads = GradientsParams::new();
    let mut visitor = DiffVisitor::<B> {
        path: Vec::new(),
        index: 0,
        others: b_tensors,
        grads: &mut grads,
        role: M::param_role,
    };
    a.visit(&mut visitor);
    assert_eq!(
        visitor.index,
        visitor.others.len(),
        "modules differ in tensor count"
    );
    grads
}

struct DiffVisitor<'a, B: Backend> {
    path: Vec<String>,
    index: usize,
    others: Vec<TensorPrimitive<B>>,
    grads: &'a mut GradientsParams,
    role: fn(&[String]) -> ParamRole,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for DiffVisitor<'_, B> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let other = self
            .others
            .get(self.index)
            .cloned()
            .expect("modules differ in tensor count");
        self.index += 1;
        if (self.role)(&self.path) == ParamRole::State {
            return;
        }
        let other = Tensor::<B, D>::from_primitive(other).inner();
        self.grads
            .register::<B::InnerBackend, D>(param.id, param.val().inner() - other);
    }
}
