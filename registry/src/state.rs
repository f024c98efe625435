//! Shared request state: content access, effective settings, auth, metrics.

use std::sync::Arc;

use http::HeaderMap;

use crate::auth::Authenticator;
use crate::content::{Content, ManifestValidation};
use crate::metrics::Metrics;

/// Distribution's default and maximum catalog page size.
pub const DEFAULT_CATALOG_ENTRIES: usize = 1000;

/// Behaviour switches derived from the config. (Whether writes and deletes
/// are accepted is the content's [`crate::content::WritePolicy`].)
#[derive(Debug, Clone)]
pub struct Settings {
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
            manifest_validation: ManifestValidation::default(),
            catalog_max_entries: DEFAULT_CATALOG_ENTRIES,
            extra_headers: HeaderMap::new(),
            access_log: true,
            redirect_blobs: false,
            api_metrics: true,
        }
    }
}

#[derive(Debug)]
pub struct StateInner {
    pub content: Content,
    pub settings: Settings,
    pub auth: Option<Authenticator>,
    pub metrics: Metrics,
}

/// Cheaply cloneable handle to everything a request needs.
#[derive(Debug, Clone)]
pub struct AppState(Arc<StateInner>);

impl AppState {
    pub fn new(content: Content, settings: Settings, auth: Option<Authenticator>) -> Self {
        AppState(Arc::new(StateInner {
            content,
            settings,
            auth,
            metrics: Metrics::default(),
        }))
    }

    /// Readiness of the storage: reachable, and accepting writes unless the
    /// registry is configured read-only (a read-only volume or read-only
    /// credentials are then expected). `/readyz` and the debug health use it.
    pub async fn check_storage(&self) -> crate::storage::StorageResult<()> {
        let writes = !self.content.write_policy().is_configured_read_only();
        self.content.storage().check(writes).await
    }
}

impl std::ops::Deref for AppState {
    type Target = StateInner;

    fn deref(&self) -> &StateInner {
        &self.0
    }
}
