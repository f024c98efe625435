//! Configuration: distribution's YAML format (`version: 0.1`) and its
//! `REGISTRY_<SECTION>_<KEY>` environment overrides, so existing
//! `registry:2/3` config files and compose files keep working.
//!
//! These types are also what the operator renders, so a rendered config
//! always parses.

mod duration;
mod env;
mod lenient;
mod load;
mod validate;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use duration::GoDuration;
pub use env::apply_env_overrides;
pub use load::{ConfigError, DEFAULT_CONFIG, LoadedConfig, load_config, parse_config};
pub use validate::split_listen_addr;

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Must be `0.1`.
    pub version: ConfigVersion,
    #[serde(default, skip_serializing_if = "LogConfig::is_default")]
    pub log: LogConfig,
    /// Deprecated top-level log level, still accepted by distribution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loglevel: Option<String>,
    pub storage: StorageConfig,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthConfig>,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default, skip_serializing_if = "ValidationConfig::is_default")]
    pub validation: ValidationConfig,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog: Option<CatalogConfig>,
    /// Accepted for compatibility; Berth always serves `/healthz` and `/readyz`.
    #[serde(default, skip_serializing)]
    pub health: Option<serde_yaml::Value>,
    /// Webhook notifications are not implemented; a warning says so.
    #[serde(default, skip_serializing)]
    pub notifications: Option<serde_yaml::Value>,
    /// The Redis blob descriptor cache is not needed; a warning says so.
    #[serde(default, skip_serializing)]
    pub redis: Option<serde_yaml::Value>,
    /// Pull-through caching is not implemented; configuring it is an error.
    #[serde(default, skip_serializing)]
    pub proxy: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub compatibility: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub middleware: Option<serde_yaml::Value>,
}

/// `version: 0.1`, written as a number or a string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ConfigVersion {
    Text(String),
    Number(f64),
}

impl Default for ConfigVersion {
    fn default() -> Self {
        ConfigVersion::Text("0.1".into())
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LogConfig {
    /// error, warn, info or debug (also panic/fatal/trace as distribution allows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    /// text, json or logstash (treated as json).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub formatter: Option<String>,
    /// Static fields added to every log line.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, serde_yaml::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accesslog: Option<AccessLogConfig>,
    #[serde(default, skip_serializing)]
    pub reportcaller: Option<bool>,
    #[serde(default, skip_serializing)]
    pub hooks: Option<serde_yaml::Value>,
}

impl LogConfig {
    fn is_default(&self) -> bool {
        self == &LogConfig::default()
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AccessLogConfig {
    #[serde(default)]
    pub disabled: bool,
}

/// `storage:` — one driver section plus shared options.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct StorageConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filesystem: Option<FilesystemConfig>,
    /// In-memory storage (tests and demos only; lost on restart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inmemory: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Config>,
    #[serde(default, skip_serializing)]
    pub gcs: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub azure: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub swift: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oss: Option<OssConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete: Option<DeleteConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<MaintenanceConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect: Option<RedirectConfig>,
    #[serde(default, skip_serializing)]
    pub cache: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub tag: Option<serde_yaml::Value>,
}

impl StorageConfig {
    /// Whether `DELETE` of manifests, tags and blobs is allowed.
    pub fn delete_enabled(&self) -> bool {
        self.delete.as_ref().is_some_and(|d| d.enabled)
    }

    /// Whether config-driven read-only maintenance mode is on.
    pub fn read_only(&self) -> bool {
        self.maintenance
            .as_ref()
            .and_then(|m| m.readonly.as_ref())
            .is_some_and(|r| r.enabled)
    }

    /// `maintenance.uploadpurging`, with distribution's defaults when absent.
    pub fn upload_purging(&self) -> UploadPurgingConfig {
        self.maintenance
            .as_ref()
            .and_then(|m| m.uploadpurging.clone())
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FilesystemConfig {
    #[serde(default = "default_root_directory")]
    pub rootdirectory: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maxthreads: Option<u64>,
}

pub fn default_root_directory() -> PathBuf {
    PathBuf::from("/var/lib/registry")
}

/// `storage.s3`: distribution's s3-aws driver keys, for any S3-compatible
/// store (AWS, SeaweedFS, Ceph RGW, ...). Booleans and sizes are also
/// accepted as strings, as distribution does (`"true"`, `"10485760"`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct S3Config {
    #[serde(default)]
    pub bucket: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Endpoint URL for S3-compatible stores (`http://seaweedfs:8333`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regionendpoint: Option<String>,
    /// Path-style requests (`endpoint/bucket/key`); default: on when
    /// `regionendpoint` is set (as distribution 2.x), else virtual-hosted.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "lenient::bool"
    )]
    pub forcepathstyle: Option<bool>,
    /// Static credentials; without them the default chain is used
    /// (`AWS_*` environment, web identity / IRSA, ECS, instance metadata).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accesskey: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secretkey: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessiontoken: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rootdirectory: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "lenient::bool"
    )]
    pub secure: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "lenient::bool"
    )]
    pub skipverify: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "lenient::bool"
    )]
    pub encrypt: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyid: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "lenient::u64"
    )]
    pub chunksize: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "lenient::u64"
    )]
    pub multipartcopychunksize: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "lenient::u64"
    )]
    pub multipartcopymaxconcurrency: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "lenient::u64"
    )]
    pub multipartcopythresholdsize: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storageclass: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objectacl: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "lenient::bool"
    )]
    pub v4auth: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub useragent: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "lenient::bool"
    )]
    pub usedualstack: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loglevel: Option<String>,
}

