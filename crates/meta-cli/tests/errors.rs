//! Every bad input gets a clear message naming the flag, file or value, a non-zero exit code,
//! and no panic.

mod common;

use common::*;

#[test]
fn impossible_episode_settings_name_the_flag() {
    fails_with(
        metalearn(&["train", "--shots", "0"]),
        &["--shots", "at least 1"],
    );
    fails_with(metalearn(&["train", "--ways", "1"]), &["--ways"]);
    fails_with(metalearn(&["train", "--meta-lr", "NaN"]), &["--meta-lr"]);
    fails_with(
        metalearn(&["train", "--algo", "mamal"]),
        &["`mamal`", "maml"],
    );
    fails_with(metalearn(&["train", "--backbone", "vgg"]), &["`vgg`"]);
    fails_with(
        metalearn(&["train", "--preset", "nope"]),
        &["`nope`", "--list-presets"],
    );
}

#[test]
fn bad_thread_counts_name_the_flag_or_variable() {
    fails_with(
        metalearn(&["--threads", "0", "train", "--list-presets"]),
        &["--threads", "at least 1"],
    );
    fails_with(
        metalearn(&["train", "--threads", "two", "--list-presets"]),
        &["--threads", "two"],
    );
}

#[test]
fn backend_not_compiled_in_names_the_cargo_feature() {
    if cfg!(feature = "cuda") {
        return;
    }
    fails_with(
        metalearn(&["train", "--backend", "cuda"]),
        &["--backend cuda", "--features cuda"],
    );
    fails_with(
        metalearn(&["train", "--backend", "tpu"]),
        &["`tpu`", "flex"],
    );
}

#[test]
fn missing_data_set_says_how_to_fetch_it() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    fails_with(
        metalearn(&[
            "train",
            "--data-dir",
            tmp.path().join("nowhere").to_str().unwrap(),
            "--run-dir",
            run.to_str().unwrap(),
        ]),
        &["nowhere", "metalearn data fetch omniglot"],
    );
}

#[test]
fn data_dir_one_level_too_deep_names_the_parent() {
    for (dataset, inside) in [("omniglot", "images_background"), ("miniimagenet", "train")] {
        let tmp = tempfile::tempdir().unwrap();
        let datasets = tmp.path().join("datasets");
        let own_folder = datasets.join(dataset);
        std::fs::create_dir_all(own_folder.join(inside)).unwrap();
        let run = tmp.path().join("run");
        fails_with(
            metalearn(&[
                "train",
                "--dataset",
                dataset,
                "--data-dir",
                own_folder.to_str().unwrap(),
                "--run-dir",
                run.to_str().unwrap(),
            ]),
            &[
                "did you mean the parent folder?",
                &format!("--data-dir {}", datasets.display()),
            ],
        );
    }
}

#[test]
fn too_many_ways_for_the_split_is_refused() {
    let Some(data) = data_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    // Lake's split has no validation classes and 964 training classes: 2000-way is impossible.
    // The count in the message shows which split was used (Vinyals' has 4112).
    fails_with(
        metalearn(&[
            "train",
            "--data-dir",
            data.to_str().unwrap(),
            "--omniglot-split",
            "lake",
            "--ways",
            "2000",
            "--run-dir",
            run.to_str().unwrap(),
        ]),
        &["2000", "964"],
    );
}

#[test]
fn unwritable_run_directory_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a-file");
    std::fs::write(&file, b"not a folder").unwrap();
    let run = file.join("run");
    fails_with(
        metalearn(&["train", "--run-dir", run.to_str().unwrap()]),
        &["a-file", "--run-dir"],
    );
}

#[test]
fn bad_config_file_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("cfg.toml");
    std::fs::write(&config, "ways = 5\nwayz = 3\n").unwrap();
    fails_with(
        metalearn(&["train", "--config", config.to_str().unwrap()]),
        &["cfg.toml", "wayz"],
    );
    fails_with(
        metalearn(&[
            "train",
            "--config",
            tmp.path().join("absent.toml").to_str().unwrap(),
        ]),
        &["absent.toml"],
    );
    // A section's unknown key is named with its section and the valid keys.
    std::fs::write(&config, "[reptile]\ninner_bach = 5\n").unwrap();
    fails_with(
        metalearn(&[
            "train",
            "--algo",
            "reptile",
            "--config",
            config.to_str().unwrap(),
        ]),
        &["cfg.toml", "[reptile]", "inner_bach", "inner_batch"],
    );
    // A section for an algorithm that is not run is refused, not ignored.
    std::fs::write(&config, "[matchingnet]\ntemperature = 10.0\n").unwrap();
    fails_with(
        metalearn(&[
            "train",
            "--algo",
            "maml",
            "--config",
            config.to_str().unwrap(),
        ]),
        &["[matchingnet]", "--algo", "`maml`"],
    );
    fails_with(
        metalearn(&["train", "--algo", "maml", "--set", "maml.inner_lr=0.1"]),
        &["maml", "inner_lr"],
    );
}

