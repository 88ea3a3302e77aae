//! How an algorithm builds its backbone: a [`BackboneFactory`] makes a fresh, initialised
//! backbone on a device and names it for checkpoints.

use burn::module::{AutodiffModule, ModuleDisplay};
use burn::tensor::backend::AutodiffBackend;
use meta_backbones::Backbone;
use std::sync::Arc;

/// Builds a backbone on a device. Metric and Meta-Networks algorithms are generic over one.
pub trait BackboneFactory<B: AutodiffBackend>: Send + Sync {
    /// The backbone type built.
    type Net: Backbone<B> + ModuleDisplay + AutodiffModule<B, InnerModule: ModuleDisplay>;

    /// Builds a freshly initialised backbone on `device`.
    fn build(&self, device: &B::Device) -> Self::Net;

    /// A short, stable description recorded in checkpoints, e.g. `"conv4-64"`.
    fn name(&self) -> String;
}

/// A [`BackboneFactory`] from a name and a closure.
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
    N: Backbone<B> + ModuleDisplay + AutodiffModule<B, InnerModule: ModuleDisplay>,
{
    type Net = N;

    fn build(&self, device: &B::Device) -> N {
        (self.build)(device)
    }

    fn name(&self) -> String {
        self.name.clone()
    }
}
