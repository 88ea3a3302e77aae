//! Shared helpers for the integration tests: the real Omniglot, decoded once per test binary.
#![allow(dead_code)]

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use meta_data::{Omniglot, load_omniglot_cached, testing};

/// The data directory when it holds Omniglot (else the test is skipped, or fails when required).
pub fn omniglot_data_dir() -> Option<PathBuf> {
    testing::omniglot_dir()?;
    testing::data_dir()
}

/// Omniglot at 28×28 from `META_DATA_DIR`, decoded once per test binary.
pub fn omniglot() -> Option<Arc<Omniglot>> {
    static ONCE: OnceLock<Arc<Omniglot>> = OnceLock::new();
    let dir = omniglot_data_dir()?;
    Some(Arc::clone(ONCE.get_or_init(|| {
        let t = std::time::Instant::now();
        let o = load_omniglot_cached(&dir, 28).expect("decode Omniglot");
        eprintln!("decoded Omniglot in {:.2?}", t.elapsed());
        o
    })))
}

/// Back from f32 in [0, 1] to u8.
pub fn to_u8(pixels: &[f32]) -> Vec<u8> {
    pixels.iter().map(|v| (v * 255.0).round() as u8).collect()
}

/// Distinct elements.
pub fn distinct<T: std::hash::Hash + Eq + Clone>(items: &[T]) -> usize {
    items.iter().cloned().collect::<HashSet<_>>().len()
}
