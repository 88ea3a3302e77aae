//! A generated single folder of grayscale classes: trained with a seeded class split and one
//! channel (both shown in the run's config.toml), evaluated and used for prediction; bad
//! `[folder]` settings are refused naming the key.

mod common;

use common::*;
use image::{GrayImage, Luma};
use std::path::Path;

/// `root/class<c>/<i>.png`: `classes` classes of 4 grayscale 28×28 images each; class `c` is a
/// bar at row `2c`, image `i` shifts it by `i` columns.
fn gray_classes(root: &Path, classes: usize) {
    for c in 0..classes {
        let dir = root.join(format!("class{c:02}"));
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..4u32 {
            GrayImage::from_fn(28, 28, |x, y| {
                let on = y / 2 == c as u32 && (x + i) % 28 < 20;
                Luma([if on { 255 } else { 0 }])
            })
            .save(dir.join(format!("{i}.png")))
            .unwrap();
        }
    }
}

/// `tmp/glyphs`: 10 grayscale classes ([`gray_classes`]); returns it and its `--dataset` value.
fn glyphs(tmp: &Path) -> (std::path::PathBuf, String) {
    let data = tmp.join("glyphs");
    gray_classes(&data, 10);
    let folder = format!("folder:{}", data.display());
    (data, folder)
}

/// A ProtoNet `ways`-way 1-shot run of `iterations` on `dataset`, with `extra` flags.
fn train_args<'a>(
    dataset: &'a str,
    run: &'a str,
    ways: &'a str,
    iterations: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "train",
        "--algo",
        "protonet",
        "--dataset",
        dataset,
        "--run-dir",
        run,
        "--ways",
        ways,
        "--shots",
        "1",
        "--queries",
        "1",
        "--test-queries",
        "1",
        "--iterations",
        iterations,
        "--validate-every",
        "1",
        "--val-episodes",
        "2",
        "--test-episodes",
        "2",
        "--image-size",
        "28",
        // The folder is given by an absolute path: no data directory is needed.
        "--data-dir",
        "/no/such/data-dir",
        "--seed",
        "3",
    ];
    args.extend_from_slice(extra);
    args
}

#[test]
fn a_single_grayscale_folder_trains_on_a_seeded_class_split_shown_in_the_config() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, folder) = glyphs(tmp.path());
    let run = tmp.path().join("run");
    let run_s = run.to_str().unwrap();
    let out = ok(metalearn(&train_args(
        &folder,
        run_s,
        "2",
        "2",
        &[
            "--set",
            "folder.channels=1",
            "--set",
            "folder.fractions=[0.6, 0.2, 0.2]",
            "--set",
            "folder.split_seed=5",
        ],
    )));
    // 10 classes × 0.6 / 0.2 / 0.2: 6 training and 2 validation classes, one channel.
    assert!(
        out.contains("images 1×28×28, 6 training classes, 2 validation classes"),
        "{out}"
    );
    assert!(out.contains("test accuracy"), "{out}");
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    let folder_section = config
        .split("[folder]")
        .nth(1)
        .unwrap_or_else(|| panic!("no [folder] section in\n{config}"));
    for line in [
        "channels = 1",
        "split = \"fractions\"",
        "0.6,",
        "0.2,",
        "split_seed = 5",
    ] {
        assert!(
            folder_section.contains(line),
            "{line} missing from\n{config}"
        );
    }

    // eval reads the same split from config.toml; predict decodes user images with one channel.
    ok(metalearn(&["eval", run_s, "--episodes", "2"]));
    let (support, query) = (tmp.path().join("support"), tmp.path().join("query"));
    gray_classes(&support, 2);
    std::fs::create_dir_all(&query).unwrap();
    std::fs::copy(support.join("class01/3.png"), query.join("q.png")).unwrap();
    let csv = tmp.path().join("labels.csv");
    ok(metalearn(&[
        "predict",
        run_s,
        "--support",
        support.to_str().unwrap(),
        "--query",
        query.to_str().unwrap(),
        "--output",
        csv.to_str().unwrap(),
    ]));
    assert!(
        std::fs::read_to_string(&csv).unwrap().contains("q.png"),
        "no prediction for q.png"
    );

    // Without [folder] settings: RGB and the default fractions, both written out.
    let default_run = tmp.path().join("default");
    let out = ok(metalearn(&train_args(
        &folder,
        default_run.to_str().unwrap(),
        "2",
        "1",
        &[],
    )));
    // 10 × 0.16 rounds to 2 validation classes, 10 × 0.2 to 2 test classes.
    assert!(
        out.contains("images 3×28×28, 6 training classes, 2 validation classes"),
        "{out}"
    );
    let config = std::fs::read_to_string(default_run.join("config.toml")).unwrap();
    for line in ["[folder]", "channels = 3", "0.64,", "split_seed = 42"] {
        assert!(config.contains(line), "{line} missing from\n{config}");
    }
}

