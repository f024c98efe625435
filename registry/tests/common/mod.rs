//! Test harness: a real registry on 127.0.0.1:0 over a temp directory, and
//! helpers that speak the distribution API with a real HTTP client.
#![allow(dead_code)]

pub mod expect;
pub mod gc;
pub mod layout;
pub mod raw;
pub mod s3;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use registry::Registry;
use registry::config::{Config, parse_config};
use registry::oci::{Algorithm, Digest};
use registry::storage::Storage;
use reqwest::{Client, Method, Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::oneshot;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// A registry served in-process for one test.
pub struct TestRegistry {
    pub url: String,
    /// `http://host:port` of the debug listener, when `http.debug.addr` is set.
    pub debug_url: Option<String>,
    pub root: PathBuf,
    /// The storage it serves, opened separately to inspect what was written.
    pub storage: Arc<dyn Storage>,
    pub client: Client,
    _dir: Option<tempfile::TempDir>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// The S3 server the HTTP tests run on, when `BERTH_TEST_STORAGE` names
/// one (`seaweedfs`, `moto`); the filesystem otherwise (or `filesystem`).
pub fn test_s3_server() -> Option<s3::S3Server> {
    match std::env::var("BERTH_TEST_STORAGE").as_deref() {
        Err(_) | Ok("") | Ok("filesystem") => None,
        Ok(name) => Some(s3::server(name).unwrap_or_else(|| {
            panic!("BERTH_TEST_STORAGE={name} but that S3 server cannot start")
        })),
    }
}

/// The `storage:` driver section for a storage "root": a directory, or on
/// S3 a key prefix derived from it, so registries started on the same root
/// share storage either way.
pub fn storage_yaml(root: &Path) -> String {
    match test_s3_server() {
        None => format!("  filesystem:\n    rootdirectory: {}\n", root.display()),
        // The registry streams blobs itself here, so these tests exercise
        // its read path; redirects have their own test.
        Some(server) => server.storage_yaml(&s3_prefix(root), "  redirect:\n    disable: true\n"),
    }
}

/// The same storage as [`storage_yaml`], as distribution 2.8 reads it.
pub fn distribution_storage_yaml(root: &Path) -> String {
    match test_s3_server() {
        None => format!("  filesystem:\n    rootdirectory: {}\n", root.display()),
        Some(server) => server.distribution_storage_yaml(&s3_prefix(root)),
    }
}

fn s3_prefix(root: &Path) -> String {
    let prefix: String = root
        .display()
        .to_string()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("/t/{prefix}")
}

/// The storage a registry configured with `config_yaml(root, ..)` uses.
pub fn open_test_storage(root: &Path) -> Arc<dyn Storage> {
    registry::open_storage(&parse(&config_yaml(root, ""))).expect("storage opens")
}

/// Every object below `prefix` with its size, listed through the trait.
pub async fn objects_under(storage: &dyn Storage, prefix: &str) -> BTreeMap<String, u64> {
    let mut objects = BTreeMap::new();
    let mut pending = vec![prefix.to_owned()];
    while let Some(dir) = pending.pop() {
        let Ok(names) = storage.list(&dir).await else {
            continue;
        };
        for name in names {
            let path = format!("{dir}/{name}");
            match storage.stat(&path).await {
                Ok(meta) => {
                    objects.insert(path, meta.size);
                }
                Err(e) if e.is_not_found() => pending.push(path),
                Err(e) => panic!("stat {path}: {e}"),
            }
        }
    }
    objects
}

/// Every blob in the store holds exactly the content its key names.
/// Runs the real `registry verify CONFIG` (in a blocking thread); returns
/// its exit code, its last stdout line as JSON and all of stdout.
pub async fn run_verify(config: &Path) -> (Option<i32>, Value, String) {
    let config = config.to_owned();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_registry"))
            .arg("verify")
            .arg(&config)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let report = stdout
        .lines()
        .last()
        .and_then(|line| serde_json::from_str(line).ok())
        .unwrap_or(Value::Null);
    let all = format!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    (output.status.code(), report, all)
}

/// `registry verify` finds no corrupt blob; returns how many it hashed.
pub async fn assert_verify_clean(config: &Path) -> u64 {
    let (code, report, output) = run_verify(config).await;
    assert_eq!(code, Some(0), "registry verify: {output}");
    assert_eq!(report["corrupt"], serde_json::json!([]), "{output}");
    report["blobs"].as_u64().expect("a blob count")
}

pub async fn verify_stored_blobs(storage: &dyn Storage) -> usize {
    let mut verified = 0;
    for path in objects_under(storage, "docker/registry/v2/blobs")
        .await
        .keys()
    {
        let Some(rest) = path.strip_prefix("docker/registry/v2/blobs/") else {
            continue;
        };
        let parts: Vec<&str> = rest.split('/').collect();
        if let [algorithm, _, hex, "data"] = parts[..] {
            let digest: Digest = format!("{algorithm}:{hex}").parse().unwrap();
            let data = storage.get(path).await.unwrap();
            assert_eq!(
                digest.algorithm().digest_of(&data),
                digest,
                "corrupt blob {path}"
            );
            verified += 1;
        }
    }
    verified
}

/// Config YAML for a registry storing at `root` plus extra top-level YAML.
pub fn config_yaml(root: &Path, extra: &str) -> String {
    format!(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n{}  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:0\n{extra}",
        storage_yaml(root)
    )
}

pub fn parse(yaml: &str) -> Config {
    parse_config(yaml, Vec::new())
        .expect("test config is valid")
        .config
}

impl TestRegistry {
    /// Default config: deletes enabled, no auth.
    pub async fn start() -> Self {
        Self::start_with(|root| config_yaml(root, "")).await
    }

    /// Starts with a config built from the temp storage root.
    pub async fn start_with(make_config: impl FnOnce(&Path) -> String) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("storage");
        let mut registry = Self::start_on(&root, &make_config(&root)).await;
        registry._dir = Some(dir);
        registry
    }

    /// Starts over an existing storage root (to share it between servers).
    pub async fn start_on(root: &Path, yaml: &str) -> Self {
        let config = parse(yaml);
        let storage = registry::open_storage(&config).expect("storage opens");
        let registry = Registry::build(&config).expect("registry builds");
        let tls = registry.tls.is_some();
        let listeners = registry.bind().await.unwrap();
        let addr = listeners.api.local_addr().unwrap();
        let debug_url = listeners
            .debug
            .as_ref()
            .map(|debug| format!("http://{}", debug.local_addr().unwrap()));
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            registry
                .serve(listeners, async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        let scheme = if tls { "https" } else { "http" };
        TestRegistry {
            url: format!("{scheme}://{addr}"),
            debug_url,
            root: root.to_owned(),
            storage,
            client: Client::builder().build().unwrap(),
            _dir: None,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// Stops accepting and waits for the server task to finish draining.
    /// Returns the temp directory (if it owns one) so the caller can inspect storage.
    pub async fn stop(mut self) -> Option<tempfile::TempDir> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(40), task)
                .await
                .expect("server stops")
                .unwrap();
        }
        self._dir.take()
    }

    /// Whether the storage is a directory (some tests reach into it).
    pub fn on_filesystem(&self) -> bool {
        test_s3_server().is_none()
    }

    /// Every object under distribution's tree with its size, except upload
    /// scratch (`_uploads`) — what a request must not change.
    pub async fn stored(&self) -> BTreeMap<String, u64> {
        objects_under(self.storage.as_ref(), "docker/registry/v2")
            .await
            .into_iter()
            .filter(|(path, _)| !path.contains("/_uploads/"))
            .collect()
    }

    /// The stored bytes of a blob, if it is in the global store.
    pub async fn stored_blob(&self, digest: &Digest) -> Option<Vec<u8>> {
        self.storage
            .get(&registry::storage::layout::blob_data(digest))
            .await
            .ok()
            .map(|b| b.to_vec())
    }

    pub fn host(&self) -> String {
        self.url.split("://").nth(1).unwrap().to_owned()
    }

    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, format!("{}{path}", self.url))
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path).send().await.unwrap()
    }

    /// GETs a path and parses the JSON body.
    pub async fn get_json(&self, path: &str) -> Value {
        self.get(path).await.json().await.expect("JSON body")
    }

    pub async fn head(&self, path: &str) -> Response {
        self.request(Method::HEAD, path).send().await.unwrap()
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.request(Method::DELETE, path).send().await.unwrap()
    }

    /// Monolithic single-POST upload; asserts success.
    pub async fn push_blob(&self, repo: &str, data: &[u8]) -> Digest {
        let digest = Algorithm::Sha256.digest_of(data);
        let response = self
            .request(
                Method::POST,
                &format!("/v2/{repo}/blobs/uploads/?digest={digest}"),
            )
            .body(data.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "push blob to {repo}"
        );
        digest
    }

    /// PUTs a manifest; returns the raw response.
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> Response {
        self.request(Method::PUT, &format!("/v2/{repo}/manifests/{reference}"))
            .header("content-type", media_type)
            .body(body.to_vec())
            .send()
            .await
            .unwrap()
    }

    /// Pushes config + layers and an OCI manifest tagged `tag`; returns the manifest digest and bytes.
    pub async fn push_image(&self, repo: &str, tag: &str, layers: &[&[u8]]) -> (Digest, Vec<u8>) {
        let config = format!(r#"{{"architecture":"amd64","os":"linux","x":"{repo}:{tag}"}}"#);
        let config_digest = self.push_blob(repo, config.as_bytes()).await;
        let mut descriptors = Vec::new();
        for layer in layers {
            let digest = self.push_blob(repo, layer).await;
            descriptors.push(
                json!({"mediaType": LAYER, "digest": digest.to_string(), "size": layer.len()}),
            );
        }
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": CONFIG, "digest": config_digest.to_string(), "size": config.len()},
            "layers": descriptors,
        });
        let bytes = serde_json::to_vec(&manifest).unwrap();
        let response = self.put_manifest(repo, tag, OCI_MANIFEST, &bytes).await;
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "push manifest {repo}:{tag}"
        );
        (Algorithm::Sha256.digest_of(&bytes), bytes)
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// How often [`eventually`] looks again: soon enough not to slow tests down,
/// seldom enough not to load the shared 2-core CI box.
const POLL_EVERY: Duration = Duration::from_millis(50);

