//! The requests `object_store` does not make: CopyObject with distribution's
//! storage class, and UploadPartCopy with a byte range (the only way to copy
//! an object above 5 GiB, and faster in parallel above the threshold). They
//! are signed (SigV4) with the store's own credential provider, so the
//! default chain and web identity apply to them as well.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt, stream};
use object_store::aws::{AmazonS3, AwsAuthorizer};
use object_store::client::{HttpClient, HttpRequestBody};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::{Attribute, Attributes, PutMultipartOptions};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::error::{element, from_object_store, remote};
use super::settings::{BucketSettings, Encryption};
use crate::storage::{StorageError, StorageResult};

/// Characters kept as they are in a key inside a URL (RFC 3986 unreserved and `/`).
const KEY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// How often a failed request is retried (object_store retries its own).
const ATTEMPTS: usize = 3;

/// Signs and sends the extra requests.
#[derive(Debug, Clone)]
pub(super) struct RawClient {
    http: HttpClient,
    store: Arc<AmazonS3>,
    settings: Arc<BucketSettings>,
}

impl RawClient {
    pub(super) fn new(
        http: HttpClient,
        store: Arc<AmazonS3>,
        settings: Arc<BucketSettings>,
    ) -> Self {
        RawClient {
            http,
            store,
            settings,
        }
    }

    /// Copies `from` to `to` (storage paths) server-side: one CopyObject up
    /// to the threshold, else a multipart copy in ranges.
    pub(super) async fn copy(&self, from: &str, to: &str, size: u64) -> StorageResult<()> {
        if size <= self.settings.copy_threshold {
            self.copy_object(from, to).await
        } else {
            self.multipart_copy(from, to, size).await
        }
    }

    async fn copy_object(&self, from: &str, to: &str) -> StorageResult<()> {
        let url = self.url(to, "");
        let mut headers = self.write_headers();
        headers.push(("x-amz-copy-source", self.copy_source(from)));
        self.send(http::Method::PUT, &url, headers, to).await?;
        Ok(())
    }

    async fn multipart_copy(&self, from: &str, to: &str, size: u64) -> StorageResult<()> {
        let bucket = &self.settings.bucket;
        let location = Path::from(self.settings.key(to));
        let mut attributes = Attributes::new();
        if let Some(class) = &self.settings.storage_class {
            attributes.insert(Attribute::StorageClass, class.clone().into());
        }
        let upload = self
            .store
            .create_multipart_opts(
                &location,
                PutMultipartOptions {
                    attributes,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| from_object_store(bucket, to, e))?;
        let chunk = self.settings.copy_chunk_size;
        let ranges: Vec<(usize, u64, u64)> = (0..size.div_ceil(chunk))
            .map(|i| (i as usize, i * chunk, ((i + 1) * chunk).min(size) - 1))
            .collect();
        let copied = stream::iter(ranges)
            .map(|(index, start, end)| {
                let upload = upload.clone();
                async move {
                    let query = format!("?partNumber={}&uploadId={}", index + 1, encode(&upload));
                    let url = self.url(to, &query);
                    let headers = vec![
                        ("x-amz-copy-source", self.copy_source(from)),
                        ("x-amz-copy-source-range", format!("bytes={start}-{end}")),
                    ];
                    let body = self.send(http::Method::PUT, &url, headers, to).await?;
                    let text = String::from_utf8_lossy(&body);
                    let etag = element(&text, "ETag").ok_or_else(|| {
                        remote(
                            bucket,
                            to,
                            &format!("UploadPartCopy answered without an ETag: {text}"),
                        )
                    })?;
                    let etag = quick_xml::escape::unescape(&etag)
                        .map(|e| e.into_owned())
                        .unwrap_or(etag);
                    Ok::<_, StorageError>((index, etag))
                }
            })
            .buffer_unordered(self.settings.copy_concurrency)
            .try_collect::<Vec<_>>()
            .await;
        let result = match copied {
            Ok(mut parts) => {
                parts.sort_by_key(|(index, _)| *index);
                let parts = parts
                    .into_iter()
                    .map(|(_, content_id)| PartId { content_id })
                    .collect();
                self.store
                    .complete_multipart(&location, &upload, parts)
                    .await
                    .map(|_| ())
                    .map_err(|e| from_object_store(bucket, to, e))
            }
            Err(e) => Err(e),
        };
        if result.is_err() {
            let _ = self.store.abort_multipart(&location, &upload).await;
        }
        result
    }

    /// Deletes "directory" keys (`a/b/`): stores that keep folders as
    /// entries (SeaweedFS) otherwise list a prefix whose objects are all
    /// gone. A folder that still holds objects is left alone by such stores,
    /// and elsewhere the keys simply do not exist. Needs a raw request:
    /// `object_store` paths cannot end in `/`.
    pub(super) async fn delete_folders(&self, folders: &[String]) -> StorageResult<()> {
        use md5::Digest as _;
        for batch in folders.chunks(1000) {
            let mut body = String::from("<Delete><Quiet>true</Quiet>");
            for folder in batch {
                let key = format!("{}/", self.settings.key(folder));
                body.push_str("<Object><Key>");
                body.push_str(&quick_xml::escape::escape(key.as_str()));
                body.push_str("</Key></Object>");
            }
            body.push_str("</Delete>");
            let md5 = base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                md5::Md5::digest(body.as_bytes()),
            );
            let url = format!("{}/?delete", self.settings.bucket_url());
            let headers = vec![
                ("content-md5", md5),
                ("content-type", "application/xml".into()),
            ];
            let response = self
                .send_with_body(
                    http::Method::POST,
                    &url,
                    headers,
                    Bytes::from(body),
                    &batch[0],
                )
                .await?;
            let text = String::from_utf8_lossy(&response);
            if text.contains("<Error>") && !text.contains("<Code>NoSuchKey</Code>") {
                return Err(remote(&self.settings.bucket, &batch[0], &text));
            }
        }
        Ok(())
    }

