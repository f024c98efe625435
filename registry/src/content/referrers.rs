//! Referrers (end-12): manifests whose `subject` names a digest, from the
//! `_referrers` index written on push plus the fallback tag `<alg>-<hex>`
//! that clients maintain on registries without the API.

use std::collections::BTreeMap;

use futures_util::future::try_join_all;

use crate::error::Result;
use crate::oci::{Descriptor, Digest, Manifest, ManifestKind, Reference, RepositoryName, Tag};
use crate::storage::layout;

use super::Content;

impl Content {
    /// Descriptors of every manifest referring to `subject`, optionally only
    /// those of one `artifactType`, ordered by digest.
    pub async fn referrers(
        &self,
        repo: &RepositoryName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Descriptor>> {
        let mut found: BTreeMap<Digest, Descriptor> = BTreeMap::new();
        let dir = layout::referrers_dir(repo, subject);
        let mut digests = Vec::new();
        for algorithm in self.list_or_empty(&dir).await? {
            for hex in self.list_or_empty(&format!("{dir}/{algorithm}")).await? {
                if let Ok(digest) = format!("{algorithm}:{hex}").parse::<Digest>() {
                    digests.push(digest);
                }
            }
        }
        let described =
            try_join_all(digests.iter().map(|d| self.describe_referrer(repo, d))).await?;
        for descriptor in described.into_iter().flatten() {
            found.insert(descriptor.digest.clone(), descriptor);
        }
        for descriptor in self.fallback_tag_referrers(repo, subject).await? {
            found.entry(descriptor.digest.clone()).or_insert(descriptor);
        }
        Ok(found
            .into_values()
            .filter(|d| artifact_type.is_none_or(|t| d.artifact_type.as_deref() == Some(t)))
            .collect())
    }

    /// The descriptor a referrers listing shows for one referring manifest,
    /// or `None` if it has since been deleted.
    async fn describe_referrer(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
    ) -> Result<Option<Descriptor>> {
        let stored = match self
            .get_manifest(repo, &Reference::Digest(digest.clone()))
            .await
        {
            Ok(stored) => stored,
            Err(crate::error::Error::ManifestUnknown(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let Ok(manifest) = Manifest::parse_stored(&stored.bytes) else {
            return Ok(None);
        };
        Ok(Some(Descriptor {
            media_type: stored.media_type,
            digest: stored.digest,
            size: stored.bytes.len() as i64,
            urls: None,
            artifact_type: manifest.effective_artifact_type(),
            annotations: manifest.annotations,
            platform: None,
        }))
    }

    /// Entries of the referrers tag schema index (`sha256-<hex>`), if present.
    async fn fallback_tag_referrers(
        &self,
        repo: &RepositoryName,
        subject: &Digest,
    ) -> Result<Vec<Descriptor>> {
        // The tag schema truncates the encoded digest to 64 characters.
        let hex = &subject.hex()[..subject.hex().len().min(64)];
        let Ok(tag) = format!("{}-{hex}", subject.algorithm()).parse::<Tag>() else {
            return Ok(Vec::new());
        };
        let reference = Reference::Tag(tag);
        let stored = match self.get_manifest(repo, &reference).await {
            Ok(stored) => stored,
            Err(crate::error::Error::ManifestUnknown(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        match Manifest::parse_stored(&stored.bytes) {
            Ok(index) if index.kind == ManifestKind::Index => Ok(index.manifests),
            _ => Ok(Vec::new()),
        }
    }
}
