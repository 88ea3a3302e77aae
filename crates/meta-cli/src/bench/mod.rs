//! `metalearn bench`: meta-iteration speed of every chosen backend × algorithm × workload, as a
//! terminal table, `bench.json` and a bar chart (`bench.png`, `bench.svg`).
//!
//! Each configuration builds its learner exactly as `train` does (`with_learner`, the same outer
//! optimizer and clipping) and runs the trainer's own meta-iteration (`Trainer::step_tasks_timed`),
//! so the bench measures what training runs. One failing configuration (a NaN, a backend error
//! or panic) is reported in its row and the others still run.

mod chart;
mod measure;
mod memory;
mod report;
mod table;
mod workload;

use crate::args::BenchArgs;
use crate::backend::{BACKENDS, check_compiled, dispatch, is_compiled};
use anyhow::{Context, Result, bail};
use report::{Machine, Reference, Report, Row, Settings, TIMING_NOTE};
use std::sync::Arc;
use workload::{EpisodeFeed, WORKLOADS, Workload};

/// What a bench run measures, validated.
pub struct Plan {
    /// `(workload, algorithm)` pairs, in the order run.
    pub configs: Vec<(&'static Workload, String)>,
    /// Untimed iterations per configuration.
    pub warmup: usize,
    /// Timed iterations per configuration (≥ 1).
    pub iters: usize,
    /// `--meta-batch`, replacing every workload's own.
    pub meta_batch: Option<usize>,
    /// Seed of initialisation and episodes.
    pub seed: u64,
    synthetic: EpisodeFeed,
    omniglot: Option<EpisodeFeed>,
}

impl Plan {
    /// Where `workload`'s episodes come from.
    pub fn feed(&self, workload: &Workload) -> &EpisodeFeed {
        match &self.omniglot {
            Some(feed) if workload.omniglot => feed,
            _ => &self.synthetic,
        }
    }
}

/// Runs `metalearn bench`.
pub fn run(args: BenchArgs) -> Result<()> {
    let backends = backends(&args.backend)?;
    let algos = names("--algo", &args.algo, crate::algos::ALGOS)?;
    let workload_names: Vec<&str> = WORKLOADS.iter().map(|w| w.name).collect();
    let workloads = names("--workload", &args.workload, &workload_names)?;
    if args.iters == 0 {
        bail!("--iters must be at least 1 (got 0)");
    }
    if args.meta_batch == Some(0) {
        bail!("--meta-batch must be at least 1 (got 0)");
    }
    let reference = args.reference.as_deref().map(Reference::read).transpose()?;
    let mut configs = Vec::new();
    for name in &workloads {
        let Some(w) = workload::workload(name) else {
            bail!("unknown --workload `{name}`");
        };
        match w.only_algo {
            Some(algo) => configs.push((w, algo.to_string())),
            None => configs.extend(algos.iter().map(|a| (w, a.clone()))),
        }
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("--out {}: cannot create the directory", args.out.display()))?;

    let wants_omniglot = configs.iter().any(|(w, _)| w.omniglot);
    let (omniglot, data_source) = match &args.data_dir {
        Some(dir) if !dir.is_dir() => {
            bail!("--data-dir {} is not a directory", dir.display())
        }
        Some(dir) if wants_omniglot && workload::has_omniglot(dir) => {
            eprintln!("bench: loading Omniglot from {}", dir.display());
            let sampler = workload::omniglot_sampler(dir, args.seed)?;
            let source = format!(
                "Omniglot training episodes from {} for the Omniglot workloads, random pixels \
                 otherwise",
                dir.display()
            );
            (Some(EpisodeFeed::Sampler(Arc::new(sampler))), source)
        }
        Some(dir) if wants_omniglot => {
            eprintln!(
                "bench: no Omniglot in {}: every workload uses random pixels",
                dir.display()
            );
            (
                None,
                format!("random pixels (no Omniglot in {})", dir.display()),
            )
        }
        _ => (None, "random pixels".to_string()),
    };
    let plan = Plan {
        configs,
        warmup: args.warmup,
        iters: args.iters,
        meta_batch: args.meta_batch,
        seed: args.seed,
        synthetic: EpisodeFeed::Synthetic { seed: args.seed },
        omniglot,
    };

    let mut report = Report {
        tool: "metalearn",
        version: env!("CARGO_PKG_VERSION"),
        unix_time: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        machine: Machine::detect(),
        settings: Settings {
            warmup: plan.warmup,
            iters: plan.iters,
            meta_batch: plan.meta_batch,
            data_source,
            seed: plan.seed,
            timing: TIMING_NOTE,
        },
        results: Vec::new(),
        reference,
    };
    let mut write_error = None;
    for backend in &backends {
        // bench.json is rewritten after every configuration: a long run that is interrupted
        // keeps what it measured.
        let mut on_row = |row: &Row| {
            let mut row = row.clone();
            if let Some(reference) = &report.reference {
                reference.compare(std::slice::from_mut(&mut row));
            }
            report.results.push(row);
            if let Err(err) = report.write_json(&args.out) {
                write_error.get_or_insert(err);
            }
        };
        let job = measure::BackendBench {
            plan: &plan,
            backend,
            on_row: &mut on_row,
        };
        dispatch(backend, job)?;
    }
    if let Some(err) = write_error {
        return Err(err);
    }
    let json = report.write_json(&args.out)?;
    let reference_rows = report.reference.iter().flat_map(|r| r.results.iter());
    let charted: Vec<&Row> = report
        .results
        .iter()
        .filter(|r| r.error.is_none())
        .chain(reference_rows)
        .collect();
    let charts = chart::write_chart(&charted, &args.out)?;
    println!("{}", report.table());
    eprintln!("bench: wrote {}", json.display());
    for file in charts {
        eprintln!("bench: wrote {}", file.display());
    }
    let failed = report.results.iter().filter(|r| r.error.is_some()).count();
    if failed > 0 {
        bail!(
            "{failed} of {} configurations failed (see the table and {})",
            report.results.len(),
            json.display()
        );
    }
    Ok(())
}

/// `--backend`: the named backends (each must be compiled in), or every compiled-in one.
fn backends(given: &[String]) -> Result<Vec<String>> {
    if given.is_empty() {
        return Ok(BACKENDS
            .iter()
            .filter(|(name, _)| is_compiled(name))
            .map(|(name, _)| name.to_string())
            .collect());
    }
    let known: Vec<&str> = BACKENDS.iter().map(|(name, _)| *name).collect();
    let names = names("--backend", given, &known)?;
    for name in &names {
        check_compiled(name)?;
    }
    Ok(names)
}

/// A comma-separated list flag: trimmed names, each one of `known`, duplicates dropped.
fn names(flag: &str, given: &[String], known: &[&str]) -> Result<Vec<String>> {
    let mut names: Vec<String> = Vec::new();
    for name in given.iter().map(|n| n.trim()) {
        if name.is_empty() {
            bail!("{flag} has an empty name in its list; separate names with single commas");
        }
        if !known.contains(&name) {
            bail!(
                "unknown {flag} `{name}`; choose one of {}",
                known.join(", ")
            );
        }
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    if names.is_empty() {
        bail!("{flag} needs at least one of {}", known.join(", "));
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_flags_are_trimmed_deduplicated_and_checked_naming_the_flag() {
        let given = ["maml".to_string(), " anil".into(), "maml".into()];
        assert_eq!(
            names("--algo", &given, crate::algos::ALGOS).unwrap(),
            ["maml", "anil"]
        );
        let err = names("--workload", &["cifar".into()], &["omniglot-5w1s"]).unwrap_err();
        assert!(err.to_string().contains("--workload `cifar`"), "{err}");
        let err = names("--algo", &["maml".into(), "".into()], &["maml"]).unwrap_err();
        assert!(
            err.to_string().contains("--algo has an empty name"),
            "{err}"
        );
    }

    #[test]
    fn default_backends_are_the_compiled_in_ones() {
        let all = backends(&[]).unwrap();
        assert!(all.iter().all(|b| is_compiled(b)) && all.contains(&"flex".to_string()));
        let err = backends(&["tpu".into()]).unwrap_err();
        assert!(err.to_string().contains("--backend `tpu`"), "{err}");
    }
}
