//! `metalearn`: meta-train, evaluate and apply few-shot learners from the command line.

mod algos;
mod args;
mod backend;
mod bench;
mod config;
mod data;
mod eval;
mod layers;
mod merge;
mod plots;
mod predict;
mod run_dir;
mod sections;
mod sine_plots;
mod threads;
mod train;

use clap::Parser;
use mimalloc::MiMalloc;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// Tensor buffers are large and short-lived: mimalloc reuses them where glibc's allocator maps
/// and unmaps each one (measured in docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: MiMalloc = MiMalloc;

fn main() {
    let cli = args::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
    if let Err(err) = threads::configure(cli.threads).and_then(|n| {
        tracing::debug!("CPU threads: {n}");
        run(cli)
    }) {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}

fn run(cli: args::Cli) -> anyhow::Result<()> {
    match cli.command {
        args::Command::Train(args) => train::run(*args),
        args::Command::Eval(args) => eval::run(args),
        args::Command::Predict(args) => predict::run(args),
        args::Command::Bench(args) => bench::run(args),
        args::Command::Data(args) => data::run(args.command),
    }
}
