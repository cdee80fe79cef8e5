//! Live heap of this process: where RSS says how much memory is held, this says how much the
//! program has allocated (the difference is the allocator's overhead and fragmentation). The
//! benches allocate with jemalloc, as the `tykwatch` binary does (`src/main.rs`), and read its
//! `stats.allocated`.

#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Bytes allocated and not yet freed, in MB; NaN where jemalloc is not the allocator.
pub fn live_mb() -> f64 {
    #[cfg(not(target_env = "msvc"))]
    {
        use tikv_jemalloc_ctl::{epoch, stats};
        // The statistics are cached until the epoch advances.
        if epoch::advance().is_ok()
            && let Ok(bytes) = stats::allocated::read()
        {
            return bytes as f64 / (1024.0 * 1024.0);
        }
    }
    f64::NAN
}
