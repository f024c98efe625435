//! Mark-and-sweep garbage collection (`registry garbage-collect`), compatible
//! with distribution's command but safe to run against a live registry:
//!
//! * read-only mode (default) takes the maintenance lock, waits a grace
//!   period for commits already past their gate, then marks and sweeps while
//!   every registry on the storage refuses writes; the lock is released on
//!   success, error or signal, and expires if the GC is killed;
//! * online mode takes no lock and only deletes content older than a safety
//!   delay (see the README for its exact guarantees).
//!
//! Marking keeps every manifest revision (or, with `--delete-untagged`, what
//! tags reach) plus index children, referrers of kept manifests, and every
//! blob they name. Sweeping deletes untagged manifests first, then blob links
//! and blobs, so an interrupted sweep never removes anything still reachable.

mod mark;
mod plan;
mod progress;
mod scan;
mod sweep;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::content::Content;
use crate::maintenance::{LockError, MaintenanceLock};
use crate::oci::{Digest, RepositoryName};
use crate::storage::StorageError;

pub use mark::{Marks, mark};
pub use plan::Plan;
pub use progress::{Progress, human_bytes};
pub use scan::{ManifestRefs, RepoScan, parse_references, scan_blobs};

/// Read-only window or online.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GcMode {
    ReadOnly,
    Online,
}

impl GcMode {
    /// The name used by `--mode` and in the summary.
    pub fn as_str(self) -> &'static str {
        match self {
            GcMode::ReadOnly => "readonly",
            GcMode::Online => "online",
        }
    }
}

/// How a run behaves.
#[derive(Debug, Clone)]
pub struct GcOptions {
    pub mode: GcMode,
    pub dry_run: bool,
    pub delete_untagged: bool,
    /// Read-only mode: wait this long after taking the lock before marking.
    pub grace_period: Duration,
    /// Only delete blobs, links and manifests written longer ago than this.
    pub min_age: Duration,
    /// Lifetime of the maintenance lock between refreshes.
    pub lock_ttl: Duration,
    /// Storage operations in flight at once.
    pub concurrency: usize,
    /// Also remove upload sessions older than this (`uploadpurging.age`).
    pub purge_uploads_older_than: Option<Duration>,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions {
            mode: GcMode::ReadOnly,
            dry_run: false,
            delete_untagged: false,
            grace_period: Duration::from_secs(10),
            min_age: Duration::ZERO,
            lock_ttl: Duration::from_secs(60),
            concurrency: 32,
            purge_uploads_older_than: None,
        }
    }
}

/// The machine-readable result (the JSON line printed last and written to
/// `--summary-file`). With `dry_run`, "deleted" counts mean "would delete".
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct GcSummary {
    pub mode: String,
    pub dry_run: bool,
    pub delete_untagged: bool,
    pub repositories: u64,
    /// Repositories left unswept because one of their manifests is
    /// unreadable (each is named in a warning).
    pub repositories_held: u64,
    pub manifests_marked: u64,
    pub manifests_deleted: u64,
    pub blobs_total: u64,
    pub blobs_marked: u64,
    pub blobs_deleted: u64,
    pub bytes_freed: u64,
    pub layer_links_deleted: u64,
    pub uploads_purged: u64,
    /// Unreferenced content left alone because it is younger than `min_age`.
    pub kept_young: u64,
    pub duration_seconds: f64,
}

/// One deletion (or, in a dry run, one candidate), for the per-item output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GcEvent {
    Manifest {
        repository: RepositoryName,
        digest: Digest,
    },
    Blob {
        digest: Digest,
        size: u64,
    },
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("interrupted; the maintenance lock was released and nothing reachable was deleted")]
    Interrupted,
    #[error(transparent)]
    Content(#[from] crate::error::Error),
}

/// Runs one garbage collection. `cancel` stops it between deletions (signals).
pub async fn collect_garbage(
    content: &Content,
    options: &GcOptions,
    progress: &Arc<Progress>,
    cancel: &CancellationToken,
    report: &(dyn Fn(&GcEvent) + Send + Sync),
) -> Result<GcSummary, GcError> {
    // GC holds the lock its deletions would otherwise be refused by.
    let content = &content.for_maintenance();
    let started = Instant::now();
    let storage = Arc::clone(content.storage());
    let windowed = options.mode == GcMode::ReadOnly && !options.dry_run;
    let lock = if windowed {
        progress.set_phase("taking the maintenance lock");
        Some(
            MaintenanceLock::acquire(storage.as_ref(), "garbage collection", options.lock_ttl)
                .await?,
        )
    } else {
        None
    };
    // The heartbeat keeps the lock alive and stops the run if it is lost.
    let stop = cancel.child_token();
    let heartbeat = lock.clone().map(|mut lock| {
        let storage = Arc::clone(&storage);
        let stop = stop.clone();
        tokio::spawn(async move {
            let every = (lock.ttl() / 3).max(Duration::from_millis(200));
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = lock.refresh(storage.as_ref()).await {
                    tracing::error!(error = %e, "lost the maintenance lock; stopping");
                    stop.cancel();
                    return;
                }
            }
        })
    });

    let result = async {
        if windowed {
            progress.set_phase("grace period (letting in-flight pushes land)");
            tokio::select! {
                () = tokio::time::sleep(options.grace_period) => {}
                () = stop.cancelled() => return Err(GcError::Interrupted),
            }
        }
        let plan = plan::build(content, options, progress).await?;
        if stop.is_cancelled() {
            return Err(GcError::Interrupted);
        }
        sweep::execute(content, &plan, options, progress, &stop, report).await
    }
    .await;

    if let Some(heartbeat) = heartbeat {
        heartbeat.abort();
    }
    if let Some(lock) = &lock
        && let Err(e) = lock.release(storage.as_ref()).await
    {
        tracing::error!(error = %e, "releasing the maintenance lock failed; it expires on its own");
    }
    let mut summary = result?;
    summary.mode = options.mode.as_str().to_owned();
    summary.dry_run = options.dry_run;
    summary.delete_untagged = options.delete_untagged;
    summary.duration_seconds = (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
    Ok(summary)
}
