//! Errors of this crate.

use thiserror::Error;

/// An invalid backbone configuration.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum BackboneError {
    /// A width, channel count or class count is zero.
    #[error("{backbone}: `{field}` must be positive")]
    Zero {
        /// Backbone name.
        backbone: &'static str,
        /// Offending field.
        field: &'static str,
    },
    /// The image is too small for the number of halvings the backbone performs.
    #[error("{backbone}: image size {image_size} is too small (needs at least {min})")]
    ImageTooSmall {
        /// Backbone name.
        backbone: &'static str,
        /// Given side length.
        image_size: usize,
        /// Smallest side length that works.
        min: usize,
    },
    /// A dropout probability outside `[0, 1)`.
    #[error("{backbone}: dropout {value} is not in [0, 1)")]
    Dropout {
        /// Backbone name.
        backbone: &'static str,
        /// Given probability.
        value: f64,
    },
}

pub(crate) fn positive(
    backbone: &'static str,
    field: &'static str,
    value: usize,
) -> Result<(), BackboneError> {
    if value == 0 {
        Err(BackboneError::Zero { backbone, field })
    } else {
        Ok(())
    }
}
