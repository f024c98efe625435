//! GC test helpers: running the real `registry garbage-collect` binary,
//! pushing indexes and referrers, re-verifying everything still tagged, and
//! inspecting or planting content through the `Storage` trait (so the same
//! tests run on the filesystem and on S3).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bytes::Bytes;
use futures_util::{StreamExt, stream};
use registry::maintenance::{DEFAULT_POLL_INTERVAL, lock_path};
use registry::oci::{Algorithm, Digest};
use registry::storage::{Storage, layout};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{CONFIG, LAYER, OCI_INDEX, OCI_MANIFEST, TestRegistry};

/// A finished GC run: exit status, its last stdout line parsed, all of stdout.
pub struct GcRun {
    pub success: bool,
    pub summary: Value,
    pub stdout: String,
    pub stderr: String,
}

/// Writes the config the GC reads (same storage, no listener needed).
pub fn gc_config(dir: &Path, root: &Path, extra: &str) -> PathBuf {
    let path = dir.join("gc-config.yml");
    std::fs::write(&path, super::config_yaml(root, extra)).unwrap();
    path
}

/// `registry garbage-collect <args> CONFIG`.
pub fn gc_command(config: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_registry"));
    command.arg("garbage-collect").args(args).arg(config);
    command
}

/// Runs GC to completion (in a blocking thread) and parses its summary.
pub async fn run_gc(config: &Path, args: &[&str]) -> GcRun {
    let mut command = gc_command(config, args);
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    parse_run(&output)
}

pub fn parse_run(output: &Output) -> GcRun {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let last = stdout.lines().last().unwrap_or_default();
    GcRun {
        success: output.status.success(),
        summary: serde_json::from_str(last).unwrap_or(Value::Null),
        stdout: stdout.clone(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

impl GcRun {
    pub fn count(&self, key: &str) -> u64 {
        self.summary[key]
            .as_u64()
            .unwrap_or_else(|| panic!("summary has no {key}: {}\n{}", self.stdout, self.stderr))
    }

    pub fn assert_ok(&self) -> &Self {
        assert!(self.success, "gc failed:\n{}\n{}", self.stdout, self.stderr);
        self
    }
}

/// Pushes an untagged image by digest; returns its descriptor.
pub async fn push_untagged_image(
    registry: &TestRegistry,
    repo: &str,
    arch: &str,
    layers: &[&[u8]],
) -> Value {
    let config = format!(r#"{{"architecture":"{arch}","os":"linux","repo":"{repo}"}}"#);
    let config_digest = registry.push_blob(repo, config.as_bytes()).await;
    let mut descriptors = Vec::new();
    for layer in layers {
        let digest = registry.push_blob(repo, layer).await;
        descriptors
            .push(json!({"mediaType": LAYER, "digest": digest.to_string(), "size": layer.len()}));
    }
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": CONFIG, "digest": config_digest.to_string(), "size": config.len()},
        "layers": descriptors,
    });
    push_manifest_by_digest(
        registry,
        repo,
        &manifest,
        json!({"architecture": arch, "os": "linux"}),
    )
    .await
}

async fn push_manifest_by_digest(
    registry: &TestRegistry,
    repo: &str,
    manifest: &Value,
    platform: Value,
) -> Value {
    let bytes = serde_json::to_vec(manifest).unwrap();
    let digest = Algorithm::Sha256.digest_of(&bytes);
    let media_type = manifest["mediaType"].as_str().unwrap();
    let response = registry
        .put_manifest(repo, &digest.to_string(), media_type, &bytes)
        .await;
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "push {repo}@{digest}"
    );
    let mut descriptor =
        json!({"mediaType": media_type, "digest": digest.to_string(), "size": bytes.len()});
    if !platform.is_null() {
        descriptor["platform"] = platform;
    }
    descriptor
}

/// A multi-arch index tagged `tag` whose children are pushed untagged.
pub async fn push_index(registry: &TestRegistry, repo: &str, tag: &str, arches: &[&str]) -> Digest {
    let mut children = Vec::new();
    for arch in arches {
        let layer = super::random_bytes(2048);
        let shared = format!("shared base layer of {repo}").into_bytes();
        children.push(push_untagged_image(registry, repo, arch, &[&shared, &layer]).await);
    }
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children});
    let bytes = serde_json::to_vec(&index).unwrap();
    let response = registry.put_manifest(repo, tag, OCI_INDEX, &bytes).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    Algorithm::Sha256.digest_of(&bytes)
}

/// An untagged artifact (signature, SBOM) whose `subject` is `subject`.
pub async fn push_referrer(
    registry: &TestRegistry,
    repo: &str,
    subject: &Digest,
    artifact_type: &str,
) -> Digest {
    let (subject_type, subject_size) = manifest_type_and_size(registry, repo, subject).await;
    let payload = super::random_bytes(512);
    let blob = registry.push_blob(repo, &payload).await;
    let empty = registry.push_blob(repo, b"{}").await;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.to_string(), "size": 2},
        "layers": [{"mediaType": "application/octet-stream", "digest": blob.to_string(), "size": payload.len()}],
        "subject": {"mediaType": subject_type, "digest": subject.to_string(), "size": subject_size},
    });
    let descriptor = push_manifest_by_digest(registry, repo, &manifest, Value::Null).await;
    descriptor["digest"].as_str().unwrap().parse().unwrap()
}

