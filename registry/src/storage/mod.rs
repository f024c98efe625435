//! The storage abstraction: an object-store shaped key/value interface with
//! atomic puts, appendable upload files and hierarchical listing.
//!
//! Paths are `/`-separated, relative, and built only by [`layout`] from
//! validated names and digests; drivers still refuse anything that could
//! escape their root.

pub mod fs;
pub mod layout;

use std::fmt;
use std::io;
use std::pin::Pin;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;

/// A stream of bytes read from or written to storage.
pub type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// A borrowed body being appended; the caller keeps ownership so it can read
/// back state (such as a running hash) after the append.
pub type AppendSource<'a> = &'a mut (dyn Stream<Item = io::Result<Bytes>> + Send + Unpin);

/// Metadata of a stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub size: u64,
    pub modified: SystemTime,
}

/// Storage failures. `NotFound` is expected and handled by callers; the rest
/// are internal errors except `Source`, which is the client's body failing.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("path not found: {0}")]
    NotFound(String),
    #[error("append at offset {expected} but the object is {actual} bytes")]
    OffsetMismatch { expected: u64, actual: u64 },
    #[error("invalid storage path {0:?}")]
    InvalidPath(String),
    #[error("reading the request body failed: {0}")]
    Source(io::Error),
    #[error("storage I/O error on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
}

impl StorageError {
    /// Wraps an I/O error, mapping "not found" to [`StorageError::NotFound`].
    pub fn io(path: &str, source: io::Error) -> Self {
        if source.kind() == io::ErrorKind::NotFound {
            StorageError::NotFound(path.to_owned())
        } else {
            StorageError::Io {
                path: path.to_owned(),
                source,
            }
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, StorageError::NotFound(_))
    }
}

/// Result alias for storage operations.
pub type StorageResult<T> = Result<T, StorageError>;

/// A storage backend. Every write is atomic: readers see the old object or
/// the complete new one, never a partial write.
#[async_trait]
pub trait Storage: Send + Sync + fmt::Debug + 'static {
    /// Reads a whole (small) object.
    async fn get(&self, path: &str) -> StorageResult<Bytes>;

    /// Size and modification time of an object.
    async fn stat(&self, path: &str) -> StorageResult<ObjectMeta>;

    /// Streams `len` bytes of an object starting at `offset`.
    async fn read(&self, path: &str, offset: u64, len: u64) -> StorageResult<ByteStream>;

    /// Atomically creates or replaces an object (durable once this returns).
    async fn put(&self, path: &str, data: Bytes) -> StorageResult<()>;

    /// Appends `data` to an object that must currently be exactly `offset`
    /// bytes long (created empty when `offset` is 0 and it is missing).
    /// Concurrent appends to one object are serialized; the loser sees
    /// [`StorageError::OffsetMismatch`]. Returns the new length.
    async fn append(&self, path: &str, offset: u64, data: AppendSource<'_>) -> StorageResult<u64>;

    /// Atomically and durably moves an object to `to`, replacing what is there.
    async fn rename(&self, from: &str, to: &str) -> StorageResult<()>;

    /// Names of the immediate children of a directory-like prefix, unsorted.
    async fn list(&self, path: &str) -> StorageResult<Vec<String>>;

    /// Deletes an object or a whole prefix.
    async fn delete(&self, path: &str) -> StorageResult<()>;

    /// Deletes many objects or prefixes, skipping missing ones, and returns
    /// how many existed; durable once it returns. Each path disappears on
    /// its own (not atomically with the others), which is all garbage
    /// collection needs; drivers batch the expensive parts (fsyncs, requests).
    async fn delete_batch(&self, paths: &[String]) -> StorageResult<u64> {
        let mut deleted = 0;
        for path in paths {
            match self.delete(path).await {
                Ok(()) => deleted += 1,
                Err(StorageError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(deleted)
    }

    /// Whether the backend is reachable and usable (for readiness probes).
    async fn check(&self) -> StorageResult<()>;
}