#[test]
fn checkpoint_errors_are_clear() {
    let Some(data) = data_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let (data_s, run_s) = (data.to_str().unwrap(), run.to_str().unwrap());
    ok(metalearn(&tiny_maml_args(data_s, run_s, "1")));

    // Training into a run directory that already holds a run would overwrite it.
    fails_with(
        metalearn(&tiny_maml_args(data_s, run_s, "1")),
        &["--resume", "already holds a run"],
    );

    // A checkpoint of another algorithm (same folder, config says protonet) is refused.
    let other = tmp.path().join("other");
    std::fs::create_dir_all(other.join("checkpoints")).unwrap();
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    std::fs::write(
        other.join("config.toml"),
        config.replace("algo = \"maml\"", "algo = \"protonet\""),
    )
    .unwrap();
    std::fs::copy(
        run.join("checkpoints/latest.ckpt"),
        other.join("checkpoints/latest.ckpt"),
    )
    .unwrap();
    fails_with(
        metalearn(&["eval", other.to_str().unwrap(), "--episodes", "2"]),
        &["maml", "protonet"],
    );

    // A truncated checkpoint is named as unreadable.
    let bytes = std::fs::read(run.join("checkpoints/latest.ckpt")).unwrap();
    let broken = tmp.path().join("broken");
    std::fs::create_dir_all(broken.join("checkpoints")).unwrap();
    std::fs::write(broken.join("config.toml"), &config).unwrap();
    std::fs::write(
        broken.join("checkpoints/latest.ckpt"),
        &bytes[..bytes.len() / 2],
    )
    .unwrap();
    fails_with(
        metalearn(&["eval", broken.to_str().unwrap(), "--episodes", "2"]),
        &["latest.ckpt"],
    );

    // A config.toml without a key is named, with the key.
    let keyless = tmp.path().join("keyless");
    std::fs::create_dir_all(keyless.join("checkpoints")).unwrap();
    let without = config.replace("dataset = \"omniglot\"\n", "");
    assert_ne!(without, config, "config.toml has a dataset line:\n{config}");
    std::fs::write(keyless.join("config.toml"), without).unwrap();
    std::fs::copy(
        run.join("checkpoints/latest.ckpt"),
        keyless.join("checkpoints/latest.ckpt"),
    )
    .unwrap();
    fails_with(
        metalearn(&["eval", keyless.to_str().unwrap(), "--episodes", "2"]),
        &["config.toml", "missing field `dataset`"],
    );

    // Nothing to resume from, and no checkpoint to evaluate.
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    fails_with(
        metalearn(&["train", "--resume", empty.to_str().unwrap()]),
        &["not a run directory"],
    );
    fails_with(
        metalearn(&["eval", tmp.path().join("absent").to_str().unwrap()]),
        &["does not exist"],
    );
}

#[test]
fn diverging_training_stops_with_the_iteration_and_keeps_the_checkpoint() {
    let Some(data) = data_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let mut args = tiny_maml_args(data.to_str().unwrap(), run.to_str().unwrap(), "4");
    // An absurd inner learning rate overflows the adapted weights on the first step.
    args.extend(["--inner-lr", "1e30"]);
    let stderr = fails_with(metalearn(&args), &["iteration", "--inner-lr"]);
    assert!(
        stderr.contains("non-finite") || stderr.contains("NaN") || stderr.contains("inf"),
        "{stderr}"
    );
    // The first step diverged: the state kept is the initial one (iteration 0), it loads as
    // this run's model, and it is finite.
    let latest = run.join("checkpoints").join("latest.ckpt");
    assert!(
        stderr.contains("after 0 good iterations") && stderr.contains("latest.ckpt"),
        "{stderr}"
    );
    let header = meta_algos::checkpoint::read_header(&latest)
        .unwrap_or_else(|e| panic!("the last good state was not kept: {e}\n{stderr}"));
    assert_eq!(header.iteration, 0, "{stderr}");
    let params = parameters(&latest);
    assert!(params.len() > 100_000, "Conv4-64 has >100k parameters");
    assert!(
        params.iter().all(|v| v.is_finite()),
        "the kept checkpoint holds non-finite parameters"
    );
}
