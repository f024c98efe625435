//! Manifests (end-3, end-7, end-9): stored as blobs, visible in a repository
//! through a revision link, named by tags whose `current` link is written last.

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::oci::foreign::UrlPolicy;
use crate::oci::media_type::{self, ManifestKind};
use crate::oci::{Algorithm, Descriptor, Digest, Manifest, Reference, RepositoryName, Tag};
use crate::storage::{StorageError, layout};

use super::{Content, bounded};

/// A manifest as served to clients.
#[derive(Debug, Clone)]
pub struct StoredManifest {
    pub digest: Digest,
    pub media_type: String,
    pub bytes: Bytes,
}

/// What a successful manifest push reports back.
#[derive(Debug, Clone)]
pub struct PushedManifest {
    pub digest: Digest,
    /// Set when the manifest has a `subject` (answered with `OCI-Subject`).
    pub subject: Option<Digest>,
}

/// Which references must already exist when a manifest is pushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestValidation {
    /// Config and layer blobs must be linked in the repository. Off only for
    /// sparse content (partial mirrors), where missing blobs are allowed.
    pub require_blobs: bool,
    pub index: IndexValidation,
    /// `validation.manifests.urls`: which foreign layer URLs are accepted.
    pub urls: UrlPolicy,
}

impl Default for ManifestValidation {
    fn default() -> Self {
        ManifestValidation {
            require_blobs: true,
            index: IndexValidation::All,
            urls: UrlPolicy::default(),
        }
    }
}

/// How strictly index children are checked on push
/// (distribution's `validation.manifests.indexes.platforms`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum IndexValidation {
    /// Every child manifest must already be in the repository.
    #[default]
    All,
    /// Children are not checked (sparse indexes, partial mirrors).
    None,
    /// Only children for these `(os, architecture)` platforms must exist.
    Platforms(Vec<(String, String)>),
}

impl IndexValidation {
    /// Whether a child descriptor must exist before the index is accepted.
    fn requires(&self, child: &Descriptor) -> bool {
        match self {
            IndexValidation::All => true,
            IndexValidation::None => false,
            IndexValidation::Platforms(platforms) => {
                let field = |name: &str| {
                    child
                        .platform
                        .as_ref()
                        .and_then(|p| p.get(name))
                        .and_then(|v| v.as_str())
                        .unwrap_or_default()
                        .to_owned()
                };
                let platform = (field("os"), field("architecture"));
                platforms.contains(&platform)
            }
        }
    }
}

impl Content {
    /// The digest a reference names in `repo`.
    pub async fn resolve(&self, repo: &RepositoryName, reference: &Reference) -> Result<Digest> {
        match reference {
            Reference::Digest(digest) => Ok(digest.clone()),
            Reference::Tag(tag) => self
                .tag_target(repo, tag)
                .await?
                .ok_or_else(|| Error::ManifestUnknown(tag.to_string())),
        }
    }

    /// The digest a tag currently points at, if the tag exists.
    pub async fn tag_target(&self, repo: &RepositoryName, tag: &Tag) -> Result<Option<Digest>> {
        self.read_link(&layout::tag_current_link(repo, tag)).await
    }

    /// Whether a manifest revision is visible in `repo`.
    pub async fn has_manifest(&self, repo: &RepositoryName, digest: &Digest) -> Result<bool> {
        Ok(self
            .read_link(&layout::revision_link(repo, digest))
            .await?
            .as_ref()
            == Some(digest))
    }

    /// Fetches a manifest by tag or digest (end-3).
    pub async fn get_manifest(
        &self,
        repo: &RepositoryName,
        reference: &Reference,
    ) -> Result<StoredManifest> {
        let digest = self.resolve(repo, reference).await?;
        let unknown = || Error::ManifestUnknown(reference.to_string());
        if !self.has_manifest(repo, &digest).await? {
            return Err(unknown());
        }
        let bytes = match self.storage.get(&layout::blob_data(&digest)).await {
            Ok(bytes) => bytes,
            Err(StorageError::NotFound(_)) => return Err(unknown()),
            Err(e) => return Err(e.into()),
        };
        let media_type = served_media_type(&bytes);
        Ok(StoredManifest {
            digest,
            media_type,
            bytes,
        })
    }

