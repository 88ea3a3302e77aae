//! Pieces shared by the MAML family (MAML, FOMAML, ANIL, BOIL, Reptile, MetaSGD): the learner
//! that MAML, FOMAML, ANIL and BOIL are variants of ([`MamlFamily`]), the adapted-model
//! predictor, backbone construction, and summing/scaling of per-task gradients so that each
//! task's graph is freed right after its backward pass.

use core::marker::PhantomData;

use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{ElementConversion, Tensor, backend::AutodiffBackend};
use meta_backbones::{
    AdaptableBackbone, Backbone, GradOrder, InnerLoop, Loss, ParamGroup, TaskLoss, adapt_head,
    adapt_trajectory, adapt_with_loss, score, step_dependent,
};
use meta_data::{Targets, Task};

use crate::factory::BackboneFactory;
use crate::learner::{MetaLearner, Predictor, StepStats};
use crate::maml::MamlConfig;

/// What tells MAML, FOMAML, ANIL and BOIL apart: their checkpoint name and the meta-training
/// inner loop's gradient order and adapted parameters. Implemented by one marker type per
/// algorithm ([`MamlKind`](crate::maml::MamlKind), [`FomamlKind`](crate::fomaml::FomamlKind),
/// [`AnilKind`](crate::anil::AnilKind), [`BoilKind`](crate::boil::BoilKind)).
pub trait MamlVariant: Send + Sync {
    /// Stable identifier stored in checkpoints, e.g. `"maml"`.
    const NAME: &'static str;
    /// Gradient order of the meta-training inner loop (test-time adaptation is first order).
    const ORDER: GradOrder;
    /// The parameters the inner loop adapts.
    const GROUP: ParamGroup;
}

/// A MAML-family learner over backbones built by `F`: inner-loop SGD on each task's support set
/// (order and parameters set by the variant `V`), meta-gradient of the mean query loss after
/// adaptation, both losses `L` (the configuration's [`Loss`] unless set by
/// [`with_loss`](Self::with_loss)). [`Maml`](crate::Maml), [`Fomaml`](crate::Fomaml),
/// [`Anil`](crate::Anil) and [`Boil`](crate::Boil) are aliases of it.
#[derive(Debug, Clone)]
pub struct MamlFamily<F, V, L = Loss> {
    factory: F,
    config: MamlConfig,
    loss: L,
    variant: PhantomData<V>,
}

impl<F, V: MamlVariant> MamlFamily<F, V> {
    /// The algorithm with `config` over backbones built by `factory`.
    pub fn new(factory: F, config: MamlConfig) -> Self {
        Self {
            factory,
            loss: config.loss,
            config,
            variant: PhantomData,
        }
    }
}

impl<F, V: MamlVariant, L: TaskLoss> MamlFamily<F, V, L> {
    /// The same algorithm minimising `loss` in its inner and outer loops (replacing the
    /// configuration's `loss`; checkpoints record `loss.name()`).
    pub fn with_loss<L2: TaskLoss>(self, loss: L2) -> MamlFamily<F, V, L2> {
        MamlFamily {
            factory: self.factory,
            config: self.config,
            loss,
            variant: PhantomData,
        }
    }

    /// The loss of the inner and outer loops.
    pub fn loss(&self) -> &L {
        &self.loss
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &MamlConfig {
        &self.config
    }

    /// The inner loop used during meta-training (the variant's order and parameter group).
    pub fn train_inner_loop(&self) -> InnerLoop {
        InnerLoop {
            steps: self.config.inner_steps_train,
            lr: self.config.inner_lr,
            order: V::ORDER,
            group: V::GROUP,
        }
    }

    /// The inner loop used at test time (the variant's parameter group). First order: the
    /// adapted weights are the same, and no meta-gradient is taken through them.
    pub fn test_inner_loop(&self) -> InnerLoop {
        InnerLoop {
            steps: self.config.inner_steps_test,
            order: GradOrder::First,
            ..self.train_inner_loop()
        }
    }
}

impl<B, F, M, V, L> MetaLearner<B> for MamlFamily<F, V, L>
where
    B: AutodiffBackend,
    F: BackboneFactory<B, Net = M>,
    M: AdaptableBackbone<B>,
    V: MamlVariant,
    L: TaskLoss,
{
    type Model = M;
    type Adapted = AdaptedModel<M>;

    fn name(&self) -> &'static str {
        V::NAME
    }

