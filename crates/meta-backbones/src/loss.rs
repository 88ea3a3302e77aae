//! What a task's outputs are compared with ([`Targets`]), the losses the inner and outer loops
//! minimise ([`TaskLoss`], [`Loss`]), and the per-task score ([`accuracy`], [`mse`]); all
//! written from double-backward-safe operations.

use burn::backend::Autodiff;
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Int, Tensor, backend::Backend};
use serde::{Deserialize, Serialize};

/// The targets of a set of examples: class indices (classification) or real values
/// (regression).
#[derive(Debug, Clone)]
pub enum Targets<B: Backend> {
    /// `[N]` class indices in `0..K`.
    Classes(Tensor<B, 1, Int>),
    /// `[N, D]` real values.
    Values(Tensor<B, 2>),
}

impl<B: Backend> From<Tensor<B, 1, Int>> for Targets<B> {
    fn from(labels: Tensor<B, 1, Int>) -> Self {
        Targets::Classes(labels)
    }
}

impl<B: Backend> From<Tensor<B, 2>> for Targets<B> {
    fn from(values: Tensor<B, 2>) -> Self {
        Targets::Values(values)
    }
}

impl<B: Backend> Targets<B> {
    /// Number of examples `N`.
    pub fn len(&self) -> usize {
        match self {
            Targets::Classes(t) => t.dims()[0],
            Targets::Values(t) => t.dims()[0],
        }
    }

    /// Whether there are no examples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether these are real values (a regression task).
    pub fn is_regression(&self) -> bool {
        matches!(self, Targets::Values(_))
    }

    /// The class indices.
    ///
    /// # Panics
    /// On regression targets. Classification-only algorithms never see them: the trainer and
    /// the evaluation refuse regression tasks for algorithms whose
    /// `MetaLearner::supports_regression` is false, naming the algorithm.
    pub fn labels(&self) -> Tensor<B, 1, Int> {
        match self {
            Targets::Classes(t) => t.clone(),
            Targets::Values(_) => {
                panic!("class labels asked of a regression task (real-valued targets)")
            }
        }
    }

    /// The rows `indices` (`[M]` row numbers), in that order.
    pub fn select(&self, indices: Tensor<B, 1, Int>) -> Self {
        match self {
            Targets::Classes(t) => Targets::Classes(t.clone().select(0, indices)),
            Targets::Values(t) => Targets::Values(t.clone().select(0, indices)),
        }
    }

    /// `self`'s rows followed by `other`'s.
    ///
    /// # Panics
    /// If one holds labels and the other values.
    pub fn cat(&self, other: &Self) -> Self {
        match (self, other) {
            (Targets::Classes(a), Targets::Classes(b)) => {
                Targets::Classes(Tensor::cat(vec![a.clone(), b.clone()], 0))
            }
            (Targets::Values(a), Targets::Values(b)) => {
                Targets::Values(Tensor::cat(vec![a.clone(), b.clone()], 0))
            }
            _ => panic!("Targets::cat: labels and real values cannot be concatenated"),
        }
    }

    /// The targets as a constant (no gradient flows into them).
    pub fn detach(&self) -> Self {
        match self {
            Targets::Classes(t) => Targets::Classes(t.clone()),
            Targets::Values(t) => Targets::Values(t.clone().detach()),
        }
    }
}

impl<B: AutodiffBackend> Targets<B> {
    /// The same targets one autodiff level up.
    pub fn lift(&self) -> Targets<Autodiff<B>> {
        match self {
            Targets::Classes(t) => Targets::Classes(Tensor::from_inner(t.clone())),
            Targets::Values(t) => Targets::Values(Tensor::from_inner(t.clone())),
        }
    }

    /// The same targets on the inner backend.
    pub fn inner(&self) -> Targets<B::InnerBackend> {
        match self {
            Targets::Classes(t) => Targets::Classes(t.clone().inner()),
            Targets::Values(t) => Targets::Values(t.clone().inner()),
        }
    }
}

