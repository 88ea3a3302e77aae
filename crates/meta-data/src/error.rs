//! The error type of this crate: every bad input names the path or value and says what to do.

use std::path::{Path, PathBuf};

/// Result alias for this crate.
pub type Result<T, E = DataError> = std::result::Result<T, E>;

/// Everything that can go wrong while finding, downloading, decoding or sampling data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The data directory itself does not exist.
    #[error(
        "data directory {path} does not exist: point the loader at a folder laid out like datasets/ \
         (omniglot/images_background.zip, …; the CLI's --data-dir), or download Omniglot into it \
         with `meta_data::fetch_omniglot` (the CLI's `metalearn data fetch omniglot`)"
    )]
    MissingDataDir {
        /// The directory that was looked for.
        path: PathBuf,
    },
    /// A data set is not where the layout says it should be.
    #[error("{dataset} not found at {path}: {hint}")]
    MissingDataset {
        /// Data set name.
        dataset: String,
        /// Where it was looked for.
        path: PathBuf,
        /// What to do about it.
        hint: String,
    },
    /// Files exist but are not laid out as expected.
    #[error("unexpected layout at {path}: {problem}; expected {expected}")]
    WrongLayout {
        /// The offending path.
        path: PathBuf,
        /// What is wrong.
        problem: String,
        /// The layout that was expected.
        expected: String,
    },
    /// An I/O error on a named path.
    #[error("cannot read or write {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A zip archive could not be read.
    #[error("cannot read zip archive {path}: {reason}; delete it and fetch it again")]
    Archive {
        /// The archive.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// An image could not be decoded (unreadable, truncated, unsupported format).
    #[error(
        "cannot decode image {name}: {reason}; replace or remove the file (re-fetch the data set if it came from an archive)"
    )]
    BadImage {
        /// The file, as `archive.zip!entry/inside.png` for images inside an archive.
        name: String,
        /// What went wrong.
        reason: String,
    },
    /// A class has too few images for the requested shots + queries.
    #[error(
        "class {class} has {have} images but {shots} shots + {queries} queries need {need}: ask for fewer \
         shots or queries per class (CLI: --shots/--queries) or remove classes with fewer images"
    )]
    TooFewImages {
        /// Class name.
        class: String,
        /// Images the class has.
        have: usize,
        /// Images needed.
        need: usize,
        /// Requested shots.
        shots: usize,
        /// Requested queries.
        queries: usize,
    },
    /// A folder data set has a class below the minimum image count.
    #[error(
        "class folder {path} has {have} images, fewer than the minimum {min}: add images or remove the folder"
    )]
    ClassTooSmall {
        /// The class folder.
        path: PathBuf,
        /// Images found.
        have: usize,
        /// Minimum required.
        min: usize,
    },
    /// More ways than classes in the split.
    #[error(
        "ways = {ways} but the {split} split has only {classes} classes: use {classes} ways or fewer \
         (CLI: --ways {classes})"
    )]
    TooManyWays {
        /// Requested ways.
        ways: usize,
        /// Classes available.
        classes: usize,
        /// Split name.
        split: String,
    },
    /// A parameter that must be positive was zero.
    #[error("{name} = 0: {name} must be at least 1")]
    ZeroParameter {
        /// Parameter name (`ways`, `shots`, `queries`, `image size`, …).
        name: &'static str,
    },
    /// A parameter value is invalid for another reason.
    #[error("invalid {name} = {value}: {hint}")]
    InvalidParameter {
        /// Parameter name.
        name: &'static str,
        /// The value given.
        value: String,
        /// What is accepted.
        hint: String,
    },
    /// A split scheme does not define the requested split.
    #[error("the {scheme} split scheme has no {split} split: {hint}")]
    NoSuchSplit {
        /// Split scheme.
        scheme: String,
        /// Requested split.
        split: String,
        /// What to use instead.
        hint: String,
    },
    /// A downloaded or existing file does not have an accepted SHA-256 digest.
    #[error(
        "checksum mismatch for {path}: expected SHA-256 {expected}, got {actual}; the file was deleted — fetch it \
         again from the upstream URL (a proxy or mirror may have served a different file)"
    )]
    ChecksumMismatch {
        /// The file that was checked (deleted after the mismatch).
        path: PathBuf,
        /// The accepted digest(s), joined with " or ".
        expected: String,
        /// The digest of the file.
        actual: String,
    },
    /// An HTTP download failed.
    #[error(
        "download of {url} failed: {reason}; check the network connection or the base URL (`FetchOptions`; CLI: --base-url)"
    )]
    Download {
        /// The URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The data set has no stable public download.
    #[error("{dataset} cannot be downloaded automatically: {hint}")]
    NoPublicUrl {
        /// Data set name.
        dataset: String,
        /// How to obtain and place a copy.
        hint: String,
    },
    /// An archive entry would be written outside the extraction directory.
    #[error(
        "refusing to extract {entry:?} from {archive}: entry path is absolute or contains `..`; the archive is unsafe"
    )]
    UnsafeArchiveEntry {
        /// The archive.
        archive: PathBuf,
        /// The offending entry name.
        entry: String,
    },
}

impl DataError {
    /// Builds an [`DataError::Io`] for `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            source,
        }
    }
}

/// The hint for a data set missing at `<data-dir>/<name>` when `<data-dir>` itself already holds
/// it (`holds` says whether a folder looks like the data set's own): `--data-dir` was given one
/// level too deep. `None` when it was not.
pub(crate) fn one_level_too_deep(
    dataset: &str,
    missing: &Path,
    holds: impl Fn(&Path) -> bool,
) -> Option<String> {
    let data_dir = missing.parent().unwrap_or(Path::new("."));
    holds(data_dir).then(|| {
        format!(
            "{} holds {dataset} itself; did you mean the parent folder? Use it as the data directory (CLI: --data-dir {})",
            data_dir.display(),
            data_dir.parent().unwrap_or(Path::new(".")).display()
        )
    })
}
