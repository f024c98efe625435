//! Appendable objects (upload data) on an object store, where objects cannot
//! grow: the bytes of object `P` live in a multipart upload at key `P` (parts
//! of exactly `chunksize` bytes) plus a tail object (`P.append/tail-<id>`,
//! less than a part), described by a small state object (`P.append/state`:
//! length, multipart id, part ETags, tail, the caller's checkpoint).
//!
//! Every change to the state is a compare-and-swap on its ETag, and an
//! append first takes a lease in it, so appends and sealing exclude each
//! other across processes: a second writer gets `Busy`, an append after
//! sealing gets `NotFound`. Tails get fresh names, and completing a
//! multipart upload checks each part's ETag, so bytes written by a writer
//! that lost its lease can never end up in a sealed object: the object
//! holds exactly the bytes the state that was verified describes.
//!
//! Memory per append: one part being received plus one being uploaded.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use futures_util::StreamExt;
use object_store::multipart::{MultipartStore, PartId};
use object_store::{
    Attribute, Attributes, ObjectStore, ObjectStoreExt, PutMode, PutMultipartOptions, PutOptions,
    PutPayload, UpdateVersion,
};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use super::S3Storage;
use crate::maintenance::unix_seconds;
use crate::storage::{AppendSource, AppendState, StorageError, StorageResult};

/// How long a writer's lease lasts without renewal; renewed at each part.
const LEASE: Duration = Duration::from_secs(120);
/// S3 numbers parts 1..=10000.
const MAX_PARTS: usize = 10_000;

/// Bytes collected for the next part, as the chunks they arrived in (split
/// at part boundaries without copying): a part costs exactly its own bytes,
/// in allocations the size of network reads, which the allocator hands back
/// once the part is uploaded (one contiguous buffer per part would not be).
struct PartBuffer {
    chunks: Vec<Bytes>,
    len: usize,
    part_size: usize,
}

impl PartBuffer {
    fn new(part_size: usize) -> Self {
        PartBuffer {
            chunks: Vec::new(),
            len: 0,
            part_size,
        }
    }

    /// Takes as much of `bytes` as fits in the current part; returns the rest.
    fn fill(&mut self, mut bytes: Bytes) -> Bytes {
        let room = self.part_size - self.len;
        let now = bytes.split_to(room.min(bytes.len()));
        self.len += now.len();
        if !now.is_empty() {
            self.chunks.push(now);
        }
        bytes
    }

    /// A complete part, if one is ready.
    fn take_full(&mut self) -> Option<PutPayload> {
        (self.len == self.part_size).then(|| {
            self.len = 0;
            std::mem::take(&mut self.chunks).into_iter().collect()
        })
    }

    fn len(&self) -> usize {
        self.len
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn into_payload(self) -> PutPayload {
        self.chunks.into_iter().collect()
    }
}

/// The state object of an appendable object.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Record {
    size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    multipart: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    parts: Vec<Part>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tail: Option<Tail>,
    /// The caller's checkpoint at `size`, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    checkpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    writer: Option<Lease>,
    /// Set once sealing began: the object accepts no more appends.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    sealing: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Part {
    etag: String,
    size: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Tail {
    name: String,
    size: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Lease {
    id: String,
    expires_at: u64,
}

impl Record {
    fn busy(&self, now: SystemTime) -> bool {
        self.writer
            .as_ref()
            .is_some_and(|lease| lease.expires_at > unix_seconds(now))
    }
}

/// The state object's path, and its tails' directory, for appendable `path`.
pub(super) fn sidecar(path: &str) -> String {
    format!("{path}.append")
}

/// Whether a storage path is an appendable object's state object.
pub(super) fn is_state(path: &str) -> bool {
    path.ends_with(".append/state")
}

fn state_path(path: &str) -> String {
    format!("{}/state", sidecar(path))
}

fn tail_path(path: &str, name: &str) -> String {
    format!("{}/{name}", sidecar(path))
}

impl S3Storage {
    /// Reads the state object with its ETag.
    async fn load(&self, path: &str) -> StorageResult<Option<(Record, UpdateVersion)>> {
        let state = state_path(path);
        let result = match self.store().get(&self.location(&state)?).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.error(&state, e)),
        };
        let version = UpdateVersion {
            e_tag: result.meta.e_tag.clone(),
            version: result.meta.version.clone(),
        };
        let bytes = result.bytes().await.map_err(|e| self.error(&state, e))?;
        let record = serde_json::from_slice(&bytes).map_err(|e| StorageError::Io {
            path: state.clone(),
            source: std::io::Error::other(e),
        })?;
        Ok(Some((record, version)))
    }

