//! Appendable files (upload data): appends and sealing exclude each other
//! through a non-blocking exclusive file lock, and both check that the path
//! still names the file they locked, so bytes can never land in a file after
//! it was sealed into a blob.

use std::fs::{self as stdfs, File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use tokio::io::{AsyncWriteExt, BufWriter};

use super::{blocking, durable_rename};
use crate::storage::{AppendSource, StorageError, StorageResult};

const WRITE_BUFFER: usize = 1024 * 1024;

/// Why a locked open did not yield a file to work on.
enum Refused {
    /// Another request holds the lock.
    Busy,
    /// The path no longer names this file (sealed or deleted meanwhile).
    Gone,
    /// The file is `actual` bytes long, not the expected length.
    Length(u64),
}

/// Opens `full`, takes its exclusive lock without waiting and checks that it
/// is still the file at `full` and `expected` bytes long.
fn open_locked(full: &Path, create: bool, expected: u64) -> io::Result<Result<File, Refused>> {
    if create && let Some(parent) = full.parent() {
        stdfs::create_dir_all(parent)?;
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(false)
        .open(full)?;
    // Released when the file is closed; shared across processes on the root.
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Ok(Err(Refused::Busy)),
        Err(std::fs::TryLockError::Error(e)) => return Err(e),
    }
    let held = file.metadata()?;
    match stdfs::metadata(full) {
        Ok(now) if now.dev() == held.dev() && now.ino() == held.ino() => {}
        Ok(_) => return Ok(Err(Refused::Gone)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Err(Refused::Gone)),
        Err(e) => return Err(e),
    }
    if held.len() != expected {
        return Ok(Err(Refused::Length(held.len())));
    }
    Ok(Ok(file))
}

fn refusal(path: &str, expected: u64, refused: Refused) -> StorageError {
    match refused {
        Refused::Busy => StorageError::Busy(path.to_owned()),
        Refused::Gone => StorageError::NotFound(path.to_owned()),
        Refused::Length(actual) => StorageError::OffsetMismatch { expected, actual },
    }
}

/// [`crate::storage::Storage::append`] for files.
pub(super) async fn append(
    path: &str,
    full: PathBuf,
    offset: u64,
    data: AppendSource<'_>,
) -> StorageResult<u64> {
    let file = blocking(path, move || {
        let mut file = match open_locked(&full, offset == 0, offset)? {
            Ok(file) => file,
            Err(refused) => return Ok(Err(refused)),
        };
        file.seek(SeekFrom::End(0))?;
        Ok(Ok(file))
    })
    .await?
    .map_err(|refused| refusal(path, offset, refused))?;

    let mut writer = BufWriter::with_capacity(WRITE_BUFFER, tokio::fs::File::from_std(file));
    let mut written = 0u64;
    let mut source_error = None;
    while let Some(chunk) = data.next().await {
        match chunk {
            Ok(chunk) => {
                writer
                    .write_all(&chunk)
                    .await
                    .map_err(|e| StorageError::io(path, e))?;
                written += chunk.len() as u64;
            }
            Err(e) => {
                source_error = Some(e);
                break;
            }
        }
    }
    // Keep what arrived before a client failure: the upload can resume from it.
    writer
        .flush()
        .await
        .map_err(|e| StorageError::io(path, e))?;
    // Release the lock now, not whenever the runtime drops its last handle
    // to the file: a completion right after this append must find it free.
    let file = writer.into_inner().into_std().await;
    file.unlock().map_err(|e| StorageError::io(path, e))?;
    drop(file);
    match source_error {
        Some(e) => Err(StorageError::Source(e)),
        None => Ok(offset + written),
    }
}

/// [`crate::storage::Storage::seal`] for files: renames the file into place
/// while holding its lock, after checking its length.
pub(super) async fn seal(
    path: &str,
    source: PathBuf,
    size: u64,
    target: PathBuf,
) -> StorageResult<()> {
    blocking(path, move || {
        let file = match open_locked(&source, false, size)? {
            Ok(file) => file,
            Err(refused) => return Ok(Err(refused)),
        };
        durable_rename(&source, &target)?;
        drop(file);
        Ok(Ok(()))
    })
    .await?
    .map_err(|refused| refusal(path, size, refused))
}
