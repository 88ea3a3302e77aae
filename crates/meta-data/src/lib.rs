//! Few-shot data: datasets decoded once into memory, class splits, and deterministic
//! N-way K-shot Q-query episode samplers.
//!
//! The flow is `ImageStore` (all images as compact `u8`, indexed by class) → [`ClassSplit`]
//! (which classes, with which fixed rotation, form train/val/test) → [`EpisodeSampler`]
//! (episode `i` is a pure function of `(seed, split, i)`) → [`Episode`] (host `f32` buffers and
//! labels `0..N`) → optionally a [`Prefetcher`] on background threads → [`Episode::to_task`]
//! (burn tensors on any device).
//!
//! Data directory layout (CLI, xtask and tests share it):
//!
//! ```text
//! <data-dir>/omniglot/images_background.zip      (or the extracted folder images_background/)
//! <data-dir>/omniglot/images_evaluation.zip      (or images_evaluation/)
//! <data-dir>/miniimagenet/{train,val,test}/<wnid>/*.jpg   (or a .tar such as subset20.tar)
//! <folder>/{train,val,test}/<class>/<image>             (folder:PATH, split by folders)
//! <folder>/<class>/<image>                             (folder:PATH, split by seeded fractions)
//! ```
//!
//! ```no_run
//! use std::path::Path;
//! use meta_data::{
//!     DatasetKind, EpisodeSource, EpisodeSpec, OmniglotSplit, Prefetcher, Split, load_split_sampler,
//! };
//!
//! # fn main() -> Result<(), meta_data::DataError> {
//! // 5-way 1-shot 15-query Omniglot training episodes, Vinyals split, 28×28 images.
//! let sampler = load_split_sampler(
//!     Path::new("datasets"),
//!     &DatasetKind::Omniglot,
//!     OmniglotSplit::Vinyals,
//!     Split::Train,
//!     EpisodeSpec::new(5, 1, 15),
//!     42,
//!     None,
//! )?;
//! let episode = sampler.episode(0);
//! assert_eq!(episode.support_labels.len(), 5);
//! assert_eq!(episode.image_shape, [1, 28, 28]);
//!
//! // Meta-batches of 32 tasks, built ahead on 2 threads; the same episodes for any thread count.
//! let mut batches = Prefetcher::new(std::sync::Arc::new(sampler), 0, 32, 2, 2)?;
//! let meta_batch = batches.next_batch().expect("prefetch thread alive");
//! assert_eq!(meta_batch.len(), 32);
//! // let task = meta_batch[0].to_task::<MyBackend>(&device);
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub mod augment;
pub mod csv_tasks;
pub mod decode;
pub mod episode;
pub mod error;
pub mod extract;
pub mod fetch;
pub mod folder;
pub mod load;
pub mod miniimagenet;
pub mod omniglot;
pub mod prefetch;
pub mod sampler;
pub mod sine;
pub mod spec;
pub mod split;
pub mod store;
pub mod testing;

pub use augment::ImageAugment;
pub use csv_tasks::{CsvDataset, CsvOptions, CsvTasks};
pub use decode::DecodeSpec;
pub use episode::{Episode, EpisodeSource, IntoSharedSource, Targets, Task};
pub use error::{DataError, Result};
pub use extract::{extract_tar, extract_zip};
pub use fetch::{FetchOptions, FetchOutcome, FetchedFile, fetch_miniimagenet, fetch_omniglot};
pub use folder::{
    ClassFractions, FOLDER_SPLIT_SEED, FolderDataset, FolderOptions, FolderSplit,
    has_split_folders, load_image_folder,
};
pub use load::{
    DataInfo, DatasetKind, SplitInfo, info, load_omniglot_cached, load_split, load_split_sampler,
};
pub use miniimagenet::{load_miniimagenet, miniimagenet_wnids};
pub use omniglot::Omniglot;
pub use prefetch::Prefetcher;
pub use sampler::EpisodeSampler;
pub use sine::{SineConfig, SineTasks, SineWave};
pub use spec::{CheckedSpec, EpisodeSpec};
pub use split::{Augmentation, ClassRef, ClassSplit, OmniglotSplit, Split};
pub use store::{ImageStore, PixelScale};
