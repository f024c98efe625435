//! Filesystem storage driver: one file per object under a root directory.
//!
//! Atomicity: a put writes a temp file under `<root>/.berth-tmp`, fsyncs it,
//! renames it into place and fsyncs the parent directory, so a crash leaves
//! either the old or the new object. Directory deletes are renamed away
//! first, so a tree disappears at once rather than file by file. Appendable
//! objects (upload data) are plain files guarded by a non-blocking file lock
//! ([`append`]); conditional writes go through per-path lock files
//! ([`conditional`]).

mod append;
mod conditional;

use std::fs::{self as stdfs, File, OpenOptions};
use std::io::{self, SeekFrom, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use super::{
    AppendSource, AppendState, ByteStream, ObjectMeta, Precondition, Storage, StorageError,
    StorageResult, Version,
};

/// Name of the directory holding in-flight temp files and trees being deleted.
pub const TEMP_DIR: &str = ".berth-tmp";
/// Lock files of conditional writes: never purged (deleting a lock file
/// someone holds would let a second writer in), one per conditionally
/// written path (a handful: the maintenance lock).
pub const LOCK_DIR: &str = ".berth-locks";
const READ_CHUNK: usize = 256 * 1024;

/// Stores objects as files below `root`.
#[derive(Debug, Clone)]
pub struct FsStorage {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    temp: PathBuf,
}

impl FsStorage {
    /// Opens (and creates if needed) a storage root.
    pub fn open(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = root.into();
        let temp = root.join(TEMP_DIR);
        stdfs::create_dir_all(&temp)?;
        Ok(FsStorage {
            inner: Arc::new(Inner { root, temp }),
        })
    }

    /// The directory this driver stores under.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// Removes temp files older than `age`, left behind by crashed writers.
    /// Younger ones may belong to a concurrent writer (another process on the
    /// same root) and are kept.
    pub async fn purge_temp(&self, age: Duration) -> io::Result<usize> {
        let temp = self.inner.temp.clone();
        tokio::task::spawn_blocking(move || {
            let mut removed = 0;
            let now = SystemTime::now();
            for entry in stdfs::read_dir(&temp)? {
                let entry = entry?;
                let modified = entry.metadata()?.modified()?;
                if now.duration_since(modified).unwrap_or_default() < age {
                    continue;
                }
                let path = entry.path();
                let result = if entry.file_type()?.is_dir() {
                    stdfs::remove_dir_all(&path)
                } else {
                    stdfs::remove_file(&path)
                };
                match result {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(removed)
        })
        .await
        .map_err(io::Error::other)?
    }

    /// Maps a storage path to a filesystem path, refusing anything but plain
    /// relative components.
    fn resolve(&self, path: &str) -> StorageResult<PathBuf> {
        super::check_path(path)?;
        let relative = Path::new(path);
        if !relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
        {
            return Err(StorageError::InvalidPath(path.to_owned()));
        }
        Ok(self.inner.root.join(relative))
    }

    /// The lock file serializing conditional writes to `path`.
    fn path_lock(&self, path: &str) -> PathBuf {
        let name = crate::oci::Algorithm::Sha256.digest_of(path.as_bytes());
        self.inner.root.join(LOCK_DIR).join(&name.hex()[..32])
    }

    fn temp_path(&self) -> PathBuf {
        self.inner
            .temp
            .join(uuid::Uuid::new_v4().simple().to_string())
    }
}

/// Runs blocking filesystem work off the async runtime.
pub(super) async fn blocking<T: Send + 'static>(
    path: &str,
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> StorageResult<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|join| StorageError::io(path, io::Error::other(join)))?
        .map_err(|e| StorageError::io(path, e))
}

/// Flushes a directory entry change (create, rename, delete) to disk.
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// `create_dir_all` that also makes every newly created directory durable.
pub(super) fn create_dir_all_durable(dir: &Path) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut cursor = dir;
    while !cursor.is_dir() {
        missing.push(cursor.to_path_buf());
        match cursor.parent() {
            Some(parent) => cursor = parent,
            None => break,
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    stdfs::create_dir_all(dir)?;
    for created in missing.iter().rev() {
        if let Some(parent) = created.parent() {
            sync_dir(parent)?;
        }
    }
    Ok(())
}

/// Moves `from` over `to` after making its content durable.
pub(super) fn durable_rename(from: &Path, to: &Path) -> io::Result<()> {
    File::open(from)?.sync_all()?;
    let parent = to.parent().ok_or_else(|| io::Error::other("no parent"))?;
    create_dir_all_durable(parent)?;
    stdfs::rename(from, to)?;
    sync_dir(parent)
}

#[async_trait]
impl Storage for FsStorage {
    async fn get(&self, path: &str) -> StorageResult<Bytes> {
        let full = self.resolve(path)?;
        match tokio::fs::read(&full).await {
            Ok(data) => Ok(Bytes::from(data)),
            // Reading a directory is "not an object" as far as callers care.
            Err(e) if e.kind() == io::ErrorKind::IsADirectory => {
                Err(StorageError::NotFound(path.to_owned()))
            }
            Err(e) => Err(StorageError::io(path, e)),
        }
    }

    async fn stat(&self, path: &str) -> StorageResult<ObjectMeta> {
        let full = self.resolve(path)?;
        let meta = tokio::fs::metadata(&full)
            .await
            .map_err(|e| StorageError::io(path, e))?;
        if !meta.is_file() {
            return Err(StorageError::NotFound(path.to_owned()));
        }
        Ok(ObjectMeta {
            size: meta.len(),
            modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        })
    }

    async fn read(&self, path: &str, offset: u64, len: u64) -> StorageResult<ByteStream> {
        let full = self.resolve(path)?;
        let mut file = tokio::fs::File::open(&full)
            .await
            .map_err(|e| StorageError::io(path, e))?;
        if offset > 0 {
            file.seek(SeekFrom::Start(offset))
                .await
                .map_err(|e| StorageError::io(path, e))?;
        }
        let capacity = usize::try_from(len)
            .unwrap_or(READ_CHUNK)
            .clamp(1, READ_CHUNK);
        Ok(Box::pin(ReaderStream::with_capacity(
            file.take(len),
            capacity,
        )))
    }

    async fn put(&self, path: &str, data: Bytes) -> StorageResult<()> {
        let full = self.resolve(path)?;
        let temp = self.temp_path();
        blocking(path, move || {
            let result = (|| {
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&temp)?;
                file.write_all(&data)?;
                durable_rename(&temp, &full)
            })();
            if result.is_err() {
                let _ = stdfs::remove_file(&temp);
            }
            result
        })
        .await
    }

    async fn put_if(
        &self,
        path: &str,
        data: Bytes,
        condition: Precondition,
    ) -> StorageResult<Version> {
        let full = self.resolve(path)?;
        let lock = self.path_lock(path);
        let temp = self.temp_path();
        let reported = path.to_owned();
        blocking(path, move || {
            conditional::put_if(&full, &lock, &temp, &data, &condition)
        })
        .await?
        .map_err(|()| StorageError::Conflict(reported))
    }

    async fn get_versioned(&self, path: &str) -> StorageResult<(Bytes, Version)> {
        let data = self.get(path).await?;
        let version = conditional::version_of(&data);
        Ok((data, version))
    }

    async fn put_scratch(&self, path: &str, data: Bytes) -> StorageResult<()> {
        let full = self.resolve(path)?;
        let temp = self.temp_path();
        blocking(path, move || {
            let result = (|| {
                stdfs::write(&temp, &data)?;
                if let Some(parent) = full.parent() {
                    stdfs::create_dir_all(parent)?;
                }
                stdfs::rename(&temp, &full)
            })();
            if result.is_err() {
                let _ = stdfs::remove_file(&temp);
            }
            result
        })
        .await
    }

    async fn append(&self, path: &str, offset: u64, data: AppendSource<'_>) -> StorageResult<u64> {
        let full = self.resolve(path)?;
        append::append(path, full, offset, data).await
    }

    async fn append_state(&self, path: &str) -> StorageResult<AppendState> {
        let meta = self.stat(path).await?;
        Ok(AppendState {
            size: meta.size,
            checkpoint: None,
        })
    }

    async fn seal(&self, path: &str, size: u64, to: &str) -> StorageResult<()> {
        let source = self.resolve(path)?;
        let target = self.resolve(to)?;
        append::seal(path, source, size, target).await
    }

    async fn copy(&self, from: &str, to: &str) -> StorageResult<()> {
        let source = self.resolve(from)?;
        let target = self.resolve(to)?;
        let temp = self.temp_path();
        blocking(from, move || {
            let result = stdfs::copy(&source, &temp).and_then(|_| durable_rename(&temp, &target));
            if result.is_err() {
                let _ = stdfs::remove_file(&temp);
            }
            result
        })
        .await
    }

    async fn list(&self, path: &str) -> StorageResult<Vec<String>> {
        let full = self.resolve(path)?;
        let names: Vec<String> = blocking(path, move || {
            stdfs::read_dir(&full)?
                .map(|entry| entry.map(|e| e.file_name().to_string_lossy().into_owned()))
                .collect()
        })
        .await?;
        if names.is_empty() {
            // As on object stores: a directory with nothing in it does not exist.
            return Err(StorageError::NotFound(path.to_owned()));
        }
        Ok(names)
    }

    async fn delete(&self, path: &str) -> StorageResult<()> {
        let full = self.resolve(path)?;
        let graveyard = self.temp_path();
        blocking(path, move || {
            let meta = stdfs::symlink_metadata(&full)?;
            if meta.is_dir() {
                // Disappear atomically, then remove the detached tree.
                stdfs::rename(&full, &graveyard)?;
                if let Some(parent) = full.parent() {
                    sync_dir(parent)?;
                }
                stdfs::remove_dir_all(&graveyard)
            } else {
                stdfs::remove_file(&full)?;
                match full.parent() {
                    Some(parent) => sync_dir(parent),
                    None => Ok(()),
                }
            }
        })
        .await
    }

    async fn delete_batch(&self, paths: &[String]) -> StorageResult<u64> {
        let resolved = paths
            .iter()
            .map(|p| self.resolve(p))
            .collect::<StorageResult<Vec<_>>>()?;
        let first = paths.first().cloned().unwrap_or_default();
        blocking(&first, move || {
            let mut deleted = 0;
            // One fsync per parent directory for the whole batch.
            let mut parents = std::collections::BTreeSet::new();
            for path in resolved {
                let removed = match stdfs::symlink_metadata(&path) {
                    Ok(meta) if meta.is_dir() => stdfs::remove_dir_all(&path),
                    Ok(_) => stdfs::remove_file(&path),
                    Err(e) => Err(e),
                };
                match removed {
                    Ok(()) => {
                        deleted += 1;
                        if let Some(parent) = path.parent() {
                            parents.insert(parent.to_path_buf());
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            for parent in parents {
                match sync_dir(&parent) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
            Ok(deleted)
        })
        .await
    }

    async fn check(&self, writes: bool) -> StorageResult<()> {
        if !writes {
            let root = self.inner.root.clone();
            return blocking(".", move || stdfs::read_dir(&root).map(|_| ())).await;
        }
        // Writing a probe (in the temp directory, on the same filesystem)
        // notices a read-only remount or a full disk, which the directory's
        // permission bits do not show.
        let probe = self.temp_path();
        blocking(TEMP_DIR, move || {
            let result = stdfs::write(&probe, b"readyz");
            let _ = stdfs::remove_file(&probe);
            result
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::PlainBody;
    use futures_util::{StreamExt, stream};

    fn body(
        chunks: &[&'static [u8]],
    ) -> impl futures_util::Stream<Item = io::Result<Bytes>> + Unpin + Send {
        stream::iter(
            chunks
                .iter()
                .map(|c| Ok(Bytes::from_static(c)))
                .collect::<Vec<_>>(),
        )
    }

    async fn collect(stream: ByteStream) -> Vec<u8> {
        let chunks: Vec<_> = stream.collect().await;
        chunks.into_iter().flat_map(|c| c.unwrap()).collect()
    }

    #[tokio::test]
    async fn put_get_stat_list_delete() {
        let dir = tempfile::tempdir().unwrap();
        let storage = FsStorage::open(dir.path()).unwrap();
        storage
            .put("a/b/link", Bytes::from_static(b"hello"))
            .await
            .unwrap();
        assert_eq!(&storage.get("a/b/link").await.unwrap()[..], b"hello");
        assert_eq!(storage.stat("a/b/link").await.unwrap().size, 5);
        assert_eq!(storage.list("a").await.unwrap(), vec!["b".to_owned()]);
        assert!(storage.stat("a/b").await.unwrap_err().is_not_found());
        storage.delete("a/b").await.unwrap();
        assert!(storage.get("a/b/link").await.unwrap_err().is_not_found());
        assert!(storage.delete("a/b").await.unwrap_err().is_not_found());
        // Nothing is left behind in the temp directory.
        assert!(storage.list(TEMP_DIR).await.unwrap_err().is_not_found());
    }

    #[tokio::test]
    async fn refuses_escaping_paths() {
        let dir = tempfile::tempdir().unwrap();
        let storage = FsStorage::open(dir.path().join("root")).unwrap();
        for path in ["../x", "/etc/passwd", "a/../../x", "a//b", "", "./a", "a/."] {
            assert!(
                matches!(storage.get(path).await, Err(StorageError::InvalidPath(_))),
                "{path}"
            );
        }
    }

    #[tokio::test]
    async fn append_checks_offsets_and_reads_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let storage = FsStorage::open(dir.path()).unwrap();
        let len = storage
            .append("u/data", 0, &mut PlainBody(body(&[b"hello ", b"wor"])))
            .await
            .unwrap();
        assert_eq!(len, 9);
        let err = storage
            .append("u/data", 3, &mut PlainBody(body(&[b"x"])))
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            StorageError::OffsetMismatch {
                expected: 3,
                actual: 9
            }
        ));
        let len = storage
            .append("u/data", 9, &mut PlainBody(body(&[b"ld"])))
            .await
            .unwrap();
        assert_eq!(len, 11);
        assert_eq!(
            collect(storage.read("u/data", 6, 5).await.unwrap()).await,
            b"world"
        );
        storage.seal("u/data", 11, "blobs/x/data").await.unwrap();
        assert_eq!(
            &storage.get("blobs/x/data").await.unwrap()[..],
            b"hello world"
        );
        assert!(storage.stat("u/data").await.unwrap_err().is_not_found());
    }

    #[tokio::test]
    async fn append_keeps_bytes_received_before_a_client_error() {
        let dir = tempfile::tempdir().unwrap();
        let storage = FsStorage::open(dir.path()).unwrap();
        let mut failing = PlainBody(stream::iter(vec![
            Ok(Bytes::from_static(b"abc")),
            Err(io::Error::other("client went away")),
        ]));
        let err = storage.append("u/data", 0, &mut failing).await.unwrap_err();
        assert!(matches!(err, StorageError::Source(_)));
        assert_eq!(storage.stat("u/data").await.unwrap().size, 3);
    }

    #[tokio::test]
    async fn purges_only_old_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let storage = FsStorage::open(dir.path()).unwrap();
        std::fs::write(dir.path().join(TEMP_DIR).join("stale"), b"x").unwrap();
        assert_eq!(
            storage.purge_temp(Duration::from_secs(3600)).await.unwrap(),
            0
        );
        assert_eq!(storage.purge_temp(Duration::ZERO).await.unwrap(), 1);
    }
}
