//! Finding the real data sets in tests of every crate.
//!
//! Tests call [`data_dir`] (or [`omniglot_dir`] / [`miniimagenet_dir`]) and return early on `None`.
//! The data directory comes from `META_DATA_DIR`; when it (or a data set in it) is missing the test
//! prints `skipped: …` and gets `None` — unless `META_REQUIRE_DATA=1`, in which case it panics with
//! the reason, so CI cannot pass without the data.

use std::path::PathBuf;

/// Environment variable naming the data directory.
pub const DATA_DIR_VAR: &str = "META_DATA_DIR";
/// Environment variable that, set to `1`, turns a missing data set into a test failure.
pub const REQUIRE_DATA_VAR: &str = "META_REQUIRE_DATA";

/// Whether `META_REQUIRE_DATA=1`.
pub fn data_required() -> bool {
    std::env::var(REQUIRE_DATA_VAR).is_ok_and(|v| v.trim() == "1")
}

fn unavailable(reason: String) -> Option<PathBuf> {
    if data_required() {
        panic!("{REQUIRE_DATA_VAR}=1 but {reason}");
    }
    eprintln!("skipped: {reason}");
    None
}

/// The data directory from `META_DATA_DIR`, or `None` (after printing `skipped: …`) when it is
/// unset or missing. Panics instead when `META_REQUIRE_DATA=1`.
pub fn data_dir() -> Option<PathBuf> {
    match std::env::var_os(DATA_DIR_VAR) {
        None => unavailable(format!(
            "{DATA_DIR_VAR} is not set (point it at a data directory laid out like datasets/)"
        )),
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_dir() {
                Some(dir)
            } else {
                unavailable(format!("{DATA_DIR_VAR}={} does not exist", dir.display()))
            }
        }
    }
}

/// `<data-dir>/omniglot` if it holds both Omniglot parts (zips or folders); see [`data_dir`].
pub fn omniglot_dir() -> Option<PathBuf> {
    let dir = data_dir()?.join("omniglot");
    for part in crate::omniglot::OMNIGLOT_PARTS {
        if crate::omniglot::part_source(&dir, part).is_err() {
            return unavailable(format!("Omniglot {part} is missing from {}", dir.display()));
        }
    }
    Some(dir)
}

/// `<data-dir>/miniimagenet` if it holds split folders or a `.tar`; see [`data_dir`].
pub fn miniimagenet_dir() -> Option<PathBuf> {
    let dir = data_dir()?.join("miniimagenet");
    let has_folders = dir.join("train").is_dir();
    let has_tar = std::fs::read_dir(&dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.path().extension().is_some_and(|x| x == "tar"))
    });
    if has_folders || has_tar {
        Some(dir)
    } else {
        unavailable(format!(
            "Mini-ImageNet is missing from {} (it has no public download; expected <split>/<wnid>/*.jpg or a .tar)",
            dir.display()
        ))
    }
}
