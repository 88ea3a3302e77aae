//! `metalearn predict`: adapt a trained checkpoint to a user's labelled support folder and label
//! the images of a query folder, writing `file,class,probability` rows.

use crate::algos::{LearnerJob, with_learner};
use crate::args::PredictArgs;
use crate::backend::{BackendJob, dispatch};
use crate::config::RunConfig;
use crate::eval::TrainedRun;
use crate::run_dir::write_atomic;
use anyhow::{Context, Result, bail};
use burn::tensor::activation::softmax;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Int, Tensor, TensorData};
use meta_algos::{MetaLearner, Predictor};
use meta_data::decode::{DecodeSpec, decode_into};
use meta_data::{FolderOptions, ImageStore, PixelScale, load_image_folder};
use std::path::{Path, PathBuf};

/// Algorithms whose adapted model labels any number of classes (no fixed-width head).
const ANY_WAYS: &[&str] = &["protonet", "matchingnet", "metanet-eb", "baseline"];
/// File extensions read as query images.
const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "bmp", "gif", "webp", "tif", "tiff"];

/// How a run's data set turns image files into pixels, so user images match training.
fn preprocessing(config: &RunConfig) -> (DecodeSpec, PixelScale) {
    let (channels, invert, scale) = match config.dataset.as_str() {
        "omniglot" => (1, true, PixelScale::Unit),
        "miniimagenet" => (3, false, PixelScale::miniimagenet()),
        _ => (
            config.folder.as_ref().map_or(3, |f| f.channels),
            false,
            PixelScale::Unit,
        ),
    };
    let spec = DecodeSpec {
        channels,
        height: config.image_size,
        width: config.image_size,
        invert,
    };
    (spec, scale)
}

