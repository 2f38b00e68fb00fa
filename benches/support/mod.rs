//! What the offline benchmarks share: the peak RSS and a byte-counting sink.

/// Peak resident memory of this process so far, in MB (Linux).
pub fn peak_rss_mb() -> f64 {
    status_mb("VmHWM:")
}

/// Resident memory of this process now, in MB (Linux).
#[allow(dead_code)] // not every benchmark reads it
pub fn rss_mb() -> f64 {
    status_mb("VmRSS:")
}

/// A memory figure of /proc/self/status, in MB.
fn status_mb(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// Counts bytes written: a report rendered as to a file, without keeping it.
#[allow(dead_code)] // not every benchmark counts bytes
pub struct Counter(pub usize);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
