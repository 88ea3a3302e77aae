//! `metalearn train`: resolve the configuration, build samplers and the learner, meta-train with
//! progress, metrics, checkpoints and plots, then evaluate on the test split.

use crate::algos::{LearnerJob, with_learner};
use crate::args::TrainArgs;
use crate::backend::{BackendJob, dispatch};
use crate::config::{ConfigOverrides, RunConfig, read_overrides};
use crate::data::{DataSettings, Episodes};
use crate::layers::layered;
use crate::run_dir::{MetricsLine, RunDir};
use anyhow::{Context, Result, bail};
use burn::tensor::backend::AutodiffBackend;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use meta_algos::{
    AlgoError, EvalConfig, EvalReport, IterationMetrics, MetaLearner, Metric, StepsReport,
    TrainSummary, Trainer, TrainerConfig,
};
use meta_data::{EpisodeSource, Split};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// Runs `metalearn train`.
pub fn run(args: TrainArgs) -> Result<()> {
    if args.list_presets {
        let presets = meta_algos::presets::PRESETS;
        let width = presets.iter().map(|p| p.name.len()).max().unwrap_or(0);
        for preset in presets {
            println!("{:<width$}  {}", preset.name, preset.reference);
        }
        return Ok(());
    }
    let (mut config, run_dir, resume) = resolve(&args)?;
    crate::data::fetch_default_omniglot(&config.dataset, &config.data_dir)?;
    let train = data_settings(&config)
        .episodes(
            Split::Train,
            (config.ways, config.shots, config.queries),
            config.seed,
            Some(config.augment.unwrap_or_default()),
        )?
        .context("the data set has no training split")?;
    if fill_baseline_classes(&mut config, train.classes)? {
        run_dir.write_atomic("config.toml", config.to_toml()?.as_bytes())?;
    }
    let val = if config.validate_every > 0 && config.val_episodes > 0 {
        data_settings(&config).episodes(
            Split::Val,
            (config.ways, config.shots, config.test_queries),
            config.seed,
            None,
        )?
    } else {
        None
    };
    if config.test_episodes > 0 {
        // The test split is evaluated after training: refuse a run it cannot serve now.
        test_episodes(&config)?;
    }
    let job = TrainJob {
        config,
        run_dir,
        resume,
        train,
        val,
    };
    dispatch(&job.config.backend.clone(), job)
}

/// Sets `[baseline] classes` to the training split's `classes` where it is 0 (returns whether
/// it changed); refuses another value.
fn fill_baseline_classes(config: &mut RunConfig, classes: usize) -> Result<bool> {
    let Some(baseline) = config.baseline.as_mut() else {
        return Ok(false);
    };
    match baseline.classes {
        0 => {
            baseline.classes = classes;
            Ok(true)
        }
        n if n == classes => Ok(false),
        n => bail!(
            "[baseline] classes is {n} but the training split has {classes} classes: remove the \
             key (training fills it in) or set it to {classes}"
        ),
    }
}

/// The settings a run's samplers are built from.
pub fn data_settings(config: &RunConfig) -> DataSettings<'_> {
    DataSettings {
        data_dir: &config.data_dir,
        dataset: &config.dataset,
        omniglot_split: &config.omniglot_split,
        image_size: config.image_size,
        seed: config.seed,
        folder: config.folder.as_ref(),
        sine: config.sine.as_ref(),
        csv: config
            .label_column
            .as_deref()
            .map(|label| (config.csv.unwrap_or_default(), label)),
    }
}

