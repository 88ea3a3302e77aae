//! Developer commands: `cargo xtask test | train | eval | predict | bench | data | reproduce`.
//!
//! Every command but `test` forwards to the `metalearn` binary, built with the cargo features
//! that its `--backend` flag needs; `test --backend wgpu,tch` adds those backends' parity tests.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Backends that are compiled into every build (no extra feature needed).
const DEFAULT_BACKENDS: &[&str] = &["flex", "ndarray"];
/// Backends that need a cargo feature of `meta-cli`.
const FEATURE_BACKENDS: &[&str] = &["wgpu", "tch", "cuda"];

fn main() {
    if let Err(err) = run() {
        eprintln!("xtask: error: {err:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        print_help();
        return Ok(());
    };
    match command.as_str() {
        "test" => test(rest),
        "reproduce" => {
            let Some((preset, rest)) = rest.split_first() else {
                bail!("`cargo xtask reproduce` needs a preset name, e.g. `maml-omniglot-5w1s`");
            };
            let mut forwarded = vec!["train".to_string(), "--preset".into(), preset.clone()];
            forwarded.extend(rest.iter().cloned());
            metalearn(&forwarded, true)
        }
        "train" | "eval" | "predict" | "bench" | "data" => metalearn(&args, true),
        "-h" | "--help" | "help" => {
            print_help();
            Ok(())
        }
        other => bail!("unknown xtask command `{other}`; run `cargo xtask help`"),
    }
}

fn print_help() {
    println!("cargo xtask COMMAND [ARGS]");
    println!();
    println!(
        "  test [--backend LIST] [ARGS]   fetch Omniglot unless META_DATA_DIR is set, run the tests;"
    );
    println!(
        "                                 --backend wgpu,tch,cuda adds those backends (cargo features)"
    );
    println!(
        "  train|eval|predict|bench|data  run `metalearn ARGS` (release build) with the cargo"
    );
    println!("                                 features that its `--backend` needs");
    println!("  reproduce PRESET [ARGS]        train a paper preset, e.g. maml-omniglot-5w1s");
}

fn workspace_root() -> PathBuf {
    let built_in = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf();
    if built_in.join("Cargo.toml").is_file() {
        return built_in;
    }
    // A cached xtask binary (a CARGO_TARGET_DIR shared between checkouts) built in a checkout
    // that is gone: use the checkout `cargo xtask` was run in.
    std::env::current_dir()
        .ok()
        .and_then(|dir| {
            dir.ancestors()
                .find(|d| d.join("xtask").is_dir() && d.join("Cargo.toml").is_file())
                .map(Path::to_path_buf)
        })
        .unwrap_or(built_in)
}

/// The cargo features that `--backend NAME` (or `--backend=NAME`) in `args` needs.
fn backend_features(args: &[String]) -> Result<Vec<String>> {
    let mut features = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let value = if arg == "--backend" {
            iter.next().cloned()
        } else {
            arg.strip_prefix("--backend=").map(str::to_string)
        };
        let Some(value) = value else { continue };
        for backend in value.split(',') {
            if FEATURE_BACKENDS.contains(&backend) {
                features.push(backend.to_string());
            } else if !DEFAULT_BACKENDS.contains(&backend) {
                bail!(
                    "unknown backend `{backend}` for --backend; choose one of {}",
                    DEFAULT_BACKENDS
                        .iter()
                        .chain(FEATURE_BACKENDS)
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
    }
    Ok(features)
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(workspace_root());
    cmd
}

fn metalearn(args: &[String], release: bool) -> Result<()> {
    let features = backend_features(args)?;
    let mut cmd = cargo();
    cmd.args([
        "run",
        "--quiet",
        "--package",
        "meta-cli",
        "--bin",
        "metalearn",
    ]);
    if release {
        cmd.arg("--release");
    }
    if !features.is_empty() {
        cmd.args(["--features", &features.join(",")]);
    }
    cmd.arg("--").args(args);
    status(cmd, "metalearn")
}

fn status(mut cmd: Command, what: &str) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("could not start {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

/// `args` without `--backend LIST` / `--backend=LIST`.
fn without_backend(args: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "--backend" {
            iter.next();
        } else if !arg.starts_with("--backend=") {
            out.push(arg.clone());
        }
    }
    out
}

/// Runs the test suite on real data: `META_DATA_DIR` if set, else Omniglot fetched into `datasets/`.
/// `--backend LIST` compiles the named GPU/libtorch backends in, which adds their parity tests.
fn test(args: &[String]) -> Result<()> {
    let features: Vec<String> = backend_features(args)?
        .iter()
        .map(|f| format!("meta-cli/{f}"))
        .collect();
    let rest = &without_backend(args);
    let root = workspace_root();
    let data_dir = match std::env::var_os("META_DATA_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let dir = root.join("datasets");
            println!(
                "xtask test: META_DATA_DIR is not set; fetching Omniglot into {}",
                dir.display()
            );
            let mut fetch = cargo();
            fetch.args([
                "run",
                "--quiet",
                "--package",
                "meta-cli",
                "--bin",
                "metalearn",
                "--",
            ]);
            fetch
                .args(["data", "fetch", "omniglot", "--data-dir"])
                .arg(&dir);
            status(fetch, "metalearn data fetch omniglot")?;
            dir
        }
    };
    let data_dir = data_dir
        .canonicalize()
        .with_context(|| format!("META_DATA_DIR {} does not exist", data_dir.display()))?;
    let mut cmd = cargo();
    cmd.env("META_DATA_DIR", &data_dir);
    cmd.args(["test", "--workspace"]);
    if !features.is_empty() {
        cmd.args(["--features", &features.join(",")]);
    }
    cmd.args(rest);
    status(cmd, "cargo test")?;
    if rest.is_empty() {
        run_examples(&root, &data_dir)?;
    }
    Ok(())
}

/// Runs every `crates/<crate>/examples/<name>.rs` with `--quick` on the test data, so that each
/// example in the repository is known to work. `cargo test` has just built them with the run's
/// features; their binaries are run from the target directory (a `cargo run` without those
/// features would rebuild burn).
fn run_examples(root: &Path, data_dir: &Path) -> Result<()> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    for (krate, example) in examples(root)? {
        let built = target
            .join("debug")
            .join("examples")
            .join(format!("{example}{}", std::env::consts::EXE_SUFFIX));
        if !built.is_file() {
            bail!(
                "example {krate}/{example}: `cargo test` did not build {}",
                built.display()
            );
        }
        let mut cmd = Command::new(&built);
        cmd.env("META_DATA_DIR", data_dir)
            .current_dir(root)
            .arg("--quick");
        println!("xtask test: example {krate}/{example} --quick");
        status(cmd, &format!("example {krate}/{example}"))?;
    }
    Ok(())
}

/// `(crate, example)` for every `crates/<crate>/examples/<example>.rs`, sorted.
fn examples(root: &Path) -> Result<Vec<(String, String)>> {
    let mut found = Vec::new();
    for krate in std::fs::read_dir(root.join("crates"))? {
        let krate = krate?.path();
        let Ok(entries) = std::fs::read_dir(krate.join("examples")) else {
            continue;
        };
        let name = krate
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        for entry in entries {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "rs")
                && let Some(stem) = path.file_stem()
            {
                found.push((name.clone(), stem.to_string_lossy().into_owned()));
            }
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn gpu_backends_map_to_their_cargo_feature() {
        let args = strings(&["train", "--backend", "wgpu", "--algo", "maml"]);
        assert_eq!(backend_features(&args).unwrap(), vec!["wgpu"]);
        let args = strings(&["bench", "--backend=flex,tch"]);
        assert_eq!(backend_features(&args).unwrap(), vec!["tch"]);
        assert!(backend_features(&strings(&["train"])).unwrap().is_empty());
    }

    #[test]
    fn test_backend_flags_are_not_forwarded_to_cargo_test() {
        let args = strings(&["--backend", "wgpu,tch", "-p", "meta-cli", "--backend=cuda"]);
        assert_eq!(without_backend(&args), strings(&["-p", "meta-cli"]));
        assert_eq!(
            backend_features(&args).unwrap(),
            vec!["wgpu", "tch", "cuda"]
        );
    }

    #[test]
    fn the_readme_s_rust_code_is_taken_from_examples_that_xtask_test_runs() {
        let root = workspace_root();
        let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
        let sources: Vec<String> = examples(&root)
            .unwrap()
            .iter()
            .map(|(krate, name)| {
                let path = root.join("crates").join(krate).join("examples");
                std::fs::read_to_string(path.join(format!("{name}.rs"))).unwrap()
            })
            .collect();
        assert!(!sources.is_empty(), "no examples found");
        let blocks: Vec<&str> = readme
            .split("```rust\n")
            .skip(1)
            .map(|rest| rest.split("```").next().unwrap_or_default())
            .collect();
        assert!(!blocks.is_empty(), "README has no rust block");
        for block in blocks {
            assert!(
                sources.iter().any(|source| source.contains(block)),
                "README's rust block is not verbatim in any example:\n{block}"
            );
        }
    }

    #[test]
    fn unknown_backend_is_named_in_the_error() {
        let err = backend_features(&strings(&["train", "--backend", "tpu"])).unwrap_err();
        assert!(err.to_string().contains("`tpu`"), "{err}");
    }
}
