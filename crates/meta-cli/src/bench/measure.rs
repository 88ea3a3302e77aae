//! Timing one (backend, workload, algorithm) configuration: build the learner as `train` does,
//! warm up, then time data, meta-gradients, outer step and (separately) the inner loop of each
//! meta-iteration, syncing the device before every clock read.

use super::Plan;
use super::memory::{self, GpuProbe};
use super::report::Row;
use super::workload::{EpisodeFeed, Workload};
use crate::algos::{LearnerJob, with_learner};
use crate::backend::BackendJob;
use crate::config::RunConfig;
use anyhow::{Result, anyhow};
use burn::tensor::backend::{AutodiffBackend, Backend};
use meta_algos::{MetaLearner, Trainer};
use meta_data::Task;
use std::panic::AssertUnwindSafe;
use std::sync::Mutex;
use std::time::Instant;

/// Every configuration of the plan on one backend; each failure becomes that row's error.
pub struct BackendBench<'a> {
    /// What to run.
    pub plan: &'a Plan,
    /// The backend's `--backend` name.
    pub backend: &'a str,
    /// Called with each configuration's row as soon as it is measured.
    pub on_row: &'a mut dyn FnMut(&Row),
}

impl BackendJob for BackendBench<'_> {
    type Output = ();

    fn run<B: AutodiffBackend>(self, device: B::Device, label: String) -> Result<()> {
        let plan = self.plan;
        let gpu = memory::gpu_probe(self.backend);
        for (workload, algo) in &plan.configs {
            let meta_batch = plan.meta_batch.unwrap_or(workload.meta_batch);
            let feed = plan.feed(workload);
            eprintln!(
                "bench: {} {} {algo} (meta-batch {meta_batch}, {} data): {} warm-up + {} timed iterations",
                self.backend,
                workload.name,
                feed.label(),
                plan.warmup,
                plan.iters
            );
            let mut row = Row::new(
                self.backend,
                &label,
                workload,
                algo,
                meta_batch,
                feed.label(),
            );
            B::memory_cleanup(&device);
            let rss_reset = memory::reset_peak_rss();
            let config = workload.run_config(algo, meta_batch, plan.seed);
            let job = TimedJob::<B> {
                config: config.clone(),
                workload,
                feed,
                warmup: plan.warmup,
                iters: plan.iters,
                device: device.clone(),
                gpu,
            };
            let outcome = catch_panics(|| with_learner::<B, _>(&config, workload.image_shape, job));
            row.peak_rss_mb = if rss_reset {
                memory::peak_rss_mib()
            } else {
                None
            };
            match outcome {
                Ok(measured) => {
                    row.fill(&measured);
                    eprintln!(
                        "bench:   {:.2} tasks/s (median; {:.0} ms per iteration)",
                        row.tasks_per_sec_median.unwrap_or(f64::NAN),
                        row.iteration_ms_median.unwrap_or(f64::NAN)
                    );
                }
                Err(err) => {
                    eprintln!("bench:   FAILED: {err:#}");
                    row.error = Some(format!("{err:#}"));
                }
            }
            (self.on_row)(&row);
        }
        Ok(())
    }
}

/// Seconds spent in each phase of every timed iteration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measured {
    /// Meta-gradients + outer step (what tasks/s is computed from).
    pub iteration_s: Vec<f64>,
    /// Host episodes + their conversion to device tensors.
    pub data_s: Vec<f64>,
    /// The learner's meta-gradients.
    pub meta_grad_s: Vec<f64>,
    /// Gradient checks, clipping and the outer optimizer step.
    pub outer_s: Vec<f64>,
    /// Forward adaptation (`MetaLearner::adapt`) to the meta-batch's support sets, timed apart.
    pub inner_s: Vec<f64>,
    /// Largest device-memory reading after an iteration (MiB), where the backend reports one.
    pub gpu_mib: Option<f64>,
}

/// Times one learner on one workload.
struct TimedJob<'a, B: AutodiffBackend> {
    config: RunConfig,
    workload: &'a Workload,
    feed: &'a EpisodeFeed,
    warmup: usize,
    iters: usize,
    device: B::Device,
    gpu: Option<GpuProbe>,
}

fn sync<B: Backend>(device: &B::Device) -> Result<()> {
    B::sync(device).map_err(|e| anyhow!("backend sync failed: {e}"))
}

impl<B: AutodiffBackend> LearnerJob<B> for TimedJob<'_, B> {
    type Output = Measured;

    fn run<L: MetaLearner<B> + 'static>(self, learner: L) -> Result<Measured> {
        let device = &self.device;
        // The outer optimizer, schedule and clipping that `train` uses for this algorithm.
        let mut trainer_config = crate::train::trainer_config(&self.config);
        trainer_config.prefetch_threads = 0;
        trainer_config.checkpoint_every = 0;
        trainer_config.val_every = 0;
        let meta_batch = trainer_config.meta_batch;
        let mut trainer = Trainer::new(learner, trainer_config, device)?;
        let mut measured = Measured::default();
        for i in 0..self.warmup + self.iters {
            sync::<B>(device)?;
            let start = Instant::now();
            let first = (i * meta_batch) as u64;
            let tasks: Vec<Task<B>> = (first..first + meta_batch as u64)
                .map(|index| self.feed.episode(self.workload, index).to_task(device))
                .collect();
            sync::<B>(device)?;
            let data_s = start.elapsed().as_secs_f64();
            let (_, timing) = trainer.step_tasks_timed(&tasks)?;

            let start = Instant::now();
            let adapted: Vec<L::Adapted> = tasks
                .iter()
                .map(|t| {
                    trainer.learner().adapt(
                        trainer.model(),
                        t.support_x.clone(),
                        t.support_y.clone(),
                        t.ways,
                    )
                })
                .collect();
            sync::<B>(device)?;
            let inner_s = start.elapsed().as_secs_f64();
            drop(adapted);

            if i >= self.warmup {
                measured.data_s.push(data_s);
                measured.meta_grad_s.push(timing.meta_grad_s);
                measured.outer_s.push(timing.outer_s);
                measured
                    .iteration_s
                    .push(timing.meta_grad_s + timing.outer_s);
                measured.inner_s.push(inner_s);
                if let Some(mib) = self.gpu.and_then(|probe| probe()) {
                    measured.gpu_mib = Some(measured.gpu_mib.map_or(mib, |m: f64| m.max(mib)));
                }
            }
        }
        Ok(measured)
    }
}

/// Messages of panics caught by [`catch_panics`] (the hook records them instead of printing).
static PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Runs `f`, turning a panic inside it (a backend failing deep inside burn) into an error with
/// the panic's message and location, so that one configuration's failure does not end the bench.
fn catch_panics<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|info| {
        if let Ok(mut panics) = PANICS.lock() {
            panics.push(info.to_string());
        }
    }));
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(f));
    std::panic::set_hook(previous);
    outcome.unwrap_or_else(|payload| {
        let recorded = PANICS.lock().ok().and_then(|mut panics| {
            let last = panics.pop();
            panics.clear();
            last
        });
        let message = recorded.unwrap_or_else(|| {
            payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into())
        });
        Err(anyhow!("{}", message.replace('\n', " ")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_with_its_message() {
        let err = catch_panics::<()>(|| panic!("device lost")).unwrap_err();
        assert!(err.to_string().contains("device lost"), "{err}");
        assert_eq!(catch_panics(|| Ok(3)).unwrap(), 3);
    }
}
