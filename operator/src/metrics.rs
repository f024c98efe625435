//! Operator metrics: reconciles, failures by reason, duration, and API writes
//! (the steady-state target is zero writes per resync).

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteLabels {
    pub kind: String,
}

pub struct Metrics {
    registry: Registry,
    pub reconciles: Counter<u64, AtomicU64>,
    pub failures: Family<FailureLabels, Counter>,
    pub duration: Histogram,
    pub writes: Family<WriteLabels, Counter>,
    pub invalid_specs: Counter<u64, AtomicU64>,
    /// Total writes, for tests and benchmarks that count steady-state writes.
    total_writes: AtomicU64,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("berth_operator");
        let reconciles = Counter::default();
        registry.register("reconciles", "Reconciliations started", reconciles.clone());
        let failures = Family::<FailureLabels, Counter>::default();
        registry.register(
            "reconcile_failures",
            "Reconciliations that failed, by reason",
            failures.clone(),
        );
        let duration = Histogram::new(exponential_buckets(0.005, 2.0, 14));
        registry.register(
            "reconcile_duration_seconds",
            "Time per reconciliation",
            duration.clone(),
        );
        let writes = Family::<WriteLabels, Counter>::default();
        registry.register(
            "api_writes",
            "Create, patch and delete requests sent, by kind",
            writes.clone(),
        );
        let invalid_specs = Counter::default();
        registry.register(
            "invalid_specs",
            "Reconciliations that found an invalid spec",
            invalid_specs.clone(),
        );
        Metrics {
            registry,
            reconciles,
            failures,
            duration,
            writes,
            invalid_specs,
            total_writes: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if encode(&mut text, &self.registry).is_err() {
            tracing::error!("encoding metrics failed");
        }
        text
    }

    /// Records an API write.
    pub fn write(&self, kind: &str) {
        self.writes
            .get_or_create(&WriteLabels {
                kind: kind.to_owned(),
            })
            .inc();
        self.total_writes.fetch_add(1, Ordering::Relaxed);
    }

    /// Writes so far, all kinds.
    pub fn total_writes(&self) -> u64 {
        self.total_writes.load(Ordering::Relaxed)
    }
}