/// Preset < config file < flags, or the stored config of a run being resumed.
fn resolve(args: &TrainArgs) -> Result<(RunConfig, RunDir, bool)> {
    if let Some(dir) = &args.resume {
        let run_dir = RunDir::open(dir)?;
        let mut config = RunConfig::read(&run_dir.config_path())?;
        // What may change when a run continues: its length, where it runs, its logging, and
        // the learning rates (to recover from a divergence).
        let o = &args.overrides;
        let allowed = ConfigOverrides {
            iterations: o.iterations,
            backend: o.backend.clone(),
            data_dir: o.data_dir.clone(),
            meta_lr: o.meta_lr,
            inner_lr: o.inner_lr,
            validate_every: o.validate_every,
            checkpoint_every: o.checkpoint_every,
            log_every: o.log_every,
            test_episodes: o.test_episodes,
            ..ConfigOverrides::default()
        };
        if *o != allowed {
            bail!(
                "--resume continues {} with its stored config.toml; only --iterations, \
                 --backend, --data-dir, --meta-lr, --inner-lr, --validate-every, \
                 --checkpoint-every, --log-every and --test-episodes may be given with it",
                dir.display()
            );
        }
        config.apply(&allowed)?;
        config.validate()?;
        if !run_dir.checkpoints().join("latest.ckpt").is_file() {
            bail!(
                "{} has no checkpoints/latest.ckpt to resume from; start it again without --resume",
                dir.display()
            );
        }
        run_dir.write_atomic("config.toml", config.to_toml()?.as_bytes())?;
        return Ok((config, run_dir, true));
    }
    let file = args.config.as_deref().map(read_overrides).transpose()?;
    let config = layered(args.preset.as_deref(), file.as_ref(), &args.overrides)?;
    config.validate()?;
    let root = args
        .run_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(config.default_run_name()));
    if root.join("checkpoints").join("latest.ckpt").exists() {
        bail!(
            "{} already holds a run: continue it with `--resume {}` or pick another --run-dir",
            root.display(),
            root.display()
        );
    }
    let run_dir = RunDir::create(&root)?;
    run_dir.write_atomic("config.toml", config.to_toml()?.as_bytes())?;
    Ok((config, run_dir, false))
}

/// The meta-training loop's settings for a run.
pub fn trainer_config(config: &RunConfig) -> TrainerConfig {
    let optimizer = config.optimizer();
    TrainerConfig {
        iterations: config.iterations as u64,
        meta_batch: config.meta_batch,
        optimizer: optimizer.kind.unwrap_or_default(),
        adam: optimizer.adam,
        lr: config.meta_lr,
        schedule: config.schedule(),
        grad_clip: optimizer.grad_clip,
        val_every: config.validate_every as u64,
        val_episodes: config.val_episodes,
        seed: config.seed,
        prefetch_threads: 1,
        checkpoint_every: config.checkpoint_every as u64,
    }
}

struct TrainJob {
    config: RunConfig,
    run_dir: RunDir,
    resume: bool,
    train: Episodes,
    val: Option<Episodes>,
}

impl BackendJob for TrainJob {
    type Output = ();

    fn run<B: AutodiffBackend>(self, device: B::Device, label: String) -> Result<()> {
        let c = &self.config;
        tracing::info!(
            "{} {} on {} {}-way {}-shot ({} queries), seed {}, backend {label}, run {}",
            if self.resume { "resuming" } else { "training" },
            c.algo,
            c.dataset,
            c.ways,
            c.shots,
            c.queries,
            c.seed,
            self.run_dir.root().display()
        );
        let shape = self.train.source.image_shape();
        if c.dataset == crate::data::SINE {
            let sine = c.sine.unwrap_or_default();
            tracing::info!(
                "data: sine waves, amplitude {:?}, phase {:?}, x in {:?}",
                sine.amplitude,
                sine.phase,
                sine.x_range
            );
        } else {
            tracing::info!(
                "data: images {}×{}×{}, {} training classes, {} validation classes",
                shape[0],
                shape[1],
                shape[2],
                self.train.classes,
                self.val.as_ref().map_or(0, |v| v.classes)
            );
        }
        if let Some(augment) = c.augment.filter(|a| a.is_active()) {
            tracing::info!(
                "training images augmented: crop padding {}, flip {}, colour jitter {} / {} / {} \
                 (brightness / contrast / saturation)",
                augment.crop_padding,
                augment.flip,
                augment.brightness,
                augment.contrast,
                augment.saturation
            );
        }
        with_learner::<B, _>(
            &self.config.clone(),
            shape,
            LearnerTrain { job: self, device },
        )
    }
}

