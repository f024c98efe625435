//! Prometheus metrics served on `/metrics`: requests by route and status,
//! latency, bytes in and out, uploads in progress.

use std::fmt;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Label values come from fixed sets only: a client choosing a method (or a path) must not be
/// able to create series. `route` is a route name, `method` is [`method_label`], `status` is a
/// status code.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: &'static str,
    pub method: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: &'static str,
    pub method: &'static str,
}

/// The metrics label of a request method: the methods the API uses, and `other` for the rest
/// (extension methods are arbitrary tokens, checked before authentication).
pub fn method_label(method: &http::Method) -> &'static str {
    match *method {
        http::Method::GET => "GET",
        http::Method::HEAD => "HEAD",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::PATCH => "PATCH",
        http::Method::DELETE => "DELETE",
        http::Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// All registry metrics, registered under the `registry_` prefix.
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub duration: Family<RouteLabels, Histogram>,
    pub bytes_received: Counter<u64, AtomicU64>,
    pub bytes_sent: Counter<u64, AtomicU64>,
    pub uploads_in_progress: Gauge,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("registry");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route, method and status",
            requests.clone(),
        );
        let duration = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.5, 14))
        });
        registry.register(
            "http_request_duration_seconds",
            "Time to response headers, by route and method",
            duration.clone(),
        );
        let bytes_received = Counter::<u64, AtomicU64>::default();
        registry.register(
            "http_received_bytes",
            "Request body bytes received",
            bytes_received.clone(),
        );
        let bytes_sent = Counter::<u64, AtomicU64>::default();
        registry.register(
            "http_sent_bytes",
            "Response body bytes sent",
            bytes_sent.clone(),
        );
        let uploads_in_progress = Gauge::default();
        registry.register(
            "uploads_in_progress",
            "Blob upload requests currently streaming data into storage",
            uploads_in_progress.clone(),
        );
        Metrics {
            registry,
            requests,
            duration,
            bytes_received,
            bytes_sent,
            uploads_in_progress,
        }
    }
}

impl Metrics {
    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if encode(&mut text, &self.registry).is_err() {
            tracing::error!("encoding metrics failed");
        }
        text
    }
}

/// Counts an upload as in progress until dropped.
#[derive(Debug)]
pub struct InProgress<'a>(&'a Gauge);

impl<'a> InProgress<'a> {
    pub fn start(gauge: &'a Gauge) -> Self {
        gauge.inc();
        InProgress(gauge)
    }
}

impl Drop for InProgress<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}