/// `storage.oss`: distribution's Aliyun OSS driver keys, served through
/// OSS's S3-compatible API.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct OssConfig {
    #[serde(default)]
    pub bucket: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accesskeyid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accesskeysecret: Option<String>,
    /// e.g. `oss-cn-hangzhou`.
    #[serde(default)]
    pub region: String,
    /// Overrides `<region>[-internal].aliyuncs.com`: a host name (requests
    /// go virtual-hosted) or an address (path style).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Use the VPC-internal endpoint `<region>-internal.aliyuncs.com`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "lenient::bool"
    )]
    pub internal: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "lenient::bool"
    )]
    pub encrypt: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryptionkeyid: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "lenient::bool"
    )]
    pub secure: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "lenient::bool"
    )]
    pub skipverify: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "lenient::u64"
    )]
    pub chunksize: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rootdirectory: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DeleteConfig {
    #[serde(default)]
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MaintenanceConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uploadpurging: Option<UploadPurgingConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readonly: Option<ReadOnlyConfig>,
    /// Berth: how the maintenance lock GC takes is observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<LockConfig>,
}

/// Berth's maintenance lock (`storage.maintenance.lock`): how often a serving
/// registry re-reads it (commit points always re-read it).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LockConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pollinterval: Option<GoDuration>,
}

/// Removal of abandoned upload sessions (distribution's defaults: on, 168h, 24h).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UploadPurgingConfig {
    #[serde(default = "default_true")]
    pub enabled: bool,
    #[serde(default = "default_purge_age")]
    pub age: GoDuration,
    #[serde(default = "default_purge_interval")]
    pub interval: GoDuration,
    #[serde(default)]
    pub dryrun: bool,
}

