//! The HTTP API: routing of `/v2/...` paths to thin handlers, plus
//! `/healthz`, `/readyz` and `/metrics`.

pub mod auth;
mod blobs;
pub mod debug;
pub mod limits;
mod listing;
mod manifests;
mod observe;
pub mod path;
mod query;
mod referrers;
mod response;
mod route;
mod uploads;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method, StatusCode};
use serde_json::json;

use crate::error::{Error, Result};
use crate::state::AppState;
use limits::Limits;
use path::Route;
use query::Query;

/// Builds the full application router with default [`Limits`].
pub fn router(state: AppState) -> Router {
    router_with_limits(state, Limits::default())
}

/// Builds the full application router. A `/v2` request passes, outermost
/// first: observation (metrics, access log, common headers including
/// `Connection: close` on answers that leave an HTTP/1 body unread, so even
/// refused requests are counted), routing (the [`Route`] every later step reads),
/// authentication, limits, the handler. Limits apply after authentication,
/// so anonymous clients cannot take upload slots.
pub fn router_with_limits(state: AppState, limits: Limits) -> Router {
    // Layers wrap what is above them: the last one added runs first.
    let api = Router::new()
        .fallback(dispatch)
        .layer(from_fn_with_state(limits, limits::limit))
        .layer(from_fn_with_state(state.clone(), auth::require))
        .layer(from_fn(route::route))
        .layer(from_fn_with_state(state.clone(), observe::observe))
        .with_state(state.clone());
    let mut router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz));
    if state.settings.api_metrics {
        router = router.route("/metrics", get(metrics));
    }
    router.with_state(state).fallback_service(api)
}

/// Routes a parsed request to its handler; the route was parsed by [`route::route`].
/// Writes and deletes are admitted by the content's write policy first, so
/// a refused push is answered before its body is read (the content checks
/// again itself: a handler cannot write around the policy).
async fn dispatch(State(state): State<AppState>, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    let Some(route) = parts.extensions.remove::<Route>() else {
        return Error::NotFound.into_response();
    };
    let query = Query::parse(parts.uri.query());
    handle(&state, route, &parts.method, &parts.headers, &query, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn handle(
    state: &AppState,
    route: Route,
    method: &Method,
    headers: &http::HeaderMap,
    query: &Query,
    body: Body,
) -> Result<Response> {
    let head = method == Method::HEAD;
    state.content.admit(route.access(method))?;
    match (&route, method.clone()) {
        (Route::Base, Method::GET | Method::HEAD) => {
            response::json(StatusCode::OK, &json!({}), vec![])
        }
        (Route::Catalog, Method::GET) => listing::catalog(state, query).await,
        (Route::Tags(name), Method::GET) => listing::tags(state, name, query).await,
        (Route::Manifest(name, reference), Method::GET | Method::HEAD) => {
            manifests::get(state, name, reference, headers, head).await
        }
        (Route::Manifest(name, reference), Method::PUT) => {
            manifests::put(state, name, reference, query, headers, body).await
        }
        (Route::Manifest(name, reference), Method::DELETE) => {
            manifests::delete(state, name, reference).await
        }
        (Route::Blob(name, digest), Method::GET | Method::HEAD) => {
            blobs::get(state, name, digest, headers, head).await
        }
        (Route::Blob(name, digest), Method::DELETE) => blobs::delete(state, name, digest).await,
        (Route::UploadStart(name), Method::POST) => {
            uploads::start(state, name, query, headers, body).await
        }
        (Route::Upload(name, id), Method::GET) => uploads::status(state, name, id).await,
        (Route::Upload(name, id), Method::PATCH) => {
            uploads::patch(state, name, id, headers, body).await
        }
        (Route::Upload(name, id), Method::PUT) => {
            uploads::complete(state, name, id, query, headers, body).await
        }
        (Route::Upload(name, id), Method::DELETE) => uploads::cancel(state, name, id).await,
        (Route::Referrers(name, digest), Method::GET) => {
            referrers::list(state, name, digest, query).await
        }
        _ => Err(Error::MethodNotAllowed {
            allow: route.allowed_methods(),
        }),
    }
}

/// Liveness: the process serves HTTP.
async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: storage is reachable and usable.
async fn readyz(State(state): State<AppState>) -> Response {
    match state.check_storage().await {
        Ok(()) => (StatusCode::OK, "ok").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "storage unavailable").into_response()
        }
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    metrics_response(&state)
}

/// The Prometheus text of every registry metric (both listeners serve this one registry).
fn metrics_response(state: &AppState) -> Response {
    let mut response = state.metrics.encode().into_response();
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}
