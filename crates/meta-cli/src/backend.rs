//! Backend selection at the binary's edge: `--backend NAME` picks one of the compiled-in backends.

use anyhow::{Result, bail};
use burn::tensor::backend::AutodiffBackend;

/// The backend used when none is named: the fastest CPU backend we measured (docs/benchmarks.md).
pub const DEFAULT_BACKEND: &str = "flex";

/// Every backend name with the cargo feature of `meta-cli` that compiles it in.
pub const BACKENDS: &[(&str, &str)] = &[
    ("flex", "flex"),
    ("ndarray", "ndarray"),
    ("wgpu", "wgpu"),
    ("tch", "tch"),
    ("cuda", "cuda"),
];

/// The backends compiled into this binary.
const COMPILED: &[&str] = &[
    #[cfg(feature = "flex")]
    "flex",
    #[cfg(feature = "ndarray")]
    "ndarray",
    #[cfg(feature = "wgpu")]
    "wgpu",
    #[cfg(feature = "tch")]
    "tch",
    #[cfg(feature = "cuda")]
    "cuda",
];

/// Whether `name`'s backend is compiled into this binary.
pub fn is_compiled(name: &str) -> bool {
    COMPILED.contains(&name)
}

/// Errors unless `name` is a compiled-in backend; the message names the cargo feature to enable.
pub fn check_compiled(name: &str) -> Result<()> {
    let Some((_, feature)) = BACKENDS.iter().find(|(n, _)| *n == name) else {
        bail!(
            "unknown --backend `{name}`; choose one of {}",
            BACKENDS
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
    if !is_compiled(name) {
        bail!(
            "--backend {name} is not compiled into this binary: rebuild with `--features {feature}` \
             (e.g. `cargo xtask train --backend {name} …`, which does it for you)"
        );
    }
    Ok(())
}

/// Work that runs on whichever autodiff backend the user picked.
pub trait BackendJob {
    /// What the work returns.
    type Output;
    /// Runs the work on backend `B` and `device`; `label` describes both for the run header.
    fn run<B: AutodiffBackend>(self, device: B::Device, label: String) -> Result<Self::Output>;
}

/// Runs `job` on the backend named `name` (which must be compiled in).
pub fn dispatch<J: BackendJob>(name: &str, job: J) -> Result<J::Output> {
    check_compiled(name)?;
    match name {
        #[cfg(feature = "flex")]
        "flex" => job.run::<burn::backend::Autodiff<burn::backend::Flex>>(
            Default::default(),
            "flex (CPU)".into(),
        ),
        #[cfg(feature = "ndarray")]
        "ndarray" => job.run::<burn::backend::Autodiff<burn::backend::NdArray>>(
            Default::default(),
            "ndarray (CPU)".into(),
        ),
        #[cfg(feature = "wgpu")]
        "wgpu" => job.run::<burn::backend::Autodiff<burn::backend::Wgpu>>(
            Default::default(),
            "wgpu (default adapter)".into(),
        ),
        #[cfg(feature = "tch")]
        "tch" => {
            use burn::backend::libtorch::LibTorchDevice;
            let device = if tch_cuda_available() {
                LibTorchDevice::Cuda(0)
            } else {
                LibTorchDevice::Cpu
            };
            let label = format!("tch ({device:?})");
            job.run::<burn::backend::Autodiff<burn::backend::LibTorch>>(device, label)
        }
        #[cfg(feature = "cuda")]
        "cuda" => job.run::<burn::backend::Autodiff<burn::backend::Cuda>>(
            Default::default(),
            "cuda (device 0)".into(),
        ),
        other => bail!("backend `{other}` is compiled in but has no dispatch entry"),
    }
}

#[cfg(feature = "tch")]
fn tch_cuda_available() -> bool {
    std::env::var("METALEARN_TCH_DEVICE").map_or(true, |v| v != "cpu") && tch::Cuda::is_available()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_backend_is_compiled_in() {
        check_compiled(DEFAULT_BACKEND).unwrap();
    }

    #[test]
    fn unknown_backend_error_lists_the_choices() {
        let err = check_compiled("tpu").unwrap_err().to_string();
        assert!(err.contains("`tpu`") && err.contains("flex"), "{err}");
    }

    #[test]
    fn missing_backend_error_names_the_feature() {
        for (name, feature) in BACKENDS {
            if !is_compiled(name) {
                let err = check_compiled(name).unwrap_err().to_string();
                assert!(err.contains(&format!("--features {feature}")), "{err}");
            }
        }
    }
}
