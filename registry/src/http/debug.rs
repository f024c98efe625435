//! The debug listener (`http.debug.addr`): plain HTTP meant for a private network, serving
//! distribution's `/debug/health` and, with `http.debug.prometheus.enabled`, the metrics.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{Method, StatusCode};
use serde_json::json;

use crate::config::DEBUG_HEALTH_PATH;
use crate::state::AppState;

#[derive(Clone)]
struct DebugState {
    app: AppState,
    /// Where the metrics are served, if they are.
    metrics_path: Option<Arc<str>>,
    /// distribution's name for the storage check: `storagedriver_<driver>`.
    storage_check: Arc<str>,
}

/// The debug router. `driver` names the storage driver (`filesystem`, `s3`, ...) in health
/// results, as distribution does.
pub fn router(state: AppState, metrics_path: Option<&str>, driver: &str) -> Router {
    let state = DebugState {
        app: state,
        metrics_path: metrics_path.map(Arc::from),
        storage_check: Arc::from(format!("storagedriver_{driver}")),
    };
    Router::new()
        .route(DEBUG_HEALTH_PATH, get(health))
        // The metrics path comes from the config: matched as a plain string, never as an axum
        // route pattern, so `{` or `*` in it cannot turn into a capture (or a startup panic).
        .fallback(metrics_or_not_found)
        .with_state(state)
}

/// distribution's health format: `{}` when every check passes, else 503 with the failing
/// checks by name. The storage check is the one `/readyz` makes.
async fn health(State(state): State<DebugState>) -> Response {
    match state.app.check_storage().await {
        Ok(()) => (StatusCode::OK, axum::Json(json!({}))).into_response(),
        Err(e) => {
            // The body is for probes; the detail (which may name buckets or paths) goes to the log.
            tracing::warn!(error = %e, "debug health check failed");
            let mut checks = serde_json::Map::new();
            checks.insert(
                state.storage_check.to_string(),
                "storage unavailable".into(),
            );
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(checks)).into_response()
        }
    }
}

async fn metrics_or_not_found(State(state): State<DebugState>, request: Request) -> Response {
    let is_read = matches!(*request.method(), Method::GET | Method::HEAD);
    match &state.metrics_path {
        Some(path) if is_read && request.uri().path() == path.as_ref() => {
            super::metrics_response(&state.app)
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}
