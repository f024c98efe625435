//! Planning: scan, mark, and decide exactly what a sweep deletes, with sizes.
//! Nothing is modified here, which is all `--dry-run` needs.

use std::collections::{HashMap, HashSet};
use std::time::SystemTime;

use futures_util::{StreamExt, TryStreamExt, stream};

use crate::content::Content;
use crate::oci::{Digest, RepositoryName, Tag};
use crate::storage::{StorageError, layout};

use super::mark::mark;
use super::progress::Progress;
use super::scan::{self, ManifestRead, ManifestRefs, RepoScan};
use super::{GcError, GcOptions};

/// An untagged manifest to remove from one repository.
#[derive(Debug, Clone)]
pub struct ManifestDeletion {
    pub repository: RepositoryName,
    pub digest: Digest,
    /// Its `_referrers` entry lives under the subject.
    pub subject: Option<Digest>,
    /// Tags whose history (`index/`) names it.
    pub tag_history: Vec<Tag>,
}

/// An unreachable blob and the repositories linking it.
#[derive(Debug, Clone)]
pub struct BlobDeletion {
    pub digest: Digest,
    pub size: u64,
    pub linked_from: Vec<RepositoryName>,
}

/// Everything a sweep will do.
#[derive(Debug, Default)]
pub struct Plan {
    pub repositories: u64,
    /// Repositories not swept because one of their manifests is unreadable.
    pub repositories_held: u64,
    pub manifests_marked: u64,
    pub blobs_total: u64,
    pub blobs_marked: u64,
    pub kept_young: u64,
    pub manifest_deletions: Vec<ManifestDeletion>,
    pub blob_deletions: Vec<BlobDeletion>,
}

/// Scans, marks and sizes the sweep.
pub async fn build(
    content: &Content,
    options: &GcOptions,
    progress: &Progress,
) -> Result<Plan, GcError> {
    let concurrency = options.concurrency.max(1);
    progress.set_phase("scanning repositories");
    let mut repos = scan::scan_repositories(content, concurrency, progress).await?;
    progress.set_phase("reading manifests");
    let scanned = scan::read_manifests(content, &repos, concurrency, progress).await?;
    let mut manifests = scanned.refs;
    let held = hold_unreadable(&mut repos, &scanned.unreadable);
    read_foreign_children(content, &mut manifests, concurrency).await?;

    progress.set_phase("marking");
    let cutoff = (!options.min_age.is_zero())
        .then(|| SystemTime::now().checked_sub(options.min_age))
        .flatten();
    let mut marks = mark(&repos, &manifests, options.delete_untagged, &HashMap::new());
    let mut kept_young = 0;
    if options.delete_untagged
        && let Some(cutoff) = cutoff
    {
        // Untagged but recently pushed manifests (a push in progress, a
        // digest-only push) are roots too.
        let mut young: HashMap<RepositoryName, HashSet<Digest>> = HashMap::new();
        for repo in &repos {
            for digest in marks.unkept(repo) {
                if is_young(content, &layout::revision_link(&repo.name, digest), cutoff).await? {
                    young
                        .entry(repo.name.clone())
                        .or_default()
                        .insert(digest.clone());
                    kept_young += 1;
                }
            }
        }
        if !young.is_empty() {
            marks = mark(&repos, &manifests, true, &young);
        }
    }

    let mut plan = Plan {
        repositories: repos.len() as u64,
        repositories_held: held,
        manifests_marked: marks.kept.values().map(|k| k.len() as u64).sum(),
        ..Plan::default()
    };
    if options.delete_untagged {
        for repo in &repos {
            let mut unkept: Vec<&Digest> = marks.unkept(repo).collect();
            unkept.sort();
            for digest in unkept {
                plan.manifest_deletions.push(ManifestDeletion {
                    repository: repo.name.clone(),
                    digest: digest.clone(),
                    subject: manifests.get(digest).and_then(|m| m.subject.clone()),
                    tag_history: repo
                        .tag_history
                        .iter()
                        .filter(|(_, d)| d == digest)
                        .map(|(t, _)| t.clone())
                        .collect(),
                });
            }
        }
    }

    progress.set_phase("listing blobs");
    let blobs = scan::scan_blobs(content, progress).await?;
    plan.blobs_total = blobs.len() as u64;
    let mut links: HashMap<&Digest, Vec<&RepositoryName>> = HashMap::new();
    for repo in &repos {
        for digest in &repo.layer_links {
            links.entry(digest).or_default().push(&repo.name);
        }
    }
    let candidates: Vec<(Digest, Vec<RepositoryName>)> = blobs
        .into_iter()
        .filter(|digest| !marks.blobs.contains(digest))
        .map(|digest| {
            let linked = links
                .get(&digest)
                .map(|names| names.iter().map(|n| (*n).clone()).collect())
                .unwrap_or_default();
            (digest, linked)
        })
        .collect();
    plan.blobs_marked = plan.blobs_total - candidates.len() as u64;
    progress.set_phase("sizing unreferenced blobs");
    let sized: Vec<Option<BlobDeletion>> = stream::iter(candidates)
        .map(|(digest, linked_from)| async move {
            let data = layout::blob_data(&digest);
            let meta = match content.storage().stat(&data).await {
                Ok(meta) => Some(meta),
                Err(StorageError::NotFound(_)) => None,
                Err(e) => return Err(GcError::from(e)),
            };
            if let Some(cutoff) = cutoff {
                if meta.as_ref().is_some_and(|m| m.modified >= cutoff) {
                    return Ok(None);
                }
                for repo in &linked_from {
                    if is_young(content, &layout::layer_link(repo, &digest), cutoff).await? {
                        return Ok(None);
                    }
                }
            }
            Ok(Some(BlobDeletion {
                size: meta.map_or(0, |m| m.size),
                digest,
                linked_from,
            }))
        })
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    let unreferenced = sized.len();
    plan.blob_deletions = sized.into_iter().flatten().collect();
    plan.blob_deletions.sort_by(|a, b| a.digest.cmp(&b.digest));
    kept_young += (unreferenced - plan.blob_deletions.len()) as u64;
    plan.kept_young = kept_young;
    Ok(plan)
}

