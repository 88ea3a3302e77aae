//! End to end on real Omniglot: train → checkpoint → eval → predict, and resume after a kill.

mod common;

use common::*;
use std::path::Path;
use std::time::{Duration, Instant};

/// Query drawings per class in the predict check (every drawing of a character but the support's).
const PREDICT_QUERIES: usize = 19;
/// Least accuracy accepted from `predict` after 10 inner steps (chance 0.2). Measured (4 MAML
/// iterations, 95 queries): 0.853 after 10 steps, 0.263 without adaptation.
const PREDICT_MIN: f64 = 0.6;
/// How far below [`PREDICT_MIN`] the unadapted control must stay.
const PREDICT_MARGIN: f64 = 0.15;

#[test]
fn train_then_eval_then_predict_on_omniglot() {
    let Some(data) = data_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let (data_s, run_s) = (data.to_str().unwrap(), run.to_str().unwrap());
    let out = ok(metalearn(&tiny_maml_args(data_s, run_s, "4")));
    assert!(out.contains("test accuracy"), "{out}");

    for file in [
        "config.toml",
        "metrics.jsonl",
        "summary.json",
        "checkpoints/latest.ckpt",
        "checkpoints/best.ckpt",
        "plots/loss.png",
        "plots/loss.svg",
        "plots/accuracy.png",
        "plots/accuracy.svg",
    ] {
        assert!(run.join(file).is_file(), "{file} missing:\n{out}");
    }
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let iterations: Vec<u64> = metrics
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["iteration"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(iterations, vec![1, 2, 3, 4], "{metrics}");
    assert!(
        metrics.lines().nth(1).unwrap().contains("val_acc"),
        "{metrics}"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["iterations"], 4);
    let test = summary["test"]["mean"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&test), "{summary}");
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(
        config.contains("algo = \"maml\"") && config.contains("iterations = 4"),
        "{config}"
    );

    // eval: the standard protocol on the best checkpoint, JSON written.
    let json = tmp.path().join("eval.json");
    let out = ok(metalearn(&[
        "eval",
        run_s,
        "--episodes",
        "5",
        "--seed",
        "3",
        "--output",
        json.to_str().unwrap(),
    ]));
    assert!(
        out.contains("95% CI, 5 episodes, seed 3, 2 inner steps"),
        "{out}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["episodes"], 5);
    assert_eq!(report["inner_steps"], 2);
    assert_eq!(report["algo"], "maml");
    let mean = report["mean"].as_f64().unwrap();
    let ci = report["ci95"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&mean) && ci >= 0.0, "{report}");

    // predict: adapt to a 5-class support folder (one drawing each) and label other drawings of
    // those classes, whose file names say their true classes. The control: the same checkpoint
    // and queries without adaptation (0 inner steps), which never sees the support's labels.
    let classes = omniglot_folders(
        &data,
        &tmp.path().join("support"),
        &tmp.path().join("query"),
        5,
        PREDICT_QUERIES,
    );
    let accuracy = predict_accuracy(tmp.path(), run_s, &classes, "10");
    let control = predict_accuracy(tmp.path(), run_s, &classes, "0");
    println!(
        "predict: accuracy {accuracy:.3} after 10 inner steps, {control:.3} without adaptation \
         (chance 0.2)"
    );
    assert!(
        control + PREDICT_MARGIN < PREDICT_MIN,
        "predict without adaptation scores {control:.3}: {PREDICT_MIN} does not tell adaptation \
         from its absence"
    );
    assert!(
        accuracy > PREDICT_MIN,
        "predict labelled {accuracy:.3} of the queries right (without adaptation {control:.3})"
    );
}

/// Runs `metalearn predict` on the run `run` with `dir/support` and `dir/query` (written by
/// `omniglot_folders`, whose query names start with the index of their class in `classes`) and
/// `steps` inner steps; checks the CSV's shape and probabilities and returns the accuracy.
fn predict_accuracy(dir: &Path, run: &str, classes: &[String], steps: &str) -> f64 {
    let csv = dir.join(format!("pred-{steps}.csv"));
    ok(metalearn(&[
        "predict",
        run,
        "--support",
        dir.join("support").to_str().unwrap(),
        "--query",
        dir.join("query").to_str().unwrap(),
        "--output",
        csv.to_str().unwrap(),
        "--inner-steps",
        steps,
    ]));
    let rows: Vec<String> = std::fs::read_to_string(&csv)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(rows[0], "file,class,probability");
    assert_eq!(rows.len(), 1 + classes.len() * PREDICT_QUERIES, "{rows:?}");
    let mut correct = 0;
    for row in &rows[1..] {
        let fields: Vec<&str> = row.split(',').collect();
        assert!(classes.iter().any(|c| c == fields[1]), "{row}");
        let p: f64 = fields[2].parse().unwrap();
        assert!(
            p > 0.2 - 1e-6 && p <= 1.0,
            "the top class of 5 has p ≥ 1/5: {row}"
        );
        let stem = Path::new(fields[0]).file_stem().unwrap().to_str().unwrap();
        let truth: usize = stem.split('-').next().unwrap().parse().unwrap();
        correct += usize::from(fields[1] == classes[truth]);
    }
    correct as f64 / (rows.len() - 1) as f64
}

