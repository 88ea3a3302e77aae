//! The base learner and representation network of the original Meta Networks (Munkhdalai & Yu,
//! ICML 2017): a CNN without batch-norm whose every layer can be *layer-augmented* with fast
//! weights, one set per example or one shared by the batch.
//!
//! Layers, as in the authors' Omniglot code: `conv_layers` × (conv 3×3, pad 1, no bias → ReLU →
//! 2×2 max-pool, ceil mode), flatten, `fc1` (no bias) → ReLU, `head` (no bias). A layer
//! augmented with fast weights `W*` computes `ReLU(W x) + ReLU(W* x)` (the last layer, without
//! non-linearity, `W x + W* x`). Used without fast weights it is an ordinary backbone (body up
//! to `fc1`'s ReLU, head `head`), exact to second order.

use burn::module::{Module, Param};
use burn::tensor::activation::relu;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Tensor, backend::Backend};
use serde::{Deserialize, Serialize};

use crate::backbone::Backbone;
use crate::conv::{ConvGeom, conv2d};
use crate::error::{BackboneError, positive};
use crate::params::force_init;
use crate::pool::max_pool2x2;

/// Configuration of [`MetaNetCnn`]. Defaults: Omniglot (1 channel, 28×28), 5 conv layers of 64
/// filters, `fc1` of 64 units, 5 logits (the authors' Omniglot network).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetaNetCnnConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Input height and width.
    pub image_size: usize,
    /// Filters of every conv layer.
    pub filters: usize,
    /// Number of conv layers.
    pub conv_layers: usize,
    /// Width of `fc1` (the embedding and key width).
    pub fc_hidden: usize,
    /// Logits of the head.
    pub num_classes: usize,
}

impl Default for MetaNetCnnConfig {
    fn default() -> Self {
        Self {
            in_channels: 1,
            image_size: 28,
            filters: 64,
            conv_layers: 5,
            fc_hidden: 64,
            num_classes: 5,
        }
    }
}

impl MetaNetCnnConfig {
    /// Height (= width) of the last conv layer's pooled map.
    pub fn final_size(&self) -> usize {
        (0..self.conv_layers).fold(self.image_size, |s, _| s.div_ceil(2))
    }

    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), BackboneError> {
        for (field, value) in [
            ("in_channels", self.in_channels),
            ("image_size", self.image_size),
            ("filters", self.filters),
            ("conv_layers", self.conv_layers),
            ("fc_hidden", self.fc_hidden),
            ("num_classes", self.num_classes),
        ] {
            positive("metanet-cnn", field, value)?;
        }
        Ok(())
    }

    /// Shapes of the layers' weights, input to output: conv `[filters, c_in, 3, 3]`, then
    /// `fc1` `[flat, fc_hidden]` and `head` `[fc_hidden, num_classes]`.
    pub fn layer_shapes(&self) -> Vec<Vec<usize>> {
        let mut shapes: Vec<Vec<usize>> = (0..self.conv_layers)
            .map(|i| {
                let c_in = if i == 0 {
                    self.in_channels
                } else {
                    self.filters
                };
                vec![self.filters, c_in, 3, 3]
            })
            .collect();
        let flat = self.filters * self.final_size().pow(2);
        shapes.push(vec![flat, self.fc_hidden]);
        shapes.push(vec![self.fc_hidden, self.num_classes]);
        shapes
    }

    /// Builds the network (weights `U(±1/√fan_in)` from the backend's RNG, as PyTorch).
    pub fn try_init<B: Backend>(&self, device: &B::Device) -> Result<MetaNetCnn<B>, BackboneError> {
        self.validate()?;
        let shapes = self.layer_shapes();
        let convs = shapes[..self.conv_layers]
            .iter()
            .map(|s| {
                let shape = [s[0], s[1], s[2], s[3]];
                let fan_in = s[1] * 9;
                Param::from_tensor(crate::rng::fan_in_uniform(shape, fan_in, device))
            })
            .collect();
        let linear = |s: &[usize]| {
            Param::from_tensor(crate::rng::fan_in_uniform([s[0], s[1]], s[0], device))
        };
        let model = MetaNetCnn {
            convs,
            fc1: linear(&shapes[self.conv_layers]),
            head: linear(&shapes[self.conv_layers + 1]),
        };
        force_init(&model);
        Ok(model)
    }

    /// Builds the network.
    ///
    /// # Panics
    /// If [`validate`](Self::validate) fails; use [`try_init`](Self::try_init) for a `Result`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> MetaNetCnn<B> {
        self.try_init(device).unwrap_or_else(|e| panic!("{e}"))
    }
}