/// A loss of a network's outputs `[N, K]` against [`Targets`], usable in an inner loop that is
/// itself differentiated (build it from double-backward-safe tensor operations, as
/// [`cross_entropy`] and [`mse`] are).
///
/// Implement it to meta-train with your own loss (e.g. a weighted or robust one): the MAML
/// family's inner and outer loops call it at every backend level they run on.
///
/// ```
/// use burn::tensor::{Tensor, backend::Backend};
/// use meta_backbones::{Targets, TaskLoss};
///
/// /// Mean absolute error (regression only).
/// #[derive(Debug, Clone, Copy)]
/// struct Mae;
///
/// impl TaskLoss for Mae {
///     fn name(&self) -> String {
///         "mae".into()
///     }
///     fn check(&self, targets_are_values: bool) -> Result<(), String> {
///         if targets_are_values { Ok(()) } else { Err("mae needs real-valued targets".into()) }
///     }
///     fn loss<B: Backend>(&self, outputs: Tensor<B, 2>, targets: &Targets<B>) -> Tensor<B, 1> {
///         match targets {
///             Targets::Values(t) => (outputs - t.clone()).abs().mean(),
///             Targets::Classes(_) => unreachable!("refused by check"),
///         }
///     }
/// }
/// ```
pub trait TaskLoss: core::fmt::Debug + Send + Sync {
    /// A short name, recorded in checkpoint headers and the resolved configuration.
    fn name(&self) -> String;
    /// Whether the loss can compare outputs with targets of this kind (`true`: real values,
    /// `false`: class indices); the error says what to use instead. Called before training.
    fn check(&self, targets_are_values: bool) -> Result<(), String>;
    /// The scalar loss `[1]` of `outputs` `[N, K]` against `targets` (`N` rows).
    fn loss<B: Backend>(&self, outputs: Tensor<B, 2>, targets: &Targets<B>) -> Tensor<B, 1>;
}

/// The built-in losses, chosen by name in a configuration (`loss = "mse"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// Cross-entropy for class labels, mean squared error for real values.
    #[default]
    Auto,
    /// Mean cross-entropy of logits against class labels ([`cross_entropy`]).
    CrossEntropy,
    /// Mean squared error against real values, or against the one-hot encoding of class
    /// labels ([`mse`]).
    Mse,
}

impl TaskLoss for Loss {
    fn name(&self) -> String {
        match self {
            Loss::Auto => "auto",
            Loss::CrossEntropy => "cross_entropy",
            Loss::Mse => "mse",
        }
        .to_string()
    }

    fn check(&self, targets_are_values: bool) -> Result<(), String> {
        if *self == Loss::CrossEntropy && targets_are_values {
            return Err(
                "loss \"cross_entropy\" needs class labels, but these tasks have \
                        real-valued targets: use loss = \"mse\" (or \"auto\")"
                    .into(),
            );
        }
        Ok(())
    }

    fn loss<B: Backend>(&self, outputs: Tensor<B, 2>, targets: &Targets<B>) -> Tensor<B, 1> {
        match (self, targets) {
            (Loss::CrossEntropy, Targets::Values(_)) => {
                panic!("{}", self.check(true).unwrap_err())
            }
            (Loss::Auto | Loss::CrossEntropy, Targets::Classes(y)) => {
                cross_entropy(outputs, y.clone())
            }
            (_, t) => mse(outputs, t),
        }
    }
}

/// Mean cross-entropy of `logits` `[N, K]` against class indices `targets` `[N]`.
///
/// Composed of `log_softmax` (max-shift, exp, sum, log) and a one-hot product, all of which
/// support a second backward pass, so it can sit inside a differentiated inner loop.
pub fn cross_entropy<B: Backend>(logits: Tensor<B, 2>, targets: Tensor<B, 1, Int>) -> Tensor<B, 1> {
    let [n, k] = logits.dims();
    let one_hot = targets.one_hot(k).float().cast(logits.dtype());
    let picked = (log_softmax(logits, 1) * one_hot).sum();
    picked.neg().div_scalar(n as f64)
}

