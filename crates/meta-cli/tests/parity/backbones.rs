//! Backbone parity: for every backbone, the forward pass, the support-set gradient and the exact
//! second-order meta-gradient of one inner step agree with flex's.

use std::path::Path;

use burn::module::{AutodiffModule, Module};
use burn::optim::GradientsParams;
use burn::tensor::TensorData;
use burn::tensor::backend::AutodiffBackend;
use meta_algos::checkpoint::{record_from_bytes, record_to_bytes};
use meta_backbones::{
    AnyBackbone, Backbone, BackboneConfig, FcNetConfig, InnerLoop, MetaNetEmbeddingConfig,
    ParamGroup, ResNet12Config, adapt, cross_entropy, support_gradients,
};
use meta_data::Task;

use super::episodes::tasks;
use super::{IMAGE, Reference, WAYS, assert_close, conv4, tensors, tolerance, worst_relative};

/// Moves `module` from flex to backend `B` through burn's record encoding (bit-exact f32).
fn transfer<B: AutodiffBackend, M: Module<Reference>, N: Module<B>>(
    module: &M,
    blank: N,
    device: &B::Device,
) -> N {
    let bytes = record_to_bytes::<Reference, _>(module.clone().into_record()).expect("encode");
    let record = record_from_bytes::<B, N::Record>(bytes, device, Path::new("parity"))
        .expect("the record decodes on the other backend");
    blank.load_record(record)
}

/// The backbones whose forward pass, support gradient and meta-gradient are compared.
fn backbones() -> Vec<(&'static str, BackboneConfig)> {
    vec![
        ("conv4", conv4().into()),
        (
            "resnet12",
            ResNet12Config {
                in_channels: IMAGE[0],
                widths: [8, 8, 16, 16],
                num_classes: WAYS,
                ..ResNet12Config::default()
            }
            .into(),
        ),
        (
            "fcnet",
            FcNetConfig {
                x_dim: IMAGE.iter().product(),
                layer_dims: vec![64, 32],
                dropout: 0.0, // dropout masks come from each backend's own RNG
                num_classes: WAYS,
                ..FcNetConfig::default()
            }
            .into(),
        ),
        (
            "metanet-embedding",
            MetaNetEmbeddingConfig {
                in_channels: IMAGE[0],
                hidden: 16,
                num_classes: WAYS,
                ..MetaNetEmbeddingConfig::default()
            }
            .into(),
        ),
    ]
}

/// What is compared for a backbone on one task: training-mode logits, the support-set
/// gradient, the second-order meta-gradient of one inner step, and evaluation-mode logits.
fn backbone_probe<B: AutodiffBackend>(
    model: &AnyBackbone<B>,
    task: &Task<B>,
) -> Vec<(&'static str, Vec<Vec<f64>>)> {
    let flat = |data: TensorData| vec![data.iter::<f64>().collect::<Vec<f64>>()];
    let logits = flat(model.forward(task.query_x.clone()).into_data());
    let support = support_gradients(
        model,
        task.support_x.clone(),
        task.support_y.clone(),
        ParamGroup::All,
        &meta_backbones::Loss::Auto,
    );
    let inner = InnerLoop {
        lr: 0.1,
        ..InnerLoop::default()
    };
    let adapted = adapt(
        model,
        task.support_x.clone(),
        task.support_y.clone(),
        &inner,
    );
    let loss = cross_entropy(adapted.forward(task.query_x.clone()), task.query_y.labels());
    let meta = GradientsParams::from_grads(loss.backward(), model);
    let eval_logits = model.valid().forward(task.query_x.clone().inner());
    vec![
        ("training-mode logits", logits),
        ("support-set gradient", tensors(model, Some(&support))),
        (
            "second-order meta-gradient (1 inner step)",
            tensors(model, Some(&meta)),
        ),
        ("evaluation-mode logits", flat(eval_logits.into_data())),
    ]
}

/// Every backbone's [`backbone_probe`] on backend `B` against flex.
pub fn backbone_parity<B: AutodiffBackend>(backend: &str, device: B::Device) {
    let tol = tolerance(backend);
    let flex_device = Default::default();
    for (label, config) in backbones() {
        meta_backbones::rng::seed(9);
        let reference = config.init::<Reference>(&flex_device);
        let model = transfer(&reference, config.init::<B>(&device), &device);
        let expected = backbone_probe(&reference, &tasks::<Reference>(0, &flex_device)[0]);
        let found = backbone_probe(&model, &tasks::<B>(0, &device)[0]);
        for ((what, a), (_, b)) in found.iter().zip(&expected) {
            let rel = worst_relative(what, a, b);
            assert_close(&format!("{backend}/{label}"), what, rel, tol);
        }
    }
}
