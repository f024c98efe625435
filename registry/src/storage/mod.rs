//! The storage abstraction: an object-store shaped key/value interface with
//! atomic puts, appendable upload files and hierarchical listing.
//!
//! Paths are `/`-separated, relative, and built only by [`layout`] from
//! validated names and digests; drivers still refuse anything that could
//! escape their root.

pub mod fs;
pub mod layout;
pub mod s3;

use std::fmt;
use std::io;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;

/// A stream of bytes read from or written to storage.
pub type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// A body being appended: the chunks, plus an opaque checkpoint describing
/// everything yielded so far (the serialized running hash of an upload).
/// Drivers that keep upload state in the store save the checkpoint with the
/// new length in one atomic write, so another process can continue the
/// upload without re-reading it; others may ignore it.
pub trait AppendBody: Stream<Item = io::Result<Bytes>> + Send + Unpin {
    fn checkpoint(&self) -> Option<Bytes> {
        None
    }
}

/// A body without a checkpoint.
#[derive(Debug)]
pub struct PlainBody<S>(pub S);

impl<S: Stream<Item = io::Result<Bytes>> + Unpin> Stream for PlainBody<S> {
    type Item = io::Result<Bytes>;

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        Pin::new(&mut self.0).poll_next(cx)
    }
}

impl<S: Stream<Item = io::Result<Bytes>> + Send + Unpin> AppendBody for PlainBody<S> {}

/// A borrowed body being appended; the caller keeps ownership so it can read
/// back state (such as a running hash) after the append.
pub type AppendSource<'a> = &'a mut dyn AppendBody;

/// What an appendable object holds so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendState {
    /// Bytes appended so far.
    pub size: u64,
    /// The checkpoint saved with the last append, when the driver keeps one
    /// and it was written at exactly `size`.
    pub checkpoint: Option<Bytes>,
}

/// An object's version for compare-and-swap writes ([`Storage::put_if`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version(pub String);

/// The condition of a [`Storage::put_if`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// Only create: fail if the object exists.
    Absent,
    /// Only replace this exact version.
    Matches(Version),
}

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
    /// Another request is appending to or completing the same object right now.
    #[error("{0} is being written by another request")]
    Busy(String),
    /// A conditional write lost: the object exists, or changed since it was read.
    #[error("{0} changed concurrently")]
    Conflict(String),
    #[error("invalid storage path {0:?}")]
    InvalidPath(String),
    #[error("reading the request body failed: {0}")]
    Source(io::Error),
    /// An object store refused or failed a request; `code` is its error code
    /// (e.g. `AccessDenied`, `NoSuchBucket`). Never carries credentials.
    #[error("object storage error on {path} (bucket {bucket}): {code}: {message}")]
    Remote {
        bucket: String,
        path: String,
        code: String,
        message: String,
    },
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

/// Refuses anything but plain relative `/`-separated paths (no empty, `.`
/// or `..` parts, no NUL): the rule every driver applies before touching
/// its backend.
pub fn check_path(path: &str) -> StorageResult<()> {
    let plain = !path.is_empty()
        && !path.contains('\0')
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..");
    if plain {
        Ok(())
    } else {
        Err(StorageError::InvalidPath(path.to_owned()))
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

    /// Creates or replaces an object only if `condition` holds; returns the
    /// new version, or [`StorageError::Conflict`] when it does not hold.
    async fn put_if(
        &self,
        path: &str,
        data: Bytes,
        condition: Precondition,
    ) -> StorageResult<Version>;

    /// Reads a whole (small) object with its version, for [`Storage::put_if`].
    async fn get_versioned(&self, path: &str) -> StorageResult<(Bytes, Version)>;

    /// Creates or replaces a small object without waiting for durability
    /// (scratch data whose loss in a power cut is harmless).
    async fn put_scratch(&self, path: &str, data: Bytes) -> StorageResult<()> {
        self.put(path, data).await
    }

    /// Appends `data` to an appendable object that must currently be exactly
    /// `offset` bytes long (created empty when `offset` is 0 and it is
    /// missing). Concurrent appends to one object never interleave: the
    /// loser sees [`StorageError::OffsetMismatch`] or [`StorageError::Busy`].
    /// What arrived before the body failed is kept (returned as
    /// [`StorageError::Source`]). Returns the new length.
    async fn append(&self, path: &str, offset: u64, data: AppendSource<'_>) -> StorageResult<u64>;

    /// Length and checkpoint of an appendable object.
    async fn append_state(&self, path: &str) -> StorageResult<AppendState>;

    /// Publishes an appendable object at `to` (replacing what is there) if it
    /// is exactly `size` bytes long. It excludes concurrent appends: one in
    /// flight makes this fail with [`StorageError::Busy`], and appends after
    /// it fail with [`StorageError::NotFound`], so `to` holds exactly the
    /// `size` bytes the caller verified. `path` is gone afterwards.
    async fn seal(&self, path: &str, size: u64, to: &str) -> StorageResult<()>;

    /// Copies an object to `to`, replacing what is there (durable once it returns).
    async fn copy(&self, from: &str, to: &str) -> StorageResult<()>;

    /// A time-limited URL a client can fetch `path` from directly with
    /// `method` (GET or HEAD), when the backend can sign one.
    async fn presigned_url(
        &self,
        _path: &str,
        _method: &http::Method,
        _expires_in: Duration,
    ) -> StorageResult<Option<String>> {
        Ok(None)
    }

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

    /// Whether the backend is reachable and, with `writes`, accepts a write
    /// (a probe object written and removed: notices a full or read-only
    /// filesystem and read-only credentials). For readiness probes.
    async fn check(&self, writes: bool) -> StorageResult<()>;
}