    fn config_json(&self) -> serde_json::Value {
        let mut json = config_json(&self.config);
        if let Some(map) = json.as_object_mut() {
            map.insert("loss".into(), self.loss.name().into());
        }
        json
    }

    fn test_inner_steps(&self) -> Option<usize> {
        Some(self.config.inner_steps_test)
    }

    fn backbone_name(&self) -> String {
        self.factory.name()
    }

    fn supports_regression(&self) -> bool {
        true
    }

    fn init_model(&self, device: &B::Device) -> M {
        build_initialised(&self.factory, device)
    }

    fn preflight(&self, model: &M, task: &Task<B>) -> crate::Result<()> {
        crate::preflight::check_loss(V::NAME, &self.loss, model, task)?;
        crate::preflight::check_group(V::NAME, model, V::GROUP)?;
        crate::preflight::check_second_order(V::NAME, model, task, &self.train_inner_loop())
    }

    fn meta_gradients(&self, model: &M, tasks: &[Task<B>]) -> (GradientsParams, StepStats) {
        let inner = self.train_inner_loop();
        // A head-only inner loop (ANIL) over a step-independent body needs the body's features
        // once per task, not once per inner step.
        let cache_features = V::GROUP == ParamGroup::Head && !step_dependent(model);
        mean_over_tasks::<B, M, _>(model, tasks.len(), |i| {
            let task = &tasks[i];
            let logits = if cache_features {
                // A fast copy, as `adapt` uses: the meta-model's running statistics stay put.
                let support = model.fast_copy(0).embed(task.support_x.clone());
                let adapted =
                    adapt_head(model, support, task.support_y.clone(), &inner, &self.loss);
                adapted.forward(task.query_x.clone())
            } else {
                let adapted = adapt_with_loss(
                    model,
                    task.support_x.clone(),
                    task.support_y.clone(),
                    &inner,
                    &self.loss,
                );
                adapted.forward(task.query_x.clone())
            };
            query_gradients(model, logits, task, &self.loss)
        })
    }

    fn adapt(
        &self,
        model: &M,
        support_x: Tensor<B, 4>,
        support_y: Targets<B>,
        _ways: usize,
    ) -> AdaptedModel<M> {
        AdaptedModel {
            // Test-time adaptation needs no meta-gradient: adapting untracked parameters keeps
            // the outer autodiff graph from growing episode after episode.
            model: adapt_with_loss(
                &model.clone().no_grad(),
                support_x,
                support_y,
                &self.test_inner_loop(),
                &self.loss,
            ),
        }
    }

    fn adapt_trajectory(
        &self,
        model: &M,
        support_x: Tensor<B, 4>,
        support_y: Targets<B>,
        _ways: usize,
        steps: usize,
    ) -> Option<Vec<AdaptedModel<M>>> {
        let inner = InnerLoop {
            steps,
            ..self.test_inner_loop()
        };
        Some(trajectory(model, support_x, support_y, &inner, &self.loss))
    }
}

/// An algorithm's config as checkpoint JSON (`null` if it cannot be serialised).
pub(crate) fn config_json<C: serde::Serialize>(config: &C) -> serde_json::Value {
    serde_json::to_value(config).unwrap_or(serde_json::Value::Null)
}

/// A backbone from `factory` with every lazily-initialised parameter initialised now.
pub(crate) fn build_initialised<B, F>(factory: &F, device: &B::Device) -> F::Net
where
    B: AutodiffBackend,
    F: BackboneFactory<B>,
{
    let model = factory.build(device);
    meta_backbones::params::force_init(&model);
    model
}

/// The value of a one-element tensor as `f64`.
pub(crate) fn scalar<B: burn::tensor::backend::Backend>(t: Tensor<B, 1>) -> f64 {
    t.into_scalar().elem::<f64>()
}

/// [`adapt_trajectory`] of an untracked copy of `model` (no outer graph grows across test
/// episodes), as adapted models.
pub(crate) fn trajectory<B: AutodiffBackend, M: AdaptableBackbone<B>>(
    model: &M,
    support_x: Tensor<B, 4>,
    support_y: Targets<B>,
    inner: &InnerLoop,
    loss: &impl TaskLoss,
) -> Vec<AdaptedModel<M>> {
    let models = adapt_trajectory(&model.clone().no_grad(), support_x, support_y, inner, loss);
    models
        .into_iter()
        .map(|model| AdaptedModel { model })
        .collect()
}

