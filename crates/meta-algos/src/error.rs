//! Typed errors of the meta-algos crate.

use std::path::PathBuf;

/// Everything that can go wrong while training, evaluating or checkpointing.
#[derive(Debug, thiserror::Error)]
pub enum AlgoError {
    /// The meta-training loss was NaN or infinite; the update of that iteration was not applied.
    #[error(
        "meta-training loss is not finite ({loss}) at iteration {iteration}; no update was applied"
    )]
    NonFiniteLoss {
        /// Zero-based iteration whose loss was not finite.
        iteration: u64,
        /// The offending loss value.
        loss: f64,
    },
    /// The global norm of the meta-gradient was NaN or infinite; no update was applied.
    #[error(
        "meta-gradient norm is not finite ({norm}) at iteration {iteration}; no update was applied"
    )]
    NonFiniteGradient {
        /// Zero-based iteration whose gradient was not finite.
        iteration: u64,
        /// The offending global gradient norm.
        norm: f64,
    },
    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The backbone cannot run this algorithm (found before the first meta-iteration).
    #[error("the backbone cannot be meta-trained with {algo}: {reason}")]
    UnsuitableBackbone {
        /// The algorithm (`MetaLearner::name`).
        algo: &'static str,
        /// What is wrong and what to use instead.
        reason: String,
    },
    /// A classification-only algorithm was given regression tasks.
    #[error(
        "{algo} classifies and cannot learn regression tasks (real-valued targets): use an \
         algorithm with an inner loop of gradient steps (maml, fomaml, anil, boil, reptile, \
         metasgd) or the pretrain baseline"
    )]
    RegressionUnsupported {
        /// The algorithm's name.
        algo: String,
    },
    /// An episode source does not fit what the run needs.
    #[error("episode source: {0}")]
    Episodes(String),
    /// The backend reported a failed execution (e.g. a lost GPU device) when synced.
    #[error("backend execution failed: {0}")]
    Backend(String),
    /// Reading or writing a checkpoint failed at the file-system level.
    #[error("checkpoint {path}: {source}")]
    Io {
        /// The checkpoint path.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The checkpoint file is truncated, corrupt or not a checkpoint at all.
    #[error("checkpoint {path} is unreadable (corrupt or truncated): {reason}")]
    CorruptCheckpoint {
        /// The checkpoint path.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The checkpoint was written by another algorithm, backbone, optimizer or model shape.
    #[error(
        "checkpoint {path} does not fit this run: it holds {found}, but this run is {expected}"
    )]
    CheckpointMismatch {
        /// The checkpoint path.
        path: PathBuf,
        /// What this run is (algorithm, backbone, …).
        expected: String,
        /// What the checkpoint holds.
        found: String,
    },
}

/// Result alias of this crate.
pub type Result<T, E = AlgoError> = std::result::Result<T, E>;
