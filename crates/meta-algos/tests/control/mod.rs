//! The untrained control of the learning tests: the initial meta-parameters, adapted and scored
//! on the same test episodes as the trained model — what training with a zero meta-gradient
//! leaves. A threshold that the control comes near cannot tell learning from its absence.

/// How far below each threshold the untrained control must stay (accuracy, absolute; about
/// three 95% CIs of the tests' 60- and 100-episode means).
pub const MARGIN: f64 = 0.08;

/// Test accuracies (means over the same test episodes) of a meta-trained model and of its
/// untrained control.
pub struct Scores {
    pub trained: f64,
    pub control: f64,
}

impl Scores {
    /// Asserts that the untrained control stays [`MARGIN`] below `min`, so that `min` tells
    /// learning from its absence, and that the meta-trained model exceeds `min`.
    pub fn assert_learned(&self, name: &str, min: f64) {
        assert!(
            self.control + MARGIN < min,
            "{name}: the untrained control scores {:.3}, not {MARGIN} below the threshold {min}: \
             the threshold cannot tell a broken meta-gradient from a working one",
            self.control
        );
        assert!(
            self.trained > min,
            "{name}: test accuracy {:.3} not above {min} (untrained control {:.3})",
            self.trained,
            self.control
        );
    }
}