/// Query accuracy of `outputs` for class labels; NaN for real-valued targets (a regression
/// task's score is its loss).
pub(crate) fn query_accuracy<B: burn::tensor::backend::Backend>(
    outputs: Tensor<B, 2>,
    targets: &Targets<B>,
) -> f64 {
    match targets {
        Targets::Classes(_) => score(outputs, targets),
        Targets::Values(_) => f64::NAN,
    }
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
    model.visit(&mut Sum { acc, new: &mut new });
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
    crate::grad_norm::scale_grads::<B, M>(model, &mut acc, 1.0 / denom);
    (
        acc,
        crate::StepStats {
            loss: loss / denom,
            accuracy: accuracy / denom,
        },
    )
}

/// Meta-gradient contribution of one task: the query loss `loss` of `logits` (the adapted
/// model's query outputs, a function of `model`'s parameters when adapted with second order),
/// back-propagated to the ORIGINAL meta-model `model`. Returns the gradients, the query loss
/// and the query accuracy ([`query_accuracy`]).
pub(crate) fn query_gradients<B, P>(
    model: &P,
    logits: Tensor<B, 2>,
    task: &Task<B>,
    loss: &impl TaskLoss,
) -> (GradientsParams, f64, f64)
where
    B: AutodiffBackend,
    P: AutodiffModule<B>,
{
    let acc = query_accuracy(logits.clone().detach(), &task.query_y);
    let loss = loss.loss(logits, &task.query_y);
    let value = scalar(loss.clone().detach());
    (
        GradientsParams::from_grads(loss.backward(), model),
        value,
        acc,
    )
}

/// A tiny tanh MLP backbone, tasks and parameter flattening for the MAML-family unit tests.
#[cfg(test)]
pub(crate) mod test_util {
    use burn::backend::{Autodiff, Flex};
    use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
    use burn::tensor::{Distribution, Int, Tensor, TensorData, backend::Backend};
    use meta_backbones::Backbone;
    use meta_data::Task;

    use crate::factory::FnFactory;

    pub type TB = Autodiff<Flex>;

    /// `y = x W + b` (matmul + add: double-backward safe).
    #[derive(Module, Debug)]
    pub struct Dense<B: Backend> {
        pub weight: Param<Tensor<B, 2>>,
        pub bias: Param<Tensor<B, 1>>,
    }

