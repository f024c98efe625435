//! S3-compatible servers for tests: SeaweedFS and moto, started on loopback
//! by `scripts/s3-servers` (idempotent, shared by every test process under a
//! lock) and isolated per test by a fresh key prefix (`rootdirectory`).
//!
//! Where a server cannot start, tests on it are skipped with a message,
//! except when `BERTH_REQUIRE_S3=1` (set by `scripts/test`, so CI never
//! skips them).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use registry::config::S3Config;

/// The S3 servers tests run against.
pub const SERVERS: &[&str] = &["seaweedfs", "moto"];

/// A running server's connection details (from `scripts/s3-servers env`).
#[derive(Debug, Clone)]
pub struct S3Server {
    pub name: String,
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
    /// An identity that may read objects but not list the bucket (SeaweedFS only).
    pub reader: Option<(String, String)>,
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn start(name: &str) -> Result<S3Server, String> {
    let script = repo_root().join("scripts/s3-servers");
    // `-o`: the script starts the server as a daemon, which must not inherit
    // the lock (it would hold it for its whole life and block every later start).
    let output = Command::new("flock")
        .arg("-o")
        .arg("/tmp/berth-s3-servers.lock")
        .arg(&script)
        .args(["start", name])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !output.status.success() {
        return Err(format!(
            "scripts/s3-servers start {name} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let vars: HashMap<String, String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.strip_prefix("export "))
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let get = |key: &str| {
        vars.get(key)
            .cloned()
            .ok_or_else(|| format!("scripts/s3-servers env has no {key}"))
    };
    Ok(S3Server {
        name: name.to_owned(),
        endpoint: get("S3_ENDPOINT")?,
        region: get("S3_REGION")?,
        bucket: get("S3_BUCKET")?,
        access_key: get("AWS_ACCESS_KEY_ID")?,
        secret_key: get("AWS_SECRET_ACCESS_KEY")?,
        reader: match (
            vars.get("S3_READONLY_ACCESS_KEY_ID"),
            vars.get("S3_READONLY_SECRET_ACCESS_KEY"),
        ) {
            (Some(a), Some(s)) => Some((a.clone(), s.clone())),
            _ => None,
        },
    })
}

/// The named server, started if needed; `None` (with a message) when it
/// cannot start outside CI.
pub fn server(name: &str) -> Option<S3Server> {
    static SERVERS: OnceLock<std::sync::Mutex<HashMap<String, Result<S3Server, String>>>> =
        OnceLock::new();
    let cache = SERVERS.get_or_init(Default::default);
    let mut started = cache.lock().unwrap();
    let result = started
        .entry(name.to_owned())
        .or_insert_with(|| start(name))
        .clone();
    match result {
        Ok(server) => Some(server),
        Err(e) if std::env::var("BERTH_REQUIRE_S3").as_deref() == Ok("1") => {
            panic!("S3 server {name} is required (BERTH_REQUIRE_S3=1): {e}")
        }
        Err(e) => {
            // The test harness's only channel to the person running it.
            #[allow(clippy::print_stderr)]
            {
                eprintln!("SKIP: S3 server {name} is not available: {e}");
            }
            None
        }
    }
}

/// A fresh key prefix, so tests sharing a bucket never see each other.
pub fn fresh_root(label: &str) -> String {
    format!("/t/{label}-{}", uuid_like())
}

fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{:x}-{}-{n}", nanos, std::process::id())
}

impl S3Server {
    /// `storage.s3` for this server under `root`.
    pub fn config(&self, root: &str) -> S3Config {
        S3Config {
            bucket: self.bucket.clone(),
            region: Some(self.region.clone()),
            regionendpoint: Some(self.endpoint.clone()),
            forcepathstyle: Some(true),
            accesskey: Some(self.access_key.clone()),
            secretkey: Some(self.secret_key.clone()),
            rootdirectory: Some(root.to_owned()),
            ..S3Config::default()
        }
    }

    /// `storage.s3` as Debian's `docker-registry` (distribution 2.8) reads
    /// it: path style is implied by `regionendpoint`, `forcepathstyle` does
    /// not exist yet.
    pub fn distribution_storage_yaml(&self, root: &str) -> String {
        format!(
            "  s3:\n    bucket: {}\n    region: {}\n    regionendpoint: {}\n    accesskey: {}\n    secretkey: {}\n    secure: false\n    v4auth: true\n    chunksize: 5242880\n    rootdirectory: {root}\n",
            self.bucket, self.region, self.endpoint, self.access_key, self.secret_key
        )
    }

    /// The YAML of `storage.s3` for this server under `root` (indented for `storage:`).
    pub fn storage_yaml(&self, root: &str, extra: &str) -> String {
        format!(
            "  s3:\n    bucket: {}\n    region: {}\n    regionendpoint: {}\n    forcepathstyle: true\n    accesskey: {}\n    secretkey: {}\n    rootdirectory: {root}\n{extra}",
            self.bucket, self.region, self.endpoint, self.access_key, self.secret_key
        )
    }
}
