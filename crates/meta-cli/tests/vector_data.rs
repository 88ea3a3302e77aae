//! Data that are not images, end to end: `--dataset sine` (generated regression tasks) and
//! `--dataset csv:PATH` (vector classification), no data set needed: train → summary, plots and
//! checkpoint → eval, the resolved configuration, and the settings each refuses.

mod common;

use common::*;

#[test]
fn sine_regression_trains_evaluates_and_plots() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("sine");
    let run_s = run.to_str().unwrap();
    let out = ok(metalearn(&[
        "train",
        "--preset",
        "maml-sine-10shot",
        "--iterations",
        "40",
        "--validate-every",
        "20",
        "--val-episodes",
        "5",
        "--test-episodes",
        "8",
        "--run-dir",
        run_s,
    ]));
    assert!(out.contains("test MSE"), "{out}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["test"]["metric"], "mse");
    // The error after 0..=10 steps, one value per step count, all finite.
    let steps = summary["test_steps"]["mse"].as_array().unwrap();
    assert_eq!(steps.len(), 11);
    assert!(steps.iter().all(|v| v.as_f64().is_some_and(f64::is_finite)));
    for plot in ["sine_fit", "mse_steps", "val_mse", "loss"] {
        for ext in ["png", "svg"] {
            let file = run.join("plots").join(format!("{plot}.{ext}"));
            assert!(file.is_file(), "{} missing", file.display());
        }
    }
    // Regression lines carry a validation MSE and no accuracy.
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert!(
        metrics.contains("val_mse") && !metrics.contains("train_acc"),
        "{metrics}"
    );
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    for key in [
        "dataset = \"sine\"",
        "[sine]",
        "batch_norm = false",
        "loss = \"auto\"",
    ] {
        assert!(config.contains(key), "config.toml lacks {key}:\n{config}");
    }
    let eval = ok(metalearn(&[
        "eval",
        run_s,
        "--episodes",
        "6",
        "--seed",
        "3",
    ]));
    assert!(
        eval.contains("MSE") && eval.contains("6 episodes"),
        "{eval}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("eval-test-3.json")).unwrap())
            .unwrap();
    assert_eq!(report["metric"], "mse");
    fails_with(
        metalearn(&["predict", run_s, "--support", run_s, "--query", run_s]),
        &["sine-regression run", "metalearn eval"],
    );
}

#[test]
fn regression_settings_that_cannot_apply_are_refused_by_name() {
    let sine = |extra: &[&str]| {
        let mut args = vec!["train", "--dataset", "sine", "--iterations", "1"];
        args.extend_from_slice(extra);
        metalearn(&args)
    };
    fails_with(sine(&["--algo", "protonet"]), &["protonet", "regression"]);
    fails_with(sine(&["--ways", "5"]), &["--ways 1"]);
    fails_with(sine(&["--backbone", "conv4"]), &["--backbone fcnet"]);
    fails_with(
        sine(&["--loss", "cross_entropy"]),
        &["cross_entropy", "mse"],
    );
    fails_with(
        sine(&["--set", "sine.amplitude=[5.0, 1.0]"]),
        &["amplitude", "low <= high"],
    );
    fails_with(
        metalearn(&[
            "train",
            "--set",
            "sine.phase=[0.0, 1.0]",
            "--iterations",
            "1",
        ]),
        &["[sine]", "--dataset sine"],
    );
    fails_with(
        metalearn(&["train", "--algo", "pretrain", "--dataset", "omniglot"]),
        &["pretrain", "--algo baseline"],
    );
    fails_with(
        metalearn(&["train", "--algo", "protonet", "--loss", "mse"]),
        &["--loss mse", "protonet"],
    );
    fails_with(metalearn(&["train", "--loss", "l1"]), &["l1"]);
}

/// A CSV of 30 classes × 12 rows of 4 features around well-separated class centres, label
/// column `kind` second.
fn clusters_csv(dir: &std::path::Path) -> std::path::PathBuf {
    let mut state = 7u64;
    let mut uniform = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut text = String::from("a,kind,b,c,d\n");
    for class in 0..30 {
        let centre: Vec<f64> = (0..4).map(|_| 10.0 * uniform() - 5.0).collect();
        for _ in 0..12 {
            let x: Vec<String> = centre
                .iter()
                .map(|c| format!("{:.4}", c + 0.3 * (uniform() - 0.5)))
                .collect();
            text.push_str(&format!(
                "{},class-{class},{},{},{}\n",
                x[0], x[1], x[2], x[3]
            ));
        }
    }
    let path = dir.join("clusters.csv");
    std::fs::write(&path, text).unwrap();
    path
}

fn csv_args<'a>(data: &'a str, run: &'a str) -> Vec<&'a str> {
    vec![
        "train",
        "--algo",
        "protonet",
        "--dataset",
        data,
        "--label-column",
        "kind",
        "--backbone",
        "fcnet",
        "--image-size",
        "1",
        "--ways",
        "5",
        "--shots",
        "1",
        "--queries",
        "5",
        "--test-queries",
        "5",
        "--iterations",
        "30",
        "--validate-every",
        "15",
        "--val-episodes",
        "5",
        "--test-episodes",
        "20",
        "--run-dir",
        run,
    ]
}

#[test]
fn csv_vectors_train_and_evaluate_with_fcnet() {
    let tmp = tempfile::tempdir().unwrap();
    let data = format!("csv:{}", clusters_csv(tmp.path()).display());
    let run = tmp.path().join("csv-run");
    let out = ok(metalearn(&csv_args(&data, run.to_str().unwrap())));
    assert!(out.contains("test accuracy"), "{out}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["test"]["metric"], "accuracy");
    let acc = summary["test"]["mean"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&acc), "{acc}");
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    for key in [
        "label_column = \"kind\"",
        "[csv]",
        "standardize = true",
        "split_seed = 42",
    ] {
        assert!(config.contains(key), "config.toml lacks {key}:\n{config}");
    }
    let eval = ok(metalearn(&[
        "eval",
        run.to_str().unwrap(),
        "--episodes",
        "5",
    ]));
    assert!(eval.contains("5-way 1-shot"), "{eval}");
}

#[test]
fn csv_settings_and_malformed_files_are_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let good = format!("csv:{}", clusters_csv(tmp.path()).display());
    let run = tmp.path().join("r");
    let run = run.to_str().unwrap();
    let without = |drop: &str| {
        let mut args = csv_args(&good, run);
        let at = args.iter().position(|a| *a == drop).unwrap();
        args.drain(at..at + 2);
        args
    };
    fails_with(
        metalearn(&without("--label-column")),
        &["--label-column NAME"],
    );
    fails_with(metalearn(&without("--image-size")), &["--image-size 1"]);
    fails_with(
        metalearn(&["train", "--label-column", "kind", "--iterations", "1"]),
        &["--label-column", "csv:PATH"],
    );
    let mut wrong_column = csv_args(&good, run);
    wrong_column[6] = "species";
    fails_with(
        metalearn(&wrong_column),
        &["clusters.csv", "`species`", "a, kind, b"],
    );
    let ragged = tmp.path().join("ragged.csv");
    std::fs::write(&ragged, "a,kind\n1,x\n2,y,3\n").unwrap();
    let ragged = format!("csv:{}", ragged.display());
    fails_with(
        metalearn(&csv_args(&ragged, run)),
        &["ragged.csv", "row 3", "3 fields"],
    );
    let text = tmp.path().join("text.csv");
    std::fs::write(&text, "a,kind\n1,x\nbig,y\n").unwrap();
    let text = format!("csv:{}", text.display());
    fails_with(
        metalearn(&csv_args(&text, run)),
        &["text.csv", "row 3", "`big`"],
    );
    let mut too_many_ways = csv_args(&good, run);
    too_many_ways[12] = "8";
    // 30 classes at 0.64 / 0.16 / 0.20: 5 validation classes.
    fails_with(metalearn(&too_many_ways), &["ways = 8", "5 classes"]);
}
