//! [`EpisodeSpec`] (N-way, K-shot, Q-query) and its checked form [`CheckedSpec`].

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::split::ClassSplit;
use crate::store::ImageStore;

/// Unchecked episode shape: `ways` classes, `shots` support and `queries` query images per class.
///
/// Turn it into a [`CheckedSpec`] with [`EpisodeSpec::check`] against the data it will sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EpisodeSpec {
    /// N: classes per episode.
    pub ways: usize,
    /// K: support images per class.
    pub shots: usize,
    /// Q: query images per class.
    pub queries: usize,
}

/// An [`EpisodeSpec`] validated against a data set split: every field > 0, `ways` ≤ classes, and
/// every class has at least `shots + queries` images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CheckedSpec(EpisodeSpec);

impl EpisodeSpec {
    /// `ways`-way `shots`-shot `queries`-query.
    pub fn new(ways: usize, shots: usize, queries: usize) -> Self {
        EpisodeSpec {
            ways,
            shots,
            queries,
        }
    }

    /// Checks the values alone (all > 0).
    pub fn check_values(&self) -> Result<()> {
        for (name, v) in [
            ("ways", self.ways),
            ("shots", self.shots),
            ("queries", self.queries),
        ] {
            if v == 0 {
                return Err(DataError::ZeroParameter { name });
            }
        }
        Ok(())
    }

    /// Validates against the classes of `split` in `store`.
    pub fn check(self, store: &ImageStore, split: &ClassSplit) -> Result<CheckedSpec> {
        self.check_values()?;
        if self.ways > split.classes.len() {
            return Err(DataError::TooManyWays {
                ways: self.ways,
                classes: split.classes.len(),
                split: split.split.to_string(),
            });
        }
        let need = self.shots + self.queries;
        for c in &split.classes {
            if c.class >= store.num_classes() {
                return Err(DataError::InvalidParameter {
                    name: "class index",
                    value: c.class.to_string(),
                    hint: format!("the data set has {} classes", store.num_classes()),
                });
            }
            let have = store.class_len(c.class);
            if have < need {
                return Err(DataError::TooFewImages {
                    class: store.class_name(c.class).to_string(),
                    have,
                    need,
                    shots: self.shots,
                    queries: self.queries,
                });
            }
        }
        Ok(CheckedSpec(self))
    }
}

impl CheckedSpec {
    /// The validated spec.
    pub fn spec(&self) -> EpisodeSpec {
        self.0
    }
    /// N.
    pub fn ways(&self) -> usize {
        self.0.ways
    }
    /// K.
    pub fn shots(&self) -> usize {
        self.0.shots
    }
    /// Q.
    pub fn queries(&self) -> usize {
        self.0.queries
    }
}
