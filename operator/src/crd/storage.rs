//! Storage backends: a PersistentVolumeClaim, an emptyDir, S3-compatible
//! object storage, or Aliyun OSS.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Exactly one of `persistentVolume`, `emptyDir`, `s3`, `oss`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[x_kube(validation = kube::core::Rule::new(
    "[has(self.persistentVolume), has(self.emptyDir), has(self.s3), has(self.oss)].filter(set, set).size() == 1"
).message("set exactly one of storage.persistentVolume, storage.emptyDir, storage.s3, storage.oss"))]
#[x_kube(validation = kube::core::Rule::new(
    "has(self.s3) == has(oldSelf.s3) && has(self.oss) == has(oldSelf.oss) && has(self.emptyDir) == has(oldSelf.emptyDir) && has(self.persistentVolume) == has(oldSelf.persistentVolume)"
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oss: Option<OssSpec>,
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

/// S3-compatible object storage: AWS S3, Ceph RGW, SeaweedFS and others
/// (rendered as distribution's `storage.s3`). Several replicas share it.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[x_kube(validation = kube::core::Rule::new(
    "has(self.region) || has(self.endpoint)"
).message("storage.s3.region is required for AWS (set endpoint for other S3-compatible stores)"))]
#[serde(rename_all = "camelCase")]
pub struct S3Spec {
    #[schemars(length(min = 3, max = 63))]
    pub bucket: String,
    /// Region requests are signed for (default us-east-1 with an endpoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub region: Option<String>,
    /// Endpoint URL for non-AWS services, e.g. http://seaweedfs.storage.svc:8333.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 512), regex(pattern = r"^https?://[^/]+/?$"))]
    pub endpoint: Option<String>,
    /// Path-style requests (default: true with an endpoint, as distribution 2.x).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_path_style: Option<bool>,
    /// Storage class of written objects (default STANDARD; NONE sends none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(
        pattern = r"^(NONE|STANDARD|REDUCED_REDUNDANCY|STANDARD_IA|ONEZONE_IA|INTELLIGENT_TIERING|GLACIER_IR)$"
    ))]
    pub storage_class: Option<String>,
    /// KMS key for server-side encryption (with `encrypt`; default: SSE-S3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub kms_key_id: Option<String>,
    /// Send blob downloads to presigned URLs of the store (307) instead of
    /// streaming them through the registry; clients must reach the endpoint
    /// (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect: Option<bool>,
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
    /// Key of the access key id (default AWS_ACCESS_KEY_ID; accessKeyId for OSS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub access_key_id_key: Option<String>,
    /// Key of the secret access key (default AWS_SECRET_ACCESS_KEY; accessKeySecret for OSS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub secret_access_key_key: Option<String>,
}

/// Aliyun OSS (rendered as distribution's `storage.oss`, served through OSS's
/// S3-compatible API): virtual-hosted requests to
/// `<bucket>.<region>[-internal].aliyuncs.com`.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct OssSpec {
    #[schemars(length(min = 3, max = 63))]
    pub bucket: String,
    /// e.g. oss-cn-hangzhou.
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^oss-[a-z0-9-]+$"))]
    pub region: String,
    /// Use the VPC-internal endpoint (pods in the bucket's region).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal: Option<bool>,
    /// Another host (a custom domain; an IP address uses path-style requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253), regex(pattern = r"^[A-Za-z0-9.:\[\]-]+$"))]
    pub endpoint: Option<String>,
    /// HTTPS (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secure: Option<bool>,
    /// Key prefix inside the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 512))]
    pub root_directory: Option<String>,
    /// AccessKey pair (required); keys default to accessKeyId / accessKeySecret.
    pub credentials_secret_ref: S3CredentialsRef,
    /// Server-side encryption (with `kmsKeyId`: KMS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypt: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub kms_key_id: Option<String>,
    /// Redirect blob downloads to presigned OSS URLs (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect: Option<bool>,
}