/// What one pass of [`MetaNetCnn::run`] gives.
#[derive(Debug, Clone)]
pub struct CnnOutput<B: Backend> {
    /// `fc1`'s pre-activations, slow plus fast `[N, fc_hidden]` (the Meta Networks key).
    pub key: Tensor<B, 2>,
    /// Logits `[N, num_classes]`.
    pub logits: Tensor<B, 2>,
}

/// The Meta Networks CNN (see the module docs). Weights are stored as the layers use them;
/// [`run`](MetaNetCnn::run) takes them flattened, `[rows, numel]`, with `rows` 1 (one set for
/// the whole batch) or the batch size (one set per example).
///
/// ```
/// use burn::backend::{Autodiff, Flex};
/// use burn::tensor::Tensor;
/// use meta_backbones::{Backbone, MetaNetCnnConfig};
///
/// type B = Autodiff<Flex>;
/// let device = Default::default();
/// let net = MetaNetCnnConfig::default().init::<B>(&device);
/// let x = Tensor::zeros([3, 1, 28, 28], &device);
/// // Per-example fast weights for every layer (here zeros: the slow network's output).
/// let fast: Vec<Tensor<B, 2>> = net.weights().iter().map(|w| w.zeros_like().repeat_dim(0, 3)).collect();
/// let out = net.run(x.clone(), &net.weights(), Some(&fast));
/// assert_eq!(out.logits.dims(), [3, 5]);
/// assert_eq!(out.key.dims(), [3, 64]);
/// ```
#[derive(Module, Debug)]
pub struct MetaNetCnn<B: Backend> {
    /// Conv weights `[filters, c_in, 3, 3]`, input to output.
    pub convs: Vec<Param<Tensor<B, 4>>>,
    /// `fc1` weight `[flat, fc_hidden]`.
    pub fc1: Param<Tensor<B, 2>>,
    /// Head weight `[fc_hidden, num_classes]`.
    pub head: Param<Tensor<B, 2>>,
}

/// Zero-padding of an odd height or width at the bottom / right, so that a 2×2 pool of
/// non-negative maps keeps the last row and column (Chainer's `cover_all` pooling).
fn pool_ceil<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    let [n, c, h, w] = x.dims();
    let (device, dtype) = (x.device(), x.dtype());
    let x = if h % 2 == 1 {
        Tensor::cat(vec![x, Tensor::zeros([n, c, 1, w], (&device, dtype))], 2)
    } else {
        x
    };
    let x = if w % 2 == 1 {
        let rows = h.div_ceil(2) * 2;
        Tensor::cat(vec![x, Tensor::zeros([n, c, rows, 1], (&device, dtype))], 3)
    } else {
        x
    };
    max_pool2x2(x)
}

/// `w` as one row `[1, numel]`.
fn flat<B: Backend, const D: usize>(w: &Param<Tensor<B, D>>) -> Tensor<B, 2> {
    w.val().reshape([1, w.shape().num_elements()])
}

/// Pre-activations of a 3×3, pad-1 convolution of `x` `[N, C, H, W]` with flattened weights
/// `w` `[1 or N, F·C·9]`: one convolution when shared, a grouped one (one group per example)
/// when per example.
fn conv_pre<B: Backend>(x: Tensor<B, 4>, w: Tensor<B, 2>, shape: &[usize]) -> Tensor<B, 4> {
    let [n, c, h, wd] = x.dims();
    let (f, rows) = (shape[0], w.dims()[0]);
    let geom = ConvGeom {
        stride: [1, 1],
        padding: [1, 1],
    };
    if rows == 1 {
        return conv2d(x, w.reshape([f, c, 3, 3]), None, geom);
    }
    assert_eq!(rows, n, "per-example weights need one row per example");
    let options = ConvOptions::new([1, 1], [1, 1], [1, 1], n);
    burn::tensor::module::conv2d(
        x.reshape([1, n * c, h, wd]),
        w.reshape([n * f, c, 3, 3]),
        None,
        options,
    )
    .reshape([n, f, h, wd])
}

