//! Berth registry: an OCI Distribution Spec v1.1 server that reads
//! distribution's config and on-disk layout, so it can replace `registry:2/3`
//! without changing volumes or compose files.

pub mod auth;
pub mod background;
pub mod config;
pub mod connections;
pub mod content;
pub mod error;
pub mod gc;
pub mod http;
pub mod listen;
pub mod maintenance;
pub mod metrics;
pub mod oci;
pub mod purge;
pub mod server;
pub mod state;
pub mod storage;
pub mod telemetry;
pub mod tls;
pub mod verify;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ::http::{HeaderMap, HeaderName, HeaderValue};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::auth::{AuthError, Authenticator, FailurePolicy};
use crate::background::Background;
use crate::config::{Config, split_listen_addr};
use crate::content::{Content, IndexValidation, ManifestValidation, WritePolicy};
use crate::oci::foreign::UrlPolicy;
use crate::state::{AppState, DEFAULT_CATALOG_ENTRIES, Settings};
use crate::storage::Storage;
use crate::storage::fs::FsStorage;
use crate::storage::s3::S3Storage;
use crate::storage::s3::settings::BucketSettings;
use crate::tls::{TlsError, TlsReloader, TlsSettings};

pub use crate::http::router as app;

/// How long shutdown waits for in-flight requests unless `http.draintimeout` says otherwise.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the registry could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open storage at {path}: {source}")]
    Storage {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} is not supported by this build yet")]
    Unsupported(String),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    ObjectStorage(#[from] crate::storage::StorageError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("invalid http.headers entry {0:?}")]
    Header(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("server failed: {0}")]
    Serve(#[source] std::io::Error),
}

/// The sockets a registry serves on: `http.addr`, and `http.debug.addr` when set.
#[derive(Debug)]
pub struct Listeners {
    pub api: TcpListener,
    pub debug: Option<TcpListener>,
}

/// distribution's name of the configured storage driver (for health check names).
fn storage_driver(config: &Config) -> &'static str {
    match (&config.storage.filesystem, &config.storage.s3) {
        (Some(_), _) => "filesystem",
        (None, Some(_)) => "s3",
        (None, None) => "oss",
    }
}

async fn bind_addr(addr: &str) -> Result<TcpListener, StartError> {
    let (host, port) = split_listen_addr(addr).map_err(|e| StartError::Bind {
        addr: addr.to_owned(),
        source: std::io::Error::other(e),
    })?;
    listen::listen(&host, port)
        .await
        .map_err(|source| StartError::Bind {
            addr: addr.to_owned(),
            source,
        })
}

/// A registry assembled from its config, ready to serve.
#[derive(Debug)]
pub struct Registry {
    pub state: AppState,
    pub tls: Option<TlsReloader>,
    config: Config,
}

/// Opens the configured storage backend (no request is made yet).
pub fn open_storage(config: &Config) -> Result<Arc<dyn Storage>, StartError> {
    if let Some(fs) = &config.storage.filesystem {
        let storage = FsStorage::open(&fs.rootdirectory).map_err(|source| StartError::Storage {
            path: fs.rootdirectory.display().to_string(),
            source,
        })?;
        return Ok(Arc::new(storage));
    }
    let bucket = match (&config.storage.s3, &config.storage.oss) {
        (Some(s3), _) => BucketSettings::from_s3(s3)?,
        (None, Some(oss)) => BucketSettings::from_oss(oss)?,
        (None, None) => return Err(StartError::Unsupported("this storage driver".into())),
    };
    Ok(Arc::new(S3Storage::open(bucket)?))
}

/// Whether blob downloads redirect to the store: object storage does unless
/// `storage.redirect.disable` (distribution's default).
fn redirects(config: &Config) -> bool {
    config.storage.filesystem.is_none()
        && !config.storage.redirect.as_ref().is_some_and(|r| r.disable)
}

/// `validation.manifests.urls` (patterns already checked by `config::validate`).
fn url_policy(urls: Option<&crate::config::UrlsConfig>) -> Result<UrlPolicy, StartError> {
    let Some(urls) = urls else {
        return Ok(UrlPolicy::default());
    };
    UrlPolicy::new(&urls.allow, &urls.deny).map_err(|e| {
        StartError::Config(crate::config::ConfigError::invalid(
            "validation.manifests.urls",
            e.to_string(),
        ))
    })
}

fn settings(config: &Config) -> Result<Settings, StartError> {
    let manifests = config.validation.manifests.as_ref();
    let sparse = manifests.is_some_and(|m| m.sparse);
    let index_validation = match manifests.and_then(|m| m.indexes.as_ref()) {
        _ if sparse => IndexValidation::None,
        Some(indexes) if indexes.platforms.as_deref() == Some("none") => IndexValidation::None,
        Some(indexes) if indexes.platforms.as_deref() == Some("list") => {
            IndexValidation::Platforms(
                indexes
                    .platformlist
                    .iter()
                    .map(|p| (p.os.clone(), p.architecture.clone()))
                    .collect(),
            )
        }
        _ => IndexValidation::All,
    };
    let mut extra_headers = HeaderMap::new();
    for (name, values) in &config.http.headers {
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| StartError::Header(name.clone()))?;
        for value in values {
            let value =
                HeaderValue::from_str(value).map_err(|_| StartError::Header(name.clone()))?;
            extra_headers.append(header.clone(), value);
        }
    }
    Ok(Settings {
        manifest_validation: ManifestValidation {
            require_blobs: !sparse,
            index: index_validation,
            urls: url_policy(manifests.and_then(|m| m.urls.as_ref()))?,
        },
        catalog_max_entries: config
            .catalog
            .as_ref()
            .and_then(|c| c.maxentries)
            .unwrap_or(DEFAULT_CATALOG_ENTRIES),
        extra_headers,
        access_log: !config.log.accesslog.as_ref().is_some_and(|a| a.disabled),
        redirect_blobs: redirects(config),
        api_metrics: config.http.debug_metrics_path().is_none(),
    })
}

