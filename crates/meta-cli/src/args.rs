//! Command-line arguments of `metalearn`.

use crate::config::ConfigOverrides;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Meta-learning on Omniglot and Mini-ImageNet: MAML, FOMAML, ANIL, BOIL, Reptile, MetaSGD,
/// ProtoNet, MatchingNet and Meta Networks on CPU or GPU backends.
#[derive(Debug, Parser)]
#[command(name = "metalearn", version, about, propagate_version = true)]
pub struct Cli {
    /// CPU threads for the compute kernels (flex's thread pool, libtorch's intra-op threads);
    /// default: the number of physical cores.
    #[arg(long, global = true, env = "METALEARN_THREADS", value_name = "N")]
    pub threads: Option<usize>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Meta-train an algorithm; writes a run directory with config, metrics, checkpoints and plots.
    Train(Box<TrainArgs>),
    /// Evaluate a checkpoint on test episodes: mean accuracy ± 95% confidence interval.
    Eval(EvalArgs),
    /// Adapt a checkpoint to a support folder and label the images of a query folder.
    Predict(PredictArgs),
    /// Measure meta-iterations per backend, algorithm and workload: tasks/s, time split, memory.
    Bench(BenchArgs),
    /// Download or inspect data sets.
    Data(DataArgs),
}

/// `metalearn train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Hyper-parameters; each flag overrides `--config`, which overrides `--preset`.
    #[command(flatten)]
    pub overrides: ConfigOverrides,
    /// Preset to start from (see `--list-presets`); without one, the algorithm's own
    /// `<algo>-omniglot-5w1s` paper preset.
    #[arg(long)]
    pub preset: Option<String>,
    /// TOML file with any of the flags' settings (keys as the flags, with `_` for `-`).
    #[arg(long, value_name = "FILE.toml")]
    pub config: Option<PathBuf>,
    /// Run directory (default `runs/<algo>-<dataset>-<ways>w<shots>s-<seed>`).
    #[arg(long)]
    pub run_dir: Option<PathBuf>,
    /// Continue the run in this directory from its latest checkpoint.
    #[arg(long, value_name = "RUN_DIR", conflicts_with_all = ["preset", "config", "run_dir"])]
    pub resume: Option<PathBuf>,
    /// List the presets and exit.
    #[arg(long)]
    pub list_presets: bool,
}

/// `metalearn eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A run directory (uses its best checkpoint, else the latest) or a checkpoint path.
    pub checkpoint: PathBuf,
    /// Number of test episodes.
    #[arg(long, default_value_t = 600)]
    pub episodes: usize,
    /// Seed of the test episodes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Split to evaluate on.
    #[arg(long, default_value = "test", value_parser = ["train", "val", "test"])]
    pub split: String,
    /// Test-time inner steps (MAML family); default: the run's setting.
    #[arg(long)]
    pub inner_steps: Option<usize>,
    /// Queries per class; default: the run's test setting.
    #[arg(long)]
    pub queries: Option<usize>,
    /// Data directory; default: the run's.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Backend; default: the run's.
    #[arg(long)]
    pub backend: Option<String>,
    /// Where to write the JSON result (default `<run>/eval-<split>-<seed>.json`).
    #[arg(long)]
    pub output: Option<PathBuf>,
}

/// `metalearn predict`.
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// A run directory or checkpoint path.
    pub checkpoint: PathBuf,
    /// Folder of labelled examples: `<class>/<image>`.
    #[arg(long)]
    pub support: PathBuf,
    /// Folder of images to label (searched recursively).
    #[arg(long)]
    pub query: PathBuf,
    /// CSV to write (`file,class,probability`); default `predictions.csv` in the current folder.
    #[arg(long, default_value = "predictions.csv")]
    pub output: PathBuf,
    /// Test-time inner steps (MAML family); default: the run's setting.
    #[arg(long)]
    pub inner_steps: Option<usize>,
    /// Backend; default: the run's.
    #[arg(long)]
    pub backend: Option<String>,
}

/// `metalearn bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Backends to measure, comma-separated (default: every backend compiled into this binary).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub backend: Vec<String>,
    /// Algorithms, comma-separated (any `train --algo` value).
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        default_value = "maml,fomaml,anil,reptile,protonet,metanet-eb"
    )]
    pub algo: Vec<String>,
    /// Workloads, comma-separated: omniglot-5w1s, miniimagenet-5w5s, protonet-episode (the last
    /// runs ProtoNet only, whatever `--algo` says).
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        default_value = "omniglot-5w1s,miniimagenet-5w5s,protonet-episode"
    )]
    pub workload: Vec<String>,
    /// Untimed meta-iterations before the timed ones (shader compilation, autotuning, caches).
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// Timed meta-iterations per configuration (at least 1).
    #[arg(long, default_value_t = 5)]
    pub iters: usize,
    /// Tasks per meta-iteration for every workload (default: each workload's own), for quick runs.
    #[arg(long)]
    pub meta_batch: Option<usize>,
    /// Data directory: when Omniglot is there, the Omniglot workloads draw real training episodes
    /// (so the data time is real); otherwise every workload uses random pixels.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Where to write `bench.json`, `bench.png` and `bench.svg`.
    #[arg(long, default_value = "bench-results")]
    pub out: PathBuf,
    /// Seed of initialisation and episodes.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// A reference `bench.json` (e.g. `bench/pytorch_reference.py`'s output): its results are
    /// shown beside ours, with our speed relative to it for the same workload and algorithm.
    #[arg(long, value_name = "FILE.json")]
    pub reference: Option<PathBuf>,
}

/// `metalearn data`.
#[derive(Debug, Args)]
pub struct DataArgs {
    /// What to do with the data.
    #[command(subcommand)]
    pub command: DataCommand,
}

/// `metalearn data fetch|info`.
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Download a data set into the data directory and verify its checksums.
    Fetch {
        /// `omniglot` (downloadable) or `miniimagenet` (explains how to supply it).
        dataset: String,
        /// Where data sets live.
        #[arg(long, default_value = "datasets")]
        data_dir: PathBuf,
    },
    /// Show classes and images per split of a data set.
    Info {
        /// `omniglot`, `miniimagenet` or `folder:PATH`.
        dataset: String,
        /// Where data sets live.
        #[arg(long, default_value = "datasets")]
        data_dir: PathBuf,
        /// Omniglot class split: vinyals, l2l or lake.
        #[arg(long, default_value = "vinyals")]
        omniglot_split: String,
        /// A `--config` file of `metalearn train`: its `seed` and `[folder]` section (channels,
        /// split, fractions, split seed) shape the splits as in training; the flags above win.
        #[arg(long)]
        config: Option<PathBuf>,
        /// A `[folder]` setting, as in `metalearn train` (`--set folder.split_seed=5`).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
}