    /// Stores a manifest exactly as received (end-7). References are checked
    /// first; `tags` (the URL's tag, and any `?tag=` ones) move only after the
    /// manifest is fully stored.
    pub async fn put_manifest(
        &self,
        repo: &RepositoryName,
        reference: &Reference,
        tags: &[Tag],
        bytes: Bytes,
        content_type: Option<&str>,
        validation: &ManifestValidation,
    ) -> Result<PushedManifest> {
        self.admit_write()?;
        let manifest = Manifest::parse(&bytes, content_type)?;
        let digest = match reference {
            Reference::Digest(expected) => {
                let actual = expected.algorithm().digest_of(&bytes);
                if &actual != expected {
                    return Err(Error::DigestMismatch {
                        expected: expected.clone(),
                        actual,
                    });
                }
                actual
            }
            Reference::Tag(_) => Algorithm::Sha256.digest_of(&bytes),
        };
        // Gate before checking references: a blob GC may sweep is then
        // either seen missing here or protected by GC's grace period.
        self.commit_gate().await?;
        self.check_references(repo, &manifest, validation).await?;

        if self.global_blob_meta(&digest).await?.is_none() {
            self.storage
                .put(&layout::blob_data(&digest), bytes.clone())
                .await?;
        }
        self.write_link(&layout::revision_link(repo, &digest), &digest)
            .await?;
        let subject = manifest.subject.as_ref().map(|s| s.digest.clone());
        if let Some(subject) = &subject {
            let descriptor = super::referrers::referrer_descriptor(&manifest, &digest, &bytes);
            self.index_referrer(repo, subject, &descriptor).await?;
        }
        for tag in tags {
            self.write_link(&layout::tag_index_link(repo, tag, &digest), &digest)
                .await?;
            self.write_link(&layout::tag_current_link(repo, tag), &digest)
                .await?;
        }
        Ok(PushedManifest { digest, subject })
    }

    /// Fails with `MANIFEST_BLOB_UNKNOWN` naming the first missing reference.
    async fn check_references(
        &self,
        repo: &RepositoryName,
        manifest: &Manifest,
        validation: &ManifestValidation,
    ) -> Result<()> {
        // The URL policy applies to sparse pushes too: it is about what the
        // manifest points at, not what the repository holds.
        let required = manifest.required_blobs(&validation.urls)?;
        if validation.require_blobs {
            let checks = required.into_iter().map(|d| self.require_blob(repo, d));
            bounded(checks.collect()).await?;
        }
        if manifest.kind == ManifestKind::Index {
            let required = manifest
                .manifests
                .iter()
                .filter(|d| validation.index.requires(d));
            let checks = required.map(|d| async move {
                if self.has_manifest(repo, &d.digest).await? {
                    Ok(())
                } else {
                    Err(Error::ManifestBlobUnknown(d.digest.clone()))
                }
            });
            bounded(checks.collect()).await?;
        }
        Ok(())
    }

    async fn require_blob(&self, repo: &RepositoryName, descriptor: &Descriptor) -> Result<()> {
        match self.blob_meta(repo, &descriptor.digest).await {
            Ok(_) => Ok(()),
            Err(Error::BlobUnknown(digest)) => Err(Error::ManifestBlobUnknown(digest)),
            Err(e) => Err(e),
        }
    }

    /// Deletes a tag, or a manifest revision and every tag pointing at it (end-9).
    pub async fn delete_manifest(
        &self,
        repo: &RepositoryName,
        reference: &Reference,
    ) -> Result<()> {
        self.admit_delete()?;
        self.commit_gate().await?;
        match reference {
            Reference::Tag(tag) => {
                if self.tag_target(repo, tag).await?.is_none() {
                    return Err(Error::ManifestUnknown(tag.to_string()));
                }
                self.delete_if_present(&layout::tag_dir(repo, tag)).await?;
                Ok(())
            }
            Reference::Digest(digest) => {
                if !self.has_manifest(repo, digest).await? {
                    return Err(Error::ManifestUnknown(digest.to_string()));
                }
                let subject = match self.storage.get(&layout::blob_data(digest)).await {
                    Ok(bytes) => Manifest::parse_stored(&bytes)
                        .ok()
                        .and_then(|m| m.subject)
                        .map(|s| s.digest),
                    Err(_) => None,
                };
                for tag in self.list_tags(repo).await? {
                    if self.tag_target(repo, &tag).await?.as_ref() == Some(digest) {
                        self.delete_if_present(&layout::tag_dir(repo, &tag)).await?;
                    }
                }
                self.delete_if_present(&layout::revision_dir(repo, digest))
                    .await?;
                if let Some(subject) = subject {
                    self.delete_if_present(&layout::referrer_dir(repo, &subject, digest))
                        .await?;
                }
                Ok(())
            }
        }
    }
}

/// The media type a stored manifest is served with: its `mediaType` field,
/// else inferred from its shape.
pub(super) fn served_media_type(bytes: &[u8]) -> String {
    crate::oci::manifest::stored_media_type(bytes)
        .unwrap_or_else(|| infer_media_type(bytes).to_owned())
}

/// The media type of a stored manifest without a `mediaType` field (allowed
/// by OCI): an index if it lists manifests, else an image manifest.
fn infer_media_type(bytes: &[u8]) -> &'static str {
    let is_index = serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .is_some_and(|v| v.get("manifests").is_some());
    if is_index {
        media_type::OCI_INDEX
    } else {
        media_type::OCI_MANIFEST
    }
}
