//! What the cluster holds that reconciling a Registry depends on, read once
//! per reconcile by `dereference` and handed to the pure stages.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret};

/// A Secret's data plus what identifies its version.
#[derive(Clone, Default, PartialEq)]
pub struct SecretData {
    pub uid: String,
    pub resource_version: String,
    pub data: BTreeMap<String, Vec<u8>>,
    pub annotations: BTreeMap<String, String>,
}

impl std::fmt::Debug for SecretData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print Secret contents.
        f.debug_struct("SecretData")
            .field("uid", &self.uid)
            .field("resource_version", &self.resource_version)
            .field("keys", &self.data.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl SecretData {
    pub fn from_secret(secret: &Secret) -> Self {
        SecretData {
            uid: secret.metadata.uid.clone().unwrap_or_default(),
            resource_version: secret.metadata.resource_version.clone().unwrap_or_default(),
            data: secret
                .data
                .as_ref()
                .map(|data| data.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect())
                .unwrap_or_default(),
            annotations: secret.metadata.annotations.clone().unwrap_or_default(),
        }
    }

    pub fn text(&self, key: &str) -> Option<String> {
        self.data
            .get(key)
            .and_then(|bytes| String::from_utf8(bytes.clone()).ok())
    }
}

/// Cluster state read for one reconcile.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// Secrets the spec references by name (passwords, htpasswd, S3 keys, TLS);
    /// a name maps to `None` when the Secret does not exist.
    pub referenced_secrets: BTreeMap<String, Option<SecretData>>,
    /// The operator's own htpasswd Secret, to keep unchanged passwords' hashes.
    pub htpasswd_secret: Option<SecretData>,
    /// The operator's CA and serving-certificate Secrets, reused until they near expiry.
    pub ca_secret: Option<SecretData>,
    pub tls_secret: Option<SecretData>,
    pub deployment: Option<Deployment>,
    pub claim: Option<PersistentVolumeClaim>,
    /// Garbage-collection Jobs of this Registry and their pods.
    pub gc_jobs: Vec<Job>,
    pub gc_pods: Vec<Pod>,
    /// Whether the Prometheus Operator's ServiceMonitor kind exists.
    pub service_monitor_available: bool,
    /// Whether cert-manager's Certificate kind exists (checked only for CertManager mode).
    pub cert_manager_available: bool,
    /// Seconds since the epoch when observed (certificate expiry decisions).
    pub now: i64,
}
