//! Class splits: which classes (and fixed rotations) form the train, validation and test sets.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::omniglot::Omniglot;

/// One of the three disjoint class sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Meta-training classes.
    Train,
    /// Validation classes (model selection).
    Val,
    /// Test classes (final evaluation).
    Test,
}

impl Split {
    /// All three splits in order.
    pub const ALL: [Split; 3] = [Split::Train, Split::Val, Split::Test];

    /// `train`, `val` or `test` (also the folder name in data layouts).
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }

    /// A stable number that enters the per-episode RNG seed.
    pub fn id(self) -> u64 {
        match self {
            Split::Train => 0,
            Split::Val => 1,
            Split::Test => 2,
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Split {
    type Err = DataError;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "train" => Ok(Split::Train),
            "val" | "valid" | "validation" => Ok(Split::Val),
            "test" => Ok(Split::Test),
            _ => Err(DataError::InvalidParameter {
                name: "split",
                value: s.to_string(),
                hint: "use train, val or test".into(),
            }),
        }
    }
}

/// Which Omniglot class split to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "scheme")]
pub enum OmniglotSplit {
    /// Vinyals et al. / Snell et al.: 1028/172/423 characters, each rotation a class (4112/688/1692).
    #[default]
    Vinyals,
    /// learn2learn: a random 1100/100/423 character split drawn from `seed`; a random 90° rotation
    /// per class per task as augmentation.
    Learn2Learn {
        /// Seed of the class permutation (fixed separately from the episode seed).
        seed: u64,
    },
    /// Lake et al.: background alphabets (964) for training, evaluation alphabets (659) for testing;
    /// no validation split.
    Lake,
}

/// Default seed of the learn2learn class permutation.
pub const L2L_SPLIT_SEED: u64 = 42;

impl OmniglotSplit {
    /// `vinyals`, `l2l` or `lake`.
    pub fn name(&self) -> &'static str {
        match self {
            OmniglotSplit::Vinyals => "vinyals",
            OmniglotSplit::Learn2Learn { .. } => "l2l",
            OmniglotSplit::Lake => "lake",
        }
    }
}

impl FromStr for OmniglotSplit {
    type Err = DataError;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "vinyals" | "snell" => Ok(OmniglotSplit::Vinyals),
            "l2l" | "learn2learn" => Ok(OmniglotSplit::Learn2Learn {
                seed: L2L_SPLIT_SEED,
            }),
            "lake" => Ok(OmniglotSplit::Lake),
            _ => Err(DataError::InvalidParameter {
                name: "split scheme",
                value: s.to_string(),
                hint: "use vinyals, l2l or lake".into(),
            }),
        }
    }
}

/// A class of a split: a data set class, optionally rotated by a fixed number of quarter turns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClassRef {
    /// Class index in the [`ImageStore`](crate::ImageStore).
    pub class: usize,
    /// Quarter turns counter-clockwise (0..4), as PIL's `rotate` (the Vinyals `rotDDD` classes).
    pub rotation: u8,
}

/// Per-task augmentation applied by the sampler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Augmentation {
    /// None.
    #[default]
    None,
    /// One random rotation by 0/90/180/270° per class per task (all images of a class in a task
    /// share it), on top of the class's own rotation. Needs square images.
    Rotate90,
}

/// The classes of one split, with the augmentation its scheme prescribes.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassSplit {
    /// Which split this is (enters the episode seed).
    pub split: Split,
    /// The split's classes; an episode's `classes[label]` indexes this list.
    pub classes: Vec<ClassRef>,
    /// Per-task augmentation.
    pub augmentation: Augmentation,
}

impl ClassSplit {
    /// All classes `0..num_classes` unrotated, without augmentation.
    pub fn all(split: Split, num_classes: usize) -> Self {
        Self::unrotated(split, 0..num_classes, Augmentation::None)
    }

    /// The data set classes `classes`, unrotated, with `augmentation`.
    pub fn unrotated(
        split: Split,
        classes: impl IntoIterator<Item = usize>,
        augmentation: Augmentation,
    ) -> Self {
        ClassSplit {
            split,
            classes: classes
                .into_iter()
                .map(|class| ClassRef { class, rotation: 0 })
                .collect(),
            augmentation,
        }
    }
}

