//! Few-shot classification of vector data from a CSV file: one row per example, one column of
//! class labels, every other column a numeric feature. Classes are divided into train,
//! validation and test by a seeded split ([`ClassFractions`]); episodes are drawn like image
//! episodes, as a pure function of `(seed, split, index)`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::episode::{Episode, EpisodeSource};
use crate::error::{DataError, Result};
use crate::folder::ClassFractions;
use crate::sampler::{episode_rng, sample_distinct};
use crate::split::Split;

/// How a CSV file is read and divided.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvOptions {
    /// The header name of the column holding class labels (any text).
    pub label_column: String,
    /// Shares of train, validation and test classes, and the seed of the class shuffle.
    pub fractions: ClassFractions,
    /// Standardise every feature by the training classes' mean and standard deviation (the
    /// same transform for every split). Default: true.
    pub standardize: bool,
}

impl Default for CsvOptions {
    fn default() -> Self {
        Self {
            label_column: "label".into(),
            fractions: ClassFractions::default(),
            standardize: true,
        }
    }
}

/// A CSV file's examples grouped by class.
#[derive(Debug, Clone)]
pub struct CsvDataset {
    path: PathBuf,
    /// Feature column names, in file order.
    features: Vec<String>,
    /// Class labels, sorted.
    classes: Vec<String>,
    /// Per class: its rows, concatenated (`rows × features.len()`).
    rows: Vec<Vec<f32>>,
    /// Train / val / test class indices.
    splits: [Vec<usize>; 3],
    /// Per-feature `(mean, 1 / std)` applied to every row.
    standardize: Vec<(f32, f32)>,
}

impl CsvDataset {
    /// Reads `path`; the error names the file, the row (1-based, header = row 1) and the column
    /// of a ragged row, a missing label column, a non-numeric or non-finite feature, an empty
    /// file, and too few classes for the fractions.
    pub fn load(path: &Path, options: &CsvOptions) -> Result<Self> {
        let bad = |problem: String, expected: &str| DataError::WrongLayout {
            path: path.to_path_buf(),
            problem,
            expected: expected.into(),
        };
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .from_path(path)
            .map_err(|e| csv_error(path, e))?;
        let header: Vec<String> = reader
            .headers()
            .map_err(|e| csv_error(path, e))?
            .iter()
            .map(|h| h.trim().to_string())
            .collect();
        let Some(label_at) = header.iter().position(|h| *h == options.label_column) else {
            return Err(bad(
                format!(
                    "no column named `{}` (the header has: {})",
                    options.label_column,
                    header.join(", ")
                ),
                "a header row naming the label column given by --label-column",
            ));
        };
        let features: Vec<String> = header
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != label_at)
            .map(|(_, h)| h.clone())
            .collect();
        if features.is_empty() {
            return Err(bad(
                "the label column is the only column".into(),
                "at least one numeric feature column beside the labels",
            ));
        }
        let mut by_label: std::collections::BTreeMap<String, Vec<f32>> = Default::default();
        for (i, record) in reader.records().enumerate() {
            let row = i + 2;
            let record = record.map_err(|e| csv_error(path, e))?;
            if record.len() != header.len() {
                return Err(bad(
                    format!(
                        "row {row} has {} fields but the header has {}",
                        record.len(),
                        header.len()
                    ),
                    "the same number of fields on every row",
                ));
            }
            let label = record[label_at].trim().to_string();
            let values = by_label.entry(label).or_default();
            for (j, field) in record.iter().enumerate().filter(|(j, _)| *j != label_at) {
                let value: f32 = field
                    .trim()
                    .parse()
                    .ok()
                    .filter(|v: &f32| v.is_finite())
                    .ok_or_else(|| {
                        bad(
                            format!(
                                "row {row}, column `{}`: `{field}` is not a finite number",
                                header[j]
                            ),
                            "numbers in every feature column",
                        )
                    })?;
                values.push(value);
            }
        }
        if by_label.is_empty() {
            return Err(bad(
                "no data rows".into(),
                "a header row and one row per example",
            ));
        }
        let (classes, rows): (Vec<String>, Vec<Vec<f32>>) = by_label.into_iter().unzip();
        let splits = options.fractions.assign(&classes, path)?;
        let dim = features.len();
        let standardize = if options.standardize {
            let train: Vec<&[f32]> = splits[0]
                .iter()
                .flat_map(|&c| rows[c].chunks_exact(dim))
                .collect();
            (0..dim)
                .map(|j| {
                    let n = train.len().max(1) as f64;
                    let mean = train.iter().map(|r| f64::from(r[j])).sum::<f64>() / n;
                    let var = train
                        .iter()
                        .map(|r| (f64::from(r[j]) - mean).powi(2))
                        .sum::<f64>()
                        / n;
                    let std = var.sqrt();
                    (
                        mean as f32,
                        if std > 1e-12 { (1.0 / std) as f32 } else { 1.0 },
                    )
                })
                .collect()
        } else {
            vec![(0.0, 1.0); dim]
        };
        Ok(Self {
            path: path.to_path_buf(),
            features,
            classes,
            rows,
            splits,
            standardize,
        })
    }

    /// Feature columns (the width D of every example).
    pub fn features(&self) -> &[String] {
        &self.features
    }

    /// Names of the classes of `split`.
    pub fn class_names(&self, split: Split) -> Vec<&str> {
        self.splits[split.id() as usize]
            .iter()
            .map(|&c| self.classes[c].as_str())
            .collect()
    }

    /// Episodes of `split` with `ways` classes, `shots` support and `queries` query rows per
    /// class, under `seed`. The error names the split or the class that is too small.
    pub fn tasks(
        self: &Arc<Self>,
        split: Split,
        (ways, shots, queries): (usize, usize, usize),
        seed: u64,
    ) -> Result<CsvTasks> {
        crate::spec::EpisodeSpec::new(ways, shots, queries).check_values()?;
        let classes = self.splits[split.id() as usize].clone();
        if ways > classes.len() {
            return Err(DataError::TooManyWays {
                ways,
                classes: classes.len(),
                split: split.name().into(),
            });
        }
        let dim = self.features.len();
        for &c in &classes {
            let have = self.rows[c].len() / dim;
            if have < shots + queries {
                return Err(DataError::TooFewImages {
                    class: format!("`{}` of {}", self.classes[c], self.path.display()),
                    have,
                    need: shots + queries,
                    shots,
                    queries,
                });
            }
        }
        Ok(CsvTasks {
            data: Arc::clone(self),
            classes,
            shape: (ways, shots, queries),
            split,
            seed,
        })
    }
}

