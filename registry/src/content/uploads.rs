//! Blob uploads (end-4 … end-6, end-13, cancel): sessions live in storage
//! under `_uploads/<id>`, so any process sharing the storage can continue
//! one. The digest is verified before the blob becomes visible; the
//! repository link written last is the commit point.

use std::io;
use std::time::SystemTime;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use crate::error::{Error, Result};
use crate::oci::{Algorithm, Digest, Hasher, RepositoryName};
use crate::storage::{AppendState, StorageError, layout};

use super::sessions::{UploadId, hash_key};
use super::{Content, HashingStream};

/// The `Location` of an upload session.
pub fn upload_location(repo: &RepositoryName, id: &UploadId) -> String {
    format!("/v2/{repo}/blobs/uploads/{id}")
}

impl Content {
    /// Opens an upload session (end-4a).
    pub async fn start_upload(&self, repo: &RepositoryName) -> Result<UploadId> {
        self.admit_write()?;
        let id = UploadId::generate();
        let started = humantime::format_rfc3339_nanos(SystemTime::now()).to_string();
        // Only purging reads this, so it is written without the cost of a
        // durable put: a session lost to a power cut is simply restarted.
        self.storage
            .put_scratch(
                &layout::upload_started_at(repo, id.as_str()),
                Bytes::from(started),
            )
            .await?;
        Ok(id)
    }

    /// Bytes received so far by a session (end-13).
    pub async fn upload_size(&self, repo: &RepositoryName, id: &UploadId) -> Result<u64> {
        Ok(self.upload_state(repo, id).await?.size)
    }

