//! Per-request observation for `/v2`: counts requests, latency and body
//! bytes, writes the access log line, and adds the headers every API
//! response carries. It reads the route the routing layer labelled the
//! response with and parses nothing itself.

use std::pin::Pin;
use std::sync::atomic::AtomicU64;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use http::HeaderValue;
use http_body::{Frame, SizeHint};
use prometheus_client::metrics::counter::Counter;

use super::route::{INVALID, RouteLabel};
use crate::metrics::{self, RequestLabels, RouteLabels};
use crate::state::AppState;

const API_VERSION: &str = "docker-distribution-api-version";

pub async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    // Standard methods clone without allocating; the access log prints the method as sent.
    let method = request.method().clone();
    let method_label = metrics::method_label(&method);
    let uri_path = request.uri().path().to_owned();
    let received = state.metrics.bytes_received.clone();
    let request = request.map(|body| Body::new(CountingBody::new(body, received)));
    let mut response = next.run(request).await;
    let RouteLabel(label) = response
        .extensions()
        .get::<RouteLabel>()
        .copied()
        .unwrap_or(INVALID);

    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    state
        .metrics
        .requests
        .get_or_create(&RequestLabels {
            route: label,
            method: method_label,
            status,
        })
        .inc();
    state
        .metrics
        .duration
        .get_or_create(&RouteLabels {
            route: label,
            method: method_label,
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
    response.map(|body| Body::new(CountingBody::new(body, sent)))
}

/// Counts data bytes passing through a body, keeping its size hint (so
/// `Content-Length` survives, unlike a generic frame mapper).
struct CountingBody {
    inner: Body,
    counter: Counter<u64, AtomicU64>,
}

impl CountingBody {
    fn new(inner: Body, counter: Counter<u64, AtomicU64>) -> Self {
        CountingBody { inner, counter }
    }
}

impl http_body::Body for CountingBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.counter.inc_by(data.len() as u64);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
