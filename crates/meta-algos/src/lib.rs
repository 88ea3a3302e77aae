//! Meta-learning algorithms, the meta-training loop, evaluation and checkpoints.

pub mod anil;
pub mod boil;
pub mod checkpoint;
pub mod error;
pub mod eval;
pub mod factory;
pub mod fomaml;
pub mod learner;
pub mod maml;
mod maml_family;
pub mod matchingnet;
pub mod metanet;
pub mod metanet_eb;
pub mod metasgd;
pub mod ops;
pub mod presets;
pub mod protonet;
pub mod trainer;

#[cfg(test)]
mod test_util;
#[cfg(test)]
mod metric_tests;
pub mod reptile;

pub use checkpoint::{BestValidation, CheckpointHeader, load_model, read_header, save_model};
pub use error::{AlgoError, Result};
pub use eval::{EvalConfig, EvalReport, evaluate, evaluate_sampler, mean_ci95};
pub use factory::{BackboneFactory, FnFactory};
pub use learner::{MetaLearner, Predictor, StepStats};
pub use matchingnet::{MatchingNet, MatchingNetConfig};
pub use metanet::{MetaNet, MetaNetConfig, MetaNetModel};
pub use metanet_eb::{MetaNetEb, MetaNetEbConfig, MetaNetEbModel};
pub use protonet::{ProtoNet, ProtoNetConfig};
pub use trainer::{
    GradClip, IterationMetrics, LrSchedule, OuterOptimizer, TrainSummary, Trainer, TrainerConfig,
    Validation,
};
// MAML family (maml.rs … metasgd.rs).
pub use anil::{Anil, AnilConfig};
pub use boil::{Boil, BoilConfig};
pub use fomaml::{Fomaml, FomamlConfig};
pub use maml::{Maml, MamlConfig};
pub use maml_family::AdaptedModel;
pub use metasgd::{LrInit, MetaSgd, MetaSgdConfig, MetaSgdModel};
pub use reptile::{InnerOptimizer, Reptile, ReptileConfig};
