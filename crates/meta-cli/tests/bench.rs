//! End-to-end tests of `metalearn bench`: the real binary on a tiny plan writes a table, a JSON
//! with one row per configuration and a chart; bad flags are refused naming the flag.

mod common;

use common::{fails_with, metalearn, ok};
use serde_json::Value;

/// The fast plan of these tests, writing into `out`.
fn tiny_bench(out: &str) -> Vec<&str> {
    vec![
        "bench",
        "--backend",
        "flex",
        "--algo",
        "maml,protonet",
        "--workload",
        "omniglot-5w1s,protonet-episode",
        "--warmup",
        "0",
        "--iters",
        "1",
        "--meta-batch",
        "2",
        "--out",
        out,
    ]
}

/// Replaces the value of `flag` in `args`.
fn set<'a>(args: &mut [&'a str], flag: &str, value: &'a str) {
    let at = args.iter().position(|a| *a == flag).unwrap();
    args[at + 1] = value;
}

#[test]
fn bench_writes_a_row_per_configuration_with_positive_speeds_and_a_chart() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("results");
    let text = ok(metalearn(&tiny_bench(out.to_str().unwrap())));
    assert!(
        text.contains("tasks/s med") && text.contains("protonet-episode"),
        "the table is printed:\n{text}"
    );
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("bench.json")).unwrap()).unwrap();
    assert_eq!(json["tool"], "metalearn");
    assert_eq!(json["settings"]["meta_batch"], 2);
    assert_eq!(json["settings"]["iters"], 1);
    assert!(json["machine"]["cores"].as_u64().unwrap() >= 1);
    let rows = json["results"].as_array().unwrap();
    let configs: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r["workload"].as_str().unwrap(), r["algo"].as_str().unwrap()))
        .collect();
    // protonet-episode runs ProtoNet only, whatever --algo says.
    assert_eq!(
        configs,
        [
            ("omniglot-5w1s", "maml"),
            ("omniglot-5w1s", "protonet"),
            ("protonet-episode", "protonet")
        ]
    );
    for row in rows {
        assert_eq!(row["backend"], "flex");
        assert_eq!(row["meta_batch"], 2);
        assert!(row["error"].is_null(), "{row}");
        for key in [
            "tasks_per_sec_median",
            "tasks_per_sec_min",
            "tasks_per_sec_max",
            "iteration_ms_median",
            "data_ms",
            "meta_grad_ms",
            "outer_ms",
            "inner_ms",
        ] {
            let v = row[key].as_f64().unwrap_or(f64::NAN);
            assert!(v.is_finite() && v > 0.0, "{key} = {v} in {row}");
        }
        let t = row["iteration_ms_median"].as_f64().unwrap();
        let parts = row["meta_grad_ms"].as_f64().unwrap() + row["outer_ms"].as_f64().unwrap();
        assert!((t - parts).abs() < 1e-6 * t.max(1.0), "{row}");
        if cfg!(target_os = "linux") {
            assert!(row["peak_rss_mb"].as_f64().unwrap() > 1.0, "{row}");
        }
        assert!(
            row["gpu_mem_mb"].is_null(),
            "flex reports no GPU memory: {row}"
        );
    }
    for chart in ["bench.png", "bench.svg"] {
        let len = std::fs::metadata(out.join(chart)).map_or(0, |m| m.len());
        assert!(len > 1000, "{chart} written ({len} bytes)");
    }
}

#[test]
fn bench_compares_with_a_reference_json() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("results");
    let reference = tmp.path().join("pytorch.json");
    std::fs::write(
        &reference,
        r#"{"tool": "pytorch", "results": [{"backend": "pytorch-cpu",
            "workload": "protonet-episode", "algo": "protonet", "meta_batch": 1,
            "tasks_per_sec_median": 1e-9, "iteration_ms_median": 1e12, "data_ms": 0.1,
            "meta_grad_ms": 1e12, "outer_ms": 0.1, "peak_rss_mb": 300.0}]}"#,
    )
    .unwrap();
    let mut args = tiny_bench(out.to_str().unwrap());
    set(&mut args, "--algo", "protonet");
    set(&mut args, "--workload", "protonet-episode");
    args.extend(["--reference", reference.to_str().unwrap()]);
    let text = ok(metalearn(&args));
    assert!(
        text.contains("× PyTorch") && text.contains("pytorch-cpu"),
        "{text}"
    );
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("bench.json")).unwrap()).unwrap();
    let row = &json["results"][0];
    assert_eq!(row["reference_backend"], "pytorch-cpu");
    assert!(row["speedup_vs_reference"].as_f64().unwrap() > 1.0, "{row}");
    assert_eq!(json["reference"]["results"][0]["backend"], "pytorch-cpu");
}

#[test]
fn bench_refuses_bad_flags_naming_them() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("results");
    let out = out.to_str().unwrap();
    let with = |flag: &str, value: &str| {
        let mut args = tiny_bench(out);
        set(&mut args, flag, value);
        metalearn(&args)
    };
    fails_with(with("--workload", "cifar-10"), &["--workload", "cifar-10"]);
    fails_with(with("--iters", "0"), &["--iters", "at least 1"]);
    fails_with(with("--meta-batch", "0"), &["--meta-batch", "at least 1"]);
    fails_with(with("--algo", "maml,gpt"), &["--algo", "gpt"]);
    fails_with(with("--backend", "tpu"), &["--backend", "tpu"]);
    for (name, feature) in [("wgpu", "wgpu"), ("tch", "tch"), ("cuda", "cuda")] {
        if !binary_has(name) {
            fails_with(
                with("--backend", name),
                &[name, &format!("--features {feature}")],
            );
        }
    }
    let mut args = tiny_bench(out);
    let missing = tmp.path().join("missing.json");
    args.extend(["--reference", missing.to_str().unwrap()]);
    fails_with(metalearn(&args), &["--reference", "missing.json"]);
    assert!(
        !std::path::Path::new(out).join("bench.json").exists(),
        "nothing runs before the flags are checked"
    );
}

/// Whether the binary under test has backend `name` compiled in (the test crate sees the same
/// cargo features as the binary).
fn binary_has(name: &str) -> bool {
    let optional = [
        ("wgpu", cfg!(feature = "wgpu")),
        ("tch", cfg!(feature = "tch")),
        ("cuda", cfg!(feature = "cuda")),
    ];
    optional
        .iter()
        .find(|(backend, _)| *backend == name)
        .is_none_or(|(_, compiled)| *compiled)
}
