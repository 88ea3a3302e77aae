//! How an algorithm builds its backbone: a [`BackboneFactory`] makes a fresh, initialised
//! backbone on a device and names it for checkpoints.

use burn::module::{AutodiffModule, ModuleDisplay};
use burn::tensor::backend::AutodiffBackend;
use meta_backbones::Backbone;
use std::sync::Arc;

/// Builds a backbone on a device. Metric and Meta-Networks algorithms are generic over one.
pub trait BackboneFactory<B: AutodiffBackend>: Send + Sync {
    /// The backbone type built.
    /// Its inner-backend copy (`valid()`) is a backbone too: predictors that need no gradients
    /// run on it, so that test episodes never touch the autodiff graph.
    type Net: Backbone<B>
        + ModuleDisplay
        + AutodiffModule<B, InnerModule: ModuleDisplay + Backbone<B::InnerBackend>>;

    /// Builds a freshly initialised backbone on `device`.
    fn build(&self, device: &B::Device) -> Self::Net;

    /// A short, stable description recorded in checkpoints, e.g. `"conv4-64"`.
    fn name(&self) -> String;

    /// Checks that [`build`](BackboneFactory::build) will succeed; algorithm constructors call
    /// it so that an invalid backbone configuration is an error, not a panic. Default: `Ok`.
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Implements [`BackboneFactory`] for a meta-backbones config type; the name is
/// `"<kind> <config as JSON>"`, so any change of configuration changes the checkpoint identity.
macro_rules! config_factory {
    ($config:ty, $net:ident, $kind:literal) => {
        impl<B: AutodiffBackend> BackboneFactory<B> for $config {
            type Net = meta_backbones::$net<B>;

            fn build(&self, device: &B::Device) -> Self::Net {
                self.init(device)
            }

            fn name(&self) -> String {
                format!(
                    "{} {}",
                    $kind,
                    serde_json::to_string(self).unwrap_or_default()
                )
            }

            fn validate(&self) -> Result<(), String> {
                <$config>::validate(self).map_err(|e| e.to_string())
            }
        }
    };
}

config_factory!(meta_backbones::Conv4Config, Conv4, "conv4");
config_factory!(meta_backbones::FcNetConfig, FcNet, "fcnet");
config_factory!(meta_backbones::ResNet12Config, ResNet12, "resnet12");
config_factory!(
    meta_backbones::MetaNetEmbeddingConfig,
    MetaNetEmbedding,
    "metanet-embedding"
);
config_factory!(meta_backbones::BackboneConfig, AnyBackbone, "backbone");

/// Validates `factory` for an algorithm constructor.
pub(crate) fn check_factory<B: AutodiffBackend, F: BackboneFactory<B>>(
    factory: &F,
) -> crate::error::Result<()> {
    factory
        .validate()
        .map_err(|e| crate::error::AlgoError::InvalidConfig(format!("backbone: {e}")))
}

/// A [`BackboneFactory`] from a name and a closure.
///
/// The backbone it builds must implement [`Backbone`] for every backend; under exact
/// second-order algorithms (MAML, ANIL, BOIL, Meta-SGD) every layer must also survive a second
/// backward pass: burn's `nn::Linear` does not, `meta_backbones::Linear` does (the table is on
/// [`Backbone`]). The trainer checks this before the first meta-iteration.
#[allow(clippy::type_complexity)]
pub struct FnFactory<B: AutodiffBackend, N> {
    name: String,
    build: Arc<dyn Fn(&B::Device) -> N + Send + Sync>,
}

impl<B: AutodiffBackend, N> Clone for FnFactory<B, N> {
    fn clone(&self) -> Self {
        Self {
            name: self.name.clone(),
            build: Arc::clone(&self.build),
        }
    }
}

impl<B: AutodiffBackend, N> core::fmt::Debug for FnFactory<B, N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FnFactory")
            .field("name", &self.name)
            .finish()
    }
}

impl<B: AutodiffBackend, N> FnFactory<B, N> {
    /// A factory named `name` that calls `build` to make each backbone.
    pub fn new(
        name: impl Into<String>,
        build: impl Fn(&B::Device) -> N + Send + Sync + 'static,
    ) -> Self {
        Self {
            name: name.into(),
            build: Arc::new(build),
        }
    }
}

impl<B, N> BackboneFactory<B> for FnFactory<B, N>
where
    B: AutodiffBackend,
    N: Backbone<B>
        + ModuleDisplay
        + AutodiffModule<B, InnerModule: ModuleDisplay + Backbone<B::InnerBackend>>,
{
    type Net = N;

    fn build(&self, device: &B::Device) -> N {
        (self.build)(device)
    }

    fn name(&self) -> String {
        self.name.clone()
    }
}
