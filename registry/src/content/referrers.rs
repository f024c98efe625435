//! Referrers (end-12): manifests whose `subject` names a digest, from the
//! `_referrers` index written on push plus the fallback tag `<alg>-<hex>`
//! that clients maintain on registries without the API.
//!
//! Each index entry carries the descriptor the listing shows, so a listing
//! reads one small object per referrer (entries written before descriptors
//! existed fall back to reading the manifest). Listings are ordered by digest
//! and paginated, [`REFERRERS_PAGE`] at a time.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::oci::{Descriptor, Digest, Manifest, ManifestKind, Reference, RepositoryName, Tag};
use crate::storage::{StorageError, layout};

use super::{Content, STORAGE_FANOUT};

/// The most descriptors one referrers response holds; a `Link` header leads
/// to the next page.
pub const REFERRERS_PAGE: usize = 1000;

/// One page of a referrers listing.
#[derive(Debug)]
pub struct ReferrersPage {
    pub manifests: Vec<Descriptor>,
    /// The last digest of this page when more follow (the next page's `last`).
    pub next: Option<Digest>,
}

impl Content {
    /// Descriptors of the manifests referring to `subject` whose digest sorts
    /// after `last`, optionally only those of one `artifactType`, at most
    /// `limit` of them, ordered by digest.
    pub async fn referrers(
        &self,
        repo: &RepositoryName,
        subject: &Digest,
        artifact_type: Option<&str>,
        last: Option<&Digest>,
        limit: usize,
    ) -> Result<ReferrersPage> {
        let dir = layout::referrers_dir(repo, subject);
        let mut indexed = BTreeSet::new();
        for algorithm in self.list_or_empty(&dir).await? {
            let entries = layout::referrers_algorithm_dir(repo, subject, &algorithm);
            for hex in self.list_or_empty(&entries).await? {
                if let Ok(digest) = format!("{algorithm}:{hex}").parse::<Digest>() {
                    indexed.insert(digest);
                }
            }
        }
        let fallback = self.fallback_tag_referrers(repo, subject).await?;
        let candidates: BTreeSet<&Digest> = indexed
            .iter()
            .chain(fallback.keys())
            .filter(|d| last.is_none_or(|last| *d > last))
            .collect();
        // Read STORAGE_FANOUT entries at a time, only until the page is full.
        let candidates: Vec<&Digest> = candidates.into_iter().collect();
        let mut manifests: Vec<Descriptor> = Vec::new();
        for chunk in candidates.chunks(STORAGE_FANOUT) {
            let reads = chunk.iter().map(|digest| async {
                if indexed.contains(*digest)
                    && let Some(found) = self.describe_referrer(repo, subject, digest).await?
                {
                    return Ok(Some(found));
                }
                Ok::<_, Error>(fallback.get(*digest).cloned())
            });
            // The chunk is the fan-out bound: one join per chunk.
            let described = futures_util::future::try_join_all(reads).await?;
            for descriptor in described.into_iter().flatten() {
                if artifact_type.is_some_and(|t| descriptor.artifact_type.as_deref() != Some(t)) {
                    continue;
                }
                if manifests.len() == limit {
                    let next = manifests.last().map(|d| d.digest.clone());
                    return Ok(ReferrersPage { manifests, next });
                }
                manifests.push(descriptor);
            }
        }
        Ok(ReferrersPage {
            manifests,
            next: None,
        })
    }

    /// Records `referrer` under its subject's index: the listing descriptor
    /// first, then the link that makes the entry visible.
    pub(super) async fn index_referrer(
        &self,
        repo: &RepositoryName,
        subject: &Digest,
        descriptor: &Descriptor,
    ) -> Result<()> {
        let referrer = &descriptor.digest;
        let json = serde_json::to_vec(descriptor).map_err(|e| Error::Internal(e.to_string()))?;
        self.storage
            .put(
                &layout::referrer_descriptor(repo, subject, referrer),
                Bytes::from(json),
            )
            .await?;
        self.write_link(&layout::referrer_link(repo, subject, referrer), referrer)
            .await
    }

    /// The descriptor a referrers listing shows for one indexed referrer, or
    /// `None` if it has since been deleted.
    async fn describe_referrer(
        &self,
        repo: &RepositoryName,
        subject: &Digest,
        digest: &Digest,
    ) -> Result<Option<Descriptor>> {
        if !self.has_manifest(repo, digest).await? {
            return Ok(None);
        }
        let path = layout::referrer_descriptor(repo, subject, digest);
        match self.storage.get(&path).await {
            Ok(bytes) => match serde_json::from_slice::<Descriptor>(&bytes) {
                Ok(descriptor) if &descriptor.digest == digest => return Ok(Some(descriptor)),
                _ => tracing::warn!(path, "ignoring unreadable referrer descriptor"),
            },
            Err(StorageError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        self.describe_from_manifest(repo, digest).await
    }

    /// The listing descriptor built from the referring manifest itself.
    async fn describe_from_manifest(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<Option<Descriptor>> {
        let stored = match self
            .get_manifest(repo, &Reference::Digest(digest.clone()))
            .await
        {
            Ok(stored) => stored,
            Err(Error::ManifestUnknown(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(Manifest::parse_stored(&stored.bytes)
            .ok()
            .map(|manifest| referrer_descriptor(&manifest, &stored.digest, &stored.bytes)))
    }

    /// Entries of the referrers tag schema index (`sha256-<hex>`), if present.
    async fn fallback_tag_referrers(
        &self,
        repo: &RepositoryName,
        subject: &Digest,
    ) -> Result<BTreeMap<Digest, Descriptor>> {
        // The tag schema truncates the encoded digest to 64 characters.
        let hex = &subject.hex()[..subject.hex().len().min(64)];
        let Ok(tag) = format!("{}-{hex}", subject.algorithm()).parse::<Tag>() else {
            return Ok(BTreeMap::new());
        };
        let reference = Reference::Tag(tag);
        let stored = match self.get_manifest(repo, &reference).await {
            Ok(stored) => stored,
            Err(Error::ManifestUnknown(_)) => return Ok(BTreeMap::new()),
            Err(e) => return Err(e),
        };
        match Manifest::parse_stored(&stored.bytes) {
            Ok(index) if index.kind == ManifestKind::Index => Ok(index
                .manifests
                .into_iter()
                .map(|d| (d.digest.clone(), d))
                .collect()),
            _ => Ok(BTreeMap::new()),
        }
    }
}

/// What a referrers listing shows for a referring manifest stored as `bytes`.
pub(super) fn referrer_descriptor(
    manifest: &Manifest,
    digest: &Digest,
    bytes: &[u8],
) -> Descriptor {
    Descriptor {
        media_type: super::manifests::served_media_type(bytes),
        digest: digest.clone(),
        size: bytes.len() as i64,
        urls: None,
        artifact_type: manifest.effective_artifact_type(),
        annotations: manifest.annotations.clone(),
        platform: None,
    }
}