const VINYALS_TRAIN: &str = include_str!("../splits/vinyals/train.txt");
const VINYALS_VAL: &str = include_str!("../splits/vinyals/val.txt");
const VINYALS_TEST: &str = include_str!("../splits/vinyals/test.txt");

/// The embedded Vinyals split file for `split`: lines `Alphabet/characterNN/rotDDD`.
pub fn vinyals_lines(split: Split) -> impl Iterator<Item = &'static str> {
    let text = match split {
        Split::Train => VINYALS_TRAIN,
        Split::Val => VINYALS_VAL,
        Split::Test => VINYALS_TEST,
    };
    text.lines().map(str::trim).filter(|l| !l.is_empty())
}

/// Number of characters in the learn2learn train and validation splits (the rest is test).
pub const L2L_TRAIN_CHARACTERS: usize = 1100;
/// See [`L2L_TRAIN_CHARACTERS`].
pub const L2L_VAL_CHARACTERS: usize = 100;

impl Omniglot {
    /// The classes of `split` under `scheme`.
    pub fn split(&self, scheme: OmniglotSplit, split: Split) -> Result<ClassSplit> {
        let store = self.store();
        match scheme {
            OmniglotSplit::Vinyals => {
                let index: HashMap<&str, usize> = store
                    .class_names()
                    .iter()
                    .enumerate()
                    .map(|(i, n)| (n.as_str(), i))
                    .collect();
                let mut classes = Vec::new();
                for line in vinyals_lines(split) {
                    let (character, rot) =
                        line.rsplit_once("/rot")
                            .ok_or_else(|| DataError::InvalidParameter {
                                name: "Vinyals split line",
                                value: line.to_string(),
                                hint: "expected Alphabet/characterNN/rotDDD".into(),
                            })?;
                    let degrees: u32 = rot.parse().map_err(|_| DataError::InvalidParameter {
                        name: "Vinyals rotation",
                        value: line.to_string(),
                        hint: "expected rot000, rot090, rot180 or rot270".into(),
                    })?;
                    let class = *index.get(character).ok_or_else(|| DataError::WrongLayout {
                        path: character.into(),
                        problem: format!(
                            "the Omniglot data has no character {character}, which the Vinyals {split} split lists"
                        ),
                        expected: "the complete upstream images_background.zip and images_evaluation.zip"
                            .into(),
                    })?;
                    classes.push(ClassRef {
                        class,
                        rotation: ((degrees / 90) % 4) as u8,
                    });
                }
                Ok(ClassSplit {
                    split,
                    classes,
                    augmentation: Augmentation::None,
                })
            }
            OmniglotSplit::Learn2Learn { seed } => {
                let n = store.num_classes();
                let needed = L2L_TRAIN_CHARACTERS + L2L_VAL_CHARACTERS + 1;
                if n < needed {
                    return Err(DataError::WrongLayout {
                        path: "omniglot".into(),
                        problem: format!(
                            "only {n} characters for the learn2learn 1100/100/rest split"
                        ),
                        expected: format!("at least {needed} characters (1623 upstream)"),
                    });
                }
                let mut order: Vec<usize> = (0..n).collect();
                order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
                let (a, b) = (
                    L2L_TRAIN_CHARACTERS,
                    L2L_TRAIN_CHARACTERS + L2L_VAL_CHARACTERS,
                );
                let range = match split {
                    Split::Train => &order[..a],
                    Split::Val => &order[a..b],
                    Split::Test => &order[b..],
                };
                let mut chosen = range.to_vec();
                chosen.sort_unstable();
                Ok(ClassSplit::unrotated(split, chosen, Augmentation::Rotate90))
            }
            OmniglotSplit::Lake => {
                let bg = self.background_classes();
                let range = match split {
                    Split::Train => 0..bg,
                    Split::Test => bg..store.num_classes(),
                    Split::Val => {
                        return Err(DataError::NoSuchSplit {
                            scheme: "lake".into(),
                            split: "val".into(),
                            hint: "Lake's protocol trains on background and tests on evaluation; use the \
                                   vinyals or l2l scheme for a validation split"
                                .into(),
                        });
                    }
                };
                Ok(ClassSplit::unrotated(split, range, Augmentation::None))
            }
        }
    }
}
