//! Memory readings: the process's peak resident set (Linux) and, where the backend reports it, the
//! memory its GPU runtime holds.

/// Bytes per MiB: memory is reported in MiB, like `ru_maxrss / 1024` in the PyTorch reference.
const MIB: f64 = 1024.0 * 1024.0;

/// Resets the kernel's peak-RSS counter (`VmHWM`) to the current RSS; `false` when that is not
/// possible (not Linux, or `/proc` not writable), in which case no peak should be reported.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Peak resident set size since the last reset, in MiB (`VmHWM` of `/proc/self/status`).
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024.0 / MIB)
}

/// Reads how much device memory a backend's runtime holds, in MiB.
pub type GpuProbe = fn() -> Option<f64>;

/// The device-memory probe of backend `name`, where its runtime can report one: the memory the
/// CubeCL runtime (wgpu, cuda) has reserved in its pools on the default device. Pools grow to
/// the peak demand and are not returned between iterations, so after an iteration this is a
/// peak-like figure. libtorch's CUDA allocator statistics are not reachable through `tch`.
pub fn gpu_probe(name: &str) -> Option<GpuProbe> {
    match name {
        #[cfg(feature = "wgpu")]
        "wgpu" => Some(wgpu_reserved_mib),
        #[cfg(feature = "cuda")]
        "cuda" => Some(cuda_reserved_mib),
        _ => None,
    }
}

/// Memory reserved by the CubeCL runtime that `tensor` lives on.
#[cfg(any(feature = "wgpu", feature = "cuda"))]
macro_rules! cube_reserved_mib {
    ($backend:ty) => {{
        let device = Default::default();
        let tensor = burn::tensor::Tensor::<$backend, 1>::zeros([1], &device);
        let usage = tensor
            .into_primitive()
            .tensor()
            .client
            .memory_usage()
            .ok()?;
        Some(usage.bytes_reserved as f64 / MIB)
    }};
}

#[cfg(feature = "wgpu")]
fn wgpu_reserved_mib() -> Option<f64> {
    cube_reserved_mib!(burn::backend::Wgpu)
}

#[cfg(feature = "cuda")]
fn cuda_reserved_mib() -> Option<f64> {
    cube_reserved_mib!(burn::backend::Cuda)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_rss_grows_with_a_touched_allocation_and_resets() {
        if !reset_peak_rss() {
            return; // Not Linux: nothing to check.
        }
        // The block comes from the system allocator, which returns a freed block this large to
        // the OS at once; the binary's global allocator (mimalloc) keeps freed memory mapped.
        use std::alloc::{GlobalAlloc, Layout, System};
        let before = peak_rss_mib().unwrap();
        let layout = Layout::from_size_align(64 << 20, 4096).unwrap();
        // SAFETY: `layout` has a non-zero size; the block is checked for null, written within
        // its size and freed once with the same layout.
        let after = unsafe {
            let block = System.alloc(layout);
            assert!(!block.is_null());
            std::ptr::write_bytes(block, 1, layout.size());
            std::hint::black_box(block);
            let after = peak_rss_mib().unwrap();
            System.dealloc(block, layout);
            after
        };
        assert!(after >= before + 60.0, "{before} → {after}");
        assert!(reset_peak_rss());
        assert!(peak_rss_mib().unwrap() < after);
    }

    #[test]
    fn cpu_backends_have_no_gpu_probe() {
        assert!(gpu_probe("flex").is_none() && gpu_probe("ndarray").is_none());
    }
}