/// Mean over all `N · D` entries of `(outputs − targets)²`, `[1]`; class labels are compared
/// through their one-hot encoding over `outputs`' `K` columns.
///
/// # Panics
/// If real-valued targets do not have `outputs`' shape.
pub fn mse<B: Backend>(outputs: Tensor<B, 2>, targets: &Targets<B>) -> Tensor<B, 1> {
    let [_, k] = outputs.dims();
    let targets = match targets {
        Targets::Values(t) => {
            assert_eq!(
                t.dims(),
                outputs.dims(),
                "mse: targets and outputs differ in shape"
            );
            t.clone()
        }
        Targets::Classes(y) => y.clone().one_hot(k).float().cast(outputs.dtype()),
    };
    (outputs - targets).square().mean()
}

/// The score of `outputs` on one task's queries: accuracy in `[0, 1]` for class labels (higher
/// is better), mean squared error for real values (lower is better).
pub fn score<B: Backend>(outputs: Tensor<B, 2>, targets: &Targets<B>) -> f64 {
    match targets {
        Targets::Classes(y) => accuracy(outputs, y.clone()),
        Targets::Values(_) if targets.is_empty() => 0.0,
        Targets::Values(_) => mse(outputs, targets).into_scalar().elem::<f64>(),
    }
}

/// Fraction of rows of `logits` `[N, K]` whose arg-max equals `targets` `[N]`, in `[0, 1]`.
pub fn accuracy<B: Backend>(logits: Tensor<B, 2>, targets: Tensor<B, 1, Int>) -> f64 {
    let [n, _] = logits.dims();
    if n == 0 {
        return 0.0;
    }
    let predicted = logits.argmax(1).squeeze_dim::<1>(1);
    let correct = predicted.equal(targets).int().sum().into_scalar();
    let correct: i64 = burn::tensor::ElementConversion::elem(correct);
    correct as f64 / n as f64
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use burn::tensor::TensorData;

    #[test]
    fn mse_matches_hand_computed_values_for_values_and_one_hot_labels() {
        let device = Default::default();
        let out = Tensor::<Flex, 2>::from_data(
            TensorData::new(vec![1.0f32, 2.0, 0.5, -1.0], [2, 2]),
            &device,
        );
        let values = Targets::Values(Tensor::from_data(
            TensorData::new(vec![0.0f32, 2.0, 1.5, 1.0], [2, 2]),
            &device,
        ));
        // (1 + 0 + 1 + 4) / 4
        let got: f64 = mse(out.clone(), &values).into_scalar().elem();
        assert!((got - 1.5).abs() < 1e-6, "{got}");
        assert!((score(out.clone(), &values) - 1.5).abs() < 1e-6);
        // labels [1, 0] → one-hot [[0, 1], [1, 0]]: (1 + 1 + 0.25 + 1) / 4
        let labels = Targets::Classes(Tensor::<Flex, 1, Int>::from_data(
            TensorData::new(vec![1i64, 0], [2]),
            &device,
        ));
        let got: f64 = Loss::Mse.loss(out.clone(), &labels).into_scalar().elem();
        assert!((got - 0.8125).abs() < 1e-6, "{got}");
        // Auto on labels is cross-entropy; the score is accuracy.
        let ce: f64 = cross_entropy(out.clone(), labels.labels())
            .into_scalar()
            .elem();
        let auto: f64 = Loss::Auto.loss(out.clone(), &labels).into_scalar().elem();
        assert_eq!(ce, auto);
        assert_eq!(score(out, &labels), 1.0);
    }

    #[test]
    fn cross_entropy_on_real_values_is_refused_by_name() {
        let err = Loss::CrossEntropy.check(true).unwrap_err();
        assert!(
            err.contains("cross_entropy") && err.contains("mse"),
            "{err}"
        );
        assert!(Loss::CrossEntropy.check(false).is_ok());
        assert!(Loss::Mse.check(false).is_ok() && Loss::Auto.check(true).is_ok());
    }
}
