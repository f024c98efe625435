//! The validated, defaulted view of a Registry that builders render from.
//! Everything here is resolved: no `Option` means "use the default" any more.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, ResourceRequirements, Toleration, TopologySpreadConstraint,
};
use k8s_openapi::api::networking::v1::NetworkPolicyPeer;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::crd::{GcMode, IssuerRef, LogFormat, LogLevel, ServiceType};

/// Registry container port.
pub const REGISTRY_PORT: i32 = 5000;
/// Where the registry's storage is mounted in pods.
pub const STORAGE_MOUNT: &str = "/var/lib/registry";
/// Where the rendered config is mounted.
pub const CONFIG_DIR: &str = "/etc/berth";
pub const CONFIG_FILE: &str = "config.yml";
pub const AUTH_DIR: &str = "/etc/berth/auth";
pub const HTPASSWD_FILE: &str = "htpasswd";
pub const TLS_DIR: &str = "/etc/berth/tls";

/// A Registry ready to render.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedRegistry {
    pub name: String,
    pub namespace: String,
    pub generation: Option<i64>,
    /// Owner reference every child (except a retained claim) carries.
    pub owner: OwnerReference,
    /// `None` when an autoscaler owns the replica count.
    pub replicas: Option<i32>,
    pub image: String,
    pub image_pull_policy: Option<String>,
    pub storage: Storage,
    pub auth: Option<Auth>,
    pub tls: Tls,
    pub delete_enabled: bool,
    pub read_only: bool,
    pub gc: Option<Gc>,
    pub upload_purging: UploadPurging,
    pub service: Service,
    pub ingress: Option<Ingress>,
    pub pod: Pod,
    pub pdb: Option<Pdb>,
    pub autoscaling: Option<Autoscaling>,
    pub service_monitor: Option<ServiceMonitor>,
    pub network_policy: Option<Vec<NetworkPolicyPeer>>,
    pub log: Log,
    /// Publish the Service address and CA for nodes (`spec.nodeAccess.enabled`).
    pub node_access: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Storage {
    Claim {
        claim_name: String,
        /// What to create; `None` for an existing claim the operator must not touch.
        create: Option<ClaimSpec>,
        /// No owner reference, so the claim outlives the Registry.
        retain: bool,
        /// ReadWriteOnce-style: one node at a time (Recreate rollouts, GC on the same node).
        single_node: bool,
    },
    EmptyDir {
        size_limit: Option<String>,
        memory: bool,
    },
    S3(S3),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClaimSpec {
    pub size: String,
    pub storage_class_name: Option<String>,
    pub access_modes: Vec<String>,
}

/// Object storage: the registry's own driver section (so what is rendered
/// is what the registry parses), credentials from a Secret, and redirects.
#[derive(Debug, Clone, PartialEq)]
pub struct S3 {
    pub driver: ObjectDriver,
    /// (Secret name, access key id key, secret access key key), passed as
    /// the driver's `REGISTRY_STORAGE_*` variables, never in the ConfigMap.
    pub credentials: Option<(String, String, String)>,
    /// Blob downloads answer 307 to a presigned URL of the store.
    pub redirect: bool,
}

/// Which `storage.*` section, with everything but the credentials.
#[derive(Debug, Clone, PartialEq)]
pub enum ObjectDriver {
    S3(Box<registry::config::S3Config>),
    Oss(Box<registry::config::OssConfig>),
}

impl S3 {
    pub fn bucket(&self) -> &str {
        match &self.driver {
            ObjectDriver::S3(c) => &c.bucket,
            ObjectDriver::Oss(c) => &c.bucket,
        }
    }

    /// The `REGISTRY_STORAGE_*` variables of the access key id and secret.
    pub fn credential_variables(&self) -> (&'static str, &'static str) {
        match &self.driver {
            ObjectDriver::S3(_) => (
                "REGISTRY_STORAGE_S3_ACCESSKEY",
                "REGISTRY_STORAGE_S3_SECRETKEY",
            ),
            ObjectDriver::Oss(_) => (
                "REGISTRY_STORAGE_OSS_ACCESSKEYID",
                "REGISTRY_STORAGE_OSS_ACCESSKEYSECRET",
            ),
        }
    }
}

impl Storage {
    /// Whether several pods can use the storage at once.
    pub fn shared(&self) -> bool {
        match self {
            Storage::Claim { single_node, .. } => !single_node,
            Storage::EmptyDir { .. } => false,
            Storage::S3(_) => true,
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Storage::Claim { .. } => "PersistentVolume",
            Storage::EmptyDir { .. } => "EmptyDir",
            Storage::S3(S3 {
                driver: ObjectDriver::S3(_),
                ..
            }) => "S3",
            Storage::S3(S3 {
                driver: ObjectDriver::Oss(_),
                ..
            }) => "OSS",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Auth {
    pub realm: String,
    pub anonymous_read: bool,
    pub source: AuthSource,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AuthSource {
    /// Users to hash: (name, password, a version of where the password came from).
    Users(Vec<UserPassword>),
    /// A ready htpasswd file from the user's Secret.
    Existing { secret: String, key: String },
}

#[derive(Clone, PartialEq)]
pub struct UserPassword {
    pub name: String,
    pub password: String,
    /// `<secret uid>/<resourceVersion>/<key>`: unchanged means the password is unchanged.
    pub source: String,
}

impl std::fmt::Debug for UserPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserPassword")
            .field("name", &self.name)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Tls {
    SelfSigned {
        dns_names: Vec<String>,
        tls13_only: bool,
    },
    Secret {
        secret: String,
        tls13_only: bool,
    },
    CertManager {
        issuer: IssuerRef,
        dns_names: Vec<String>,
        tls13_only: bool,
    },
    Disabled,
}

impl Tls {
    pub fn enabled(&self) -> bool {
        !matches!(self, Tls::Disabled)
    }

    pub fn mode_name(&self) -> &'static str {
        match self {
            Tls::SelfSigned { .. } => "SelfSigned",
            Tls::Secret { .. } => "Secret",
            Tls::CertManager { .. } => "CertManager",
            Tls::Disabled => "Disabled",
        }
    }

    pub fn tls13_only(&self) -> bool {
        match self {
            Tls::SelfSigned { tls13_only, .. }
            | Tls::Secret { tls13_only, .. }
            | Tls::CertManager { tls13_only, .. } => *tls13_only,
            Tls::Disabled => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Gc {
    pub schedule: String,
    pub time_zone: Option<String>,
    pub suspend: bool,
    pub delete_untagged: bool,
    pub mode: GcMode,
    pub dry_run: bool,
    pub min_age: String,
    pub successful_history: i32,
    pub failed_history: i32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UploadPurging {
    pub enabled: bool,
    pub age: String,
    pub interval: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    pub type_: ServiceType,
    pub port: i32,
    pub node_port: Option<i32>,
    pub annotations: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Ingress {
    pub class_name: Option<String>,
    pub hosts: Vec<String>,
    pub tls_secret_name: Option<String>,
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Pod {
    pub resources: Option<ResourceRequirements>,
    pub node_selector: Option<BTreeMap<String, String>>,
    pub tolerations: Option<Vec<Toleration>>,
    pub affinity: Option<Affinity>,
    pub topology_spread_constraints: Option<Vec<TopologySpreadConstraint>>,
    pub annotations: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub priority_class_name: Option<String>,
    pub service_account_annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Pdb {
    MinAvailable(IntOrString),
    MaxUnavailable(IntOrString),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Autoscaling {
    pub min_replicas: i32,
    pub max_replicas: i32,
    pub target_cpu: i32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServiceMonitor {
    pub interval: String,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Log {
    pub level: LogLevel,
    pub format: LogFormat,
    pub access_log: bool,
}
