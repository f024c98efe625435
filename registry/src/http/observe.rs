//! Per-request observation for `/v2`: parses the route once, counts
//! requests, latency and body bytes, writes the access log line, and adds
//! the headers every API response carries.

use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::HeaderValue;
use http_body_util::BodyExt;

use super::path;
use crate::metrics::{RequestLabels, RouteLabels};
use crate::state::AppState;

const API_VERSION: &str = "docker-distribution-api-version";

pub async fn observe(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let uri_path = request.uri().path().to_owned();
    let (label, mut response) = match path::parse(&uri_path) {
        Ok(route) => {
            let label = route.label();
            request.extensions_mut().insert(route);
            let received = state.metrics.bytes_received.clone();
            let request = request.map(|body| {
                Body::new(body.map_frame(move |frame| {
                    if let Some(data) = frame.data_ref() {
                        received.inc_by(data.len() as u64);
                    }
                    frame
                }))
            });
            (label, next.run(request).await)
        }
        Err(error) => ("invalid", error.into_response()),
    };

    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    state
        .metrics
        .requests
        .get_or_create(&RequestLabels {
            route: label,
            method: method.clone(),
            status,
        })
        .inc();
    state
        .metrics
        .duration
        .get_or_create(&RouteLabels {
            route: label,
            method: method.clone(),
        })
        .observe(elapsed.as_secs_f64());
    if state.settings.access_log {
        tracing::info!(
            target: "registry::access",
            method = %method,
            path = %uri_path,
            route = label,
            status,
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            "request"
        );
    }

    let headers = response.headers_mut();
    headers.insert(API_VERSION, HeaderValue::from_static("registry/2.0"));
    for (name, value) in &state.settings.extra_headers {
        headers.append(name, value.clone());
    }
    let sent = state.metrics.bytes_sent.clone();
    response.map(|body| {
        Body::new(body.map_frame(move |frame| {
            if let Some(data) = frame.data_ref() {
                sent.inc_by(data.len() as u64);
            }
            frame
        }))
    })
}
