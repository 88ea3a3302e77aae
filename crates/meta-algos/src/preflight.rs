//! Checks run before the first meta-iteration, so that a backbone an algorithm cannot train
//! fails at once with a message that says what to change, not with a panic deep inside a
//! meta-gradient or with an inner loop that silently adapts nothing.

use std::panic::{AssertUnwindSafe, catch_unwind};

use burn::tensor::backend::AutodiffBackend;
use meta_backbones::{
    AdaptableBackbone, Backbone, GradOrder, InnerLoop, Loss, ParamGroup, Targets, TaskLoss, adapt,
    param_roles,
};
use meta_data::Task;

use crate::error::{AlgoError, Result};

/// burn 0.21 operations without a second backward pass, and what to use instead
/// (docs/architecture.md §3).
pub const NOT_TWICE_DIFFERENTIABLE: &str = "burn 0.21's fused `nn::Linear` / `module::linear`, \
     `max_pool2d`, `avg_pool2d`, `adaptive_avg_pool2d`, `interpolate` and `embedding` cannot be \
     differentiated twice: build the backbone from `meta_backbones::Linear` (matmul + add), \
     `meta_backbones::pool` (reshape + max/mean) and `meta_backbones::BatchNorm`, or train it with \
     a first-order algorithm (fomaml, reptile) or a metric one (protonet, matchingnet)";

/// Refuses a loss that cannot compare outputs with `task`'s kind of targets, and real-valued
/// targets of another width than `model`'s outputs.
pub fn check_loss<B: AutodiffBackend, M: Backbone<B>>(
    algo: &'static str,
    loss: &impl TaskLoss,
    model: &M,
    task: &Task<B>,
) -> Result<()> {
    loss.check(task.is_regression())
        .map_err(|why| AlgoError::InvalidConfig(format!("{algo}: {why}")))?;
    if let Targets::Values(values) = &task.support_y {
        let width = values.dims()[1];
        if model.num_classes() != width {
            return Err(AlgoError::InvalidConfig(format!(
                "{algo}: the tasks have {width} real-valued target(s) per point but the \
                 backbone has {} outputs: build it with {width} output(s) (the CLI sets \
                 num_classes from the data set)",
                model.num_classes()
            )));
        }
    }
    Ok(())
}

/// Refuses regression tasks for an algorithm that only classifies.
pub fn check_task_kind<B: burn::tensor::backend::Backend>(
    algo: &str,
    supports_regression: bool,
    task: &Task<B>,
) -> Result<()> {
    if task.is_regression() && !supports_regression {
        return Err(AlgoError::RegressionUnsupported {
            algo: algo.to_string(),
        });
    }
    Ok(())
}

/// Refuses an inner loop whose parameter group `group` holds no parameter of `model`.
pub fn check_group<B: AutodiffBackend, M: Backbone<B>>(
    algo: &'static str,
    model: &M,
    group: ParamGroup,
) -> Result<()> {
    let roles = param_roles(model);
    if roles.iter().any(|(_, role)| group.contains(*role)) {
        return Ok(());
    }
    let reason = match group {
        ParamGroup::Head => {
            "its inner loop adapts the head, but no parameter is under a top-level field named \
             `head`: name the classifier field `head`, or override `Backbone::param_role` to \
             say which parameters form the head"
        }
        ParamGroup::Body => {
            "its inner loop adapts the body, but every parameter belongs to the head: the \
             backbone needs a feature extractor outside its `head` field (see \
             `Backbone::param_role`)"
        }
        ParamGroup::All => "the backbone has no trainable parameters",
    };
    Err(AlgoError::UnsuitableBackbone {
        algo,
        reason: reason.into(),
    })
}

/// Runs one exact second-order inner step of `inner` on `task`'s support set and back-propagates
/// a loss of the adapted model, turning a panic of an operation that cannot be differentiated
/// twice into an error naming the layers to use instead.
pub fn check_second_order<B: AutodiffBackend, M: AdaptableBackbone<B>>(
    algo: &'static str,
    model: &M,
    task: &Task<B>,
    inner: &InnerLoop,
) -> Result<()> {
    if inner.order != GradOrder::Second || inner.steps == 0 {
        return Ok(());
    }
    let one_step = InnerLoop { steps: 1, ..*inner };
    let run = || {
        let adapted = adapt(
            model,
            task.support_x.clone(),
            task.support_y.clone(),
            &one_step,
        );
        let loss = Loss::Auto.loss(adapted.forward(task.support_x.clone()), &task.support_y);
        drop(loss.backward());
    };
    // The panic is reported as the error below; keep the default hook from printing it too.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let outcome = catch_unwind(AssertUnwindSafe(run));
    std::panic::set_hook(hook);
    outcome.map_err(|payload| {
        let what = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("a panic without a message");
        AlgoError::UnsuitableBackbone {
            algo,
            reason: format!(
                "exact second-order MAML differentiates the inner gradient once more, and an \
                 operation of this backbone cannot be (burn: \"{what}\"). \
                 {NOT_TWICE_DIFFERENTIABLE}"
            ),
        }
    })
}

