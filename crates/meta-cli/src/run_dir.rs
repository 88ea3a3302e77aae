//! The run directory `runs/<name>/`: resolved config, metrics log, summary and plots.

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsLine {
    /// Meta-iterations completed.
    pub iteration: usize,
    /// Seconds since the run (or its first segment) started, summed over resumed segments.
    pub wall_s: f64,
    /// Mean query loss of the meta-batch.
    pub train_loss: f64,
    /// Mean query accuracy of the meta-batch (NaN, and absent from the file, for regression).
    #[serde(default = "nan", skip_serializing_if = "is_nan")]
    pub train_acc: f64,
    /// Mean validation loss, when validated at this iteration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_loss: Option<f64>,
    /// Mean validation accuracy, when validated at this iteration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_acc: Option<f64>,
    /// Mean validation MSE (regression), when validated at this iteration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_mse: Option<f64>,
    /// Half-width of the 95% confidence interval of `val_acc` or `val_mse`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_ci95: Option<f64>,
}

fn nan() -> f64 {
    f64::NAN
}

fn is_nan(value: &f64) -> bool {
    value.is_nan()
}

/// A run directory on disk.
#[derive(Debug, Clone)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    /// Creates (or reopens) `root`, checking that it can be written.
    pub fn create(root: &Path) -> Result<Self> {
        std::fs::create_dir_all(root.join("checkpoints"))
            .and_then(|()| std::fs::create_dir_all(root.join("plots")))
            .with_context(|| {
                format!(
                    "cannot create run directory {}: choose a writable --run-dir",
                    root.display()
                )
            })?;
        let probe = root.join(".write-test");
        File::create(&probe)
            .and_then(|_| std::fs::remove_file(&probe))
            .with_context(|| {
                format!(
                    "run directory {} is not writable: choose another --run-dir",
                    root.display()
                )
            })?;
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    /// Opens an existing run directory (for `--resume`, `eval`, `predict`).
    pub fn open(root: &Path) -> Result<Self> {
        if !root.join("config.toml").is_file() {
            bail!(
                "{} is not a run directory (no config.toml); pass the folder that `metalearn train` wrote",
                root.display()
            );
        }
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `config.toml`.
    pub fn config_path(&self) -> PathBuf {
        self.root.join("config.toml")
    }

    /// `checkpoints/`.
    pub fn checkpoints(&self) -> PathBuf {
        self.root.join("checkpoints")
    }

    /// `metrics.jsonl`.
    pub fn metrics_path(&self) -> PathBuf {
        self.root.join("metrics.jsonl")
    }

    /// `plots/`.
    pub fn plots(&self) -> PathBuf {
        self.root.join("plots")
    }

    /// Writes `contents` to `name` inside the run directory atomically.
    pub fn write_atomic(&self, name: &str, contents: &[u8]) -> Result<()> {
        write_atomic(&self.root.join(name), contents)
    }

    /// Appends one metrics line (and flushes it, so a crash keeps every logged line).
    pub fn append_metrics(&self, line: &MetricsLine) -> Result<()> {
        let path = self.metrics_path();
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot append to {}", path.display()))?;
        let mut text = serde_json::to_string(line)?;
        text.push('\n');
        file.write_all(text.as_bytes())
            .with_context(|| format!("cannot append to {}", path.display()))?;
        Ok(())
    }

    /// Every metrics line logged so far.
    pub fn read_metrics(&self) -> Result<Vec<MetricsLine>> {
        let path = self.metrics_path();
        if !path.exists() {
            return Ok(Vec::new());
        }
        let file = File::open(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let mut lines = Vec::new();
        for (number, line) in BufReader::new(file).lines().enumerate() {
            let line = line.with_context(|| format!("cannot read {}", path.display()))?;
            if line.trim().is_empty() {
                continue;
            }
            lines.push(serde_json::from_str(&line).with_context(|| {
                format!(
                    "{} line {} is not a metrics record",
                    path.display(),
                    number + 1
                )
            })?);
        }
        Ok(lines)
    }

    /// Drops metrics lines after `iteration` (a resumed run repeats those iterations).
    pub fn truncate_metrics_after(&self, iteration: usize) -> Result<()> {
        let kept: Vec<MetricsLine> = self
            .read_metrics()?
            .into_iter()
            .filter(|line| line.iteration <= iteration)
            .collect();
        let mut text = String::new();
        for line in &kept {
            text.push_str(&serde_json::to_string(line)?);
            text.push('\n');
        }
        write_atomic(&self.metrics_path(), text.as_bytes())
    }
}

/// Writes `contents` to `path` via a temporary file, fsync and rename: never a half-written file.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut file = File::create(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(iteration: usize) -> MetricsLine {
        MetricsLine {
            iteration,
            wall_s: iteration as f64,
            train_loss: 1.0 / (iteration as f64 + 1.0),
            train_acc: 0.5,
            val_loss: None,
            val_acc: iteration.is_multiple_of(2).then_some(0.6),
            val_mse: None,
            val_ci95: None,
        }
    }

    #[test]
    fn metrics_round_trip_and_truncate_on_resume() {
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir::create(tmp.path()).unwrap();
        for i in 1..=6 {
            run.append_metrics(&line(i)).unwrap();
        }
        assert_eq!(
            run.read_metrics().unwrap(),
            (1..=6).map(line).collect::<Vec<_>>()
        );
        run.truncate_metrics_after(4).unwrap();
        assert_eq!(
            run.read_metrics().unwrap(),
            (1..=4).map(line).collect::<Vec<_>>()
        );
    }

    #[test]
    fn atomic_write_replaces_whole_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("a.json");
        write_atomic(&path, b"first version, long").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn unwritable_run_dir_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("plain-file");
        std::fs::write(&file, b"x").unwrap();
        let err = RunDir::create(&file.join("run")).unwrap_err();
        assert!(format!("{err:#}").contains("plain-file"), "{err:#}");
    }

    #[test]
    fn open_refuses_a_folder_without_config() {
        let tmp = tempfile::tempdir().unwrap();
        let err = RunDir::open(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("not a run directory"), "{err}");
    }
}
