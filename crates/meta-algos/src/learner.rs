//! The trait every algorithm implements: meta-gradients on a batch of tasks, and adaptation to a
//! support set followed by prediction on queries.

use burn::module::AutodiffModule;
use burn::optim::GradientsParams;
use burn::tensor::{Tensor, backend::AutodiffBackend};
use meta_data::{Targets, Task};

/// Loss and accuracy averaged over the query sets of a meta-batch.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct StepStats {
    /// Mean query loss after adaptation (the algorithm's loss: cross-entropy for class labels
    /// by default, mean squared error for regression).
    pub loss: f64,
    /// Mean query accuracy after adaptation, in `[0, 1]`; NaN for regression tasks, whose
    /// score is the loss.
    pub accuracy: f64,
}

/// A model adapted to one task's support set, ready to label that task's queries.
pub trait Predictor<B: AutodiffBackend> {
    /// Outputs `[N, K]` for query inputs `[N, C, H, W]`: logits over the `ways` classes, or
    /// the predicted values of a regression task.
    fn predict(&self, x: Tensor<B, 4>) -> Tensor<B, 2>;
}

/// A meta-learning algorithm.
///
/// Besides the required methods, three provided methods feed checkpoints and the trainer; an
/// algorithm should override them (note to every algorithm author):
/// - [`config_json`](MetaLearner::config_json): the algorithm's config as JSON, stored in every
///   checkpoint header (so a run records its hyper-parameters);
/// - [`backbone_name`](MetaLearner::backbone_name): a short description of the backbone, e.g.
///   `"conv4-64"`; a checkpoint written with another backbone is refused on load;
/// - [`recommended_grad_clip`](MetaLearner::recommended_grad_clip): the global-norm clipping the
///   algorithm's paper uses (Meta Networks: 1.0), applied when the trainer's `grad_clip` is `auto`.
///
/// The trainer owns the meta-parameters (`Model`) and the outer optimizer; an algorithm only says
/// how to turn a meta-batch of tasks into (pseudo-)gradients for the meta-parameters, and how to
/// adapt the meta-parameters to a new task. Reptile returns the pseudo-gradient `Φ − W`, so that
/// an SGD outer step with rate ε gives `Φ + ε(W − Φ)`.
pub trait MetaLearner<B: AutodiffBackend>: Send {
    /// Everything meta-learned: backbone, learned learning rates, metric parameters, …
    type Model: AutodiffModule<B> + Clone + Send + core::fmt::Debug;
    /// A model adapted to one support set.
    type Adapted: Predictor<B>;

    /// Stable identifier stored in checkpoints, e.g. `"maml"`.
    fn name(&self) -> &'static str;

    /// Builds freshly initialised meta-parameters on `device`.
    fn init_model(&self, device: &B::Device) -> Self::Model;

    /// Gradients of the meta-objective over `tasks` with respect to `model`'s parameters, plus
    /// the query loss and accuracy that went into it.
    fn meta_gradients(
        &self,
        model: &Self::Model,
        tasks: &[Task<B>],
    ) -> (GradientsParams, StepStats);

    /// [`meta_gradients`](MetaLearner::meta_gradients) at meta-iteration `iteration` (0-based)
    /// of a run; what the trainer calls. Algorithms whose objective changes as training goes on
    /// (MAML++'s annealed multi-step loss and derivative order) override it; a function of
    /// `iteration` only, so a resumed run computes what the uninterrupted one did. Default: the
    /// same as `meta_gradients`.
    fn meta_gradients_at(
        &self,
        model: &Self::Model,
        tasks: &[Task<B>],
        iteration: u64,
    ) -> (GradientsParams, StepStats) {
        let _ = iteration;
        self.meta_gradients(model, tasks)
    }

    /// Adapts `model` to a support set (test-time inner steps for the MAML family, prototypes for
    /// metric methods).
    fn adapt(
        &self,
        model: &Self::Model,
        support_x: Tensor<B, 4>,
        support_y: Targets<B>,
        ways: usize,
    ) -> Self::Adapted;

    /// Whether the algorithm meta-trains and adapts on regression tasks (real-valued targets).
    /// The trainer and the evaluation refuse regression tasks, naming the algorithm, where it
    /// is false. Default: `false`.
    fn supports_regression(&self) -> bool {
        false
    }

    /// The models along the test-time adaptation to a support set: after 0, 1, …, `steps`
    /// inner steps (`steps + 1` entries), for error-versus-steps curves; `None` for
    /// algorithms without an inner loop of steps. Default: `None`.
    fn adapt_trajectory(
        &self,
        model: &Self::Model,
        support_x: Tensor<B, 4>,
        support_y: Targets<B>,
        ways: usize,
        steps: usize,
    ) -> Option<Vec<Self::Adapted>> {
        let _ = (model, support_x, support_y, ways, steps);
        None
    }

    /// The algorithm's configuration as JSON, recorded in checkpoint headers. Default: `null`.
    fn config_json(&self) -> serde_json::Value {
        serde_json::Value::Null
    }

    /// A short description of the backbone, recorded in checkpoint headers and compared on load.
    /// Default: `"unspecified"`.
    fn backbone_name(&self) -> String {
        "unspecified".to_string()
    }

    /// Inner-loop steps that [`adapt`](MetaLearner::adapt) takes on a support set; `None` for
    /// algorithms without an inner loop (metric methods, Meta Networks). Default: `None`.
    fn test_inner_steps(&self) -> Option<usize> {
        None
    }

    /// Checks, before the first meta-iteration, that `model` can be meta-trained by this
    /// algorithm on tasks like `task` (the MAML family: that its inner loop has parameters to
    /// adapt, and that an exact second-order inner loop can differentiate through every layer);
    /// the error says what to change. The trainer calls it once, before seeding the iteration,
    /// so it does not change the run. Default: nothing to check.
    fn preflight(&self, model: &Self::Model, task: &Task<B>) -> crate::Result<()> {
        let _ = (model, task);
        Ok(())
    }

    /// Global-norm gradient clipping this algorithm is meant to train with (`None`: no
    /// clipping). Used when the trainer's `grad_clip` is `auto`. Default: `None`.
    fn recommended_grad_clip(&self) -> Option<f64> {
        None
    }
}
