//! Meta-learning algorithms, the meta-training loop, evaluation and checkpoints.

pub mod anil;
pub mod boil;
pub mod fomaml;
pub mod learner;
pub mod maml;
mod maml_family;
pub mod metasgd;
pub mod presets;
pub mod reptile;

pub use learner::{MetaLearner, Predictor, StepStats};
// MAML family (maml.rs … metasgd.rs).
pub use anil::{Anil, AnilConfig};
pub use boil::{Boil, BoilConfig};
pub use fomaml::{Fomaml, FomamlConfig};
pub use maml::{Maml, MamlConfig};
pub use maml_family::AdaptedModel;
pub use metasgd::{LrInit, MetaSgd, MetaSgdConfig, MetaSgdModel};
pub use reptile::{InnerOptimizer, Reptile, ReptileConfig};