impl Registry {
    /// Builds storage, auth, TLS and settings from a validated config.
    pub fn build(config: &Config) -> Result<Self, StartError> {
        let policy = WritePolicy::new(config.storage.read_only(), config.storage.delete_enabled());
        let content = Content::with_policy(open_storage(config)?, policy);
        let auth = config
            .auth
            .as_ref()
            .and_then(|a| a.htpasswd.as_ref())
            .map(|h| {
                let realm = if h.realm.is_empty() {
                    "Registry Realm"
                } else {
                    h.realm.as_str()
                };
                let failures = FailurePolicy {
                    per_client: h.failurelimit.unwrap_or(auth::DEFAULT_CLIENT_FAILURES),
                    per_user: h.userfailurelimit.unwrap_or(auth::DEFAULT_USER_FAILURES),
                    window: h
                        .failurewindow
                        .map_or(auth::DEFAULT_FAILURE_WINDOW, |w| w.0),
                };
                Authenticator::from_file(realm, &h.path, h.anonymousread, failures)
            })
            .transpose()?;
        let tls = match config.http.tls.as_ref() {
            Some(tls) => match (&tls.certificate, &tls.key) {
                (Some(certificate), Some(key)) => Some(tls::server_config(&TlsSettings {
                    certificate: certificate.clone(),
                    key: key.clone(),
                    client_cas: tls.clientcas.clone(),
                    tls13_only: tls.minimumtls.as_deref() == Some("tls1.3"),
                })?),
                _ => None,
            },
            None => None,
        };
        let state = AppState::new(content, settings(config)?, auth);
        Ok(Registry {
            state,
            tls,
            config: config.clone(),
        })
    }

    /// Binds `http.addr` and, when configured, `http.debug.addr`.
    pub async fn bind(&self) -> Result<Listeners, StartError> {
        let api = bind_addr(&self.config.http.addr).await?;
        let debug = match self.config.http.debug_addr() {
            Some(addr) => Some(bind_addr(addr).await?),
            None => None,
        };
        Ok(Listeners { api, debug })
    }

    /// The periodic work of a serving registry: file reloads, the maintenance
    /// lock watch and upload purging.
    fn start_background(&self) -> Background {
        let mut background = Background::new();
        if let Some(auth) = self.state.auth.clone() {
            background.every(auth::RELOAD_INTERVAL, move || {
                auth.reload_if_changed();
                std::future::ready(())
            });
        }
        if let Some(reloader) = self.tls.clone() {
            background.every(tls::RELOAD_INTERVAL, move || {
                reloader.reload_if_changed();
                std::future::ready(())
            });
        }
        let purging = self.config.storage.upload_purging();
        if purging.enabled && !self.config.storage.read_only() {
            let state = self.state.clone();
            let (age, interval, dry_run) = (purging.age.0, purging.interval.0, purging.dryrun);
            background.every_after(interval, interval, move || {
                let state = state.clone();
                async move { purge::scheduled_purge(&state, age, dry_run).await }
            });
        }
        let poll = self
            .config
            .storage
            .maintenance
            .as_ref()
            .and_then(|m| m.lock.as_ref())
            .and_then(|l| l.pollinterval)
            .map_or(maintenance::DEFAULT_POLL_INTERVAL, |d| d.0);
        let content = self.state.content.clone();
        background.every(poll, move || {
            let content = content.clone();
            async move { content.poll_lock().await }
        });
        background
    }

    /// Starts background work and serves until `shutdown`; returns once
    /// connections have drained and every background task has ended.
    pub async fn serve(
        self,
        listeners: Listeners,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), StartError> {
        let mut background = self.start_background();
        let drain = self
            .config
            .http
            .draintimeout
            .map_or(DEFAULT_DRAIN_TIMEOUT, |d| d.0);
        let limits = crate::http::limits::Limits::from_config(&self.config.http);
        let router = crate::http::router_with_limits(self.state.clone(), limits);
        let debug_router = crate::http::debug::router(
            self.state.clone(),
            self.config.http.debug_metrics_path(),
            storage_driver(&self.config),
        );
        // One shutdown for both listeners; the debug one also stops if the API one ends early.
        let stop = CancellationToken::new();
        let api = async {
            let stopping = async {
                shutdown.await;
                stop.cancel();
            };
            let limits = server::ConnectionLimits::from_config(&self.config.http);
            let result =
                server::serve(listeners.api, router, self.tls, limits, stopping, drain).await;
            stop.cancel();
            result
        };
        let debug = async {
            match listeners.debug {
                Some(listener) => {
                    // Private by deployment (distribution's advice): no per-client limit.
                    let limits = server::ConnectionLimits::unlimited();
                    server::serve(
                        listener,
                        debug_router,
                        None,
                        limits,
                        stop.cancelled(),
                        drain,
                    )
                    .await
                }
                None => Ok(()),
            }
        };
        let (api, debug) = tokio::join!(api, debug);
        background.shutdown().await;
        api.and(debug).map_err(StartError::Serve)
    }
}
