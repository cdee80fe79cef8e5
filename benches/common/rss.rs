//! Resident memory of this process, for the memory benches.

/// A field of `/proc/self/status` in MB; NaN where there is no procfs.
fn status_mb(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// `VmRSS`: resident now.
pub fn rss_mb() -> f64 {
    status_mb("VmRSS:")
}

/// `VmHWM`: the most this process has had resident.
#[allow(dead_code)]
pub fn peak_rss_mb() -> f64 {
    status_mb("VmHWM:")
}