#[test]
fn folder_settings_that_cannot_work_are_refused_naming_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, folder) = glyphs(tmp.path());
    let run = tmp.path().join("run");
    let run_s = run.to_str().unwrap();
    for (ways, extra, needles) in [
        (
            "2",
            vec!["--set", "folder.fractions=[0.5, 0.3, 0.3]"],
            vec!["[folder] fractions", "sum to 1"],
        ),
        (
            "2",
            vec!["--set", "folder.channels=2"],
            vec!["[folder] channels"],
        ),
        (
            "2",
            vec!["--set", "folder.split=folders"],
            vec!["train/ and test/", &data.to_str().unwrap()],
        ),
        (
            "2",
            vec!["--set", "folder.colour=1"],
            vec!["unknown field `colour`", "`split_seed`"],
        ),
        // 10 × 0.2 = 2 validation classes cannot make 3-way tasks.
        (
            "3",
            vec!["--set", "folder.fractions=[0.6, 0.2, 0.2]"],
            vec![
                "val split has only 2 classes",
                "[folder] fractions",
                "raise the val",
            ],
        ),
        // Without validation, the test split is checked before training, not after.
        (
            "3",
            vec!["--set", "folder.fractions=[0.8, 0, 0.2]"],
            vec!["test split has only 2 classes", "raise the test fraction"],
        ),
    ] {
        let err = fails_with(
            metalearn(&train_args(&folder, run_s, ways, "2", &extra)),
            &needles,
        );
        assert!(
            !err.contains("iteration 1/"),
            "refused only after training:\n{err}"
        );
    }
    let omniglot = train_args("omniglot", run_s, "2", "2", &["--set", "folder.channels=1"]);
    fails_with(
        metalearn(&omniglot),
        &["[folder] section", "--dataset is `omniglot`"],
    );
}

#[test]
fn data_info_shows_the_split_that_the_folder_settings_give() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, folder) = glyphs(tmp.path());
    // (train, val, test) classes of each line of `data info`.
    let counts = |out: &str| -> Vec<(String, String)> {
        out.lines()
            .filter_map(|line| {
                let words: Vec<&str> = line.split_whitespace().collect();
                match words.as_slice() {
                    [split @ ("train" | "val" | "test"), classes, ..] => {
                        Some((split.to_string(), classes.to_string()))
                    }
                    _ => None,
                }
            })
            .collect()
    };
    let pairs = |v: [(&str, &str); 3]| -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    let set = ["--set", "folder.fractions=[0.5, 0.3, 0.2]"];
    let out = ok(metalearn(&["data", "info", &folder, set[0], set[1]]));
    assert_eq!(
        counts(&out),
        pairs([("train", "5"), ("val", "3"), ("test", "2")]),
        "{out}"
    );
    // The same setting from a config file; the default fractions give another split.
    let config = tmp.path().join("folder.toml");
    std::fs::write(&config, "[folder]\nfractions = [0.5, 0.3, 0.2]\n").unwrap();
    let config_s = config.to_str().unwrap();
    let out = ok(metalearn(&["data", "info", &folder, "--config", config_s]));
    assert_eq!(
        counts(&out),
        pairs([("train", "5"), ("val", "3"), ("test", "2")]),
        "{out}"
    );
    let out = ok(metalearn(&["data", "info", &folder]));
    assert_eq!(
        counts(&out),
        pairs([("train", "6"), ("val", "2"), ("test", "2")]),
        "{out}"
    );
    // Keys that cannot change what `data info` shows are refused, naming them.
    fails_with(
        metalearn(&["data", "info", &folder, "--set", "ways=3"]),
        &["--set ways=3", "folder."],
    );
    // A [folder] setting for a data set that is not a folder is refused as `train` refuses it.
    fails_with(
        metalearn(&["data", "info", "omniglot", "--set", "folder.channels=1"]),
        &["[folder]", "folder:PATH"],
    );
}
