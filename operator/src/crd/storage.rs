//! Storage backends: a PersistentVolumeClaim, an emptyDir, or S3-compatible object storage.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Exactly one of `persistentVolume`, `emptyDir`, `s3`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[x_kube(validation = kube::core::Rule::new(
    "[has(self.persistentVolume), has(self.emptyDir), has(self.s3)].filter(set, set).size() == 1"
).message("set exactly one of storage.persistentVolume, storage.emptyDir, storage.s3"))]
#[x_kube(validation = kube::core::Rule::new(
    "has(self.s3) == has(oldSelf.s3) && has(self.emptyDir) == has(oldSelf.emptyDir) && has(self.persistentVolume) == has(oldSelf.persistentVolume)"
).message("the storage backend cannot be switched in place; create a new Registry and copy the images"))]
#[serde(rename_all = "camelCase")]
pub struct StorageSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_volume: Option<PersistentVolumeSpec>,
    /// Pod-local scratch storage: images are lost when the pod goes away.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty_dir: Option<EmptyDirSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Spec>,
}

/// A PersistentVolumeClaim made by the operator, or an existing one.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[x_kube(validation = kube::core::Rule::new(
    "!has(self.existingClaim) || (!has(self.size) && !has(self.storageClassName) && !has(self.accessModes))"
).message("existingClaim cannot be combined with size, storageClassName or accessModes"))]
#[serde(rename_all = "camelCase")]
pub struct PersistentVolumeSpec {
    /// Requested size (default 10Gi). It may grow but not shrink.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<Quantity>,
    /// StorageClass (default: the cluster's default class). Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("storageClassName is immutable"))]
    pub storage_class_name: Option<String>,
    /// Access modes (default [ReadWriteOnce]); ReadWriteMany allows several replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 3))]
    pub access_modes: Option<Vec<AccessMode>>,
    /// Use this claim instead of creating one; it is never deleted by the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub existing_claim: Option<String>,
    /// Keep the claim (and the images) when the Registry is deleted (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retain_on_delete: Option<bool>,
}

/// Volume access modes.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessMode {
    ReadWriteOnce,
    ReadWriteOncePod,
    ReadWriteMany,
}

impl AccessMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessMode::ReadWriteOnce => "ReadWriteOnce",
            AccessMode::ReadWriteOncePod => "ReadWriteOncePod",
            AccessMode::ReadWriteMany => "ReadWriteMany",
        }
    }
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct EmptyDirSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_limit: Option<Quantity>,
    /// Use node memory (tmpfs) instead of disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<bool>,
}

/// S3-compatible object storage: AWS S3, MinIO, Ceph, Aliyun OSS (through
/// its S3-compatible endpoint), and others.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct S3Spec {
    #[schemars(length(min = 3, max = 63))]
    pub bucket: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub region: Option<String>,
    /// Endpoint URL for non-AWS services, e.g. https://oss-cn-hangzhou.aliyuncs.com.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 512), regex(pattern = r"^https?://"))]
    pub endpoint: Option<String>,
    /// Path-style requests (MinIO, Ceph); Aliyun OSS needs virtual-hosted style (false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_path_style: Option<bool>,
    /// Key prefix inside the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 512))]
    pub root_directory: Option<String>,
    /// Access keys; without it the pod uses its ambient identity (IRSA, instance roles).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<S3CredentialsRef>,
    /// Server-side encryption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypt: Option<bool>,
}

/// A Secret holding S3 access keys.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct S3CredentialsRef {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key of the access key id (default AWS_ACCESS_KEY_ID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub access_key_id_key: Option<String>,
    /// Key of the secret access key (default AWS_SECRET_ACCESS_KEY).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub secret_access_key_key: Option<String>,
}