/// Every image file below `dir`, sorted by path.
fn query_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir)
            .with_context(|| format!("cannot read --query folder {}", dir.display()))?;
        for entry in entries {
            let path = entry
                .with_context(|| format!("cannot read --query folder {}", dir.display()))?
                .path();
            if path.is_dir() {
                pending.push(path);
            } else if path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
            {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Runs `metalearn predict`.
pub fn run(args: PredictArgs) -> Result<()> {
    let mut run = TrainedRun::open(&args.checkpoint)?;
    if let Some(steps) = args.inner_steps {
        run.config.test_inner_steps = steps;
    }
    if let Some(backend) = &args.backend {
        run.config.backend = backend.clone();
    }
    run.config.validate()?;
    if run.config.dataset == crate::data::SINE {
        bail!(
            "{} is a sine-regression run: `predict` labels image files; evaluate it with \
             `metalearn eval {}` (its MSE) and see its plots/sine_fit.png",
            args.checkpoint.display(),
            args.checkpoint.display()
        );
    }
    let (spec, scale) = preprocessing(&run.config);
    let support = load_image_folder(
        &args.support,
        &FolderOptions {
            height: spec.height,
            width: spec.width,
            channels: spec.channels,
            min_images: 1,
            invert: spec.invert,
            scale: scale.clone(),
        },
    )
    .with_context(|| format!("--support {}", args.support.display()))?;
    let classes = support.num_classes();
    if classes < 2 {
        bail!(
            "--support {} holds {classes} class folder(s); it needs at least 2",
            args.support.display()
        );
    }
    if !ANY_WAYS.contains(&run.config.algo.as_str()) && classes != run.config.ways {
        bail!(
            "--support {} holds {classes} classes but this {} checkpoint was trained {}-way: give \
             it exactly {} class folders",
            args.support.display(),
            run.config.algo,
            run.config.ways,
            run.config.ways
        );
    }
    let files = query_files(&args.query)?;
    if files.is_empty() {
        bail!("--query {} holds no image files", args.query.display());
    }
    let mut query = vec![0u8; files.len() * spec.image_len()];
    for (file, out) in files.iter().zip(query.chunks_mut(spec.image_len())) {
        let bytes =
            std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        decode_into(&bytes, &file.display().to_string(), &spec, out)?;
    }
    let backend = run.config.backend.clone();
    dispatch(
        &backend,
        PredictJob {
            run,
            support,
            query: scale_images(&query, &spec, &scale),
            files,
            spec,
            scale,
            output: args.output,
        },
    )
}

/// `[n, C, H, W]` u8 pixels to scaled `f32`.
fn scale_images(pixels: &[u8], spec: &DecodeSpec, scale: &PixelScale) -> Vec<f32> {
    let tables = scale.lookup_tables(spec.channels);
    let plane = spec.height * spec.width;
    pixels
        .iter()
        .enumerate()
        .map(|(i, &v)| tables[(i / plane) % spec.channels][v as usize])
        .collect()
}

struct PredictJob {
    run: TrainedRun,
    support: ImageStore,
    query: Vec<f32>,
    files: Vec<PathBuf>,
    spec: DecodeSpec,
    scale: PixelScale,
    output: PathBuf,
}

impl BackendJob for PredictJob {
    type Output = ();

    fn run<B: AutodiffBackend>(self, device: B::Device, _label: String) -> Result<()> {
        let shape = self.spec.shape();
        let config = self.run.config.clone();
        with_learner::<B, _>(&config, shape, PredictLearner { job: self, device })
    }
}

struct PredictLearner<B: AutodiffBackend> {
    job: PredictJob,
    device: B::Device,
}

impl<B: AutodiffBackend> LearnerJob<B> for PredictLearner<B> {
    type Output = ();

    fn run<L: MetaLearner<B> + 'static>(self, learner: L) -> Result<()> {
        let PredictLearner { job, device } = self;
        let (model, _) = meta_algos::load_model(&learner, &job.run.checkpoint, &device)?;
        let [c, h, w] = job.spec.shape();
        let support = &job.support;
        let mut pixels = Vec::with_capacity(support.images() * job.spec.image_len());
        let mut labels = Vec::with_capacity(support.images());
        for class in 0..support.num_classes() {
            for index in 0..support.class_len(class) {
                pixels.extend_from_slice(support.image(class, index));
                labels.push(class as i64);
            }
        }
        let support_x = Tensor::<B, 4>::from_data(
            TensorData::new(
                scale_images(&pixels, &job.spec, &job.scale),
                [labels.len(), c, h, w],
            ),
            &device,
        );
        let support_y = Tensor::<B, 1, Int>::from_data(
            TensorData::new(labels.clone(), [labels.len()]),
            &device,
        );
        let adapted = learner.adapt(&model, support_x, support_y.into(), support.num_classes());
        let query_x = Tensor::<B, 4>::from_data(
            TensorData::new(job.query.clone(), [job.files.len(), c, h, w]),
            &device,
        );
        let probs = softmax(adapted.predict(query_x).detach(), 1);
        let probs: Vec<f32> = probs
            .into_data()
            .convert::<f32>()
            .to_vec()
            .map_err(|e| anyhow::anyhow!("cannot read predictions: {e:?}"))?;
        let ways = support.num_classes();
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.write_record(["file", "class", "probability"])?;
        for (file, row) in job.files.iter().zip(probs.chunks(ways)) {
            let (best, p) = row
                .iter()
                .copied()
                .enumerate()
                .fold(
                    (0, f32::MIN),
                    |acc, (i, p)| if p > acc.1 { (i, p) } else { acc },
                );
            let class = support.class_name(best);
            println!("{}\t{class}\t{p:.4}", file.display());
            writer.write_record([&file.display().to_string(), class, &format!("{p:.6}")])?;
        }
        let bytes = writer
            .into_inner()
            .map_err(|e| anyhow::anyhow!("cannot write CSV: {e}"))?;
        write_atomic(&job.output, &bytes)?;
        println!("wrote {}", job.output.display());
        Ok(())
    }
}
