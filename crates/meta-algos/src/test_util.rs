//! Test helpers: a tiny backbone and a synthetic, deterministic episode source.

use burn::module::{Module, Param};
use burn::tensor::{Distribution, Tensor, backend::Backend};
use meta_backbones::Backbone;
use meta_data::{Episode, EpisodeSource};

use crate::factory::FnFactory;

pub type TB = burn::backend::Autodiff<burn::backend::Flex>;

/// flatten → linear → relu → (embedding); head: linear.
#[derive(Module, Debug)]
pub struct TinyNet<B: Backend> {
    pub w1: Param<Tensor<B, 2>>,
    pub b1: Param<Tensor<B, 1>>,
    pub w2: Param<Tensor<B, 2>>,
}

impl<B: Backend> TinyNet<B> {
    pub fn new(input: usize, hidden: usize, classes: usize, device: &B::Device) -> Self {
        let u = |r: usize, c: usize| {
            let b = 1.0 / (r as f64).sqrt();
            Param::from_tensor(meta_backbones::rng::random(
                [r, c],
                Distribution::Uniform(-b, b),
                device,
            ))
        };
        Self {
            w1: u(input, hidden),
            b1: Param::from_tensor(Tensor::zeros([hidden], device)),
            w2: u(hidden, classes),
        }
    }
}

impl<B: Backend> Backbone<B> for TinyNet<B> {
    fn embed(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        let [n, c, h, w] = x.dims();
        let hidden = self.b1.dims()[0];
        let z =
            x.reshape([n, c * h * w]).matmul(self.w1.val()) + self.b1.val().reshape([1, hidden]);
        burn::tensor::activation::relu(z)
    }
    fn head(&self, features: Tensor<B, 2>) -> Tensor<B, 2> {
        features.matmul(self.w2.val())
    }
    fn feature_dim(&self) -> usize {
        self.b1.dims()[0]
    }
    fn num_classes(&self) -> usize {
        self.w2.dims()[1]
    }
}

/// A factory of `TinyNet`s for 1×4×4 images.
pub fn tiny_factory(hidden: usize) -> FnFactory<TB, TinyNet<TB>> {
    FnFactory::new(format!("tiny-{hidden}"), move |d| {
        TinyNet::new(16, hidden, 3, d)
    })
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// 3-way 2-shot 4-query episodes of 1×4×4 images from 10 noisy class templates.
pub struct Synthetic {
    pub seed: u64,
}

impl EpisodeSource for Synthetic {
    fn episode(&self, index: u64) -> Episode {
        let (ways, shots, queries) = self.shape();
        let mut state = splitmix(self.seed ^ splitmix(index));
        let mut next = || {
            state = splitmix(state);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut classes: Vec<usize> = Vec::new();
        while classes.len() < ways {
            let c = (next() * 10.0) as usize % 10;
            if !classes.contains(&c) {
                classes.push(c);
            }
        }
        let template = |c: usize, p: usize| if (c * 7 + p * 3) % 5 < 2 { 1.0 } else { 0.0 };
        let mut images = |n: usize| {
            let mut px = Vec::new();
            let mut labels = Vec::new();
            for (label, &c) in classes.iter().enumerate() {
                for _ in 0..n {
                    for p in 0..16 {
                        px.push((template(c, p) + 1.6 * (next() - 0.5)) as f32);
                    }
                    labels.push(label as i64);
                }
            }
            (px, labels)
        };
        let (support_images, support_labels) = images(shots);
        let (query_images, query_labels) = images(queries);
        Episode {
            ways,
            shots,
            queries,
            image_shape: [1, 4, 4],
            support_images,
            support_labels,
            query_images,
            query_labels,
            classes: classes.clone(),
            value_dim: 0,
            support_values: Vec::new(),
            query_values: Vec::new(),
        }
    }
    fn shape(&self) -> (usize, usize, usize) {
        (3, 2, 4)
    }
    fn image_shape(&self) -> [usize; 3] {
        [1, 4, 4]
    }
}

/// All float parameters of `model` flattened to host vectors, in visiting order.
pub fn param_values<B: Backend, M: Module<B>>(model: &M) -> Vec<Vec<f32>> {
    struct V(Vec<Vec<f32>>);
    impl<B: Backend> burn::module::ModuleVisitor<B> for V {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<B, D>>) {
            self.0
                .push(p.val().into_data().to_vec::<f32>().unwrap_or_default());
        }
    }
    let mut v = V(Vec::new());
    model.visit(&mut v);
    v.0
}
