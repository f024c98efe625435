//! S3-compatible object storage (AWS S3, Aliyun OSS's S3 API, SeaweedFS,
//! Ceph RGW, ...) on the `object_store` crate, with distribution's key
//! layout: a storage path `docker/registry/v2/...` is the key
//! `<rootdirectory>/docker/registry/v2/...`, so a bucket written by
//! `registry:2`'s s3-aws or oss driver is served as-is and vice versa.
//!
//! Puts are single PutObjects (atomic); conditional writes use
//! `If-None-Match: *` / `If-Match`; directories are key prefixes, listed
//! with a delimiter and deleted deepest key first; upload data uses
//! multipart uploads ([`append`]); copies are server-side ([`raw`]).

mod append;
mod error;
mod raw;
pub mod settings;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt, stream};
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey, S3ConditionalPut};
use object_store::client::{HttpConnector, ReqwestConnector};
use object_store::path::Path;
use object_store::signer::Signer;
use object_store::{
    Attribute, Attributes, ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt,
    PutMode, PutOptions, PutPayload, UpdateVersion,
};
use tokio::sync::{Semaphore, SemaphorePermit};

use self::error::from_object_store;
use self::raw::RawClient;
use self::settings::{BucketSettings, Credentials, Encryption};
use super::{
    AppendSource, AppendState, ByteStream, ObjectMeta, Precondition, Storage, StorageError,
    StorageResult, Version, check_path,
};

/// Part uploads in flight across every append of this process: bounds the
/// memory parts take (each holds `chunksize` bytes) whatever the number of
/// concurrent uploads.
const PART_SLOTS: usize = 16;
/// Keys per DeleteObjects request (S3's maximum).
const DELETE_BATCH: usize = 1000;
/// Prefixes listed at once when deleting many.
const LIST_CONCURRENCY: usize = 16;

/// A bucket as storage.
#[derive(Debug, Clone)]
pub struct S3Storage {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<AmazonS3>,
    settings: Arc<BucketSettings>,
    raw: RawClient,
    part_slots: Semaphore,
}

impl S3Storage {
    /// Builds the client (no request is made; `check` reaches the bucket).
    pub fn open(settings: BucketSettings) -> StorageResult<Self> {
        // The HTTP client's TLS uses the process-wide rustls provider; ring
        // is the one this workspace builds (a second install is a no-op).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let bucket = settings.bucket.clone();
        let fail = |e: object_store::Error| from_object_store(&bucket, "", e);
        let mut options = ClientOptions::new()
            .with_allow_http(true)
            .with_allow_invalid_certificates(settings.skip_verify)
            // Blob downloads stream for as long as the client reads; a stalled
            // connection is caught by the read timeout instead.
            .with_timeout_disabled()
            .with_connect_timeout(Duration::from_secs(10))
            .with_read_timeout(Duration::from_secs(60));
        if let Some(agent) = &settings.user_agent {
            let agent = http::HeaderValue::from_str(agent).map_err(|e| StorageError::Io {
                path: "storage.s3.useragent".into(),
                source: std::io::Error::other(e),
            })?;
            options = options.with_user_agent(agent);
        }
        let mut builder = match &settings.credentials {
            Credentials::DefaultChain => AmazonS3Builder::from_env(),
            Credentials::Static {
                access_key,
                secret_key,
                session_token,
            } => {
                let builder = AmazonS3Builder::new()
                    .with_access_key_id(access_key)
                    .with_secret_access_key(secret_key);
                match session_token {
                    Some(token) => builder.with_token(token),
                    None => builder,
                }
            }
        };
        builder = builder
            .with_bucket_name(&settings.bucket)
            .with_region(&settings.region)
            .with_virtual_hosted_style_request(settings.virtual_hosted)
            .with_conditional_put(S3ConditionalPut::ETagMatch)
            .with_client_options(options.clone());
        if let Some(endpoint) = &settings.endpoint {
            let endpoint = if settings.virtual_hosted {
                settings.bucket_url()
            } else {
                endpoint.clone()
            };
            builder = builder.with_endpoint(endpoint);
        }
        let sse_key = || {
            "aws_server_side_encryption"
                .parse::<AmazonS3ConfigKey>()
                .map_err(fail)
        };
        builder = match &settings.encryption {
            Encryption::None => builder,
            Encryption::S3Managed => builder.with_config(sse_key()?, "AES256"),
            Encryption::Kms(Some(key)) => builder.with_sse_kms_encryption(key),
            Encryption::Kms(None) => builder.with_config(sse_key()?, "aws:kms"),
        };
        let store = Arc::new(builder.build().map_err(fail)?);
        let http = ReqwestConnector::default()
            .connect(&options)
            .map_err(fail)?;
        let settings = Arc::new(settings);
        Ok(S3Storage {
            inner: Arc::new(Inner {
                raw: RawClient::new(http, store.clone(), settings.clone()),
                store,
                settings,
                part_slots: Semaphore::new(PART_SLOTS),
            }),
        })
    }

