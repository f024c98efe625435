//! Live counters of a GC run, shown on a terminal while it works.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Counters updated by every phase.
#[derive(Debug, Default)]
pub struct Progress {
    phase: Mutex<&'static str>,
    repositories: AtomicU64,
    manifests: AtomicU64,
    manifests_read: AtomicU64,
    blobs: AtomicU64,
    deleted: AtomicU64,
    bytes: AtomicU64,
}

impl Progress {
    pub fn set_phase(&self, phase: &'static str) {
        if let Ok(mut current) = self.phase.lock() {
            *current = phase;
        }
        tracing::debug!(phase, "garbage collection phase");
    }

    pub fn repository_scanned(&self, revisions: u64) {
        self.repositories.fetch_add(1, Ordering::Relaxed);
        self.manifests.fetch_add(revisions, Ordering::Relaxed);
    }

    pub fn manifest_read(&self) {
        self.manifests_read.fetch_add(1, Ordering::Relaxed);
    }

    pub fn blobs_scanned(&self, total: u64) {
        self.blobs.store(total, Ordering::Relaxed);
    }

    pub fn deleted(&self, bytes: u64) {
        self.deleted.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// One status line.
    pub fn line(&self) -> String {
        let phase = self.phase.lock().map(|p| *p).unwrap_or("working");
        format!(
            "{phase}: {} repositories, {} manifests ({} read), {} blobs, {} deleted ({} freed)",
            self.repositories.load(Ordering::Relaxed),
            self.manifests.load(Ordering::Relaxed),
            self.manifests_read.load(Ordering::Relaxed),
            self.blobs.load(Ordering::Relaxed),
            self.deleted.load(Ordering::Relaxed),
            human_bytes(self.bytes.load(Ordering::Relaxed)),
        )
    }

    /// Redraws the status line on stderr every 250 ms while stderr is a
    /// terminal; returns the task so the caller can stop it.
    pub fn show_on_terminal(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        if !std::io::stderr().is_terminal() {
            return None;
        }
        let progress = Arc::clone(self);
        Some(tokio::spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_millis(250));
            loop {
                ticker.tick().await;
                let mut stderr = std::io::stderr().lock();
                let _ = write!(stderr, "\r\x1b[2K{}", progress.line());
                let _ = stderr.flush();
            }
        }))
    }
}

/// `1.5 GiB`-style sizes for humans.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_show_up_in_the_status_line() {
        let progress = Progress::default();
        progress.set_phase("sweeping");
        progress.repository_scanned(3);
        progress.deleted(3 * 1024 * 1024);
        assert_eq!(
            progress.line(),
            "sweeping: 1 repositories, 3 manifests (0 read), 0 blobs, 1 deleted (3.0 MiB freed)"
        );
        assert_eq!(human_bytes(512), "512 B");
    }
}
