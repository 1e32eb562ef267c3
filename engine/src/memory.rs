//! Memory accounting: MLX's allocator counters and the process's resident set.
use std::fmt;

/// A snapshot of memory use, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryReport {
    /// Bytes MLX has allocated and not freed (excludes arrays that point into mapped files).
    pub mlx_active: usize,
    /// Highest `mlx_active` since the last [`reset_peak`].
    pub mlx_peak: usize,
    /// Bytes MLX keeps cached for reuse.
    pub mlx_cache: usize,
    /// Resident set of the process (includes mapped checkpoint pages that were touched).
    pub rss: usize,
}

impl MemoryReport {
    pub fn now() -> Self {
        Self {
            mlx_active: mlx_rs::memory::active_memory().unwrap_or(0),
            mlx_peak: mlx_rs::memory::peak_memory().unwrap_or(0),
            mlx_cache: mlx_rs::memory::cache_memory().unwrap_or(0),
            rss: memory_stats::memory_stats().map_or(0, |m| m.physical_mem),
        }
    }
}

/// Starts a new peak measurement.
pub fn reset_peak() {
    let _ = mlx_rs::memory::reset_peak_memory();
}

impl fmt::Display for MemoryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mib = |b: usize| b as f64 / (1024.0 * 1024.0);
        write!(
            f,
            "mlx active {:.1} MiB, peak {:.1} MiB, cache {:.1} MiB; rss {:.1} MiB",
            mib(self.mlx_active),
            mib(self.mlx_peak),
            mib(self.mlx_cache),
            mib(self.rss)
        )
    }
}

/// Evaluates every parameter of `module` (loading, casting, decoding them) and reports memory after.
pub fn materialize<M: mlx_rs::module::ModuleParameters + ?Sized>(
    module: &M,
) -> Result<MemoryReport, mlx_rs::error::Exception> {
    let params = module.parameters().flatten();
    mlx_rs::transforms::eval(params.values().copied())?;
    Ok(MemoryReport::now())
}
