//! Per-request observation for `/v2`: counts requests, latency and body
//! bytes, writes the access log line, and adds the headers every API
//! response carries, `Connection: close` included when an HTTP/1 request
//! body was left unread. It reads the route the routing layer labelled the
//! response with and parses nothing itself.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use http::header::CONNECTION;
use http::{HeaderValue, Version};
use http_body::{Body as _, Frame, SizeHint};
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
    // Whether the request body is read to its end: a response that leaves
    // HTTP/1 body bytes in the connection (a 401 on a push, a refused write)
    // must say the connection closes, or a client may send its next request
    // on it and get EOF.
    let finished = (request.version() < Version::HTTP_2
        && request.body().size_hint().exact() != Some(0))
    .then(|| Arc::new(AtomicBool::new(false)));
    let tracked = finished.clone();
    let request = request.map(|body| Body::new(CountingBody::new(body, received, tracked)));
    let mut response = next.run(request).await;
    if finished.is_some_and(|f| !f.load(Ordering::Acquire)) {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
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
    response.map(|body| Body::new(CountingBody::new(body, sent, None)))
}

/// Counts data bytes passing through a body, keeping its size hint (so
/// `Content-Length` survives, unlike a generic frame mapper), and records
/// in `finished` (when given) that it was read to its end.
struct CountingBody {
    inner: Body,
    counter: Counter<u64, AtomicU64>,
    finished: Option<Arc<AtomicBool>>,
}

impl CountingBody {
    fn new(
        inner: Body,
        counter: Counter<u64, AtomicU64>,
        finished: Option<Arc<AtomicBool>>,
    ) -> Self {
        CountingBody {
            inner,
            counter,
            finished,
        }
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
        if let Some(finished) = &self.finished
            && (matches!(polled, Poll::Ready(None)) || self.inner.is_end_stream())
        {
            finished.store(true, Ordering::Release);
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