struct LearnerTrain<B: AutodiffBackend> {
    job: TrainJob,
    device: B::Device,
}

/// What `summary.json` records at the end of a run.
#[derive(Debug, Serialize)]
struct Summary<'a> {
    config: &'a RunConfig,
    iterations: u64,
    wall_s: f64,
    final_train_loss: f64,
    best_validation: Option<meta_algos::BestValidation>,
    test: Option<EvalReport>,
    /// Regression: the test MSE after 0, 1, …, `test_inner_steps` adaptation steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    test_steps: Option<StepsReport>,
    test_model: &'static str,
}

impl<B: AutodiffBackend> LearnerJob<B> for LearnerTrain<B> {
    type Output = ();

    fn run<L: MetaLearner<B> + 'static>(self, learner: L) -> Result<()> {
        let LearnerTrain { job, device } = self;
        let config = &job.config;
        let run_dir = &job.run_dir;
        let checkpoints = run_dir.checkpoints();
        let trainer_config = trainer_config(config);
        let mut trainer = if job.resume {
            let latest = checkpoints.join("latest.ckpt");
            let trainer = Trainer::resume(learner, trainer_config, &device, &latest)?;
            run_dir.truncate_metrics_after(trainer.iteration() as usize)?;
            trainer
        } else {
            Trainer::new(learner, trainer_config, &device)?
        };
        let prior_wall = run_dir
            .read_metrics()?
            .last()
            .map_or(0.0, |line| line.wall_s);
        let progress = Progress::new(config.iterations as u64, trainer.iteration());
        let start = Instant::now();
        let mut log_error = None;
        let log_every = config.log_every.max(1) as u64;
        let train: Arc<dyn EpisodeSource> = Arc::clone(&job.train.source);
        let val = job.val.as_ref().map(|v| &*v.source);
        let result = trainer.run(train, val, Some(&checkpoints), |m: &IterationMetrics| {
            progress.update(m);
            if (m.iteration + 1).is_multiple_of(log_every) || m.validation.is_some() {
                let line = metrics_line(m, prior_wall + start.elapsed().as_secs_f64());
                if let Err(err) = run_dir.append_metrics(&line) {
                    log_error.get_or_insert(err);
                }
            }
        });
        progress.finish();
        let summary = match result {
            Ok(summary) => summary,
            Err(err @ (AlgoError::NonFiniteLoss { .. } | AlgoError::NonFiniteGradient { .. })) => {
                // No update was applied: the model is the last good one; keep it.
                let latest = checkpoints.join("latest.ckpt");
                trainer.save_checkpoint(&latest)?;
                return Err(anyhow::Error::new(err).context(format!(
                    "training stopped after {} good iterations; their state is saved in {} \
                     (lower --meta-lr or --inner-lr, then continue with --resume {})",
                    trainer.iteration(),
                    latest.display(),
                    run_dir.root().display()
                )));
            }
            Err(err) => return Err(err.into()),
        };
        if let Some(err) = log_error {
            return Err(err.context("could not write metrics.jsonl"));
        }
        finish_run(&job, &trainer, &summary, prior_wall, &device)
    }
}