#[test]
fn resume_after_kill_gives_the_uninterrupted_parameters() {
    let Some(data) = data_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let data_s = data.to_str().unwrap();
    let whole = tmp.path().join("whole");
    ok(metalearn(&tiny_maml_args(
        data_s,
        whole.to_str().unwrap(),
        "6",
    )));

    // Same run, killed once a checkpoint past iteration 2 exists, then resumed.
    let part = tmp.path().join("part");
    let part_s = part.to_str().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_metalearn"))
        .args(tiny_maml_args(data_s, part_s, "6"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let latest = part.join("checkpoints").join("latest.ckpt");
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let header = meta_algos::checkpoint::read_header(&latest).ok();
        if header.is_some_and(|h| h.iteration >= 2) {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("training ended ({status}) before it could be interrupted");
        }
        assert!(Instant::now() < deadline, "no checkpoint within 10 minutes");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let killed_at = meta_algos::checkpoint::read_header(&latest)
        .unwrap()
        .iteration;
    assert!(
        killed_at < 6,
        "the run was interrupted before its end (at {killed_at})"
    );

    ok(metalearn(&["train", "--resume", part_s]));
    let final_whole = whole.join("checkpoints").join("latest.ckpt");
    assert_eq!(
        meta_algos::checkpoint::read_header(&latest)
            .unwrap()
            .iteration,
        6
    );
    let (resumed, uninterrupted) = (parameters(&latest), parameters(&final_whole));
    assert!(resumed.len() > 100_000, "Conv4-64 has >100k parameters");
    assert!(
        resumed == uninterrupted,
        "resumed (killed at {killed_at}) and uninterrupted runs differ"
    );
    let metrics = std::fs::read_to_string(part.join("metrics.jsonl")).unwrap();
    let iterations: Vec<u64> = metrics
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["iteration"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(iterations, (1..=6).collect::<Vec<_>>(), "{metrics}");
}

/// An algorithm without an inner loop is evaluated without an inner-steps figure.
#[test]
fn eval_of_protonet_reports_no_inner_steps() {
    let Some(data) = data_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let (data_s, run_s) = (data.to_str().unwrap(), run.to_str().unwrap());
    let mut args = tiny_maml_args(data_s, run_s, "2");
    args[2] = "protonet";
    ok(metalearn(&args));
    let json = tmp.path().join("eval.json");
    let out = ok(metalearn(&[
        "eval",
        run_s,
        "--episodes",
        "3",
        "--output",
        json.to_str().unwrap(),
    ]));
    assert!(
        out.contains("3 episodes") && !out.contains("inner steps"),
        "{out}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["algo"], "protonet");
    assert!(report.get("inner_steps").is_none(), "{report}");
}

/// `--algo baseline` trains over the training split's classes (filled into `config.toml`), and
/// its checkpoint is evaluated from that stored configuration; a wrong class count is refused.
#[test]
fn baseline_fills_its_class_count_and_evaluates_from_the_run_directory() {
    let Some(data) = data_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let (data_s, run_s) = (data.to_str().unwrap(), run.to_str().unwrap());
    let mut args = tiny_maml_args(data_s, run_s, "2");
    args[2] = "baseline";
    args.extend([
        "--set",
        "baseline.head=\"cosine\"",
        "--set",
        "baseline.finetune_epochs=3",
    ]);
    ok(metalearn(&args));
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(
        config.contains("[baseline]")
            && config.contains("classes = 4112")
            && config.contains("head = \"cosine\""),
        "{config}"
    );
    let json = tmp.path().join("eval.json");
    ok(metalearn(&[
        "eval",
        run_s,
        "--episodes",
        "3",
        "--output",
        json.to_str().unwrap(),
    ]));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["algo"], "baseline");
    let mean = report["mean"].as_f64().unwrap_or(-1.0);
    assert!((0.0..=1.0).contains(&mean), "{report}");

    let other = tmp.path().join("other");
    let mut args = tiny_maml_args(data_s, other.to_str().unwrap(), "1");
    args[2] = "baseline";
    args.extend(["--set", "baseline.classes=64"]);
    fails_with(metalearn(&args), &["[baseline] classes is 64", "4112"]);
}
