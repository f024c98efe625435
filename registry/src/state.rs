//! Shared request state: content access, effective settings, auth, metrics.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use http::HeaderMap;

use crate::auth::Authenticator;
use crate::content::{Content, ManifestValidation};
use crate::error::{Error, Result};
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
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            delete_enabled: true,
            manifest_validation: ManifestValidation::default(),
            catalog_max_entries: DEFAULT_CATALOG_ENTRIES,
            extra_headers: HeaderMap::new(),
            access_log: true,
        }
    }
}

/// Whether writes are refused, and why.
#[derive(Debug, Default)]
pub struct Maintenance {
    read_only: AtomicBool,
}

impl Maintenance {
    pub fn new(read_only: bool) -> Self {
        Maintenance {
            read_only: AtomicBool::new(read_only),
        }
    }

    pub fn set_read_only(&self, read_only: bool) {
        self.read_only.store(read_only, Ordering::SeqCst);
    }

    pub fn is_read_only(&self) -> bool {
        self.read_only.load(Ordering::SeqCst)
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

    /// Refuses writes while in read-only maintenance mode.
    pub fn ensure_writable(&self) -> Result<()> {
        if self.maintenance.is_read_only() {
            Err(Error::Unsupported(
                "the registry is in read-only maintenance mode; pulls still work".into(),
            ))
        } else {
            Ok(())
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
