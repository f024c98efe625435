//! The `Registry` custom resource (`berth.dev/v1alpha1`): spec, status,
//! admission rules (schema + CEL) and printer columns.

mod auth;
mod gc;
mod node_access;
mod schema;
mod status;
mod storage;
mod tls;
mod workload;

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

pub use auth::{AuthSpec, HtpasswdSpec, HtpasswdUser, SecretKeyRef};
pub use gc::{GcMode, GcSpec, UploadPurgingSpec};
pub use node_access::{NodeAccessSpec, NodeAccessStatus};
pub use status::{
    CONDITION_DEGRADED, CONDITION_PROGRESSING, CONDITION_READY, GcRun, GcStatus, RegistryStatus,
    StorageStatus, TlsStatus,
};
pub use storage::{
    AccessMode, EmptyDirSpec, OssSpec, PersistentVolumeSpec, S3CredentialsRef, S3Spec, StorageSpec,
};
pub use tls::{IssuerRef, TlsMode, TlsSpec, TlsVersion};
pub use workload::{
    AutoscalingSpec, IngressSpec, LogFormat, LogLevel, LogSpec, MetricsSpec, NetworkPolicySpec,
    PodDisruptionBudgetSpec, PodSpec, ServiceMonitorSpec, ServiceSpec, ServiceType,
};

/// A private container registry: storage, credentials, TLS, a Service, and
/// scheduled garbage collection, reconciled into a running Deployment.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "berth.dev",
    version = "v1alpha1",
    kind = "Registry",
    plural = "registries",
    shortname = "reg",
    category = "berth",
    namespaced,
    status = "RegistryStatus",
    derive = "PartialEq",
    derive = "Default",
    cel,
    doc = "A private OCI container registry managed by the Berth operator",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Replicas", type_ = "integer", json_path = ".status.readyReplicas"),
    printcolumn(name = "Endpoint", type_ = "string", json_path = ".status.endpoint"),
    printcolumn(name = "Storage", type_ = "string", json_path = ".status.storage.type"),
    printcolumn(name = "Last GC", type_ = "date", json_path = ".status.gc.lastSuccessfulTime"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    printcolumn(name = "Reason", type_ = "string", priority = 1, json_path = ".status.conditions[?(@.type==\"Ready\")].reason"),
    printcolumn(name = "TLS Expires", type_ = "date", priority = 1, json_path = ".status.tls.notAfter"),
    validation = kube::core::Rule::new("size(self.metadata.name) <= 45")
        .message("metadata.name must be at most 45 characters: child objects add suffixes")
)]
#[x_kube(validation = kube::core::Rule::new(
    "!has(self.replicas) || self.replicas <= 1 || has(self.storage.s3) || has(self.storage.oss) || (has(self.storage.persistentVolume) && (has(self.storage.persistentVolume.existingClaim) || (has(self.storage.persistentVolume.accessModes) && 'ReadWriteMany' in self.storage.persistentVolume.accessModes)))"
).message("replicas > 1 needs shared storage: s3, oss, or a persistentVolume with accessModes [ReadWriteMany] (or an existingClaim)"))]
#[x_kube(validation = kube::core::Rule::new(
    "!has(self.autoscaling) || has(self.storage.s3) || has(self.storage.oss) || (has(self.storage.persistentVolume) && (has(self.storage.persistentVolume.existingClaim) || (has(self.storage.persistentVolume.accessModes) && 'ReadWriteMany' in self.storage.persistentVolume.accessModes)))"
).message("autoscaling needs shared storage: s3, oss, or a ReadWriteMany persistentVolume"))]
#[x_kube(validation = kube::core::Rule::new(
    "!has(self.storage.persistentVolume) || !has(self.storage.persistentVolume.accessModes) || !('ReadWriteOncePod' in self.storage.persistentVolume.accessModes) || (has(self.gc) && has(self.gc.suspend) && self.gc.suspend)"
).message("storage.persistentVolume.accessModes ReadWriteOncePod lets only the registry pod mount the volume, so the GC Job could never run: use ReadWriteOnce (GC then runs on the registry's node) or ReadWriteMany, or set gc.suspend: true"))]
#[x_kube(validation = kube::core::Rule::new(
    "!has(self.nodeAccess) || !has(self.nodeAccess.enabled) || !self.nodeAccess.enabled || !has(self.tls) || !has(self.tls.mode) || self.tls.mode != 'Disabled'"
).message("nodeAccess needs TLS: nodes only pull from a Registry over verified HTTPS"))]
#[serde(rename_all = "camelCase")]
pub struct RegistrySpec {
    /// Registry pods (default 1; 0 stops the registry but keeps its data).
    /// More than one needs shared storage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub replicas: Option<i32>,

    /// Registry image; defaults to the image the operator was installed with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub image: Option<String>,

    /// Always, IfNotPresent or Never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(Always|IfNotPresent|Never)$"))]
    pub image_pull_policy: Option<String>,

    /// Where images are stored: exactly one backend.
    pub storage: StorageSpec,

    /// Who may push and pull.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthSpec>,

    /// How the registry serves HTTPS (default: a certificate from an operator-made CA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,

    /// Allow deleting tags, manifests and blobs through the API (default true;
    /// garbage collection then reclaims the space).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_enabled: Option<bool>,

    /// Refuse all pushes and deletes (maintenance); pulls keep working.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,

    /// Scheduled garbage collection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gc: Option<GcSpec>,

    /// Removal of abandoned upload sessions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_purging: Option<UploadPurgingSpec>,

    /// The Service in front of the registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceSpec>,

    /// An Ingress for access from outside the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<IngressSpec>,

    /// Scheduling and resources of the registry pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<PodSpec>,

    /// Disruption budget (default: minAvailable 1 when more than one replica runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_disruption_budget: Option<PodDisruptionBudgetSpec>,

    /// Horizontal autoscaling; the operator then leaves the Deployment's replica count alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<AutoscalingSpec>,

    /// Prometheus scraping (a ServiceMonitor when the Prometheus Operator is installed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<MetricsSpec>,

    /// A NetworkPolicy admitting only the listed peers to the registry port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_policy: Option<NetworkPolicySpec>,

    /// Registry logging.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<LogSpec>,

    /// Let nodes pull from this Registry by its in-cluster name, TLS verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_access: Option<NodeAccessSpec>,
}

#[cfg(test)]
mod tests;