/// Marks the repositories holding an unreadable manifest as held (kept whole)
/// and warns about each; returns how many there are.
fn hold_unreadable(repos: &mut [RepoScan], unreadable: &HashSet<Digest>) -> u64 {
    let mut held = 0;
    for repo in repos.iter_mut() {
        let found: Vec<&Digest> = repo
            .revisions
            .iter()
            .chain(repo.tags.iter().map(|(_, d)| d))
            .filter(|d| unreadable.contains(*d))
            .collect();
        if let Some(first) = found.first() {
            tracing::warn!(
                repository = %repo.name,
                manifest = %first,
                unreadable = found.len(),
                "a manifest in this repository is unreadable (not JSON or past the manifest \
                 limits), so what it references is unknown: the repository is not swept"
            );
            repo.held = true;
            held += 1;
        }
    }
    held
}

/// Index children that are not revisions anywhere (an index pushed with
/// sparse validation, or children only another repository links) are read
/// from the blob store so their own references are marked too.
async fn read_foreign_children(
    content: &Content,
    manifests: &mut HashMap<Digest, ManifestRefs>,
    concurrency: usize,
) -> Result<(), GcError> {
    let mut attempted: HashSet<Digest> = HashSet::new();
    loop {
        let missing: Vec<Digest> = manifests
            .values()
            .flat_map(|m| m.children.iter())
            .filter(|d| !manifests.contains_key(*d) && !attempted.contains(*d))
            .cloned()
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        attempted.extend(missing.iter().cloned());
        let found: Vec<Option<(Digest, ManifestRefs)>> = stream::iter(missing)
            .map(|digest| async move {
                // A child that is missing or not a manifest (sparse
                // validation lets an index name anything) has nothing to mark.
                Ok::<_, GcError>(match scan::read_child_manifest(content, &digest).await? {
                    ManifestRead::Refs(refs) => Some((digest, refs)),
                    ManifestRead::Missing | ManifestRead::Unreadable(_) => None,
                })
            })
            .buffer_unordered(concurrency)
            .try_collect()
            .await?;
        manifests.extend(found.into_iter().flatten());
    }
}

/// Whether an object was written at or after `cutoff` (a missing one is not).
async fn is_young(content: &Content, path: &str, cutoff: SystemTime) -> Result<bool, GcError> {
    match content.storage().stat(path).await {
        Ok(meta) => Ok(meta.modified >= cutoff),
        Err(StorageError::NotFound(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}