    /// Writes the state object if it is still `version` (or absent, for `None`).
    async fn store_record(
        &self,
        path: &str,
        record: &Record,
        version: Option<UpdateVersion>,
    ) -> StorageResult<UpdateVersion> {
        let state = state_path(path);
        let json = serde_json::to_vec(record).map_err(|e| StorageError::Io {
            path: state.clone(),
            source: std::io::Error::other(e),
        })?;
        let mode = match version {
            None => PutMode::Create,
            Some(version) => PutMode::Update(version),
        };
        let result = self
            .store()
            .put_opts(
                &self.location(&state)?,
                PutPayload::from(json),
                PutOptions {
                    mode,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| match self.error(&state, e) {
                StorageError::Conflict(_) => StorageError::Busy(path.to_owned()),
                other => other,
            })?;
        Ok(UpdateVersion {
            e_tag: result.e_tag,
            version: result.version,
        })
    }

    pub(super) async fn append_impl(
        &self,
        path: &str,
        offset: u64,
        data: AppendSource<'_>,
    ) -> StorageResult<u64> {
        let now = SystemTime::now();
        let (mut record, version) = match (self.load(path).await?, offset) {
            (None, 0) => (Record::default(), None),
            (None, _) => return Err(StorageError::NotFound(path.to_owned())),
            (Some((record, _)), _) if record.sealing => {
                return Err(StorageError::NotFound(path.to_owned()));
            }
            (Some((record, _)), _) if record.busy(now) => {
                return Err(StorageError::Busy(path.to_owned()));
            }
            (Some((record, _)), _) if record.size != offset => {
                return Err(StorageError::OffsetMismatch {
                    expected: offset,
                    actual: record.size,
                });
            }
            (Some((record, version)), _) => (record, Some(version)),
        };
        let lease_id = uuid::Uuid::new_v4().simple().to_string();
        record.writer = Some(Lease {
            id: lease_id,
            expires_at: unix_seconds(now + LEASE),
        });
        let mut version = self.store_record(path, &record, version).await?;

        let chunk_size = usize::try_from(self.settings().chunk_size).unwrap_or(usize::MAX);
        let mut buffer = PartBuffer::new(chunk_size);
        let old_tail = record.tail.take();
        if let Some(tail) = &old_tail {
            let bytes = self.get_object(&tail_path(path, &tail.name)).await?;
            buffer.fill(bytes);
        }
        let mut in_flight: Option<JoinHandle<StorageResult<Part>>> = None;
        let mut received = 0u64;
        let mut source_error = None;
        let outcome: StorageResult<()> = async {
            while let Some(chunk) = data.next().await {
                let chunk = match chunk {
                    Ok(chunk) => chunk,
                    Err(e) => {
                        source_error = Some(e);
                        break;
                    }
                };
                received += chunk.len() as u64;
                let mut rest = chunk;
                while !rest.is_empty() {
                    rest = buffer.fill(rest);
                    let Some(part) = buffer.take_full() else {
                        continue;
                    };
                    if let Some(previous) = in_flight.take() {
                        record.parts.push(join(path, previous).await?);
                    }
                    if record.parts.len() + 1 >= MAX_PARTS {
                        return Err(StorageError::Io {
                            path: path.to_owned(),
                            source: std::io::Error::other(
                                "upload exceeds 10,000 parts; raise the storage chunksize",
                            ),
                        });
                    }
                    let upload = match &record.multipart {
                        Some(upload) => upload.clone(),
                        None => {
                            let upload = self.create_upload(path).await?;
                            record.multipart = Some(upload.clone());
                            version = self
                                .store_record(path, &record, Some(version.clone()))
                                .await?;
                            upload
                        }
                    };
                    version = self.renew(path, &mut record, &version).await?;
                    in_flight = Some(self.spawn_part(path, upload, record.parts.len(), part));
                }
            }
            if let Some(previous) = in_flight.take() {
                record.parts.push(join(path, previous).await?);
            }
            Ok(())
        }
        .await;
        if let Some(handle) = in_flight.take() {
            handle.abort();
        }
        if let Err(e) = outcome {
            // The parts of this append are not in any stored state: release
            // the lease so the client can resume where the state says.
            self.release(path, version).await;
            return Err(e);
        }

        record.tail = if buffer.is_empty() {
            None
        } else {
            let name = format!("tail-{}", uuid::Uuid::new_v4().simple());
            let size = buffer.len() as u64;
            self.put_payload(&tail_path(path, &name), buffer.into_payload())
                .await?;
            Some(Tail { name, size })
        };
        record.size = offset + received;
        record.checkpoint = data.checkpoint().map(|c| BASE64.encode(c));
        record.writer = None;
        self.store_record(path, &record, Some(version)).await?;
        if let Some(tail) = old_tail {
            let _ = self.delete_object(&tail_path(path, &tail.name)).await;
        }
        match source_error {
            Some(e) => Err(StorageError::Source(e)),
            None => Ok(record.size),
        }
    }

    /// Extends the lease when half of it has passed.
    async fn renew(
        &self,
        path: &str,
        record: &mut Record,
        version: &UpdateVersion,
    ) -> StorageResult<UpdateVersion> {
        let now = unix_seconds(SystemTime::now());
        let Some(lease) = record.writer.as_mut() else {
            return Ok(version.clone());
        };
        if lease.expires_at.saturating_sub(now) > LEASE.as_secs() / 2 {
            return Ok(version.clone());
        }
        lease.expires_at = now + LEASE.as_secs();
        self.store_record(path, record, Some(version.clone())).await
    }

    /// Best effort: clears this writer's lease after a failed append.
    async fn release(&self, path: &str, version: UpdateVersion) {
        if let Ok(Some((mut record, current))) = self.load(path).await
            && current.e_tag == version.e_tag
        {
            record.writer = None;
            let _ = self.store_record(path, &record, Some(current)).await;
        }
    }

    async fn create_upload(&self, path: &str) -> StorageResult<String> {
        let mut attributes = Attributes::new();
        if let Some(class) = &self.settings().storage_class {
            attributes.insert(Attribute::StorageClass, class.clone().into());
        }
        self.store()
            .create_multipart_opts(
                &self.location(path)?,
                PutMultipartOptions {
                    attributes,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| self.error(path, e))
    }

    /// Uploads one part in the background (bounded by the store's part slots).
    fn spawn_part(
        &self,
        path: &str,
        upload: String,
        index: usize,
        data: PutPayload,
    ) -> JoinHandle<StorageResult<Part>> {
        let storage = self.clone();
        let path = path.to_owned();
        tokio::spawn(async move {
            let _slot = storage.part_slot().await;
            let size = data.content_length() as u64;
            let location = storage.location(&path)?;
            let id = storage
                .store()
                .put_part(&location, &upload, index, data)
                .await
                .map_err(|e| storage.error(&path, e))?;
            Ok(Part {
                etag: id.content_id,
                size,
            })
        })
    }

    pub(super) async fn append_state_impl(&self, path: &str) -> StorageResult<AppendState> {
        match self.load(path).await? {
            None => Err(StorageError::NotFound(path.to_owned())),
            Some((record, _)) if record.sealing => Err(StorageError::Conflict(path.to_owned())),
            Some((record, _)) => Ok(AppendState {
                size: record.size,
                checkpoint: record
                    .checkpoint
                    .and_then(|c| BASE64.decode(c).ok())
                    .map(Bytes::from),
            }),
        }
    }

    pub(super) async fn seal_impl(&self, path: &str, size: u64, to: &str) -> StorageResult<()> {
        let Some((mut record, version)) = self.load(path).await? else {
            return Err(StorageError::NotFound(path.to_owned()));
        };
        if record.sealing {
            return Err(StorageError::NotFound(path.to_owned()));
        }
        if record.busy(SystemTime::now()) {
            return Err(StorageError::Busy(path.to_owned()));
        }
        if record.size != size {
            return Err(StorageError::OffsetMismatch {
                expected: size,
                actual: record.size,
            });
        }
        record.sealing = true;
        record.writer = None;
        self.store_record(path, &record, Some(version)).await?;

        let Some(upload) = record.multipart.clone() else {
            return match &record.tail {
                Some(tail) => {
                    self.raw()
                        .copy(&tail_path(path, &tail.name), to, tail.size)
                        .await
                }
                None => self.put_object(to, Bytes::new()).await,
            };
        };
        let location = self.location(path)?;
        let mut parts: Vec<PartId> = record
            .parts
            .iter()
            .map(|p| PartId {
                content_id: p.etag.clone(),
            })
            .collect();
        if let Some(tail) = &record.tail {
            let bytes = self.get_object(&tail_path(path, &tail.name)).await?;
            let id = self
                .store()
                .put_part(&location, &upload, parts.len(), PutPayload::from(bytes))
                .await
                .map_err(|e| self.error(path, e))?;
            parts.push(id);
        }
        self.store()
            .complete_multipart(&location, &upload, parts)
            .await
            .map_err(|e| self.error(path, e))?;
        self.raw().copy(path, to, size).await?;
        let _ = self.delete_object(path).await;
        Ok(())
    }

    /// Aborts the multipart upload a state object names (when deleting it).
    pub(super) async fn abort_upload_of(&self, state: &str) {
        let Some(path) = state.strip_suffix(".append/state") else {
            return;
        };
        if let Ok(Some((record, _))) = self.load(path).await
            && let Some(upload) = record.multipart
            && !record.sealing
            && let Ok(location) = self.location(path)
        {
            let _ = self.store().abort_multipart(&location, &upload).await;
        }
    }
}

async fn join(path: &str, handle: JoinHandle<StorageResult<Part>>) -> StorageResult<Part> {
    handle.await.map_err(|e| StorageError::Io {
        path: path.to_owned(),
        source: std::io::Error::other(e),
    })?
}