/// Plots, test evaluation and `summary.json`.
fn finish_run<B: AutodiffBackend, L: MetaLearner<B>>(
    job: &TrainJob,
    trainer: &Trainer<B, L>,
    summary: &TrainSummary,
    prior_wall: f64,
    device: &B::Device,
) -> Result<()> {
    let config = &job.config;
    let run_dir = &job.run_dir;
    let lines = run_dir.read_metrics()?;
    crate::plots::write_learning_curves(&lines, &run_dir.plots())?;
    // best.ckpt holds the best validation of the whole run, including segments before a resume.
    let best = run_dir.checkpoints().join("best.ckpt");
    let (model, which) = if best.is_file() {
        let (model, _) = meta_algos::load_model(trainer.learner(), &best, device)?;
        (model, "best-on-validation")
    } else {
        (trainer.model().clone(), "final")
    };
    let mut test_steps = None;
    let test = if config.test_episodes > 0 {
        let test = test_episodes(config)?;
        let eval = EvalConfig {
            episodes: config.test_episodes,
            seed: config.seed,
        };
        let report = meta_algos::evaluate(trainer.learner(), &model, &*test, &eval, device)?;
        let what = match report.metric {
            Metric::Accuracy => "accuracy",
            Metric::Mse => "MSE",
        };
        println!(
            "test {what} ({which} model, {} episodes, seed {}): {} ± {}",
            report.episodes,
            report.seed,
            report.metric.format(report.mean),
            report.metric.format(report.ci95)
        );
        if report.metric == Metric::Mse {
            let steps = config.test_inner_steps;
            let curve = meta_algos::evaluate_steps(
                trainer.learner(),
                &model,
                &*test,
                &eval,
                steps,
                device,
            )?;
            let plots = run_dir.plots();
            crate::sine_plots::write_steps_curve(&curve, &plots)?;
            crate::sine_plots::write_fits(trainer.learner(), &model, config, &plots, device)?;
            test_steps = Some(curve);
        }
        Some(report)
    } else {
        None
    };
    let summary = Summary {
        config,
        iterations: summary.iterations,
        wall_s: prior_wall + summary.seconds,
        final_train_loss: summary.final_loss,
        best_validation: summary.best_validation,
        test,
        test_steps,
        test_model: which,
    };
    run_dir.write_atomic(
        "summary.json",
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    println!("run written to {}", run_dir.root().display());
    Ok(())
}

/// The run's test episodes (built with its seed).
pub fn test_episodes(config: &RunConfig) -> Result<Arc<dyn EpisodeSource>> {
    let test = data_settings(config)
        .episodes(
            Split::Test,
            (config.ways, config.shots, config.test_queries),
            config.seed,
            None,
        )?
        .context("the data set has no test split")?;
    Ok(test.source)
}

fn metrics_line(m: &IterationMetrics, wall_s: f64) -> MetricsLine {
    MetricsLine {
        // Iterations completed (the trainer reports the zero-based index of the last one).
        iteration: m.iteration as usize + 1,
        wall_s,
        train_loss: m.loss,
        train_acc: m.accuracy,
        val_loss: None,
        val_acc: m
            .validation
            .filter(|v| v.metric == Metric::Accuracy)
            .map(|v| v.mean),
        val_mse: m
            .validation
            .filter(|v| v.metric == Metric::Mse)
            .map(|v| v.mean),
        val_ci95: m.validation.map(|v| v.ci95),
    }
}

/// A progress bar on a terminal; periodic log lines otherwise.
struct Progress {
    bar: ProgressBar,
    total: u64,
}

impl Progress {
    fn new(total: u64, done: u64) -> Self {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} it {per_sec} ETA {eta} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_position(done);
        Self { bar, total }
    }

    fn update(&self, m: &IterationMetrics) {
        let mut msg = format!("loss {:.3}", m.loss);
        if !m.accuracy.is_nan() {
            msg.push_str(&format!(" acc {:.1}%", 100.0 * m.accuracy));
        }
        if let Some(v) = m.validation {
            let mse = if v.metric == Metric::Mse { " MSE" } else { "" };
            msg.push_str(&format!(
                " | val {} ± {}{mse}",
                v.metric.format(v.mean),
                v.metric.format(v.ci95)
            ));
        }
        let done = m.iteration + 1;
        self.bar.set_position(done);
        if self.bar.is_hidden() {
            // Not a terminal: plain lines, about 20 per run plus every validation.
            let every = (self.total / 20).max(1);
            if done.is_multiple_of(every) || m.validation.is_some() || done == self.total {
                tracing::info!("iteration {done}/{}: {msg}", self.total);
            }
        } else {
            self.bar.set_message(msg);
        }
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