    pub fn settings(&self) -> &BucketSettings {
        &self.inner.settings
    }

    fn store(&self) -> &AmazonS3 {
        &self.inner.store
    }

    fn raw(&self) -> &RawClient {
        &self.inner.raw
    }

    async fn part_slot(&self) -> Option<SemaphorePermit<'_>> {
        self.inner.part_slots.acquire().await.ok()
    }

    /// The object location of a storage path.
    fn location(&self, path: &str) -> StorageResult<Path> {
        check_path(path)?;
        Ok(Path::from(self.settings().key(path)))
    }

    fn error(&self, path: &str, error: object_store::Error) -> StorageError {
        from_object_store(&self.settings().bucket, path, error)
    }

    /// The storage path of a key listed from the bucket.
    fn path_of(&self, location: &Path) -> String {
        let key = location.as_ref();
        let root = &self.settings().root;
        if root.is_empty() {
            key.to_owned()
        } else {
            key.strip_prefix(root.as_str())
                .map_or(key, |rest| rest.trim_start_matches('/'))
                .to_owned()
        }
    }

    fn write_attributes(&self) -> Attributes {
        let mut attributes = Attributes::new();
        if let Some(class) = &self.settings().storage_class {
            attributes.insert(Attribute::StorageClass, class.clone().into());
        }
        attributes
    }

    async fn get_object(&self, path: &str) -> StorageResult<Bytes> {
        let result = self
            .store()
            .get(&self.location(path)?)
            .await
            .map_err(|e| self.error(path, e))?;
        result.bytes().await.map_err(|e| self.error(path, e))
    }

    async fn put_object(&self, path: &str, data: Bytes) -> StorageResult<()> {
        self.put_payload(path, PutPayload::from(data)).await
    }

    async fn put_payload(&self, path: &str, data: PutPayload) -> StorageResult<()> {
        self.put_with(path, data, PutMode::Overwrite)
            .await
            .map(|_| ())
    }

    async fn put_with(
        &self,
        path: &str,
        data: PutPayload,
        mode: PutMode,
    ) -> StorageResult<Version> {
        let result = self
            .store()
            .put_opts(
                &self.location(path)?,
                data,
                PutOptions {
                    mode,
                    attributes: self.write_attributes(),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| self.error(path, e))?;
        Ok(Version(result.e_tag.unwrap_or_default()))
    }

    async fn delete_object(&self, path: &str) -> StorageResult<()> {
        self.store()
            .delete(&self.location(path)?)
            .await
            .map_err(|e| self.error(path, e))
    }

    /// Every key at `path` or below it, as storage paths.
    async fn keys_under(&self, path: &str) -> StorageResult<Vec<String>> {
        let location = self.location(path)?;
        let mut keys: Vec<String> = self
            .store()
            .list(Some(&location))
            .map_ok(|meta| self.path_of(&meta.location))
            .try_collect()
            .await
            .map_err(|e| self.error(path, e))?;
        match self.store().head(&location).await {
            Ok(_) => keys.push(path.to_owned()),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(self.error(path, e)),
        }
        Ok(keys)
    }

    /// Deletes keys deepest first (a tag's history before its `current`
    /// link), aborting the multipart uploads of appendable objects, then the
    /// folder entries some stores keep for the deleted paths (`roots`), their
    /// subfolders and their parents.
    async fn delete_keys(&self, mut keys: Vec<String>, roots: &[String]) -> StorageResult<()> {
        for state in keys.iter().filter(|k| append::is_state(k)) {
            self.abort_upload_of(state).await;
        }
        keys.sort_by_key(|k| std::cmp::Reverse(k.matches('/').count()));
        keys.dedup();
        for batch in keys.chunks(DELETE_BATCH) {
            let locations = batch
                .iter()
                .map(|k| self.location(k))
                .collect::<StorageResult<Vec<_>>>()?;
            let mut results = self
                .store()
                .delete_stream(stream::iter(locations.into_iter().map(Ok)).boxed());
            while let Some(result) = results.next().await {
                match result {
                    Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(self.error(&batch[0], e)),
                }
            }
        }
        let folders = folders_of(&keys, roots);
        if !folders.is_empty() {
            self.raw().delete_folders(&folders).await?;
        }
        Ok(())
    }
}

