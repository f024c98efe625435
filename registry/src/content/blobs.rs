//! Blobs: content-addressed data, visible in a repository through its `_layers` link.

use crate::error::{Error, Result};
use crate::oci::{Digest, RepositoryName};
use crate::storage::{ByteStream, ObjectMeta, StorageError, layout};

use super::Content;
use super::exact::ExactLength;

/// How long a redirect URL stays valid (distribution's 20 minutes).
const REDIRECT_EXPIRY: std::time::Duration = std::time::Duration::from_secs(20 * 60);

impl Content {
    /// Size of a blob linked into `repo` (end-2 HEAD/GET).
    pub async fn blob_meta(&self, repo: &RepositoryName, digest: &Digest) -> Result<ObjectMeta> {
        let linked = self.read_link(&layout::layer_link(repo, digest)).await?;
        if linked.as_ref() != Some(digest) {
            return Err(Error::BlobUnknown(digest.clone()));
        }
        self.global_blob_meta(digest)
            .await?
            .ok_or_else(|| Error::BlobUnknown(digest.clone()))
    }

    /// Size of a blob in the global store, linked anywhere or nowhere.
    pub async fn global_blob_meta(&self, digest: &Digest) -> Result<Option<ObjectMeta>> {
        match self.storage.stat(&layout::blob_data(digest)).await {
            Ok(meta) => Ok(Some(meta)),
            Err(StorageError::NotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Streams `len` bytes of a blob starting at `offset`: exactly `len`,
    /// or an error mid-stream if storage delivers fewer (the blob was cut
    /// short as it was read), so a response that announced `len` bytes is
    /// aborted rather than ended short (see `ExactLength`). Callers check
    /// the link first with [`Content::blob_meta`].
    pub async fn read_blob(&self, digest: &Digest, offset: u64, len: u64) -> Result<ByteStream> {
        let path = layout::blob_data(digest);
        let stream = self
            .storage
            .read(&path, offset, len)
            .await
            .map_err(|e| match e {
                StorageError::NotFound(_) => Error::BlobUnknown(digest.clone()),
                other => other.into(),
            })?;
        Ok(Box::pin(ExactLength::new(stream, path, len)))
    }

    /// A presigned URL of a blob's data in the object store, when the
    /// backend can sign one (distribution's `storage.redirect`).
    pub async fn blob_url(&self, digest: &Digest, method: &http::Method) -> Result<Option<String>> {
        Ok(self
            .storage
            .presigned_url(&layout::blob_data(digest), method, REDIRECT_EXPIRY)
            .await?)
    }

    /// Makes an existing blob visible in `repo` (for operations already admitted).
    pub(super) async fn link_blob(&self, repo: &RepositoryName, digest: &Digest) -> Result<()> {
        self.write_link(&layout::layer_link(repo, digest), digest)
            .await
    }

    /// Cross-repository mount (end-11). With `from`, the blob must be linked
    /// there; without it, any blob in the store can be mounted (all
    /// repositories share one access domain here). Returns whether it mounted.
    pub async fn mount_blob(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        from: Option<&RepositoryName>,
    ) -> Result<bool> {
        self.admit_write()?;
        self.commit_gate().await?;
        let available = match from {
            Some(source) => match self.blob_meta(source, digest).await {
                Ok(_) => true,
                Err(Error::BlobUnknown(_)) => false,
                Err(e) => return Err(e),
            },
            None => self.global_blob_meta(digest).await?.is_some(),
        };
        if available {
            self.link_blob(repo, digest).await?;
        }
        Ok(available)
    }

    /// Unlinks a blob from a repository (end-10); the data is reclaimed by GC.
    pub async fn delete_blob(&self, repo: &RepositoryName, digest: &Digest) -> Result<()> {
        self.admit_delete()?;
        self.commit_gate().await?;
        let linked = self.read_link(&layout::layer_link(repo, digest)).await?;
        if linked.as_ref() != Some(digest) {
            return Err(Error::BlobUnknown(digest.clone()));
        }
        self.delete_if_present(&layout::layer_link_dir(repo, digest))
            .await?;
        Ok(())
    }
}