impl Default for UploadPurgingConfig {
    fn default() -> Self {
        UploadPurgingConfig {
            enabled: true,
            age: default_purge_age(),
            interval: default_purge_interval(),
            dryrun: false,
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_purge_age() -> GoDuration {
    GoDuration::from_secs(168 * 3600)
}

fn default_purge_interval() -> GoDuration {
    GoDuration::from_secs(24 * 3600)
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ReadOnlyConfig {
    #[serde(default)]
    pub enabled: bool,
}

/// `storage.redirect`: blob downloads redirect to the object store
/// (presigned URLs) unless disabled.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RedirectConfig {
    #[serde(default, with = "lenient::plain_bool")]
    pub disable: bool,
}

/// `auth:` — one of htpasswd (supported), token, silly, none.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AuthConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub htpasswd: Option<HtpasswdConfig>,
    #[serde(default, skip_serializing)]
    pub token: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub silly: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub none: Option<serde_yaml::Value>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct HtpasswdConfig {
    #[serde(default)]
    pub realm: String,
    pub path: PathBuf,
    /// Berth extension: anonymous clients may pull (GET/HEAD); pushes and
    /// deletes still need credentials. Distribution cannot do this (#1230).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub anonymousread: bool,
    /// Berth extension: failed logins one client address may have per
    /// `failurewindow` before its uncached logins get 429 (default 10, 0: off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failurelimit: Option<u32>,
    /// Berth extension: failed logins one user name may have per
    /// `failurewindow`, from any address (default 100, 0: off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userfailurelimit: Option<u32>,
    /// Berth extension: the window of both failure limits (default 1m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failurewindow: Option<GoDuration>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpConfig {
    /// Listen address, e.g. `:5000` or `127.0.0.1:5000`.
    #[serde(default = "default_addr")]
    pub addr: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Accepted for compatibility; upload state lives in storage, so no secret is needed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relativeurls: Option<bool>,
    /// How long shutdown waits for in-flight requests (default 30s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draintimeout: Option<GoDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    /// Berth extension: request body timeouts against slow clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<TimeoutsConfig>,
    /// Berth extension: caps that bound memory and file descriptors under load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<LimitsConfig>,
    /// Extra headers added to every response.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debug: Option<DebugConfig>,
    #[serde(default, skip_serializing)]
    pub http2: Option<serde_yaml::Value>,
    #[serde(default, skip_serializing)]
    pub h2c: Option<serde_yaml::Value>,
}

fn default_addr() -> String {
    ":5000".into()
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            addr: default_addr(),
            net: None,
            prefix: None,
            host: None,
            secret: None,
            relativeurls: None,
            draintimeout: None,
            tls: None,
            timeouts: None,
            limits: None,
            headers: BTreeMap::new(),
            debug: None,
            http2: None,
            h2c: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TlsConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    /// CA bundles for client certificates (mTLS).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clientcas: Vec<PathBuf>,
    /// `tls1.2` (default) or `tls1.3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimumtls: Option<String>,
    #[serde(default, skip_serializing)]
    pub ciphersuites: Option<Vec<String>>,
    #[serde(default, skip_serializing)]
    pub clientauth: Option<String>,
    #[serde(default, skip_serializing)]
    pub letsencrypt: Option<serde_yaml::Value>,
}

/// `http.timeouts` (Berth extension).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TimeoutsConfig {
    /// A request body that delivers no bytes for this long fails with 408
    /// and its connection is closed (default 60s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bodyidle: Option<GoDuration>,
    /// Bytes per second a request body must average over each `bodyidle`
    /// of waiting for it, or it fails like an idle one (default 10240; 0 off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bodyminrate: Option<u64>,
}

/// `http.limits` (Berth extension).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LimitsConfig {
    /// Upload bodies received at the same time; more get 429 `TOOMANYREQUESTS` (default 256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrentuploads: Option<usize>,
    /// Connections one client address (IPv6: its /64) may hold open; more
    /// are closed on accept (default 256, 0 = no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connectionsperclient: Option<usize>,
    /// Concurrent HTTP/2 requests (streams) per connection (default 128).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streamsperconnection: Option<u32>,
}

/// Where the debug listener serves metrics unless `http.debug.prometheus.path` says otherwise.
pub const DEFAULT_PROMETHEUS_PATH: &str = "/metrics";
/// The debug listener's health endpoint (distribution's path).
pub const DEBUG_HEALTH_PATH: &str = "/debug/health";

impl HttpConfig {
    /// `http.debug.addr`; empty counts as unset, as in distribution.
    pub fn debug_addr(&self) -> Option<&str> {
        self.debug
            .as_ref()
            .and_then(|d| d.addr.as_deref())
            .filter(|addr| !addr.is_empty())
    }

    /// The debug listener's metrics path, when it serves them (`http.debug.addr` and
    /// `prometheus.enabled`). Then `http.addr` does not: distribution never serves metrics
    /// there, and an operator who moved them to a private port wants them off the public one.
    pub fn debug_metrics_path(&self) -> Option<&str> {
        self.debug_addr()?;
        let prometheus = self.debug.as_ref()?.prometheus.as_ref()?;
        prometheus.enabled.then(|| {
            prometheus
                .path
                .as_deref()
                .filter(|path| !path.is_empty())
                .unwrap_or(DEFAULT_PROMETHEUS_PATH)
        })
    }
}

/// `http.debug`: a second, plain-HTTP listener for health and (with `prometheus`) metrics.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DebugConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusConfig>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PrometheusConfig {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// `validation:` — manifest checks on push.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ValidationConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifests: Option<ManifestValidationConfig>,
}

impl ValidationConfig {
    fn is_default(&self) -> bool {
        self == &ValidationConfig::default()
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ManifestValidationConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<UrlsConfig>,
    /// Berth extension: accept sparse manifests, whose config, layers or
    /// index children are not (yet) in the repository — for partial mirrors.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sparse: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indexes: Option<IndexValidationConfig>,
}

/// `validation.manifests.urls`: regular expressions (RE2 syntax, as Go's)
/// for the external URLs foreign layers may name; neither list means none.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct UrlsConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
}

/// Which index children must exist on push: `all` (default), `none` (sparse
/// indexes allowed) or `list` (only the platforms in `platformlist`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct IndexValidationConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platforms: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platformlist: Vec<PlatformConfig>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PlatformConfig {
    pub architecture: String,
    pub os: String,
}

/// `catalog:` — paging limits of `/v2/_catalog`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CatalogConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maxentries: Option<usize>,
}
