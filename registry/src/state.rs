//! Shared request state: content access, effective settings, auth, metrics.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use http::HeaderMap;

use crate::auth::Authenticator;
use crate::content::{Content, ManifestValidation};
use crate::error::{Error, Result};
use crate::maintenance::{LockRecord, window_message};
use crate::metrics::Metrics;

/// Distribution's default and maximum catalog page size.
pub const DEFAULT_CATALOG_ENTRIES: usize = 1000;

/// Behaviour switches derived from the config.
#[derive(Debug, Clone)]
pub struct Settings {
    pub delete_enabled: bool,
    pub manifest_validation: ManifestValidation,
    pub catalog_max_entries: usize,
    /// `http.headers`: added to every `/v2` response.
    pub extra_headers: HeaderMap,
    pub access_log: bool,
    /// Blob `GET`s answer 307 to a presigned object store URL.
    pub redirect_blobs: bool,
    /// `/metrics` on `http.addr` (off when the debug listener serves them).
    pub api_metrics: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            delete_enabled: true,
            manifest_validation: ManifestValidation::default(),
            catalog_max_entries: DEFAULT_CATALOG_ENTRIES,
            extra_headers: HeaderMap::new(),
            access_log: true,
            redirect_blobs: false,
            api_metrics: true,
        }
    }
}

/// Whether writes are refused, and why: config-driven read-only mode, or a
/// maintenance lock held in storage (by garbage collection).
#[derive(Debug, Default)]
pub struct Maintenance {
    read_only: AtomicBool,
    locked: AtomicBool,
    lock_purpose: RwLock<String>,
}

impl Maintenance {
    pub fn new(read_only: bool) -> Self {
        Maintenance {
            read_only: AtomicBool::new(read_only),
            ..Maintenance::default()
        }
    }

    /// Whether `storage.maintenance.readonly` is on (not the GC window).
    pub fn is_configured_read_only(&self) -> bool {
        self.read_only.load(Ordering::SeqCst)
    }

    pub fn set_read_only(&self, read_only: bool) {
        self.read_only.store(read_only, Ordering::SeqCst);
    }

    /// Records the lock last seen in storage (`None`: no active lock).
    pub fn observe_lock(&self, lock: Option<&LockRecord>) {
        if let Some(lock) = lock
            && let Ok(mut purpose) = self.lock_purpose.write()
        {
            purpose.clone_from(&lock.purpose);
        }
        let was = self.locked.swap(lock.is_some(), Ordering::SeqCst);
        if was != lock.is_some() {
            match lock {
                Some(lock) => {
                    tracing::info!(holder = %lock.holder, purpose = %lock.purpose, "maintenance lock taken: refusing writes")
                }
                None => tracing::info!("maintenance lock released: accepting writes"),
            }
        }
    }

    /// Whether writes are currently refused (as last observed).
    pub fn is_read_only(&self) -> bool {
        self.read_only.load(Ordering::SeqCst) || self.locked.load(Ordering::SeqCst)
    }

    fn refusal(&self) -> Option<Error> {
        if self.read_only.load(Ordering::SeqCst) {
            return Some(Error::Unsupported(
                "the registry is in read-only maintenance mode; pulls still work".into(),
            ));
        }
        if self.locked.load(Ordering::SeqCst) {
            let purpose = self
                .lock_purpose
                .read()
                .map(|p| p.clone())
                .unwrap_or_default();
            return Some(Error::Unsupported(window_message(&purpose)));
        }
        None
    }
}

#[derive(Debug)]
pub struct StateInner {
    pub content: Content,
    pub settings: Settings,
    pub maintenance: Maintenance,
    pub auth: Option<Authenticator>,
    pub metrics: Metrics,
}

/// Cheaply cloneable handle to everything a request needs.
#[derive(Debug, Clone)]
pub struct AppState(Arc<StateInner>);

impl AppState {
    pub fn new(
        content: Content,
        settings: Settings,
        maintenance: Maintenance,
        auth: Option<Authenticator>,
    ) -> Self {
        AppState(Arc::new(StateInner {
            content,
            settings,
            maintenance,
            auth,
            metrics: Metrics::default(),
        }))
    }

    /// Readiness of the storage: reachable, and accepting writes unless the
    /// registry is configured read-only (a read-only volume or read-only
    /// credentials are then expected). `/readyz` and the debug health use it.
    pub async fn check_storage(&self) -> crate::storage::StorageResult<()> {
        let writes = !self.maintenance.is_configured_read_only();
        self.content.storage().check(writes).await
    }

    /// Refuses writes while in read-only maintenance mode (as last observed;
    /// a cheap check at the start of a request).
    pub fn ensure_writable(&self) -> Result<()> {
        match self.maintenance.refusal() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// Refuses deletes unless `storage.delete.enabled` is set.
    pub fn ensure_deletable(&self) -> Result<()> {
        self.ensure_writable()?;
        if self.settings.delete_enabled {
            Ok(())
        } else {
            Err(Error::Unsupported(
                "deletes are disabled on this registry (storage.delete.enabled)".into(),
            ))
        }
    }
}

impl std::ops::Deref for AppState {
    type Target = StateInner;

    fn deref(&self) -> &StateInner {
        &self.0
    }
}