/// Polls `check` until it returns `Ok`, every 50 ms for at most `timeout`,
/// for state that changes on the server's own schedule (its maintenance lock
/// poll, a file reload) or a concurrent task's progress, instead of sleeping
/// a guessed time. Panics naming `what` and the last `Err` observation.
pub async fn eventually<T, O: std::fmt::Debug>(
    what: &str,
    timeout: Duration,
    mut check: impl AsyncFnMut() -> Result<T, O>,
) -> T {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let seen = match check().await {
            Ok(value) => return value,
            Err(seen) => seen,
        };
        if tokio::time::Instant::now() >= deadline {
            panic!("{what}: not within {timeout:?}; last saw {seen:?}");
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// Random bytes of a given length, filled in one call rather than one
/// generator call per byte: some tests push layers of several MiB.
pub fn random_bytes(len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    bytes
}

/// The first error code of an OCI error body.
pub async fn error_code(response: Response) -> String {
    let body: Value = response.json().await.expect("error body is JSON");
    body["errors"][0]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Asserts status and spec error code.
pub async fn assert_error(response: Response, status: StatusCode, code: &str) {
    assert_eq!(response.status(), status, "{}", response.url());
    assert_eq!(error_code(response).await, code);
}

/// Every file under a directory, relative, sorted (filesystem-only tests).
pub fn tree(root: &Path) -> Vec<String> {
    let mut files = Vec::new();
    let mut pending = vec![root.to_owned()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    files.sort();
    files
}
