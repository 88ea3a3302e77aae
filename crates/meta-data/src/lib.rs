//! Few-shot data: datasets decoded once into memory, class splits, and deterministic
//! N-way K-shot Q-query episode samplers.

pub mod episode;

pub use episode::{Episode, EpisodeSource, Task};
