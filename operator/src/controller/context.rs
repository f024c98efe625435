//! Shared controller state: client, defaults, metrics, event recorder, and
//! the small caches that keep steady-state reconciles free of writes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kube::Client;
use kube::runtime::events::{Recorder, Reporter};

use super::node_access::Target;
use super::validate::Defaults;
use crate::metrics::Metrics;

/// Field manager for every server-side apply.
pub const FIELD_MANAGER: &str = "berth-operator";

/// How often optional API groups (ServiceMonitor) are re-discovered.
const DISCOVERY_TTL: Duration = Duration::from_secs(300);

pub struct Context {
    pub client: Client,
    pub defaults: Defaults,
    /// How often a healthy Registry is re-checked (certificate renewal, drift).
    pub resync: Duration,
    pub metrics: Metrics,
    pub recorder: Recorder,
    /// The node-access ConfigMap, when the chart installed the node agent.
    pub node_access: Option<Target>,
    /// Its `data` as last read or written (only the leader writes it).
    pub(crate) node_access_data: tokio::sync::Mutex<Option<BTreeMap<String, String>>>,
    /// `metadata.generation` of each child after the operator last applied or
    /// verified it; a different generation later means someone else edited it.
    generations: Mutex<HashMap<String, i64>>,
    /// Consecutive failures per Registry, for exponential backoff.
    failures: Mutex<HashMap<String, u32>>,
    /// Optional kinds by "group/version/Kind": served or not, and when that was checked.
    discovered: Mutex<HashMap<String, (bool, Instant)>>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("defaults", &self.defaults)
            .finish_non_exhaustive()
    }
}

impl Context {
    pub fn new(client: Client, defaults: Defaults) -> Self {
        let reporter = Reporter {
            controller: FIELD_MANAGER.into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Context {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            defaults,
            resync: Duration::from_secs(300),
            metrics: Metrics::default(),
            node_access: None,
            node_access_data: tokio::sync::Mutex::new(None),
            generations: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            discovered: Mutex::new(HashMap::new()),
        }
    }

    /// Sets the steady-state resync interval.
    pub fn with_resync(mut self, resync: Duration) -> Self {
        self.resync = resync;
        self
    }

    /// Publishes Registries with node access into this ConfigMap.
    pub fn with_node_access(mut self, target: Option<Target>) -> Self {
        self.node_access = target;
        self
    }

    /// Whether a child's generation moved since the operator last saw it.
    /// The first sighting (e.g. after a restart) is recorded, not treated as drift.
    pub fn generation_drifted(&self, key: &str, generation: Option<i64>) -> bool {
        let Some(generation) = generation else {
            return false;
        };
        let Ok(mut generations) = self.generations.lock() else {
            return false;
        };
        match generations.insert(key.to_owned(), generation) {
            Some(previous) => previous != generation,
            None => false,
        }
    }

    /// Remembers a child's generation right after applying it.
    pub fn record_generation(&self, key: &str, generation: Option<i64>) {
        if let (Some(generation), Ok(mut generations)) = (generation, self.generations.lock()) {
            generations.insert(key.to_owned(), generation);
        }
    }

    /// Backoff after the n-th consecutive failure: 5s, 10s, 20s, ... up to 5 minutes.
    pub fn failure_backoff(&self, key: &str) -> Duration {
        let attempts = self
            .failures
            .lock()
            .map(|mut failures| {
                let count = failures.entry(key.to_owned()).or_insert(0);
                *count = count.saturating_add(1);
                *count
            })
            .unwrap_or(1);
        let base = Duration::from_secs(5u64.saturating_mul(1 << attempts.min(6).saturating_sub(1)))
            .min(Duration::from_secs(300));
        // ±20% so Registries failing together (an API server outage, a quota)
        // do not retry in lockstep.
        base.mul_f64(rand::random_range(0.8..1.2))
    }

    pub fn reset_failures(&self, key: &str) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(key);
        }
    }

    /// Whether an optional kind (ServiceMonitor, cert-manager's Certificate) is served; cached.
    pub async fn kind_available(&self, group_version: &str, kind: &str) -> bool {
        let key = format!("{group_version}/{kind}");
        if let Ok(discovered) = self.discovered.lock()
            && let Some((available, at)) = discovered.get(&key)
            && at.elapsed() < DISCOVERY_TTL
        {
            return *available;
        }
        let available = self
            .client
            .list_api_group_resources(group_version)
            .await
            .map(|list| list.resources.iter().any(|r| r.kind == kind))
            .unwrap_or(false);
        if let Ok(mut discovered) = self.discovered.lock() {
            discovered.insert(key, (available, Instant::now()));
        }
        available
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn generation_drift_and_backoff() {
        // A client is only needed for construction; nothing is sent.
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        let context = Context::new(
            Client::try_from(config).unwrap(),
            Defaults { image: "x".into() },
        );
        assert!(
            !context.generation_drifted("deploy/a", Some(1)),
            "first sighting"
        );
        assert!(!context.generation_drifted("deploy/a", Some(1)));
        assert!(
            context.generation_drifted("deploy/a", Some(2)),
            "edited by someone else"
        );
        context.record_generation("deploy/a", Some(3));
        assert!(!context.generation_drifted("deploy/a", Some(3)));
        assert!(!context.generation_drifted("secret/a", None));

        // Exponential, capped, each within ±20% of its base.
        let bases = [5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 160.0, 160.0];
        let backoffs: Vec<f64> = (0..8)
            .map(|_| context.failure_backoff("r").as_secs_f64())
            .collect();
        for (backoff, base) in backoffs.iter().zip(bases) {
            assert!((base * 0.8..=base * 1.2).contains(backoff), "{backoffs:?}");
        }
        context.reset_failures("r");
        let first = context.failure_backoff("r").as_secs_f64();
        assert!((4.0..=6.0).contains(&first), "{first}");
        // Jittered: Registries failing together spread out.
        let spread: std::collections::BTreeSet<u64> = (0..20)
            .map(|i| context.failure_backoff(&format!("other-{i}")).as_millis() as u64)
            .collect();
        assert!(spread.len() > 1, "{spread:?}");
    }
}
