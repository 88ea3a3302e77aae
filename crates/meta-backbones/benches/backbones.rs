//! Conv4-64 forward+backward on 80 Omniglot-sized images, and one 5-way 1-shot MAML task
//! (15 queries per class, 1 inner step) exact second order vs first order, on flex and ndarray.

use std::time::Duration;

use burn::backend::{Autodiff, Flex, NdArray};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use criterion::{Criterion, criterion_group, criterion_main};
use meta_backbones::{Backbone, Conv4, Conv4Config, GradOrder, InnerLoop, adapt, cross_entropy};

fn images<B: AutodiffBackend>(n: usize, device: &B::Device) -> Tensor<B, 4> {
    Tensor::random([n, 1, 28, 28], Distribution::Uniform(0.0, 1.0), device)
}

fn labels<B: AutodiffBackend>(n: usize, ways: usize, device: &B::Device) -> Tensor<B, 1, Int> {
    let y: Vec<i64> = (0..n).map(|i| (i % ways) as i64).collect();
    Tensor::from_data(TensorData::new(y, [n]), device)
}

fn bench_backend<B: AutodiffBackend>(c: &mut Criterion, name: &str) {
    let device = B::Device::default();
    B::seed(&device, 0);
    let model: Conv4<B> = Conv4Config::default().init(&device);

    let x = images::<B>(80, &device);
    let y = labels::<B>(80, 5, &device);
    c.bench_function(&format!("conv4_64_fwd_bwd_80/{name}"), |b| {
        b.iter(|| {
            let loss = cross_entropy(model.forward(x.clone()), y.clone());
            let _ = loss.backward();
        })
    });

    let (xs, ys) = (images::<B>(5, &device), labels::<B>(5, 5, &device));
    let (xq, yq) = (images::<B>(75, &device), labels::<B>(75, 5, &device));
    for (order, label) in [(GradOrder::Second, "second"), (GradOrder::First, "first")] {
        let cfg = InnerLoop {
            steps: 1,
            lr: 0.4,
            order,
            ..Default::default()
        };
        c.bench_function(&format!("maml_5w1s_15q_{label}_order/{name}"), |b| {
            b.iter(|| {
                let adapted = adapt(&model, xs.clone(), ys.clone(), &cfg);
                let loss = cross_entropy(adapted.forward(xq.clone()), yq.clone());
                let _ = loss.backward();
            })
        });
    }
}

fn benches(c: &mut Criterion) {
    bench_backend::<Autodiff<Flex>>(c, "flex");
    bench_backend::<Autodiff<NdArray>>(c, "ndarray");
}

criterion_group! {
    name = group;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = benches
}
criterion_main!(group);
