//! The real `metalearn` binary trains, checkpoints and evaluates on every compiled-in backend
//! (ndarray always; wgpu — on Mesa's software Vulkan driver in CI —, tch and cuda with their
//! cargo features), on real Omniglot.

mod common;

use common::*;

/// A 3-iteration MAML run on `backend`, then evaluation of its checkpoint on the same backend.
fn short_run(backend: &str) {
    let Some(data) = data_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let (data_s, run_s) = (data.to_str().unwrap(), run.to_str().unwrap());
    let mut args = tiny_maml_args(data_s, run_s, "3");
    args.extend(["--backend", backend]);
    let out = ok(metalearn(&args));
    assert!(
        out.contains(backend),
        "the run header names the backend:\n{out}"
    );
    assert!(out.contains("test accuracy"), "{out}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["iterations"], 3, "{summary}");
    let mean = summary["test"]["mean"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&mean), "{summary}");
    let out = ok(metalearn(&[
        "eval",
        run_s,
        "--episodes",
        "3",
        "--backend",
        backend,
    ]));
    assert!(out.contains("3 episodes"), "{out}");
}

#[cfg(feature = "ndarray")]
#[test]
fn trains_and_evaluates_on_ndarray() {
    short_run("ndarray");
}

#[cfg(feature = "wgpu")]
#[test]
fn trains_and_evaluates_on_wgpu() {
    short_run("wgpu");
}

#[cfg(feature = "tch")]
#[test]
fn trains_and_evaluates_on_tch() {
    short_run("tch");
}

#[cfg(feature = "cuda")]
#[test]
fn trains_and_evaluates_on_cuda() {
    short_run("cuda");
}
