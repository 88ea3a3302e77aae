//! `metalearn eval`: the standard protocol on a trained checkpoint — mean accuracy (mean squared
//! error for regression) ± 95% CI over a fixed, seeded set of test episodes.

use crate::algos::{LearnerJob, with_learner};
use crate::args::EvalArgs;
use crate::backend::{BackendJob, dispatch};
use crate::config::RunConfig;
use crate::run_dir::{RunDir, write_atomic};
use crate::train::data_settings;
use anyhow::{Context, Result, bail};
use burn::tensor::backend::AutodiffBackend;
use meta_algos::{EvalConfig, MetaLearner, Metric};
use meta_data::{EpisodeSource, Split};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A trained run: its configuration and the checkpoint to use.
pub struct TrainedRun {
    /// The run's resolved configuration.
    pub config: RunConfig,
    /// The run directory.
    pub run_dir: RunDir,
    /// The checkpoint file.
    pub checkpoint: PathBuf,
}

impl TrainedRun {
    /// Opens a run directory (best checkpoint, else latest) or a checkpoint inside one.
    pub fn open(path: &Path) -> Result<Self> {
        let (root, checkpoint) = if path.is_file() {
            let root = path
                .parent()
                .and_then(Path::parent)
                .filter(|root| root.join("config.toml").is_file())
                .with_context(|| {
                    format!(
                        "{} is not inside a run directory (<run>/checkpoints/<name>.ckpt with \
                         <run>/config.toml); pass the run directory instead",
                        path.display()
                    )
                })?;
            (root.to_path_buf(), path.to_path_buf())
        } else if path.is_dir() {
            let checkpoints = path.join("checkpoints");
            let checkpoint = ["best.ckpt", "latest.ckpt"]
                .iter()
                .map(|name| checkpoints.join(name))
                .find(|p| p.is_file())
                .with_context(|| {
                    format!(
                        "no checkpoint in {}: train first, or pass a .ckpt file",
                        checkpoints.display()
                    )
                })?;
            (path.to_path_buf(), checkpoint)
        } else {
            bail!(
                "checkpoint {} does not exist: pass a run directory or a .ckpt file",
                path.display()
            );
        };
        let run_dir = RunDir::open(&root)?;
        let config = RunConfig::read(&run_dir.config_path())?;
        Ok(Self {
            config,
            run_dir,
            checkpoint,
        })
    }
}

/// What `eval` writes as JSON.
#[derive(Debug, Serialize)]
struct EvalOutput {
    checkpoint: PathBuf,
    algo: String,
    split: String,
    ways: usize,
    shots: usize,
    queries: usize,
    /// Absent for algorithms without an inner loop.
    #[serde(skip_serializing_if = "Option::is_none")]
    inner_steps: Option<usize>,
    episodes: usize,
    seed: u64,
    /// What `mean` measures: `accuracy` or `mse`.
    metric: Metric,
    mean: f64,
    ci95: f64,
}

/// Runs `metalearn eval`.
pub fn run(args: EvalArgs) -> Result<()> {
    let mut run = TrainedRun::open(&args.checkpoint)?;
    let config = &mut run.config;
    if let Some(steps) = args.inner_steps {
        config.test_inner_steps = steps;
    }
    if let Some(queries) = args.queries {
        config.test_queries = queries;
    }
    if let Some(dir) = &args.data_dir {
        config.data_dir = dir.clone();
    }
    if let Some(backend) = &args.backend {
        config.backend = backend.clone();
    }
    if args.episodes == 0 {
        bail!("--episodes must be at least 1");
    }
    config.validate()?;
    let split = match args.split.as_str() {
        "train" => Split::Train,
        "val" => Split::Val,
        _ => Split::Test,
    };
    let episodes = data_settings(config)
        .episodes(
            split,
            (config.ways, config.shots, config.test_queries),
            args.seed,
            None,
        )?
        .with_context(|| format!("the data set has no {} split", args.split))?
        .source;
    let output = args.output.clone().unwrap_or_else(|| {
        run.run_dir
            .root()
            .join(format!("eval-{}-{}.json", args.split, args.seed))
    });
    let backend = config.backend.clone();
    dispatch(
        &backend,
        EvalJob {
            run,
            episodes,
            args,
            output,
        },
    )
}

struct EvalJob {
    run: TrainedRun,
    episodes: Arc<dyn EpisodeSource>,
    args: EvalArgs,
    output: PathBuf,
}

impl BackendJob for EvalJob {
    type Output = ();

    fn run<B: AutodiffBackend>(self, device: B::Device, label: String) -> Result<()> {
        tracing::info!(
            "evaluating {} ({}) on {} episodes of the {} split, seed {}, backend {label}",
            self.run.checkpoint.display(),
            self.run.config.algo,
            self.args.episodes,
            self.args.split,
            self.args.seed
        );
        let shape = self.episodes.image_shape();
        let config = self.run.config.clone();
        with_learner::<B, _>(&config, shape, EvalLearner { job: self, device })
    }
}

struct EvalLearner<B: AutodiffBackend> {
    job: EvalJob,
    device: B::Device,
}

impl<B: AutodiffBackend> LearnerJob<B> for EvalLearner<B> {
    type Output = ();

    fn run<L: MetaLearner<B> + 'static>(self, learner: L) -> Result<()> {
        let EvalLearner { job, device } = self;
        let (model, _header) = meta_algos::load_model(&learner, &job.run.checkpoint, &device)?;
        let report = meta_algos::evaluate(
            &learner,
            &model,
            &*job.episodes,
            &EvalConfig {
                episodes: job.args.episodes,
                seed: job.args.seed,
            },
            &device,
        )?;
        let config = &job.run.config;
        let inner_steps = learner.test_inner_steps();
        let steps_text = inner_steps
            .map(|steps| format!(", {steps} inner steps"))
            .unwrap_or_default();
        let task = match report.metric {
            Metric::Accuracy => format!("{}-way {}-shot", config.ways, config.shots),
            Metric::Mse => format!("{} {}-shot regression", config.dataset, config.shots),
        };
        let mse = if report.metric == Metric::Mse {
            " MSE"
        } else {
            ""
        };
        println!(
            "{} {task}, {} split: {} ± {}{mse} (95% CI, {} episodes, seed {}{})",
            config.algo,
            job.args.split,
            report.metric.format(report.mean),
            report.metric.format(report.ci95),
            report.episodes,
            report.seed,
            steps_text
        );
        let out = EvalOutput {
            checkpoint: job.run.checkpoint.clone(),
            algo: config.algo.clone(),
            split: job.args.split.clone(),
            ways: config.ways,
            shots: config.shots,
            queries: config.test_queries,
            inner_steps,
            episodes: report.episodes,
            seed: report.seed,
            metric: report.metric,
            mean: report.mean,
            ci95: report.ci95,
        };
        write_atomic(&job.output, serde_json::to_string_pretty(&out)?.as_bytes())?;
        println!("wrote {}", job.output.display());
        Ok(())
    }
}
