//! GC test helpers: running the real `registry garbage-collect` binary,
//! pushing indexes and referrers, and re-verifying everything still tagged.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use registry::oci::{Algorithm, Digest};
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

/// Digests of every blob in the blob store.
pub fn stored_blobs(root: &Path) -> std::collections::BTreeSet<String> {
    let mut blobs = std::collections::BTreeSet::new();
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

/// Writes an unreferenced blob straight into the blob store.
pub fn write_orphan(root: &Path, data: &[u8]) -> Digest {
    let digest = Algorithm::Sha256.digest_of(data);
    let dir = root
        .join("docker/registry/v2/blobs/sha256")
        .join(&digest.hex()[..2])
        .join(digest.hex());
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("data"), data).unwrap();
    digest
}