async fn manifest_type_and_size(
    registry: &TestRegistry,
    repo: &str,
    digest: &Digest,
) -> (String, usize) {
    let response = registry
        .request(Method::GET, &format!("/v2/{repo}/manifests/{digest}"))
        .header("accept", format!("{OCI_MANIFEST}, {OCI_INDEX}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let media_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    (media_type, response.bytes().await.unwrap().len())
}

/// Fetches a manifest by reference, verifying its digest when given one.
async fn fetch_manifest(registry: &TestRegistry, repo: &str, reference: &str) -> (Digest, Value) {
    let response = registry
        .request(Method::GET, &format!("/v2/{repo}/manifests/{reference}"))
        .header("accept", format!("{OCI_MANIFEST}, {OCI_INDEX}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{repo}:{reference}");
    let bytes = response.bytes().await.unwrap();
    let digest = Algorithm::Sha256.digest_of(&bytes);
    if reference.contains(':') {
        assert_eq!(digest.to_string(), reference, "manifest bytes verify");
    }
    (digest, serde_json::from_slice(&bytes).unwrap())
}

/// Pulls a manifest and everything under it (children, config, layers) and
/// every referrer of each manifest, re-verifying every digest. Returns how
/// many blobs were verified.
pub async fn pull_everything(registry: &TestRegistry, repo: &str, reference: &str) -> usize {
    let mut verified = 0;
    let mut pending = vec![reference.to_owned()];
    while let Some(reference) = pending.pop() {
        let (digest, manifest) = fetch_manifest(registry, repo, &reference).await;
        for child in manifest["manifests"].as_array().into_iter().flatten() {
            pending.push(child["digest"].as_str().unwrap().to_owned());
        }
        let blobs = manifest["config"]
            .as_object()
            .into_iter()
            .map(|c| Value::Object(c.clone()))
            .chain(manifest["layers"].as_array().into_iter().flatten().cloned());
        for blob in blobs {
            let expected = blob["digest"].as_str().unwrap();
            let response = registry.get(&format!("/v2/{repo}/blobs/{expected}")).await;
            assert_eq!(response.status(), StatusCode::OK, "{repo} blob {expected}");
            let bytes = response.bytes().await.unwrap();
            assert_eq!(
                Algorithm::Sha256.digest_of(&bytes).to_string(),
                expected,
                "blob verifies"
            );
            verified += 1;
        }
        let referrers: Value = registry
            .get_json(&format!("/v2/{repo}/referrers/{digest}"))
            .await;
        for referrer in referrers["manifests"].as_array().into_iter().flatten() {
            pending.push(referrer["digest"].as_str().unwrap().to_owned());
        }
    }
    verified
}

/// Pulls every tag of every repository in the catalog, fully verified.
/// Returns (tags pulled, blobs verified).
pub async fn pull_every_tag(registry: &TestRegistry) -> (usize, usize) {
    let catalog: Value = registry.get_json("/v2/_catalog").await;
    let (mut tags_pulled, mut blobs) = (0, 0);
    for repo in catalog["repositories"].as_array().unwrap() {
        let repo = repo.as_str().unwrap();
        let tags: Value = registry.get_json(&format!("/v2/{repo}/tags/list")).await;
        for tag in tags["tags"].as_array().into_iter().flatten() {
            blobs += pull_everything(registry, repo, tag.as_str().unwrap()).await;
            tags_pulled += 1;
        }
    }
    (tags_pulled, blobs)
}

/// How long a registry may take to notice the maintenance lock appearing or
/// going: one `pollinterval` (100-200 ms in these tests) plus a slow CI box.
pub const LOCK_NOTICED: std::time::Duration = std::time::Duration::from_secs(20);

/// Starts uploads to `repo` until one is answered `status`: 405 once the
/// registry's lock poll has seen a GC window, 202 once it has seen it end.
/// Returns that answer.
pub async fn uploads_answered(
    registry: &TestRegistry,
    repo: &str,
    status: StatusCode,
) -> reqwest::Response {
    let path = format!("/v2/{repo}/blobs/uploads/");
    super::eventually(
        &format!("POST {path} answered {status}"),
        LOCK_NOTICED,
        async || {
            let response = registry.request(Method::POST, &path).send().await.unwrap();
            if response.status() == status {
                Ok(response)
            } else {
                Err(response.status())
            }
        },
    )
    .await
}

/// A `DELETE` sent just after a read-only GC, retried while the registry
/// still refuses it for the finished window: a serving registry turns writes
/// away at request start from its polled view of the maintenance lock, so
/// for up to one `storage.maintenance.lock.pollinterval` (2s by default)
/// after the GC released the lock. How likely that is grows with how long
/// the GC held the lock (milliseconds on a filesystem, up to a second on
/// S3). A refused delete changes nothing, so retrying is safe; after two
/// intervals the last answer is returned whatever it is.
pub async fn delete_after_window(registry: &TestRegistry, path: &str) -> reqwest::Response {
    let deadline = std::time::Instant::now() + 2 * DEFAULT_POLL_INTERVAL;
    loop {
        let response = registry.delete(path).await;
        if response.status() != StatusCode::METHOD_NOT_ALLOWED
            || std::time::Instant::now() > deadline
        {
            return response;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Lists a directory-like prefix; a missing one is empty.
async fn list_or_empty(storage: &dyn Storage, path: &str) -> Vec<String> {
    match storage.list(path).await {
        Ok(names) => names,
        Err(e) if e.is_not_found() => Vec::new(),
        Err(e) => panic!("list {path}: {e}"),
    }
}

/// The `blobs/sha256/<xx>/<hex>` entries the blob store lists, without
/// checking that each still holds `data`: a cheap upper bound of
/// [`blobs_in`] (one listing per `<xx>` prefix) for polling.
pub async fn listed_blob_dirs(storage: &dyn Storage) -> Vec<Digest> {
    let base = format!("{}/sha256", layout::BLOBS);
    let prefixes = list_or_empty(storage, &base).await;
    let listed: Vec<Vec<String>> = stream::iter(prefixes)
        .map(|prefix| {
            let dir = format!("{base}/{prefix}");
            async move { list_or_empty(storage, &dir).await }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    listed
        .into_iter()
        .flatten()
        .filter_map(|hex| format!("sha256:{hex}").parse().ok())
        .collect()
}

/// Digests of every blob in the blob store: each listed
/// `blobs/sha256/<xx>/<hex>` whose `data` object exists.
pub async fn blobs_in(storage: &dyn Storage) -> BTreeSet<String> {
    stream::iter(listed_blob_dirs(storage).await)
        .map(|digest| async move {
            let path = layout::blob_data(&digest);
            match storage.stat(&path).await {
                Ok(_) => Some(digest.to_string()),
                Err(e) if e.is_not_found() => None,
                Err(e) => panic!("stat {path}: {e}"),
            }
        })
        .buffer_unordered(32)
        .filter_map(std::future::ready)
        .collect()
        .await
}

impl TestRegistry {
    /// Digests of every blob in the blob store ([`blobs_in`] its storage).
    pub async fn stored_blobs(&self) -> BTreeSet<String> {
        blobs_in(self.storage.as_ref()).await
    }
}

/// Digests of every blob under a storage *directory*. Filesystem only: for
/// `gc_compat.rs`, which copies storage directories with `cp -a`; everything
/// else inspects storage through the trait ([`blobs_in`]).
pub fn stored_blobs(root: &Path) -> BTreeSet<String> {
    let mut blobs = BTreeSet::new();
    let base = root.join("docker/registry/v2/blobs/sha256");
    for prefix in std::fs::read_dir(&base).into_iter().flatten().flatten() {
        for blob in std::fs::read_dir(prefix.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if blob.path().join("data").exists() {
                blobs.insert(format!("sha256:{}", blob.file_name().to_string_lossy()));
            }
        }
    }
    blobs
}

/// Puts an unreferenced blob straight into the blob store.
pub async fn write_orphan(storage: &dyn Storage, data: &[u8]) -> Digest {
    let digest = Algorithm::Sha256.digest_of(data);
    storage
        .put(&layout::blob_data(&digest), Bytes::copy_from_slice(data))
        .await
        .unwrap();
    digest
}

/// Puts `count` distinct orphans (`orphan 0`, `orphan 1`, ...), 32 at a
/// time; returns their digests.
pub async fn write_orphans(storage: &dyn Storage, count: usize) -> Vec<Digest> {
    stream::iter(0..count)
        .map(|n| async move { write_orphan(storage, format!("orphan {n}").as_bytes()).await })
        .buffer_unordered(32)
        .collect()
        .await
}

/// How many of `blobs` are still in the blob store: a stat each, one at a
/// time, so polling this leaves a GC working on the same server its share.
pub async fn how_many_stored(storage: &dyn Storage, blobs: &[Digest]) -> usize {
    let mut stored = 0;
    for digest in blobs {
        let path = layout::blob_data(digest);
        match storage.stat(&path).await {
            Ok(_) => stored += 1,
            Err(e) if e.is_not_found() => {}
            Err(e) => panic!("stat {path}: {e}"),
        }
    }
    stored
}

/// Every object under `docker/` (all the registry stores) with its bytes.
pub async fn snapshot(storage: &dyn Storage) -> BTreeMap<String, Vec<u8>> {
    let mut objects = BTreeMap::new();
    for path in super::objects_under(storage, "docker").await.into_keys() {
        let bytes = storage
            .get(&path)
            .await
            .unwrap_or_else(|e| panic!("get {path}: {e}"));
        objects.insert(path, bytes.to_vec());
    }
    objects
}

/// Whether the maintenance lock object exists (live or expired).
pub async fn lock_exists(storage: &dyn Storage) -> bool {
    match storage.stat(&lock_path()).await {
        Ok(_) => true,
        Err(e) if e.is_not_found() => false,
        Err(e) => panic!("stat {}: {e}", lock_path()),
    }
}