fn csv_error(path: &Path, e: csv::Error) -> DataError {
    DataError::WrongLayout {
        path: path.to_path_buf(),
        problem: format!("not readable as CSV: {e}"),
        expected: "comma-separated values with a header row".into(),
    }
}

/// N-way K-shot Q-query episodes of one split of a [`CsvDataset`]: inputs `[D, 1, 1]`, the
/// features of one row each.
#[derive(Debug, Clone)]
pub struct CsvTasks {
    data: Arc<CsvDataset>,
    classes: Vec<usize>,
    shape: (usize, usize, usize),
    split: Split,
    seed: u64,
}

impl CsvTasks {
    /// Classes of the split.
    pub fn num_classes(&self) -> usize {
        self.classes.len()
    }
}

impl EpisodeSource for CsvTasks {
    fn episode(&self, index: u64) -> Episode {
        let (n, k, q) = self.shape;
        let dim = self.data.features.len();
        let mut rng = episode_rng(self.seed, self.split.id(), index);
        let (mut chosen, mut picks) = (Vec::with_capacity(n), Vec::with_capacity(k + q));
        sample_distinct(&mut rng, self.classes.len(), n, &mut chosen);
        let (mut support, mut query) = (vec![0.0; n * k * dim], vec![0.0; n * q * dim]);
        let mut classes = Vec::with_capacity(n);
        for (label, &split_class) in chosen.iter().enumerate() {
            classes.push(split_class);
            let rows = &self.data.rows[self.classes[split_class]];
            sample_distinct(&mut rng, rows.len() / dim, k + q, &mut picks);
            for (j, &row) in picks.iter().enumerate() {
                let dst = if j < k {
                    &mut support[(label * k + j) * dim..][..dim]
                } else {
                    &mut query[(label * q + j - k) * dim..][..dim]
                };
                let src = &rows[row * dim..][..dim];
                for ((d, &s), &(mean, inv)) in dst.iter_mut().zip(src).zip(&self.data.standardize) {
                    *d = (s - mean) * inv;
                }
            }
        }
        let labels = |per: usize| {
            (0..n as i64)
                .flat_map(|l| std::iter::repeat_n(l, per))
                .collect()
        };
        Episode {
            ways: n,
            shots: k,
            queries: q,
            image_shape: [dim, 1, 1],
            support_images: support,
            support_labels: labels(k),
            query_images: query,
            query_labels: labels(q),
            classes,
            value_dim: 0,
            support_values: Vec::new(),
            query_values: Vec::new(),
        }
    }

    fn shape(&self) -> (usize, usize, usize) {
        self.shape
    }

    fn image_shape(&self) -> [usize; 3] {
        [self.data.features.len(), 1, 1]
    }
}
