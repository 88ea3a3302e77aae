//! Meta-learning algorithms, the meta-training loop, evaluation and checkpoints.

pub mod learner;

pub use learner::{MetaLearner, Predictor, StepStats};