    impl<B: Backend> Dense<B> {
        fn new(d_in: usize, d_out: usize, device: &B::Device) -> Self {
            let w = meta_backbones::rng::random(
                [d_in, d_out],
                Distribution::Uniform(-0.8, 0.8),
                device,
            );
            let b = meta_backbones::rng::random([d_out], Distribution::Uniform(-0.3, 0.3), device);
            Self {
                weight: Param::from_tensor(w),
                bias: Param::from_tensor(b),
            }
        }
        fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
            x.matmul(self.weight.val()) + self.bias.val().unsqueeze_dim(0)
        }
    }

    /// Flatten `[N, 1, 2, 2]` → tanh(Dense 4→5) → Dense 5→3.
    #[derive(Module, Debug)]
    pub struct TinyNet<B: Backend> {
        pub body: Dense<B>,
        pub head: Dense<B>,
    }

    impl<B: Backend> Backbone<B> for TinyNet<B> {
        fn embed(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
            let n = x.dims()[0];
            self.body.forward(x.reshape([n, 4])).tanh()
        }
        fn head(&self, features: Tensor<B, 2>) -> Tensor<B, 2> {
            self.head.forward(features)
        }
        fn feature_dim(&self) -> usize {
            5
        }
        fn num_classes(&self) -> usize {
            3
        }
    }

    pub fn factory() -> FnFactory<TB, TinyNet<TB>> {
        FnFactory::new("tiny-mlp", |device| TinyNet {
            body: Dense::new(4, 5, device),
            head: Dense::new(5, 3, device),
        })
    }

    /// A 3-way 2-shot 2-query task of random 2×2 images, labels grouped by class.
    pub fn task(device: &burn::backend::flex::FlexDevice) -> Task<TB> {
        let labels = || {
            Tensor::<TB, 1, Int>::from_data(TensorData::new(vec![0i64, 0, 1, 1, 2, 2], [6]), device)
                .into()
        };
        let images = || {
            meta_backbones::rng::random::<TB, 4>(
                [6, 1, 2, 2],
                Distribution::Normal(0.0, 1.0),
                device,
            )
        };
        Task {
            ways: 3,
            support_x: images(),
            support_y: labels(),
            query_x: images(),
            query_y: labels(),
            classes: Vec::new(),
        }
    }

    /// Every float tensor of `module` flattened, in visit order.
    pub fn flat<B: Backend, M: Module<B>>(module: &M) -> Vec<f64> {
        struct V(Vec<f64>);
        impl<B: Backend> ModuleVisitor<B> for V {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
                self.0.extend(param.val().to_data().iter::<f64>());
            }
        }
        let mut v = V(Vec::new());
        module.visit(&mut v);
        v.0
    }

    /// `module` with its float tensors replaced by `values` (visit order), `ParamId`s kept.
    pub fn with_flat<B: Backend, M: Module<B>>(module: M, values: &[f64]) -> M {
        struct Set<'a>(&'a [f64], usize);
        impl<B: Backend> ModuleMapper<B> for Set<'_> {
            fn map_float<const D: usize>(
                &mut self,
                param: Param<Tensor<B, D>>,
            ) -> Param<Tensor<B, D>> {
                let (id, t, mapper) = param.consume();
                let (shape, device) = (t.shape(), t.device());
                let n = shape.num_elements();
                let data: Vec<f32> = self.0[self.1..self.1 + n]
                    .iter()
                    .map(|&v| v as f32)
                    .collect();
                self.1 += n;
                let t = Tensor::from_data(TensorData::new(data, shape), &device)
                    .set_require_grad(t.is_require_grad());
                Param::from_mapped_value(id, t, mapper)
            }
        }
        module.map(&mut Set(values, 0))
    }

    /// `grads` flattened in `module`'s visit order (0 where a tensor has no gradient).
    pub fn flat_grads<M: Module<TB>>(module: &M, grads: &burn::optim::GradientsParams) -> Vec<f64> {
        struct V<'a>(&'a burn::optim::GradientsParams, Vec<f64>);
        impl ModuleVisitor<TB> for V<'_> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<TB, D>>) {
                match self.0.get::<Flex, D>(param.id) {
                    Some(g) => self.1.extend(g.to_data().iter::<f64>()),
                    None => self
                        .1
                        .extend(std::iter::repeat_n(0.0, param.val().shape().num_elements())),
                }
            }
        }
        let mut v = V(grads, Vec::new());
        module.visit(&mut v);
        v.1
    }

    /// ‖a − b‖ / ‖b‖.
    pub fn rel_err(a: &[f64], b: &[f64]) -> f64 {
        let num: f64 = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).powi(2))
            .sum::<f64>()
            .sqrt();
        let den: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt();
        num / den.max(1e-30)
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::{TB, factory};
    use super::{MamlFamily, MamlVariant};
    use crate::{Anil, Boil, Fomaml, Maml, MamlConfig, MetaLearner};
    use meta_backbones::{GradOrder, InnerLoop, ParamGroup};

    /// `V`'s checkpoint name and config JSON, and its train/test inner loops for the defaults.
    fn check<V: MamlVariant>(
        learner: MamlFamily<crate::FnFactory<TB, super::test_util::TinyNet<TB>>, V>,
        name: &str,
        order: GradOrder,
        group: ParamGroup,
    ) {
        assert_eq!(MetaLearner::<TB>::name(&learner), name);
        assert_eq!(
            MetaLearner::<TB>::config_json(&learner),
            serde_json::json!({
                "inner_lr": 0.4, "inner_steps_train": 1, "inner_steps_test": 10, "loss": "auto"
            })
        );
        assert_eq!(MetaLearner::<TB>::backbone_name(&learner), "tiny-mlp");
        let inner = |steps, order| InnerLoop {
            steps,
            lr: 0.4,
            order,
            group,
        };
        assert_eq!(learner.train_inner_loop(), inner(1, order), "{name}");
        assert_eq!(
            learner.test_inner_loop(),
            inner(10, GradOrder::First),
            "{name}"
        );
    }

    #[test]
    fn variants_keep_their_checkpoint_names_configs_and_inner_loops() {
        let config = MamlConfig::default();
        check(
            Maml::new(factory(), config.clone()),
            "maml",
            GradOrder::Second,
            ParamGroup::All,
        );
        check(
            Fomaml::new(factory(), config.clone()),
            "fomaml",
            GradOrder::First,
            ParamGroup::All,
        );
        check(
            Anil::new(factory(), config.clone()),
            "anil",
            GradOrder::Second,
            ParamGroup::Head,
        );
        check(
            Boil::new(factory(), config),
            "boil",
            GradOrder::Second,
            ParamGroup::Body,
        );
    }
}