    /// What a session holds: its data's length and checkpoint, or an empty
    /// state for a session that has no data yet.
    async fn upload_state(&self, repo: &RepositoryName, id: &UploadId) -> Result<AppendState> {
        match self
            .storage
            .append_state(&layout::upload_data(repo, id.as_str()))
            .await
        {
            Ok(state) => Ok(state),
            // Another request is completing this session.
            Err(StorageError::Conflict(_)) => Err(Error::BlobUploadUnknown),
            Err(StorageError::NotFound(_)) => {
                match self
                    .storage
                    .stat(&layout::upload_started_at(repo, id.as_str()))
                    .await
                {
                    Ok(_) => Ok(AppendState {
                        size: 0,
                        checkpoint: None,
                    }),
                    Err(StorageError::NotFound(_)) => Err(Error::BlobUploadUnknown),
                    Err(e) => Err(e.into()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Appends a chunk (end-5, or the body of end-6). `start` is the
    /// `Content-Range` start when given and must equal the current size;
    /// `declared` is the chunk's declared length when known.
    pub async fn append_upload<S>(
        &self,
        repo: &RepositoryName,
        id: &UploadId,
        start: Option<u64>,
        declared: Option<u64>,
        body: S,
    ) -> Result<u64>
    where
        S: Stream<Item = io::Result<Bytes>> + Send + Unpin,
    {
        self.append_hashed(repo, id, start, declared, body, Algorithm::Sha256)
            .await
    }

    /// [`Content::append_upload`] keeping a running hash of `algorithm`
    /// (sha256 unless the digest is known in advance).
    async fn append_hashed<S>(
        &self,
        repo: &RepositoryName,
        id: &UploadId,
        start: Option<u64>,
        declared: Option<u64>,
        body: S,
        algorithm: Algorithm,
    ) -> Result<u64>
    where
        S: Stream<Item = io::Result<Bytes>> + Send + Unpin,
    {
        // Before anything of the body is read.
        self.admit_write()?;
        let state = self.upload_state(repo, id).await?;
        let current = state.size;
        let out_of_order = |current| Error::UploadOutOfOrder {
            current,
            location: upload_location(repo, id),
        };
        if start.is_some_and(|start| start != current) {
            return Err(out_of_order(current));
        }
        let key = hash_key(repo, id);
        let hasher = self
            .upload_hasher(repo, id, &key, &state, algorithm)
            .await?
            .ok_or_else(|| {
                Error::BlobUploadInvalid(
                    "the upload's hash state was lost; restart the upload".into(),
                )
            })?;
        let mut stream = HashingStream::new(body, hasher, declared);
        let data_path = layout::upload_data(repo, id.as_str());
        match self.storage.append(&data_path, current, &mut stream).await {
            Ok(size) => {
                let received = stream.bytes_seen();
                self.hashes.store(key, size, stream.into_hasher());
                match declared {
                    Some(declared) if declared != received => Err(Error::SizeInvalid(format!(
                        "received {received} bytes but the request declared {declared}"
                    ))),
                    _ => Ok(size),
                }
            }
            Err(StorageError::OffsetMismatch { actual, .. }) => Err(out_of_order(actual)),
            // Another chunk of this session is being written right now.
            Err(StorageError::Busy(_)) => Err(out_of_order(current)),
            Err(StorageError::NotFound(_)) => Err(Error::BlobUploadUnknown),
            Err(StorageError::Source(e)) => {
                // Everything yielded before the failure was written, so the hash is current.
                let size = current + stream.bytes_seen();
                self.hashes.store(key, size, stream.into_hasher());
                if e.kind() == io::ErrorKind::InvalidData {
                    Err(Error::SizeInvalid(e.to_string()))
                } else {
                    Err(Error::BlobUploadInvalid(format!(
                        "reading the chunk failed: {e}"
                    )))
                }
            }
            Err(e) => {
                self.hashes.forget(&key);
                Err(e.into())
            }
        }
    }

    /// Verifies the received bytes against `digest` and publishes the blob
    /// (end-6). On a mismatch the session is discarded. Publishing seals the
    /// session's data at the verified length, which excludes any chunk still
    /// being appended, so the blob holds exactly the bytes that were hashed.
    pub async fn complete_upload(
        &self,
        repo: &RepositoryName,
        id: &UploadId,
        digest: &Digest,
    ) -> Result<u64> {
        self.admit_write()?;
        let state = self.upload_state(repo, id).await?;
        let size = state.size;
        let key = hash_key(repo, id);
        let hasher = self
            .upload_hasher(repo, id, &key, &state, digest.algorithm())
            .await?;
        let Some(hasher) = hasher else {
            // Received under another algorithm on a store that cannot read
            // data back before it is sealed.
            return self.complete_sealed(repo, id, size, digest).await;
        };
        let actual = hasher.finish();
        if &actual != digest {
            self.discard_upload(repo, id).await?;
            return Err(Error::DigestMismatch {
                expected: digest.clone(),
                actual,
            });
        }
        // Refused during a maintenance window; the session stays resumable.
        self.commit_gate().await?;
        let existing = self.global_blob_meta(digest).await?;
        match existing {
            Some(meta) if meta.size == size => {}
            _ => {
                if let Some(meta) = existing {
                    // Same digest, different length: the stored copy is corrupt.
                    tracing::warn!(%digest, stored = meta.size, verified = size, "replacing a stored blob whose size does not match its digest");
                }
                self.publish_upload(repo, id, size, digest).await?;
                // Publishing to object storage can take long enough for a
                // maintenance window to begin meanwhile: check again before
                // the link makes the blob referenced.
                self.commit_gate().await?;
            }
        }
        self.finish_upload(repo, id, &key, digest).await?;
        Ok(size)
    }

    /// Links the blob and removes the session.
    async fn finish_upload(
        &self,
        repo: &RepositoryName,
        id: &UploadId,
        key: &str,
        digest: &Digest,
    ) -> Result<()> {
        self.link_blob(repo, digest).await?;
        self.delete_if_present(&layout::upload_dir(repo, id.as_str()))
            .await?;
        self.hashes.forget(key);
        Ok(())
    }

    /// Completes a session whose running hash is of another algorithm: seals
    /// the data inside the session, hashes it from there, then copies it to
    /// the blob's place.
    async fn complete_sealed(
        &self,
        repo: &RepositoryName,
        id: &UploadId,
        size: u64,
        digest: &Digest,
    ) -> Result<u64> {
        let sealed = layout::upload_sealed(repo, id.as_str());
        self.seal_upload(repo, id, size, &sealed).await?;
        let mut hasher = digest.algorithm().hasher();
        let mut data = self.storage.read(&sealed, 0, size).await?;
        while let Some(chunk) = data.next().await {
            hasher.update(&chunk.map_err(|e| StorageError::io(&sealed, e))?);
        }
        let actual = hasher.finish();
        if &actual != digest {
            self.discard_upload(repo, id).await?;
            return Err(Error::DigestMismatch {
                expected: digest.clone(),
                actual,
            });
        }
        // The session is sealed now: a refusal here means re-uploading.
        self.commit_gate().await?;
        if self
            .global_blob_meta(digest)
            .await?
            .is_none_or(|meta| meta.size != size)
        {
            self.storage
                .copy(&sealed, &layout::blob_data(digest))
                .await?;
            self.commit_gate().await?;
        }
        self.finish_upload(repo, id, &hash_key(repo, id), digest)
            .await?;
        Ok(size)
    }

    /// Moves a verified session's data to the blob's place.
    async fn publish_upload(
        &self,
        repo: &RepositoryName,
        id: &UploadId,
        size: u64,
        digest: &Digest,
    ) -> Result<()> {
        let blob = layout::blob_data(digest);
        if size == 0 {
            self.storage.put(&blob, Bytes::new()).await?;
            return Ok(());
        }
        self.seal_upload(repo, id, size, &blob).await
    }

    /// Seals a session's data at exactly `size` bytes into `to`.
    async fn seal_upload(
        &self,
        repo: &RepositoryName,
        id: &UploadId,
        size: u64,
        to: &str,
    ) -> Result<()> {
        self.storage
            .seal(&layout::upload_data(repo, id.as_str()), size, to)
            .await
            .map_err(|e| match e {
                // A concurrent completion of the same session won.
                StorageError::NotFound(_) => Error::BlobUploadUnknown,
                // A chunk is being appended, or landed after the hash was taken.
                StorageError::Busy(_) => Error::UploadOutOfOrder {
                    current: size,
                    location: upload_location(repo, id),
                },
                StorageError::OffsetMismatch { actual, .. } => Error::UploadOutOfOrder {
                    current: actual,
                    location: upload_location(repo, id),
                },
                other => other.into(),
            })
    }

    /// Single-request upload of a whole blob (end-4b, POST with `?digest=`).
    pub async fn upload_whole<S>(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        declared: Option<u64>,
        body: S,
    ) -> Result<u64>
    where
        S: Stream<Item = io::Result<Bytes>> + Send + Unpin,
    {
        self.admit_write()?;
        let id = self.start_upload(repo).await?;
        let result = async {
            self.append_hashed(repo, &id, None, declared, body, digest.algorithm())
                .await?;
            self.complete_upload(repo, &id, digest).await
        }
        .await;
        if result.is_err() {
            // A failed single-request upload has no session the client could resume.
            let _ = self.discard_upload(repo, &id).await;
        }
        result
    }

    /// Discards a session and its data (cancel).
    pub async fn cancel_upload(&self, repo: &RepositoryName, id: &UploadId) -> Result<()> {
        self.admit_write()?;
        self.discard_upload(repo, id).await
    }

    /// Discards a session on behalf of an operation already admitted (a
    /// failed completion cleans up even if a window began meanwhile).
    async fn discard_upload(&self, repo: &RepositoryName, id: &UploadId) -> Result<()> {
        self.hashes.forget(&hash_key(repo, id));
        if self
            .delete_if_present(&layout::upload_dir(repo, id.as_str()))
            .await?
        {
            Ok(())
        } else {
            Err(Error::BlobUploadUnknown)
        }
    }

    /// The running hash of a session at `state.size`: from this process's
    /// cache, else from the checkpoint stored with the data (object storage),
    /// else by re-reading the stored bytes (another process on the same
    /// filesystem wrote them). `None` when the data cannot be read back
    /// before it is sealed (object storage) and no state of this algorithm
    /// was kept.
    async fn upload_hasher(
        &self,
        repo: &RepositoryName,
        id: &UploadId,
        key: &str,
        state: &AppendState,
        algorithm: Algorithm,
    ) -> Result<Option<Hasher>> {
        let offset = state.size;
        if let Some(hasher) = self.hashes.take(key, offset, algorithm) {
            return Ok(Some(hasher));
        }
        if let Some(hasher) = state
            .checkpoint
            .as_deref()
            .and_then(Hasher::resume)
            .filter(|h| h.algorithm() == algorithm)
        {
            return Ok(Some(hasher));
        }
        let mut hasher = algorithm.hasher();
        if offset == 0 {
            return Ok(Some(hasher));
        }
        let mut data = match self
            .storage
            .read(&layout::upload_data(repo, id.as_str()), 0, offset)
            .await
        {
            Ok(data) => data,
            Err(StorageError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let mut hashed = 0u64;
        while let Some(chunk) = data.next().await {
            let chunk = chunk.map_err(|e| StorageError::io("upload data", e))?;
            hashed += chunk.len() as u64;
            hasher.update(&chunk);
        }
        if hashed != offset {
            return Err(Error::Internal(format!(
                "upload {id} shrank while hashing ({hashed} of {offset} bytes)"
            )));
        }
        Ok(Some(hasher))
    }
}
