//! Meta-learning algorithms, the meta-training loop, evaluation and checkpoints.
//!
//! Every algorithm implements [`MetaLearner`]: meta-gradients on a batch of [`meta_data::Task`]s,
//! and adaptation to a support set returning a [`Predictor`]. One [`Trainer`] meta-trains any of
//! them (Adam or SGD outer step, cosine/linear schedules, global-norm clipping, fixed validation
//! episodes, best-model tracking, NaN/inf detection, atomic checkpoints with exact resumption);
//! [`evaluate_sampler`] runs the evaluation protocol (T episodes from a fixed seed, mean ± 95% CI).
//!
//! Algorithms: [`Maml`], [`Fomaml`], [`Anil`], [`Boil`], [`Reptile`], [`MetaSgd`],
//! [`MamlPlusPlus`] (MAML family),
//! [`ProtoNet`], [`MatchingNet`] (metric), [`MetaNetEb`] (Meta Networks, embedding-based) and
//! [`MetaNet`] (Meta Networks as published: task- and example-level fast weights in every
//! layer), and the pre-training baselines [`Baseline`] (Baseline and Baseline++, Chen et al.
//! 2019). Metric algorithms, embedding-based Meta Networks and the baselines take a
//! [`BackboneFactory`] — any `meta_backbones` config such as [`meta_backbones::Conv4Config`],
//! or an [`FnFactory`] closure.
//!
//! ```no_run
//! use std::path::Path;
//! use burn::backend::{Autodiff, Flex};
//! use meta_algos::{EvalConfig, ProtoNet, ProtoNetConfig, Trainer, TrainerConfig, evaluate_sampler};
//! use meta_backbones::Conv4Config;
//! use meta_data::{DatasetKind, EpisodeSpec, OmniglotSplit, Split, load_split_sampler};
//!
//! type B = Autodiff<Flex>;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let data = Path::new("datasets");
//! let sampler = |split, queries, seed| {
//!     let spec = EpisodeSpec::new(5, 1, queries);
//!     load_split_sampler(data, &DatasetKind::Omniglot, OmniglotSplit::Vinyals, split, spec, seed, None)
//! };
//! let (train, val, test) = (sampler(Split::Train, 5, 1)?, sampler(Split::Val, 15, 2)?, sampler(Split::Test, 15, 3)?);
//!
//! let device = Default::default();
//! let learner = ProtoNet::new(Conv4Config::default(), ProtoNetConfig::default());
//! let config = TrainerConfig { iterations: 2000, meta_batch: 1, val_every: 500, ..Default::default() };
//! let mut trainer = Trainer::<B, _>::new(learner, config, &device)?;
//! // Writes runs/demo/{latest,best}.ckpt; `Trainer::resume(…, "runs/demo/latest.ckpt")` continues exactly.
//! let summary = trainer.run(train, Some(&val), Some(Path::new("runs/demo")), |m| {
//!     if let Some(v) = m.validation {
//!         println!("iteration {}: loss {:.3}, validation {:.1}%", m.iteration, m.loss, 100.0 * v.mean);
//!     }
//! })?;
//! let model = trainer.best_model().unwrap_or(trainer.model());
//! let report = evaluate_sampler(trainer.learner(), model, &test, &EvalConfig::default(), &device)?;
//! println!("{} iterations; test accuracy {report}", summary.iterations);
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub mod anil;
pub mod baseline;
pub mod boil;
pub mod checkpoint;
pub mod error;
pub mod eval;
pub mod factory;
pub mod fomaml;
mod grad_norm;
pub mod learner;
pub mod maml;
mod maml_family;
pub mod mamlpp;
pub mod matchingnet;
pub mod matchingnet_fce;
pub mod metanet;
pub mod metanet_eb;
pub mod metasgd;
pub mod ops;
pub mod preflight;
pub mod presets;
pub mod pretrain;
pub mod protonet;
pub mod reptile;
pub mod support;
pub mod train_config;
pub mod trainer;

#[cfg(test)]
mod maml_reference_tests;
#[cfg(test)]
mod mamlpp_reference_tests;
#[cfg(test)]
mod metanet_tests;
#[cfg(test)]
mod metric_tests;
#[cfg(test)]
mod test_util;

pub use baseline::{Baseline, BaselineConfig, BaselineHead, BaselineModel};
pub use checkpoint::{BestValidation, CheckpointHeader, load_model, read_header, save_model};
pub use error::{AlgoError, Result};
pub use eval::{
    EvalConfig, EvalReport, Metric, StepsReport, evaluate, evaluate_sampler, evaluate_steps,
    mean_ci95,
};
pub use factory::{BackboneFactory, FnFactory};
pub use learner::{MetaLearner, Predictor, StepStats};
pub use matchingnet::{MatchingNet, MatchingNetConfig, MatchingNetModel};
pub use metanet::{MetaNet, MetaNetConfig, MetaNetModel};
pub use metanet_eb::{MetaNetEb, MetaNetEbConfig, MetaNetEbModel};
pub use protonet::{ProtoNet, ProtoNetConfig};
pub use support::{SupportPredictor, SupportRule};
pub use trainer::{
    AdamParams, GradClip, IterationMetrics, LrSchedule, OuterOptimizer, StepTiming, TrainSummary,
    Trainer, TrainerConfig, Validation,
};
// MAML family (maml.rs … metasgd.rs, mamlpp.rs).
pub use anil::{Anil, AnilConfig};
pub use boil::{Boil, BoilConfig};
pub use fomaml::{Fomaml, FomamlConfig};
pub use maml::{Maml, MamlConfig};
pub use maml_family::{AdaptedModel, MamlFamily, MamlVariant};
pub use mamlpp::{
    MamlPlusPlus, MamlPlusPlusConfig, MamlPlusPlusModel, MamlPlusPlusOptions, step_loss_weights,
};
pub use metasgd::{LrInit, MetaSgd, MetaSgdConfig, MetaSgdModel};
pub use pretrain::{Pretrain, PretrainConfig};
pub use reptile::{InnerOptimizer, Reptile, ReptileConfig};