/// `x · W` for `x` `[N, d_in]` and flattened weights `w` `[1 or N, d_in·d_out]`.
fn linear_pre<B: Backend>(x: Tensor<B, 2>, w: Tensor<B, 2>, shape: &[usize]) -> Tensor<B, 2> {
    let (n, rows) = (x.dims()[0], w.dims()[0]);
    let (d_in, d_out) = (shape[0], shape[1]);
    if rows == 1 {
        return x.matmul(w.reshape([d_in, d_out]));
    }
    assert_eq!(rows, n, "per-example weights need one row per example");
    x.reshape([n, 1, d_in])
        .matmul(w.reshape([n, d_in, d_out]))
        .reshape([n, d_out])
}

impl<B: Backend> MetaNetCnn<B> {
    /// The weights of every layer, input to output, flattened to `[1, numel]`.
    pub fn weights(&self) -> Vec<Tensor<B, 2>> {
        let fcs = [&self.fc1, &self.head].map(flat);
        self.convs.iter().map(flat).chain(fcs).collect()
    }

    /// Shapes of the layers' weights, as [`MetaNetCnnConfig::layer_shapes`].
    pub fn layer_shapes(&self) -> Vec<Vec<usize>> {
        let convs = self.convs.iter().map(|w| w.dims().to_vec());
        convs
            .chain([self.fc1.dims().to_vec(), self.head.dims().to_vec()])
            .collect()
    }

    /// Number of conv layers.
    pub fn conv_layers(&self) -> usize {
        self.convs.len()
    }

    /// The network with weights `slow` (in place of its own) and, if given, every layer
    /// augmented with `fast`; both flattened as [`weights`](Self::weights), each `[1 or N,
    /// numel]`.
    pub fn run(
        &self,
        x: Tensor<B, 4>,
        slow: &[Tensor<B, 2>],
        fast: Option<&[Tensor<B, 2>]>,
    ) -> CnnOutput<B> {
        let shapes = self.layer_shapes();
        let layers = self.convs.len();
        assert_eq!(slow.len(), layers + 2, "one weight tensor per layer");
        let fast_of = |l: usize| fast.map(|f| f[l].clone());
        let mut h = x;
        for (l, shape) in shapes[..layers].iter().enumerate() {
            let mut a = relu(conv_pre(h.clone(), slow[l].clone(), shape));
            if let Some(w) = fast_of(l) {
                a = a + relu(conv_pre(h, w, shape));
            }
            h = pool_ceil(a);
        }
        let [n, c, hh, ww] = h.dims();
        let h = h.reshape([n, c * hh * ww]);
        let (s1, s2) = (&shapes[layers], &shapes[layers + 1]);
        let slow1 = linear_pre(h.clone(), slow[layers].clone(), s1);
        let (key, hidden) = match fast_of(layers) {
            Some(w) => {
                let fast1 = linear_pre(h, w, s1);
                (slow1.clone() + fast1.clone(), relu(slow1) + relu(fast1))
            }
            None => (slow1.clone(), relu(slow1)),
        };
        let mut logits = linear_pre(hidden.clone(), slow[layers + 1].clone(), s2);
        if let Some(w) = fast_of(layers + 1) {
            logits = logits + linear_pre(hidden, w, s2);
        }
        CnnOutput { key, logits }
    }
}

impl<B: Backend> Backbone<B> for MetaNetCnn<B> {
    fn embed(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        relu(self.run(x, &self.weights(), None).key)
    }
    fn head(&self, features: Tensor<B, 2>) -> Tensor<B, 2> {
        features.matmul(self.head.val())
    }
    fn feature_dim(&self) -> usize {
        self.fc1.dims()[1]
    }
    fn num_classes(&self) -> usize {
        self.head.dims()[1]
    }
}
