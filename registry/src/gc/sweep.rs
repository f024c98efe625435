//! Sweeping a plan: untagged manifests first, then the links to unreachable
//! blobs, then the blobs, then stale uploads. Every step deletes only what
//! nothing reachable uses and is durable before the next begins, so stopping
//! anywhere (signal, SIGKILL) leaves a registry that serves everything it
//! served before. Deletes go to storage in sorted batches, so a filesystem
//! syncs each directory once per batch rather than once per file.

use futures_util::{StreamExt, TryStreamExt, stream};
use tokio_util::sync::CancellationToken;

use crate::content::Content;
use crate::storage::layout;

use super::plan::{ManifestDeletion, Plan};
use super::progress::Progress;
use super::{GcError, GcEvent, GcOptions, GcSummary};

/// Paths per storage batch.
const BATCH: usize = 128;

/// Carries out `plan` (or, with `dry_run`, only reports it).
pub async fn execute(
    content: &Content,
    plan: &Plan,
    options: &GcOptions,
    progress: &Progress,
    stop: &CancellationToken,
    report: &(dyn Fn(&GcEvent) + Send + Sync),
) -> Result<GcSummary, GcError> {
    let parallel = options.concurrency.clamp(1, 8);
    let dry_run = options.dry_run;
    let batches = Batches {
        content,
        stop,
        parallel,
        dry_run,
    };

    progress.set_phase(if dry_run {
        "listing what would be deleted"
    } else {
        "deleting untagged manifests"
    });
    let manifest_paths: Vec<String> = plan
        .manifest_deletions
        .iter()
        .flat_map(manifest_paths)
        .collect();
    batches.delete(manifest_paths).await?;
    for deletion in &plan.manifest_deletions {
        progress.deleted(0);
        report(&GcEvent::Manifest {
            repository: deletion.repository.clone(),
            digest: deletion.digest.clone(),
        });
    }

    if !dry_run {
        progress.set_phase("unlinking unreachable blobs");
    }
    let mut links: Vec<String> = plan
        .blob_deletions
        .iter()
        .flat_map(|b| {
            b.linked_from
                .iter()
                .map(|repo| layout::layer_link_dir(repo, &b.digest))
        })
        .collect();
    links.sort();
    let layer_links_deleted = if dry_run {
        links.len() as u64
    } else {
        batches.delete(links).await?
    };

    if !dry_run {
        progress.set_phase("deleting blobs");
    }
    // Sorted by digest, so a batch stays within a few `blobs/sha256/<xx>` directories.
    let blobs: Vec<String> = plan
        .blob_deletions
        .iter()
        .map(|b| layout::blob_dir(&b.digest))
        .collect();
    let round = BATCH * parallel;
    for (chunk, paths) in plan.blob_deletions.chunks(round).zip(blobs.chunks(round)) {
        batches.delete(paths.to_vec()).await?;
        for deletion in chunk {
            progress.deleted(deletion.size);
            report(&GcEvent::Blob {
                digest: deletion.digest.clone(),
                size: deletion.size,
            });
        }
    }

    let mut uploads_purged = 0;
    if let Some(age) = options.purge_uploads_older_than {
        check(stop)?;
        progress.set_phase("purging stale uploads");
        uploads_purged = crate::purge::purge_uploads(content, age, dry_run)
            .await?
            .purged as u64;
    }
    progress.set_phase("done");
    Ok(GcSummary {
        repositories: plan.repositories,
        repositories_held: plan.repositories_held,
        manifests_marked: plan.manifests_marked,
        manifests_deleted: plan.manifest_deletions.len() as u64,
        blobs_total: plan.blobs_total,
        blobs_marked: plan.blobs_marked,
        blobs_deleted: plan.blob_deletions.len() as u64,
        bytes_freed: plan.blob_deletions.iter().map(|b| b.size).sum(),
        layer_links_deleted,
        uploads_purged,
        kept_young: plan.kept_young,
        ..GcSummary::default()
    })
}

/// Deletes path lists in batches, a few batches at a time, stopping between
/// batches when asked to.
struct Batches<'a> {
    content: &'a Content,
    stop: &'a CancellationToken,
    parallel: usize,
    dry_run: bool,
}

impl Batches<'_> {
    async fn delete(&self, paths: Vec<String>) -> Result<u64, GcError> {
        if self.dry_run {
            return Ok(0);
        }
        let storage = self.content.storage();
        let counts: Vec<u64> = stream::iter(paths.chunks(BATCH))
            .map(|batch| async move {
                check(self.stop)?;
                Ok::<_, GcError>(storage.delete_batch(batch).await?)
            })
            .buffer_unordered(self.parallel)
            .try_collect()
            .await?;
        Ok(counts.into_iter().sum())
    }
}

fn check(stop: &CancellationToken) -> Result<(), GcError> {
    if stop.is_cancelled() {
        Err(GcError::Interrupted)
    } else {
        Ok(())
    }
}

/// The revision link (the manifest disappears), its tag history entries and
/// its referrers entry.
fn manifest_paths(deletion: &ManifestDeletion) -> Vec<String> {
    let repo = &deletion.repository;
    let digest = &deletion.digest;
    let mut paths = vec![layout::revision_dir(repo, digest)];
    for tag in &deletion.tag_history {
        paths.push(layout::tag_index_entry_dir(repo, tag, digest));
    }
    if let Some(subject) = &deletion.subject {
        paths.push(layout::referrer_dir(repo, subject, digest));
    }
    paths
}