/// The folders that deleting `keys` below `roots` may leave behind, deepest
/// first: every folder between a key and its root, the root itself (when it
/// is a folder) and the root's parent.
fn folders_of(keys: &[String], roots: &[String]) -> Vec<String> {
    let mut folders = std::collections::BTreeSet::new();
    for root in roots {
        for key in keys.iter().filter(|k| k.starts_with(root.as_str())) {
            let mut folder = key.as_str();
            while let Some((parent, _)) = folder.rsplit_once('/') {
                if parent.len() < root.len() {
                    break;
                }
                folders.insert(parent.to_owned());
                folder = parent;
            }
        }
        if let Some((parent, _)) = root.rsplit_once('/') {
            folders.insert(parent.to_owned());
        }
    }
    let mut folders: Vec<String> = folders.into_iter().collect();
    folders.sort_by_key(|f| std::cmp::Reverse(f.matches('/').count()));
    folders
}

#[async_trait]
impl Storage for S3Storage {
    async fn get(&self, path: &str) -> StorageResult<Bytes> {
        self.get_object(path).await
    }

    async fn stat(&self, path: &str) -> StorageResult<ObjectMeta> {
        let meta = self
            .store()
            .head(&self.location(path)?)
            .await
            .map_err(|e| self.error(path, e))?;
        Ok(ObjectMeta {
            size: meta.size,
            modified: SystemTime::from(meta.last_modified),
        })
    }

    async fn read(&self, path: &str, offset: u64, len: u64) -> StorageResult<ByteStream> {
        if len == 0 {
            self.stat(path).await?;
            return Ok(Box::pin(stream::empty()));
        }
        let options = GetOptions {
            range: Some(GetRange::Bounded(offset..offset + len)),
            ..Default::default()
        };
        let result = self
            .store()
            .get_opts(&self.location(path)?, options)
            .await
            .map_err(|e| self.error(path, e))?;
        Ok(Box::pin(
            result.into_stream().map_err(std::io::Error::other),
        ))
    }

    async fn put(&self, path: &str, data: Bytes) -> StorageResult<()> {
        self.put_object(path, data).await
    }

    async fn put_if(
        &self,
        path: &str,
        data: Bytes,
        condition: Precondition,
    ) -> StorageResult<Version> {
        let mode = match condition {
            Precondition::Absent => PutMode::Create,
            Precondition::Matches(Version(e_tag)) => PutMode::Update(UpdateVersion {
                e_tag: Some(e_tag),
                version: None,
            }),
        };
        self.put_with(path, PutPayload::from(data), mode).await
    }

    async fn get_versioned(&self, path: &str) -> StorageResult<(Bytes, Version)> {
        let result = self
            .store()
            .get(&self.location(path)?)
            .await
            .map_err(|e| self.error(path, e))?;
        let version = Version(result.meta.e_tag.clone().unwrap_or_default());
        let bytes = result.bytes().await.map_err(|e| self.error(path, e))?;
        Ok((bytes, version))
    }

