//! `registry verify` (zot calls it scrub): re-hashes every blob in the
//! store and reports the ones whose bytes do not hash to the digest their
//! key names. Read-only; safe against live registries and GC (a blob deleted
//! while being checked is counted as gone, not as corrupt).

use futures_util::{StreamExt, TryStreamExt, stream};
use serde::Serialize;

use crate::content::Content;
use crate::gc::{GcError, Progress, scan_blobs};
use crate::oci::Digest;
use crate::storage::{StorageError, layout};

/// What a verification found.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    pub blobs: u64,
    pub bytes: u64,
    /// Blobs whose content hashes to something else (key digest, actual digest).
    pub corrupt: Vec<CorruptBlob>,
    /// Listed but gone by the time they were read (deleted meanwhile).
    pub vanished: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CorruptBlob {
    pub digest: String,
    pub actual: String,
    pub size: u64,
}

enum Checked {
    Good(u64),
    Corrupt(CorruptBlob),
    Vanished,
}

/// Re-hashes every blob, `concurrency` at a time.
pub async fn verify_blobs(content: &Content, concurrency: usize) -> Result<VerifyReport, GcError> {
    let blobs = scan_blobs(content, &Progress::default()).await?;
    let checked: Vec<Checked> = stream::iter(blobs)
        .map(|digest| check(content, digest))
        .buffer_unordered(concurrency.max(1))
        .try_collect()
        .await?;
    let mut report = VerifyReport::default();
    for result in checked {
        match result {
            Checked::Good(size) => {
                report.blobs += 1;
                report.bytes += size;
            }
            Checked::Corrupt(corrupt) => {
                report.blobs += 1;
                report.bytes += corrupt.size;
                report.corrupt.push(corrupt);
            }
            Checked::Vanished => report.vanished += 1,
        }
    }
    report.corrupt.sort_by(|a, b| a.digest.cmp(&b.digest));
    Ok(report)
}

async fn check(content: &Content, digest: Digest) -> Result<Checked, GcError> {
    let path = layout::blob_data(&digest);
    let storage = content.storage();
    let size = match storage.stat(&path).await {
        Ok(meta) => meta.size,
        Err(StorageError::NotFound(_)) => return Ok(Checked::Vanished),
        Err(e) => return Err(e.into()),
    };
    let mut data = match storage.read(&path, 0, size).await {
        Ok(data) => data,
        Err(StorageError::NotFound(_)) => return Ok(Checked::Vanished),
        Err(e) => return Err(e.into()),
    };
    let mut hasher = digest.algorithm().hasher();
    let mut read = 0u64;
    while let Some(chunk) = data.next().await {
        let chunk = chunk.map_err(|e| StorageError::io(&path, e))?;
        read += chunk.len() as u64;
        hasher.update(&chunk);
    }
    if read != size {
        // Replaced or deleted while being read: checked again next time.
        return Ok(Checked::Vanished);
    }
    let actual = hasher.finish();
    if actual == digest {
        Ok(Checked::Good(size))
    } else {
        Ok(Checked::Corrupt(CorruptBlob {
            digest: digest.to_string(),
            actual: actual.to_string(),
            size,
        }))
    }
}
