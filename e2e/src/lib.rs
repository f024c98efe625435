//! Test harness for a real local Kubernetes control plane (see `e2e/cluster` and `e2e/README.md`).
//!
//! [`Cluster::shared`] finds a cluster to test against, in this order:
//! 1. `BERTH_E2E_KUBECONFIG`: an explicit kubeconfig (kind, k3d, any cluster). It must be reachable.
//! 2. `KUBECONFIG`, if it is set and its current context answers.
//! 3. Otherwise it runs `e2e/cluster up` once per test binary (the script takes a file lock, so
//!    parallel test binaries share one cluster) and uses the kubeconfig it prints.
//!
//! Each test then asks for its own namespace with [`Cluster::namespace`]; the namespace is deleted
//! when the returned [`TestNamespace`] is dropped.
//!
//! ```no_run
//! # async fn example() -> e2e::Result<()> {
//! let cluster = e2e::Cluster::shared().await?;
//! let ns = cluster.namespace("my-test").await?;
//! let pods: kube::Api<k8s_openapi::api::core::v1::Pod> = ns.api();
//! # let _ = pods;
//! # Ok(())
//! # }
//! ```

pub mod cluster;
pub mod error;
pub mod namespace;
pub mod node;
pub mod wait;

pub use cluster::{Cluster, Source};
pub use error::{Error, Result};
pub use namespace::TestNamespace;

/// Install a `tracing` subscriber that writes through the test harness's capture (once per process).
///
/// The filter comes from `RUST_LOG`, defaulting to `info` for this crate and `warn` for the rest.
pub fn init_tracing() {
    init_tracing_with("");
}

/// [`init_tracing`], with `info` also for the calling test crate (`module_path!()`), whose own
/// measurements would otherwise be filtered out.
pub fn init_tracing_with(test_crate: &str) {
    use std::io::IsTerminal as _;
    let default = if test_crate.is_empty() {
        "warn,e2e=info".to_owned()
    } else {
        format!("warn,e2e=info,{test_crate}=info")
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // A second call (another test in the same binary) finds a subscriber already set: fine.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // CI logs are files: escape codes there are noise.
        .with_ansi(std::io::stdout().is_terminal())
        .with_test_writer()
        .try_init();
}

/// A random lowercase alphanumeric string of `len` characters, for unique object names.
pub fn random_suffix(len: usize) -> String {
    use rand::Rng as _;
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(len)
        .map(|b| char::from(b).to_ascii_lowercase())
        .collect()
}
