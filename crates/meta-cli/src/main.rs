//! `metalearn`: meta-train, evaluate and apply few-shot learners from the command line.

mod algos;
mod args;
mod backend;
mod config;
mod plots;
mod run_dir;

use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() {
    let cli = args::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    if let Err(err) = run(cli) {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}

fn run(cli: args::Cli) -> anyhow::Result<()> {
    match cli.command {
        args::Command::Train(_) => anyhow::bail!("training arrives with the algorithms"),
        args::Command::Eval(_) => anyhow::bail!("evaluation arrives with the algorithms"),
        args::Command::Predict(_) => anyhow::bail!("prediction arrives with the algorithms"),
        args::Command::Data(_) => anyhow::bail!("data commands arrive with meta-data"),
    }
}
