//! How many CPU threads the compute kernels use: `--threads N` (or `METALEARN_THREADS`), else
//! the number of physical cores.

use anyhow::{Result, bail};

/// Sizes the CPU thread pools (rayon's global pool, which flex's kernels and this project's
/// convolution use, and libtorch's intra-op pool) and returns the thread count. `requested`
/// is `--threads` / `METALEARN_THREADS`; `None` means every physical core.
pub fn configure(requested: Option<usize>) -> Result<usize> {
    let threads = match requested {
        Some(0) => bail!(
            "--threads (or METALEARN_THREADS) must be at least 1, got 0; leave it unset to use \
             every physical core"
        ),
        Some(n) => n,
        None => num_cpus::get_physical().max(1),
    };
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .map_err(|err| anyhow::anyhow!("could not start {threads} CPU threads: {err}"))?;
    #[cfg(feature = "tch")]
    tch::set_num_threads(threads as i32);
    Ok(threads)
}
