//! What a bench run reports: result rows (field names shared with `bench/pytorch_reference.py`),
//! the machine and settings, a reference run to compare with, the terminal table and
//! `bench.json` (the terminal table is in `table.rs`).

use super::measure::Measured;
use super::workload::Workload;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One (backend, workload, algorithm) result. Times are medians over the timed iterations, in
/// milliseconds; memory in MiB. Every measurement is `None` when the configuration failed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Row {
    /// Backend name (`flex`, `wgpu`, … or the reference's, e.g. `pytorch-cpu`).
    pub backend: String,
    /// The device the backend ran on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Workload name.
    pub workload: String,
    /// Algorithm name.
    pub algo: String,
    /// Tasks per meta-iteration.
    pub meta_batch: usize,
    /// Where the episodes came from: `synthetic` or `omniglot`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// Median tasks per second (meta-batch / iteration time).
    pub tasks_per_sec_median: Option<f64>,
    /// Slowest iteration's tasks per second.
    pub tasks_per_sec_min: Option<f64>,
    /// Fastest iteration's tasks per second.
    pub tasks_per_sec_max: Option<f64>,
    /// Median iteration time: meta-gradients + outer step (data excluded).
    pub iteration_ms_median: Option<f64>,
    /// Median time to produce the host episodes and copy them to the device.
    pub data_ms: Option<f64>,
    /// Median time of the meta-gradients.
    pub meta_grad_ms: Option<f64>,
    /// Median time of the outer step (checks, clipping, optimizer).
    pub outer_ms: Option<f64>,
    /// Median time of the forward adaptation to the meta-batch's support sets, measured apart
    /// from the iteration (not part of `iteration_ms_median`).
    pub inner_ms: Option<f64>,
    /// Peak resident set size of the process during this configuration.
    pub peak_rss_mb: Option<f64>,
    /// Device memory the backend's runtime held (wgpu/cuda pools; the reference's
    /// `peak_gpu_mb`).
    #[serde(alias = "peak_gpu_mb")]
    pub gpu_mem_mb: Option<f64>,
    /// The reference row this one is compared with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_backend: Option<String>,
    /// Our median tasks/s over the reference's, same workload and algorithm.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speedup_vs_reference: Option<f64>,
    /// What went wrong, for a configuration that failed.
    pub error: Option<String>,
}

fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    })
}

impl Row {
    /// A row with no measurements yet.
    pub fn new(
        backend: &str,
        device: &str,
        workload: &Workload,
        algo: &str,
        meta_batch: usize,
        data: &str,
    ) -> Self {
        Self {
            backend: backend.into(),
            device: Some(device.into()),
            workload: workload.name.into(),
            algo: algo.into(),
            meta_batch,
            data: Some(data.into()),
            ..Self::default()
        }
    }

    /// Fills in the statistics of `m`.
    pub fn fill(&mut self, m: &Measured) {
        let ms = |v: &[f64]| median(v).map(|s| 1e3 * s);
        let rate = |s: f64| self.meta_batch as f64 / s;
        let slowest = m.iteration_s.iter().copied().fold(f64::NAN, f64::max);
        let fastest = m.iteration_s.iter().copied().fold(f64::NAN, f64::min);
        self.iteration_ms_median = ms(&m.iteration_s);
        self.tasks_per_sec_median = median(&m.iteration_s).map(rate);
        self.tasks_per_sec_min = Some(rate(slowest)).filter(|r| r.is_finite());
        self.tasks_per_sec_max = Some(rate(fastest)).filter(|r| r.is_finite());
        self.data_ms = ms(&m.data_s);
        self.meta_grad_ms = ms(&m.meta_grad_s);
        self.outer_ms = ms(&m.outer_s);
        self.inner_ms = ms(&m.inner_s);
        self.gpu_mem_mb = m.gpu_mib;
    }
}

/// The machine the bench ran on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// CPU model name (`/proc/cpuinfo`), or the architecture.
    pub cpu_model: String,
    /// Logical cores available to this process.
    pub cores: usize,
    /// Operating system (`/etc/os-release`'s pretty name, or the OS family).
    pub os: String,
}

