//! Helpers shared by the end-to-end tests: run the real `metalearn` binary on real Omniglot.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The data directory (`META_DATA_DIR`), or `None` when the test should be skipped.
pub fn data_dir() -> Option<PathBuf> {
    meta_data::testing::omniglot_dir()
        .map(|omniglot| omniglot.parent().map(Path::to_path_buf).unwrap_or(omniglot))
}

/// `metalearn` with `args`, its output captured.
pub fn metalearn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_metalearn"))
        .args(args)
        .env("RUST_LOG", "info")
        .output()
        .expect("the metalearn binary runs")
}

/// stdout and stderr as one string, for assertion messages.
pub fn text(output: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Asserts success and returns the combined output.
pub fn ok(output: Output) -> String {
    let text = text(&output);
    assert!(output.status.success(), "metalearn failed:\n{text}");
    text
}

/// Asserts failure with a message containing every one of `needles`; returns stderr.
pub fn fails_with(output: Output, needles: &[&str]) -> String {
    let all = text(&output);
    assert!(
        !output.status.success(),
        "metalearn should have failed:\n{all}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "error should mention `{needle}`:\n{all}"
        );
    }
    assert!(
        !stderr.contains("panicked"),
        "a panic is not an error message:\n{all}"
    );
    stderr
}

/// Small, fast MAML settings on Omniglot 5-way 1-shot.
pub fn tiny_maml_args<'a>(data: &'a str, run_dir: &'a str, iterations: &'a str) -> Vec<&'a str> {
    vec![
        "train",
        "--algo",
        "maml",
        "--data-dir",
        data,
        "--run-dir",
        run_dir,
        "--iterations",
        iterations,
        "--meta-batch",
        "2",
        "--queries",
        "3",
        "--test-queries",
        "3",
        "--test-inner-steps",
        "2",
        "--validate-every",
        "2",
        "--val-episodes",
        "3",
        "--test-episodes",
        "3",
        "--checkpoint-every",
        "1",
        "--log-every",
        "1",
        "--seed",
        "7",
    ]
}

/// Writes `classes` Omniglot characters from the evaluation archive as `support/<class>/0.png`
/// and `queries` other drawings of each as `query/<i>-<j>.png` (`i`: the class's index in the
/// returned list); returns the class folder names.
pub fn omniglot_folders(
    data: &Path,
    support: &Path,
    query: &Path,
    classes: usize,
    queries: usize,
) -> Vec<String> {
    let zip_path = data.join("omniglot").join("images_evaluation.zip");
    let file = std::fs::File::open(&zip_path).expect("evaluation zip");
    let mut zip = zip::ZipArchive::new(file).expect("readable zip");
    let mut names: Vec<String> = (0..zip.len())
        .filter_map(|i| zip.by_index(i).ok().map(|f| f.name().to_string()))
        .filter(|n| n.ends_with(".png"))
        .collect();
    names.sort();
    let mut by_char: Vec<(String, Vec<String>)> = Vec::new();
    for name in names {
        let dir = Path::new(&name)
            .parent()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        match by_char.last_mut() {
            Some((d, files)) if *d == dir => files.push(name),
            _ => by_char.push((dir, vec![name])),
        }
    }
    let mut folders = Vec::new();
    for (i, (dir, files)) in by_char.iter().take(classes).enumerate() {
        assert!(
            files.len() > queries,
            "{dir}: only {} drawings",
            files.len()
        );
        let class = dir.replace('/', "_");
        let class_dir = support.join(&class);
        std::fs::create_dir_all(&class_dir).unwrap();
        std::fs::create_dir_all(query).unwrap();
        let mut read = |name: &str| {
            let mut entry = zip.by_name(name).unwrap();
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
            bytes
        };
        std::fs::write(class_dir.join("0.png"), read(&files[0])).unwrap();
        for (j, name) in files[1..=queries].iter().enumerate() {
            std::fs::write(query.join(format!("{i}-{j}.png")), read(name)).unwrap();
        }
        folders.push(class);
    }
    folders
}

type B = burn::backend::Autodiff<burn::backend::Flex>;

/// Every float parameter, in module order.
struct Collect(Vec<f32>);

impl burn::module::ModuleVisitor<B> for Collect {
    fn visit_float<const D: usize>(
        &mut self,
        param: &burn::module::Param<burn::tensor::Tensor<B, D>>,
    ) {
        self.0.extend(
            param
                .val()
                .into_data()
                .convert::<f32>()
                .to_vec::<f32>()
                .unwrap(),
        );
    }
}

/// The meta-parameters stored in a checkpoint of `tiny_maml_args` (Conv4-64, 28×28, 5-way),
/// loaded with the library's `load_model` (which checks algorithm, backbone and shapes).
pub fn parameters(path: &Path) -> Vec<f32> {
    use burn::module::Module;
    let backbone: meta_backbones::BackboneConfig = meta_backbones::Conv4Config {
        in_channels: 1,
        hidden: 64,
        image_size: 28,
        num_classes: 5,
        ..Default::default()
    }
    .into();
    let config = meta_algos::MamlConfig {
        inner_lr: 0.4,
        inner_steps_train: 1,
        inner_steps_test: 2,
        ..Default::default()
    };
    let learner = meta_algos::Maml::new(backbone, config);
    let (model, _) = meta_algos::load_model::<B, _>(&learner, path, &Default::default())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut collect = Collect(Vec::new());
    model.visit(&mut collect);
    collect.0
}
