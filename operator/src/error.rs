//! Operator errors. Invalid specs are not errors: they become a Degraded
//! condition and the controller waits for a change; these are the failures
//! worth retrying with backoff.

use crate::controller::build::BuildError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error("serializing an object: {0}")]
    Serialize(#[from] serde_json::Error),
    #[error("a blocking task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("leader election: {0}")]
    Lease(String),
    #[error(
        "{kind} {name} exists and is not Berth's (no berth.dev/registry label for this Registry); \
         it is left untouched: rename or delete it, or rename the Registry"
    )]
    NameConflict { kind: String, name: String },
}

impl Error {
    /// Low-cardinality label for the failures metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(kube::Error::Api(status)) if status.is_not_found() => "not_found",
            Error::Kube(kube::Error::Api(status)) if status.code == 409 => "conflict",
            Error::Kube(kube::Error::Api(status)) if status.code == 422 => "invalid",
            Error::Kube(kube::Error::Api(status)) if status.code == 403 => "forbidden",
            Error::Kube(_) => "kube",
            Error::Build(_) => "build",
            Error::Serialize(_) => "serialize",
            Error::Join(_) => "join",
            Error::Lease(_) => "lease",
            Error::NameConflict { .. } => "name_conflict",
        }
    }

    /// The Degraded condition's reason when reconciling stops at this error.
    pub fn condition_reason(&self) -> &'static str {
        match self {
            Error::NameConflict { .. } => "NameConflict",
            Error::Kube(kube::Error::Api(status)) if status.code == 403 => "Forbidden",
            Error::Kube(kube::Error::Api(status)) if status.code == 422 => "Rejected",
            _ => "ApplyFailed",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