impl Machine {
    /// Describes this machine.
    pub fn detect() -> Self {
        let field = |path: &str, key: &str| -> Option<String> {
            let text = std::fs::read_to_string(path).ok()?;
            let line = text.lines().find(|l| l.starts_with(key))?;
            let value = line.split_once([':', '='])?.1.trim().trim_matches('"');
            Some(value.to_string())
        };
        Self {
            cpu_model: field("/proc/cpuinfo", "model name")
                .unwrap_or_else(|| std::env::consts::ARCH.into()),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            os: field("/etc/os-release", "PRETTY_NAME")
                .map(|p| format!("{p} ({})", std::env::consts::ARCH))
                .unwrap_or_else(|| std::env::consts::OS.into()),
        }
    }
}

/// How the bench was run.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// Untimed iterations per configuration.
    pub warmup: usize,
    /// Timed iterations per configuration.
    pub iters: usize,
    /// `--meta-batch`, when it replaced every workload's own.
    pub meta_batch: Option<usize>,
    /// Where episodes came from.
    pub data_source: String,
    /// Seed of initialisation and episodes.
    pub seed: u64,
    /// What the time columns measure.
    pub timing: &'static str,
}

/// What the `timing` setting and the table's footnote say.
pub const TIMING_NOTE: &str = "iteration = meta-gradients + outer step, the device synced before \
    each clock read; tasks/s = meta-batch / iteration time; data (episodes + copy to the device) \
    is timed apart and not in the iteration; inner = forward adaptation (learner.adapt) to the \
    meta-batch's support sets, measured separately after each iteration, not in the iteration; \
    memory in MiB: peak RSS per configuration (VmHWM, reset before it; memory the allocator kept \
    from earlier rows counts too), GPU = memory the runtime's pools hold (wgpu/cuda only)";

/// A reference run read with `--reference`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reference {
    /// The tool that wrote it (`pytorch`, `metalearn`, …).
    #[serde(default)]
    pub tool: Option<String>,
    /// Its results.
    pub results: Vec<Row>,
}

impl Reference {
    /// Reads a reference JSON file (`{"results": [{backend, workload, algo, …}]}`).
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read --reference {}", path.display()))?;
        let mut reference: Reference = serde_json::from_str(&text).with_context(|| {
            format!(
                "--reference {} is not a bench JSON (an object with a `results` list of \
                 {{backend, workload, algo, tasks_per_sec_median, …}})",
                path.display()
            )
        })?;
        for (i, row) in reference.results.iter_mut().enumerate() {
            if row.backend.is_empty() || row.workload.is_empty() || row.algo.is_empty() {
                bail!(
                    "--reference {}: results[{i}] lacks backend, workload or algo",
                    path.display()
                );
            }
            row.backend = match &reference.tool {
                Some(tool) if !row.backend.contains(tool.as_str()) => {
                    format!("{tool}:{}", row.backend)
                }
                _ => row.backend.clone(),
            };
        }
        Ok(reference)
    }

    /// The column header of our speed relative to this reference.
    pub fn ratio_header(&self) -> String {
        match self.tool.as_deref() {
            Some("pytorch") => "× PyTorch".into(),
            Some(tool) => format!("× {tool}"),
            None => "× ref".into(),
        }
    }

    /// Sets each row's speed relative to the reference row of the same workload and
    /// algorithm, preferring one on the same kind of device (CPU or GPU).
    pub fn compare(&self, rows: &mut [Row]) {
        for row in rows {
            let ours_cpu = row
                .device
                .as_deref()
                .is_some_and(|d| d.to_lowercase().contains("cpu"));
            let candidates = self.results.iter().filter(|r| {
                r.workload == row.workload
                    && r.algo == row.algo
                    && r.tasks_per_sec_median.is_some_and(|v| v > 0.0)
            });
            let mut best: Option<&Row> = None;
            for r in candidates {
                let same_kind = r.backend.to_lowercase().contains("cpu") == ours_cpu;
                if best.is_none() || (same_kind && best.is_some_and(|b| !is_same(b, ours_cpu))) {
                    best = Some(r);
                }
            }
            if let (Some(reference), Some(ours)) = (best, row.tasks_per_sec_median) {
                row.reference_backend = Some(reference.backend.clone());
                row.speedup_vs_reference =
                    reference.tasks_per_sec_median.map(|theirs| ours / theirs);
            }
        }
    }
}

