//! The read-only inventory GC works from: per repository its manifest
//! revisions, tags, tag history and blob links; the parsed references of every
//! manifest; and every blob in the blob store.

use std::collections::{HashMap, HashSet};

use futures_util::{StreamExt, TryStreamExt, stream};

use crate::content::Content;
use crate::oci::manifest::{self, MAX_MANIFEST_BYTES, ManifestError};
use crate::oci::{Algorithm, Digest, RepositoryName, Tag};
use crate::storage::{StorageError, layout};

use super::GcError;
use super::progress::Progress;

/// What one repository holds.
#[derive(Debug, Clone)]
pub struct RepoScan {
    pub name: RepositoryName,
    /// `_manifests/revisions`: manifests visible in the repository.
    pub revisions: HashSet<Digest>,
    /// `_manifests/tags/<tag>/current`.
    pub tags: Vec<(Tag, Digest)>,
    /// `_manifests/tags/<tag>/index`: every digest each tag ever pointed at.
    pub tag_history: Vec<(Tag, Digest)>,
    /// `_layers`: blobs linked into the repository.
    pub layer_links: Vec<Digest>,
    /// One of its manifests is unreadable (see [`ManifestScan::unreadable`]):
    /// the repository keeps every revision and every blob it links.
    pub held: bool,
}

/// The references of one stored manifest.
#[derive(Debug, Clone, Default)]
pub struct ManifestRefs {
    /// Every digest the manifest names (config, layers, index children,
    /// anything else), except its subject: a referrer does not keep its
    /// subject alive, the subject keeps its referrers.
    pub references: Vec<Digest>,
    /// Index / manifest list children.
    pub children: Vec<Digest>,
    pub subject: Option<Digest>,
}

const ALGORITHMS: [Algorithm; 2] = [Algorithm::Sha256, Algorithm::Sha512];

/// Scans every repository, `concurrency` at a time.
pub async fn scan_repositories(
    content: &Content,
    concurrency: usize,
    progress: &Progress,
) -> Result<Vec<RepoScan>, GcError> {
    let names = content.list_repositories().await?;
    stream::iter(names)
        .filter_map(|name| async move { name.parse::<RepositoryName>().ok() })
        .map(|name| async move {
            let scan = scan_repository(content, name).await?;
            progress.repository_scanned(scan.revisions.len() as u64);
            Ok::<_, GcError>(scan)
        })
        .buffer_unordered(concurrency)
        .try_collect()
        .await
}

async fn scan_repository(content: &Content, name: RepositoryName) -> Result<RepoScan, GcError> {
    let mut revisions = HashSet::new();
    let mut layer_links = Vec::new();
    for algorithm in ALGORITHMS {
        // A revision directory names its digest; one left without its link by
        // a crashed writer is counted too, which only ever keeps more.
        revisions.extend(
            content
                .list_or_empty(&layout::revisions_dir(&name, algorithm.as_str()))
                .await?
                .into_iter()
                .filter_map(|hex| digest(algorithm, &hex)),
        );
        layer_links.extend(
            content
                .list_or_empty(&layout::layers_dir(&name, algorithm.as_str()))
                .await?
                .into_iter()
                .filter_map(|hex| digest(algorithm, &hex)),
        );
    }
    let mut tags = Vec::new();
    let mut tag_history = Vec::new();
    for tag in content.list_or_empty(&layout::tags_dir(&name)).await? {
        let Ok(tag) = tag.parse::<Tag>() else {
            continue;
        };
        if let Some(target) = content
            .read_link(&layout::tag_current_link(&name, &tag))
            .await?
        {
            tags.push((tag.clone(), target));
        }
        for algorithm in ALGORITHMS {
            let dir = layout::tag_index_dir(&name, &tag, algorithm.as_str());
            for hex in content.list_or_empty(&dir).await? {
                if let Some(digest) = digest(algorithm, &hex) {
                    tag_history.push((tag.clone(), digest));
                }
            }
        }
    }
    Ok(RepoScan {
        name,
        revisions,
        tags,
        tag_history,
        layer_links,
        held: false,
    })
}

