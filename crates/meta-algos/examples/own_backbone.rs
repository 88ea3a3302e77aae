//! Your own backbone under exact second-order MAML and under Prototypical Networks, on real
//! Omniglot 5-way 1-shot; prints each one's test accuracy before and after meta-training.
//!
//! ```sh
//! cargo run --release -p meta-algos --example own_backbone -- [ITERATIONS | --quick]
//! ```
//!
//! Omniglot is read from `META_DATA_DIR`, else `datasets/` (`metalearn data fetch omniglot`).
//! `--quick` (what `cargo xtask test` runs) trains 20 MAML iterations and 80 ProtoNet episodes.

use std::path::{Path, PathBuf};

use burn::backend::{Autodiff, Flex};
use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Tensor, backend::Backend};
use meta_algos::{
    EvalConfig, FnFactory, Maml, MamlConfig, MetaLearner, ProtoNet, ProtoNetConfig, Trainer,
    TrainerConfig, evaluate_sampler,
};
use meta_backbones::{Backbone, Linear, pool};
use meta_data::{DatasetKind, EpisodeSpec, OmniglotSplit, Split, load_split_sampler};

type B = Autodiff<Flex>;

/// Two 3×3 convolutions (32 filters, ReLU, 2×2 max-pool each) and a linear head. Every layer is
/// twice differentiable (`meta_backbones::Backbone` lists which burn layers are): burn's
/// `Conv2d`, this crate's `pool` and `Linear`; the classifier is the field `head`, which is
/// what ANIL and BOIL split on.
#[derive(Module, Debug)]
struct TwoConv<B: Backend> {
    conv1: Conv2d<B>,
    conv2: Conv2d<B>,
    head: Linear<B>,
}

impl<B: Backend> TwoConv<B> {
    fn new(ways: usize, device: &B::Device) -> Self {
        let conv = |c_in| {
            Conv2dConfig::new([c_in, 32], [3, 3])
                .with_padding(PaddingConfig2d::Same)
                .init(device)
        };
        Self {
            conv1: conv(1),
            conv2: conv(32),
            head: Linear::new(32 * 7 * 7, ways, device),
        }
    }
}

impl<B: Backend> Backbone<B> for TwoConv<B> {
    fn embed(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        let x = pool::max_pool2x2(relu(self.conv1.forward(x)));
        let x = pool::max_pool2x2(relu(self.conv2.forward(x)));
        let n = x.dims()[0];
        x.reshape([n, 32 * 7 * 7])
    }
    fn head(&self, features: Tensor<B, 2>) -> Tensor<B, 2> {
        self.head.forward(features)
    }
    fn feature_dim(&self) -> usize {
        32 * 7 * 7
    }
    fn num_classes(&self) -> usize {
        self.head.d_out()
    }
}

/// Meta-trains `learner` for `iterations` iterations of `meta_batch` tasks and prints the test
/// accuracy (over `episodes` episodes) of the untrained and of the trained model.
fn train_and_test<L: MetaLearner<B> + 'static>(
    learner: L,
    data: &Path,
    (iterations, meta_batch): (u64, usize),
    episodes: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let sampler = |split, seed| {
        let (kind, spec) = (DatasetKind::Omniglot, EpisodeSpec::new(5, 1, 15));
        load_split_sampler(data, &kind, OmniglotSplit::Vinyals, split, spec, seed, None)
    };
    let (train, test) = (sampler(Split::Train, 1)?, sampler(Split::Test, 2)?);
    let device = Default::default();
    let config = TrainerConfig {
        iterations,
        meta_batch,
        ..TrainerConfig::default()
    };
    let mut trainer = Trainer::<B, _>::new(learner, config, &device)?;
    let eval = EvalConfig { episodes, seed: 3 };
    let name = trainer.learner().name();
    let before = evaluate_sampler(trainer.learner(), trainer.model(), &test, &eval, &device)?;
    trainer.run(train, None, None, |_| {})?;
    let after = evaluate_sampler(trainer.learner(), trainer.model(), &test, &eval, &device)?;
    println!("{name}: untrained {before}, after {iterations} iterations {after}");
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arg = std::env::args().nth(1);
    let (iterations, episodes) = match arg.as_deref() {
        Some("--quick") => (20, 100),
        Some(n) => (n.parse()?, 600),
        None => (100, 600),
    };
    let data = PathBuf::from(std::env::var("META_DATA_DIR").unwrap_or_else(|_| "datasets".into()));
    let factory = || FnFactory::new("two-conv-32", |device| TwoConv::new(5, device));
    // Without batch-norm this backbone wants a smaller inner step than Conv4's 0.4.
    let maml_config = MamlConfig {
        inner_lr: 0.1,
        ..MamlConfig::default()
    };
    let maml = Maml::new(factory(), maml_config);
    train_and_test(maml, &data, (iterations, 4), episodes)?;
    let protonet = ProtoNet::new(factory(), ProtoNetConfig::default());
    train_and_test(protonet, &data, (4 * iterations, 1), episodes)?;
    Ok(())
}