    async fn append(&self, path: &str, offset: u64, data: AppendSource<'_>) -> StorageResult<u64> {
        self.append_impl(path, offset, data).await
    }

    async fn append_state(&self, path: &str) -> StorageResult<AppendState> {
        self.append_state_impl(path).await
    }

    async fn seal(&self, path: &str, size: u64, to: &str) -> StorageResult<()> {
        self.seal_impl(path, size, to).await
    }

    async fn copy(&self, from: &str, to: &str) -> StorageResult<()> {
        let size = self.stat(from).await?.size;
        self.raw().copy(from, to, size).await
    }

    async fn presigned_url(
        &self,
        path: &str,
        method: &http::Method,
        expires_in: Duration,
    ) -> StorageResult<Option<String>> {
        let url = self
            .store()
            .signed_url(method.clone(), &self.location(path)?, expires_in)
            .await
            .map_err(|e| self.error(path, e))?;
        Ok(Some(url.to_string()))
    }

    async fn list(&self, path: &str) -> StorageResult<Vec<String>> {
        let listing = self
            .store()
            .list_with_delimiter(Some(&self.location(path)?))
            .await
            .map_err(|e| self.error(path, e))?;
        let names: Vec<String> = listing
            .common_prefixes
            .iter()
            .chain(listing.objects.iter().map(|o| &o.location))
            .filter_map(|location| location.filename().map(str::to_owned))
            .collect();
        if names.is_empty() {
            // Object stores have no empty directories.
            return Err(StorageError::NotFound(path.to_owned()));
        }
        Ok(names)
    }

    async fn delete(&self, path: &str) -> StorageResult<()> {
        let keys = self.keys_under(path).await?;
        if keys.is_empty() {
            return Err(StorageError::NotFound(path.to_owned()));
        }
        self.delete_keys(keys, &[path.to_owned()]).await
    }

    async fn delete_batch(&self, paths: &[String]) -> StorageResult<u64> {
        let found: Vec<Vec<String>> = stream::iter(paths.iter().cloned())
            .map(|path| async move { self.keys_under(&path).await })
            .buffer_unordered(LIST_CONCURRENCY)
            .try_collect()
            .await?;
        let existed = found.iter().filter(|keys| !keys.is_empty()).count() as u64;
        self.delete_keys(found.into_iter().flatten().collect(), paths)
            .await?;
        Ok(existed)
    }

    async fn check(&self, writes: bool) -> StorageResult<()> {
        // One LIST request: reaches the bucket with these credentials.
        let root = &self.settings().root;
        let prefix = (!root.is_empty()).then(|| Path::from(root.as_str()));
        if let Some(Err(e)) = self.store().list(prefix.as_ref()).next().await {
            return Err(self.error(root, e));
        }
        if writes {
            // A PUT and a DELETE: read-only credentials or a bucket policy
            // refusing writes make the registry unready, not its pushes fail.
            let probe = super::layout::readiness_probe(&uuid::Uuid::new_v4().simple().to_string());
            self.put(&probe, Bytes::from_static(b"readyz")).await?;
            self.delete(&probe).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_left_by_a_delete_deepest_first() {
        let keys = vec![
            "r/tags/v1/current/link".to_owned(),
            "r/tags/v1/index/sha256/ab/link".to_owned(),
        ];
        assert_eq!(
            folders_of(&keys, &["r/tags/v1".to_owned()]),
            [
                "r/tags/v1/index/sha256/ab",
                "r/tags/v1/index/sha256",
                "r/tags/v1/current",
                "r/tags/v1/index",
                "r/tags/v1",
                "r/tags",
            ]
        );
        // Deleting one object: its folder (the root's parent) may be left.
        assert_eq!(
            folders_of(&["a/b/link".to_owned()], &["a/b/link".to_owned()]),
            ["a/b"]
        );
    }
}