    /// Headers of a request that writes an object: storage class and encryption.
    fn write_headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = Vec::new();
        if let Some(class) = &self.settings.storage_class {
            headers.push(("x-amz-storage-class", class.clone()));
        }
        match &self.settings.encryption {
            Encryption::None => {}
            Encryption::S3Managed => {
                headers.push(("x-amz-server-side-encryption", "AES256".into()));
            }
            Encryption::Kms(key) => {
                headers.push(("x-amz-server-side-encryption", "aws:kms".into()));
                if let Some(key) = key {
                    headers.push(("x-amz-server-side-encryption-aws-kms-key-id", key.clone()));
                }
            }
        }
        headers
    }

    fn copy_source(&self, from: &str) -> String {
        format!(
            "/{}/{}",
            self.settings.bucket,
            encode(&self.settings.key(from))
        )
    }

    fn url(&self, path: &str, query: &str) -> String {
        format!(
            "{}/{}{query}",
            self.settings.bucket_url(),
            encode(&self.settings.key(path))
        )
    }

    /// Sends a signed request and returns the response body; S3 can answer
    /// a copy with 200 and an error document, which counts as a failure.
    async fn send(
        &self,
        method: http::Method,
        url: &str,
        headers: Vec<(&'static str, String)>,
        path: &str,
    ) -> StorageResult<Bytes> {
        self.send_with_body(method, url, headers, Bytes::new(), path)
            .await
    }

    async fn send_with_body(
        &self,
        method: http::Method,
        url: &str,
        headers: Vec<(&'static str, String)>,
        body: Bytes,
        path: &str,
    ) -> StorageResult<Bytes> {
        let bucket = &self.settings.bucket;
        let mut last = None;
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(100 << attempt)).await;
            }
            let credential = self
                .store
                .credentials()
                .get_credential()
                .await
                .map_err(|e| from_object_store(bucket, path, e))?;
            let mut builder = http::Request::builder().method(method.clone()).uri(url);
            for (name, value) in &headers {
                builder = builder.header(*name, value);
            }
            if let Some(agent) = &self.settings.user_agent {
                builder = builder.header(http::header::USER_AGENT, agent);
            }
            let mut request = builder
                .header(http::header::CONTENT_LENGTH, body.len().to_string())
                .body(HttpRequestBody::from(body.clone()))
                .map_err(|e| remote(bucket, path, &e.to_string()))?;
            AwsAuthorizer::new(&credential, "s3", &self.settings.region)
                .try_authorize(&mut request, None)
                .map_err(|e| from_object_store(bucket, path, e))?;
            let response = match self.http.execute(request).await {
                Ok(response) => response,
                Err(e) => {
                    last = Some(remote(bucket, path, &e.to_string()));
                    continue;
                }
            };
            let status = response.status();
            let body = match response.into_body().bytes().await {
                Ok(body) => body,
                Err(e) => {
                    last = Some(remote(bucket, path, &e.to_string()));
                    continue;
                }
            };
            let text = String::from_utf8_lossy(&body);
            // A DeleteObjects answer lists per-key errors itself (handled by the caller).
            let copy_error = text.contains("<Error>") && !url.ends_with("?delete");
            if status.is_success() && !copy_error {
                return Ok(body);
            }
            let error = remote(
                bucket,
                path,
                &format!("status code: {} {text}", status.as_u16()),
            );
            if status.is_server_error() || text.contains("<Code>InternalError</Code>") {
                last = Some(error);
                continue;
            }
            return Err(error);
        }
        Err(last.unwrap_or_else(|| remote(bucket, path, "request failed")))
    }
}

fn encode(text: &str) -> String {
    utf8_percent_encode(text, KEY).to_string()
}
