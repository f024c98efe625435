//! Registry semantics (blobs, uploads, manifests, tags, referrers, catalog)
//! over a [`Storage`] backend. Handlers stay thin by calling into here.

mod blobs;
mod catalog;
mod exact;
mod hashing;
mod manifests;
mod policy;
mod referrers;
mod sessions;
mod tags;
mod uploads;

use std::sync::Arc;

use bytes::Bytes;

use crate::error::Result;
use crate::oci::Digest;
use crate::storage::{Storage, StorageError};

pub use catalog::CatalogPage;
pub use hashing::HashingStream;
pub use manifests::{IndexValidation, ManifestValidation, PushedManifest, StoredManifest};
pub use policy::{Access, WritePolicy};
pub use referrers::{REFERRERS_PAGE, ReferrersPage};
pub use sessions::{UploadHashes, UploadId};
pub use uploads::upload_location;

/// Storage requests one content operation keeps in flight at once (existence
/// checks of a manifest's references, tag stats, referrer reads): enough to
/// hide object-store latency, bounded so one request cannot flood storage.
pub(crate) const STORAGE_FANOUT: usize = 16;

/// Awaits `operations` [`STORAGE_FANOUT`] at a time and returns their
/// results in order. Callers build the (unpolled) futures first: a stream
/// adaptor over a closure that borrows request state is not `Send` enough
/// for axum's handlers.
pub(crate) async fn bounded<R, Fut>(operations: Vec<Fut>) -> Result<Vec<R>>
where
    Fut: Future<Output = Result<R>>,
{
    let mut results = Vec::with_capacity(operations.len());
    let mut operations = operations.into_iter();
    loop {
        let chunk: Vec<Fut> = operations.by_ref().take(STORAGE_FANOUT).collect();
        if chunk.is_empty() {
            return Ok(results);
        }
        results.extend(futures_util::future::try_join_all(chunk).await?);
    }
}

/// Registry content operations over one storage backend. Every write and
/// delete passes its [`WritePolicy`] (see `policy.rs`).
#[derive(Debug, Clone)]
pub struct Content {
    storage: Arc<dyn Storage>,
    hashes: Arc<UploadHashes>,
    policy: Arc<WritePolicy>,
    /// A maintenance handle ([`Content::for_maintenance`]) skips the policy.
    maintenance: bool,
}

impl Content {
    /// Content with the default policy: writable, deletes enabled.
    pub fn new(storage: Arc<dyn Storage>) -> Self {
        Content::with_policy(storage, WritePolicy::default())
    }

    pub fn with_policy(storage: Arc<dyn Storage>, policy: WritePolicy) -> Self {
        Content {
            storage,
            hashes: Arc::new(UploadHashes::default()),
            policy: Arc::new(policy),
            maintenance: false,
        }
    }

    /// The raw backend, for health checks and maintenance tasks (lock
    /// watch, GC, purging, verification): writes through it skip the
    /// write policy, so registry writes go through `Content` methods.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// Reads a link file; `None` when it does not exist or does not hold a digest.
    pub(crate) async fn read_link(&self, path: &str) -> Result<Option<Digest>> {
        match self.storage.get(path).await {
            Ok(bytes) => Ok(parse_link(&bytes, path)),
            Err(StorageError::NotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes a link file pointing at `digest` (atomic replace).
    async fn write_link(&self, path: &str, digest: &Digest) -> Result<()> {
        self.storage
            .put(path, Bytes::from(digest.to_string()))
            .await?;
        Ok(())
    }

    /// Lists a directory; a missing directory is empty.
    pub(crate) async fn list_or_empty(&self, path: &str) -> Result<Vec<String>> {
        match self.storage.list(path).await {
            Ok(names) => Ok(names),
            Err(StorageError::NotFound(_)) => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes a path, treating "already gone" as success.
    async fn delete_if_present(&self, path: &str) -> Result<bool> {
        match self.storage.delete(path).await {
            Ok(()) => Ok(true),
            Err(StorageError::NotFound(_)) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

/// Parses link file content (`sha256:<hex>`, possibly with trailing whitespace).
fn parse_link(bytes: &[u8], path: &str) -> Option<Digest> {
    let parsed = std::str::from_utf8(bytes)
        .ok()
        .and_then(|text| text.trim().parse().ok());
    if parsed.is_none() {
        tracing::warn!(path, "ignoring link file that does not contain a digest");
    }
    parsed
}