/// The manifests GC read, and those it could not.
#[derive(Debug, Default)]
pub struct ManifestScan {
    pub refs: HashMap<Digest, ManifestRefs>,
    /// Revisions or tag targets that are not a manifest GC can read (not
    /// JSON, past the manifest limits: written by another tool). What they
    /// reference is unknown, so the repositories holding them are not swept.
    pub unreadable: HashSet<Digest>,
}

/// What reading one stored manifest found.
pub enum ManifestRead {
    Refs(ManifestRefs),
    Missing,
    Unreadable(String),
}

/// Reads and parses every distinct manifest, `concurrency` at a time. A
/// revision whose blob is gone is skipped (nothing left to protect).
pub async fn read_manifests(
    content: &Content,
    repos: &[RepoScan],
    concurrency: usize,
    progress: &Progress,
) -> Result<ManifestScan, GcError> {
    let mut digests: HashSet<&Digest> = HashSet::new();
    for repo in repos {
        digests.extend(repo.revisions.iter());
        digests.extend(repo.tags.iter().map(|(_, d)| d));
    }
    let read: Vec<(Digest, ManifestRead)> = stream::iter(digests)
        .map(|digest| async move {
            let read = read_manifest(content, digest).await?;
            progress.manifest_read();
            Ok::<_, GcError>((digest.clone(), read))
        })
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    let mut scan = ManifestScan::default();
    for (digest, read) in read {
        match read {
            ManifestRead::Refs(refs) => {
                scan.refs.insert(digest, refs);
            }
            ManifestRead::Missing => {
                tracing::warn!(%digest, "manifest revision without its blob; skipping");
            }
            ManifestRead::Unreadable(reason) => {
                tracing::warn!(%digest, %reason, "manifest is unreadable");
                scan.unreadable.insert(digest);
            }
        }
    }
    Ok(scan)
}

/// Reads and parses one manifest blob under the shared manifest limits.
async fn read_manifest(content: &Content, digest: &Digest) -> Result<ManifestRead, GcError> {
    let bytes = match content.storage().get(&layout::blob_data(digest)).await {
        Ok(bytes) => bytes,
        Err(StorageError::NotFound(_)) => return Ok(ManifestRead::Missing),
        Err(e) => return Err(e.into()),
    };
    Ok(match parse_references(&bytes) {
        Ok(refs) => ManifestRead::Refs(refs),
        Err(e) => ManifestRead::Unreadable(e.to_string()),
    })
}

/// [`read_manifest`] for an index child, which may name any blob (sparse
/// validation lets an index point at a multi-GB layer): its size is checked
/// first, and anything past the manifest limit is not read at all.
/// Revisions were pushed as manifests, so they skip this extra request.
pub async fn read_child_manifest(
    content: &Content,
    digest: &Digest,
) -> Result<ManifestRead, GcError> {
    match content.storage().stat(&layout::blob_data(digest)).await {
        Ok(meta) if meta.size > MAX_MANIFEST_BYTES as u64 => Ok(ManifestRead::Unreadable(
            ManifestError::TooLarge.to_string(),
        )),
        Ok(_) => read_manifest(content, digest).await,
        Err(StorageError::NotFound(_)) => Ok(ManifestRead::Missing),
        Err(e) => Err(e.into()),
    }
}