fn is_same(row: &Row, ours_cpu: bool) -> bool {
    row.backend.to_lowercase().contains("cpu") == ours_cpu
}

/// `bench.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Always `metalearn`.
    pub tool: &'static str,
    /// Version of the `metalearn` binary.
    pub version: &'static str,
    /// Seconds since the Unix epoch when the bench started.
    pub unix_time: u64,
    /// The machine.
    pub machine: Machine,
    /// How the bench was run.
    pub settings: Settings,
    /// One row per configuration, in the order run.
    pub results: Vec<Row>,
    /// The `--reference` run, when one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<Reference>,
}

impl Report {
    /// Writes `bench.json` into `dir`.
    pub fn write_json(&self, dir: &Path) -> Result<std::path::PathBuf> {
        let path = dir.join("bench.json");
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(&path, text + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A MAML Omniglot 5w1s row of `backend` at meta-batch 32, measured at `tps` tasks/s.
    pub(in crate::bench) fn row(backend: &str, device: &str, tps: Option<f64>) -> Row {
        Row {
            backend: backend.into(),
            device: Some(device.into()),
            workload: "omniglot-5w1s".into(),
            algo: "maml".into(),
            meta_batch: 32,
            tasks_per_sec_median: tps,
            ..Row::default()
        }
    }

    #[test]
    fn statistics_use_the_median_and_the_extremes_of_the_iterations() {
        let mut r = row("flex", "flex (CPU)", None);
        r.meta_batch = 4;
        r.fill(&Measured {
            iteration_s: vec![2.0, 1.0, 4.0],
            data_s: vec![0.1, 0.3, 0.2],
            meta_grad_s: vec![1.5, 0.5, 3.0],
            outer_s: vec![0.5; 3],
            inner_s: vec![0.25; 3],
            gpu_mib: None,
        });
        assert_eq!(r.tasks_per_sec_median, Some(2.0));
        assert_eq!(r.tasks_per_sec_min, Some(1.0));
        assert_eq!(r.tasks_per_sec_max, Some(4.0));
        assert_eq!(r.iteration_ms_median, Some(2000.0));
        assert_eq!(r.data_ms, Some(200.0));
        assert_eq!(r.inner_ms, Some(250.0));
    }

    #[test]
    fn reference_rows_parse_with_the_pytorch_field_names_and_match_by_device_kind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ref.json");
        let json = r#"{"tool": "pytorch", "results": [
            {"backend": "pytorch-cuda", "workload": "omniglot-5w1s", "algo": "maml",
             "meta_batch": 32, "tasks_per_sec_median": 400.0, "peak_gpu_mb": 900.0,
             "inner_steps": 1},
            {"backend": "pytorch-cpu", "workload": "omniglot-5w1s", "algo": "maml",
             "meta_batch": 32, "tasks_per_sec_median": 40.0, "peak_rss_mb": 500.0}]}"#;
        std::fs::write(&path, json).unwrap();
        let reference = Reference::read(&path).unwrap();
        assert_eq!(reference.results[0].gpu_mem_mb, Some(900.0));
        assert_eq!(reference.ratio_header(), "× PyTorch");
        let mut rows = vec![
            row("flex", "flex (CPU)", Some(20.0)),
            row("wgpu", "wgpu (default adapter)", Some(100.0)),
            row("ndarray", "ndarray (CPU)", None),
        ];
        reference.compare(&mut rows);
        assert_eq!(rows[0].speedup_vs_reference, Some(0.5));
        assert_eq!(rows[0].reference_backend.as_deref(), Some("pytorch-cpu"));
        assert_eq!(rows[1].speedup_vs_reference, Some(0.25));
        assert_eq!(rows[2].speedup_vs_reference, None);
    }

    #[test]
    fn a_reference_without_results_is_refused_naming_the_flag() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ref.json");
        std::fs::write(&path, r#"{"rows": []}"#).unwrap();
        let err = format!("{:#}", Reference::read(&path).unwrap_err());
        assert!(
            err.contains("--reference") && err.contains("results"),
            "{err}"
        );
    }
}
