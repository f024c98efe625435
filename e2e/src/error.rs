//! The harness's error type.

use std::time::Duration;

/// `Result` with the harness's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while finding a cluster or waiting on it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Setting up the shared cluster failed earlier in this process; the message is the cause.
    #[error("cluster setup failed: {0}")]
    Setup(String),

    /// A kubeconfig could not be read or used.
    #[error("kubeconfig {path}: {source}")]
    Kubeconfig {
        /// Where it was read from.
        path: String,
        /// Why it failed.
        #[source]
        source: kube::config::KubeconfigError,
    },

    /// The cluster a kubeconfig points at did not answer.
    #[error("cluster from {origin} is not reachable: {reason}")]
    Unreachable {
        /// Which kubeconfig it came from.
        origin: String,
        /// What failed.
        reason: String,
    },

    /// `e2e/cluster up` failed or printed no kubeconfig.
    #[error("{script} up: {reason}")]
    ClusterScript {
        /// Path of the script.
        script: String,
        /// What failed.
        reason: String,
    },

    /// A Kubernetes API call failed.
    #[error(transparent)]
    Kube(#[from] kube::Error),

    /// Spawning a process or another I/O operation failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),

    /// A condition was not met in time.
    #[error("timed out after {timeout:?} waiting for {what}; last seen: {last_seen}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long we waited.
        timeout: Duration,
        /// The object as last seen (JSON, possibly truncated) or `absent`.
        last_seen: String,
    },

    /// The watch behind a wait failed.
    #[error("waiting for {what}: {source}")]
    Wait {
        /// What was awaited.
        what: String,
        /// The watch error.
        #[source]
        source: kube::runtime::wait::Error,
    },

    /// The real node could not be started or stopped.
    #[error("node: {0}")]
    Node(String),

    /// The object disappeared while we waited for a condition on it.
    #[error("{0} was deleted while waiting for it")]
    Gone(String),
}