/// Every blob in the blob store.
pub async fn scan_blobs(content: &Content, progress: &Progress) -> Result<Vec<Digest>, GcError> {
    let mut blobs = Vec::new();
    for algorithm in ALGORITHMS {
        let algorithm_name = algorithm.as_str();
        let prefixes = content
            .list_or_empty(&layout::blobs_dir(algorithm_name))
            .await?;
        let listed: Vec<Vec<String>> = stream::iter(prefixes)
            .map(|prefix| {
                let dir = layout::blob_prefix_dir(algorithm_name, &prefix);
                async move { content.list_or_empty(&dir).await }
            })
            .buffer_unordered(16)
            .try_collect()
            .await?;
        for hex in listed.into_iter().flatten() {
            if let Some(digest) = digest(algorithm, &hex) {
                blobs.push(digest);
            }
        }
        progress.blobs_scanned(blobs.len() as u64);
    }
    Ok(blobs)
}

/// The digests a manifest names, found by walking its JSON: any string that
/// is a digest counts (so unknown or future fields are honoured), except
/// under the top-level `subject`.
pub fn parse_references(bytes: &[u8]) -> Result<ManifestRefs, ManifestError> {
    let mut value = manifest::parse_json(bytes)?;
    let object = value
        .as_object_mut()
        .ok_or_else(|| ManifestError::NotJson("not a JSON object".to_owned()))?;
    let subject = object
        .remove("subject")
        .and_then(|s| s.get("digest")?.as_str()?.parse::<Digest>().ok());
    let children = object
        .get("manifests")
        .and_then(|m| m.as_array())
        .map(|items| {
            items
                .iter()
                .filter_map(|d| d.get("digest")?.as_str()?.parse::<Digest>().ok())
                .collect()
        })
        .unwrap_or_default();
    let mut references = Vec::new();
    collect_digests(&value, &mut references);
    Ok(ManifestRefs {
        references,
        children,
        subject,
    })
}

fn collect_digests(value: &serde_json::Value, into: &mut Vec<Digest>) {
    match value {
        serde_json::Value::String(text) => {
            if text.contains(':')
                && let Ok(digest) = text.parse::<Digest>()
            {
                into.push(digest);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_digests(v, into)),
        serde_json::Value::Object(map) => map.values().for_each(|v| collect_digests(v, into)),
        _ => {}
    }
}

fn digest(algorithm: Algorithm, hex: &str) -> Option<Digest> {
    format!("{algorithm}:{hex}").parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_exclude_the_subject_and_include_unknown_fields() {
        let config = format!("sha256:{}", "1".repeat(64));
        let layer = format!("sha256:{}", "2".repeat(64));
        let subject = format!("sha256:{}", "3".repeat(64));
        let extra = format!("sha256:{}", "4".repeat(64));
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "config": {"mediaType": "x", "digest": config, "size": 1},
            "layers": [{"mediaType": "y", "digest": layer, "size": 1}],
            "subject": {"mediaType": "z", "digest": subject, "size": 1},
            "annotations": {"org.example.sbom": extra, "text": "not: a digest"},
        });
        let refs = parse_references(manifest.to_string().as_bytes()).unwrap();
        let mut found: Vec<String> = refs.references.iter().map(|d| d.to_string()).collect();
        found.sort();
        assert_eq!(found, vec![config, layer, extra]);
        assert_eq!(refs.subject.unwrap().to_string(), subject);
        assert!(refs.children.is_empty());
    }

    #[test]
    fn schema1_blob_sums_and_index_children_are_references() {
        let child = format!("sha256:{}", "5".repeat(64));
        let index = serde_json::json!({"schemaVersion": 2, "manifests": [{"digest": child}]});
        let refs = parse_references(index.to_string().as_bytes()).unwrap();
        assert_eq!(refs.children.len(), 1);
        assert_eq!(refs.references, refs.children);
        let sum = format!("sha256:{}", "6".repeat(64));
        let schema1 = serde_json::json!({"schemaVersion": 1, "fsLayers": [{"blobSum": sum}]});
        let refs = parse_references(schema1.to_string().as_bytes()).unwrap();
        assert_eq!(refs.references[0].to_string(), sum);
        assert!(parse_references(b"not json").is_err());
    }
}
