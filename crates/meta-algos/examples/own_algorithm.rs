//! Your own algorithm behind `MetaLearner`, trained and evaluated by this crate's `Trainer` and
//! `evaluate_sampler`: cosine-similarity prototypes with a fixed scale (a Baseline++-style
//! classifier head on ProtoNet's episodes). Prints its test accuracy before and after
//! meta-training on Omniglot 5-way 1-shot.
//!
//! ```sh
//! cargo run --release -p meta-algos --example own_algorithm -- [ITERATIONS | --quick]
//! ```
//!
//! Omniglot is read from `META_DATA_DIR`, else `datasets/`. `--quick` trains 50 episodes.

use burn::backend::{Autodiff, Flex};
use burn::module::AutodiffModule;
use burn::optim::GradientsParams;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};
use meta_algos::ops::class_means;
use meta_algos::{
    EvalConfig, MetaLearner, Predictor, StepStats, Trainer, TrainerConfig, evaluate_sampler,
};
use meta_backbones::{Backbone, Conv4, Conv4Config, accuracy, cross_entropy, force_init};
use meta_data::{
    DatasetKind, EpisodeSpec, OmniglotSplit, Split, Targets, Task, load_split_sampler,
};

type B = Autodiff<Flex>;

/// Cosine prototypes: logits are `scale · cos(query embedding, class mean of support embeddings)`.
#[derive(Debug, Clone)]
struct CosineProtos {
    backbone: Conv4Config,
    scale: f32,
}

/// `scale ·` the cosine similarity of every row of `queries` with every row of `protos`.
fn cosine_logits<E: Backend>(
    queries: Tensor<E, 2>,
    protos: Tensor<E, 2>,
    scale: f32,
) -> Tensor<E, 2> {
    let unit = |x: Tensor<E, 2>| {
        let norm = x.clone().powi_scalar(2).sum_dim(1).sqrt().add_scalar(1e-8);
        x / norm
    };
    unit(queries).matmul(unit(protos).transpose()) * scale
}

impl CosineProtos {
    /// Logits of `query_x` against the prototypes of a support set, on any backend.
    fn logits<E: Backend>(
        &self,
        net: &Conv4<E>,
        support: (Tensor<E, 4>, Tensor<E, 1, Int>),
        query_x: Tensor<E, 4>,
        ways: usize,
    ) -> Tensor<E, 2> {
        let protos = class_means(net.embed(support.0), support.1, ways);
        cosine_logits(net.embed(query_x), protos, self.scale)
    }
}

/// A support set's prototypes, kept on the inner backend: predictions record no autodiff graph.
struct CosinePredictor {
    net: Conv4<Flex>,
    protos: Tensor<Flex, 2>,
    scale: f32,
}

impl Predictor<B> for CosinePredictor {
    fn predict(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        let logits = cosine_logits(self.net.embed(x.inner()), self.protos.clone(), self.scale);
        Tensor::from_inner(logits)
    }
}

impl MetaLearner<B> for CosineProtos {
    type Model = Conv4<B>;
    type Adapted = CosinePredictor;

    fn name(&self) -> &'static str {
        "cosine-protos"
    }

    fn init_model(&self, device: &burn::tensor::Device<B>) -> Conv4<B> {
        let model = self.backbone.init(device);
        force_init(&model); // every parameter initialised now, as the trait asks
        model
    }

    fn meta_gradients(&self, model: &Conv4<B>, tasks: &[Task<B>]) -> (GradientsParams, StepStats) {
        let n = tasks.len() as f64;
        let (mut total, mut hits) = (None, 0.0);
        for task in tasks {
            let support = (task.support_x.clone(), task.support_y.labels());
            let logits = self.logits(model, support, task.query_x.clone(), task.ways);
            hits += accuracy(logits.clone(), task.query_y.labels());
            let loss = cross_entropy(logits, task.query_y.labels());
            total = Some(total.map_or(loss.clone(), |sum| sum + loss));
        }
        let loss = total.expect("at least one task") / n as f32;
        let value = f64::from(loss.clone().into_scalar());
        let grads = GradientsParams::from_grads(loss.backward(), model);
        let stats = StepStats {
            loss: value,
            accuracy: hits / n,
        };
        (grads, stats)
    }

    fn adapt(
        &self,
        model: &Conv4<B>,
        support_x: Tensor<B, 4>,
        support_y: Targets<B>,
        ways: usize,
    ) -> CosinePredictor {
        let support_y = support_y.labels();
        let net = model.valid();
        let protos = class_means(net.embed(support_x.inner()), support_y.inner(), ways);
        CosinePredictor {
            net,
            protos,
            scale: self.scale,
        }
    }

    fn config_json(&self) -> serde_json::Value {
        serde_json::json!({ "scale": self.scale })
    }

    fn backbone_name(&self) -> String {
        format!("conv4-{}", self.backbone.hidden)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arg = std::env::args().nth(1);
    let (iterations, episodes) = match arg.as_deref() {
        Some("--quick") => (50, 100),
        Some(n) => (n.parse()?, 600),
        None => (1000, 600),
    };
    let data = std::env::var("META_DATA_DIR").unwrap_or_else(|_| "datasets".into());
    let sampler = |split, seed| {
        let (kind, spec) = (DatasetKind::Omniglot, EpisodeSpec::new(5, 1, 15));
        load_split_sampler(
            data.as_ref(),
            &kind,
            OmniglotSplit::Vinyals,
            split,
            spec,
            seed,
            None,
        )
    };
    let (train, test) = (sampler(Split::Train, 1)?, sampler(Split::Test, 2)?);
    let learner = CosineProtos {
        backbone: Conv4Config::default(),
        scale: 10.0,
    };
    let device = Default::default();
    let config = TrainerConfig {
        iterations,
        meta_batch: 1,
        ..TrainerConfig::default()
    };
    let mut trainer = Trainer::<B, _>::new(learner, config, &device)?;
    let eval = EvalConfig { episodes, seed: 3 };
    let before = evaluate_sampler(trainer.learner(), trainer.model(), &test, &eval, &device)?;
    trainer.run(train, None, None, |_| {})?;
    let after = evaluate_sampler(trainer.learner(), trainer.model(), &test, &eval, &device)?;
    println!("cosine prototypes: untrained {before}, after {iterations} episodes {after}");
    Ok(())
}
