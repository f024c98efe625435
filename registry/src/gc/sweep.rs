//! Sweeping a plan: untagged manifests first, then the links to unreachable
//! blobs, then the blobs, then stale uploads. Every step deletes only what
//! nothing reachable uses, so stopping anywhere (signal, SIGKILL) leaves a
//! registry that serves everything it served before.

use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::{StreamExt, TryStreamExt, stream};
use tokio_util::sync::CancellationToken;

use crate::content::Content;
use crate::storage::{StorageError, layout};

use super::plan::{BlobDeletion, ManifestDeletion, Plan};
use super::progress::Progress;
use super::{GcError, GcEvent, GcOptions, GcSummary};

/// Carries out `plan` (or, with `dry_run`, only reports it).
pub async fn execute(
    content: &Content,
    plan: &Plan,
    options: &GcOptions,
    progress: &Progress,
    stop: &CancellationToken,
    report: &(dyn Fn(&GcEvent) + Send + Sync),
) -> Result<GcSummary, GcError> {
    let concurrency = options.concurrency.max(1);
    let dry_run = options.dry_run;
    let layer_links = AtomicU64::new(0);
    progress.set_phase(if dry_run {
        "listing what would be deleted"
    } else {
        "deleting untagged manifests"
    });
    stream::iter(&plan.manifest_deletions)
        .map(|deletion| async move {
            check(stop)?;
            if !dry_run {
                delete_manifest(content, deletion).await?;
            }
            progress.deleted(0);
            report(&GcEvent::Manifest {
                repository: deletion.repository.clone(),
                digest: deletion.digest.clone(),
            });
            Ok::<_, GcError>(())
        })
        .buffer_unordered(concurrency)
        .try_collect::<()>()
        .await?;

    if !dry_run {
        progress.set_phase("deleting blobs");
    }
    let layer_links = &layer_links;
    stream::iter(&plan.blob_deletions)
        .map(|deletion| async move {
            check(stop)?;
            if !dry_run {
                let unlinked = delete_blob(content, deletion).await?;
                layer_links.fetch_add(unlinked, Ordering::Relaxed);
            } else {
                layer_links.fetch_add(deletion.linked_from.len() as u64, Ordering::Relaxed);
            }
            progress.deleted(deletion.size);
            report(&GcEvent::Blob {
                digest: deletion.digest.clone(),
                size: deletion.size,
            });
            Ok::<_, GcError>(())
        })
        .buffer_unordered(concurrency)
        .try_collect::<()>()
        .await?;

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
        manifests_marked: plan.manifests_marked,
        manifests_deleted: plan.manifest_deletions.len() as u64,
        blobs_total: plan.blobs_total,
        blobs_marked: plan.blobs_marked,
        blobs_deleted: plan.blob_deletions.len() as u64,
        bytes_freed: plan.blob_deletions.iter().map(|b| b.size).sum(),
        layer_links_deleted: layer_links.load(Ordering::Relaxed),
        uploads_purged,
        kept_young: plan.kept_young,
        ..GcSummary::default()
    })
}

fn check(stop: &CancellationToken) -> Result<(), GcError> {
    if stop.is_cancelled() {
        Err(GcError::Interrupted)
    } else {
        Ok(())
    }
}

/// Removes the revision link (the manifest disappears), then its tag history
/// and referrers entries.
async fn delete_manifest(content: &Content, deletion: &ManifestDeletion) -> Result<(), GcError> {
    let repo = &deletion.repository;
    let digest = &deletion.digest;
    remove(content, &layout::revision_dir(repo, digest)).await?;
    for tag in &deletion.tag_history {
        let history = format!(
            "{}/index/{}/{}",
            layout::tag_dir(repo, tag),
            digest.algorithm(),
            digest.hex()
        );
        remove(content, &history).await?;
    }
    if let Some(subject) = &deletion.subject {
        remove(content, &layout::referrer_dir(repo, subject, digest)).await?;
    }
    Ok(())
}

/// Unlinks a blob from every repository, then deletes its data. Returns how
/// many links were removed.
async fn delete_blob(content: &Content, deletion: &BlobDeletion) -> Result<u64, GcError> {
    let mut unlinked = 0;
    for repo in &deletion.linked_from {
        if remove(content, &layout::layer_link_dir(repo, &deletion.digest)).await? {
            unlinked += 1;
        }
    }
    remove(content, &layout::blob_dir(&deletion.digest)).await?;
    Ok(unlinked)
}

async fn remove(content: &Content, path: &str) -> Result<bool, GcError> {
    match content.storage().delete(path).await {
        Ok(()) => Ok(true),
        Err(StorageError::NotFound(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}