#[cfg(test)]
mod tests {
    use burn::module::Module;
    use burn::tensor::{Tensor, backend::Backend};
    use meta_backbones::Backbone;

    use crate::factory::FnFactory;
    use crate::maml_family::test_util::{TB, factory, task};
    use crate::{
        AlgoError, Anil, Boil, Fomaml, Maml, MamlConfig, MetaLearner, MetaSgd, MetaSgdConfig,
        Trainer, TrainerConfig,
    };

    /// TinyNet's shape with burn's fused `nn::Linear` as the head: fine for first order, not
    /// differentiable twice.
    #[derive(Module, Debug)]
    struct FusedHead<B: Backend> {
        body: meta_backbones::Linear<B>,
        head: burn::nn::Linear<B>,
    }

    impl<B: Backend> Backbone<B> for FusedHead<B> {
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

    fn fused() -> FnFactory<TB, FusedHead<TB>> {
        FnFactory::new("fused-head", |device| FusedHead {
            body: meta_backbones::Linear::new(4, 5, device),
            head: burn::nn::LinearConfig::new(5, 3).init(device),
        })
    }

    /// TinyNet with its classifier under a field not named `head`.
    #[derive(Module, Debug)]
    struct Renamed<B: Backend> {
        body: meta_backbones::Linear<B>,
        classifier: meta_backbones::Linear<B>,
    }

    impl<B: Backend> Backbone<B> for Renamed<B> {
        fn embed(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
            let n = x.dims()[0];
            self.body.forward(x.reshape([n, 4])).tanh()
        }
        fn head(&self, features: Tensor<B, 2>) -> Tensor<B, 2> {
            self.classifier.forward(features)
        }
        fn feature_dim(&self) -> usize {
            5
        }
        fn num_classes(&self) -> usize {
            3
        }
    }

    fn renamed() -> FnFactory<TB, Renamed<TB>> {
        FnFactory::new("renamed-head", |device| Renamed {
            body: meta_backbones::Linear::new(4, 5, device),
            classifier: meta_backbones::Linear::new(5, 3, device),
        })
    }

    /// One trainer step of `learner`: the preflight runs before it.
    fn first_step<L: MetaLearner<TB>>(learner: L) -> crate::Result<()> {
        let device = Default::default();
        let config = TrainerConfig {
            iterations: 1,
            meta_batch: 1,
            ..TrainerConfig::default()
        };
        let mut trainer = Trainer::<TB, _>::new(learner, config, &device)?;
        trainer.step_tasks(&[task(&device)]).map(|_| ())
    }

    fn reason(result: crate::Result<()>) -> String {
        match result {
            Err(AlgoError::UnsuitableBackbone { reason, .. }) => reason,
            other => panic!("expected an unsuitable-backbone error, got {other:?}"),
        }
    }

    #[test]
    fn a_fused_linear_under_exact_second_order_fails_early_naming_the_fix() {
        let cfg = MamlConfig::default;
        for result in [
            first_step(Maml::new(fused(), cfg())),
            first_step(MetaSgd::new(fused(), MetaSgdConfig::default())),
        ] {
            let reason = reason(result);
            assert!(
                reason.contains("meta_backbones::Linear") && reason.contains("nn::Linear"),
                "{reason}"
            );
        }
        // Controls: first order takes no second backward, and the safe layers pass.
        first_step(Fomaml::new(fused(), cfg())).expect("FOMAML with nn::Linear");
        first_step(Maml::new(factory(), cfg())).expect("MAML with meta_backbones layers");
    }

    #[test]
    fn anil_and_boil_refuse_an_empty_parameter_group() {
        let cfg = MamlConfig::default;
        let reason = reason(first_step(Anil::new(renamed(), cfg())));
        assert!(
            reason.contains("`head`") && reason.contains("param_role"),
            "{reason}"
        );
        // The same backbone is fine where every parameter is adapted, or only the body.
        first_step(Maml::new(renamed(), cfg())).expect("MAML adapts everything");
        first_step(Boil::new(renamed(), cfg())).expect("BOIL adapts the body");
        first_step(Anil::new(factory(), cfg())).expect("ANIL with a `head` field");
    }
}
