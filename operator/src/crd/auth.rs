//! Authentication: htpasswd users from password Secrets, or an existing htpasswd Secret.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::schema;

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct AuthSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub htpasswd: Option<HtpasswdSpec>,
}

/// Basic auth with bcrypt-hashed users. Set exactly one of `users` and `existingSecret`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[x_kube(validation = kube::core::Rule::new("has(self.users) != has(self.existingSecret)")
    .message("set exactly one of auth.htpasswd.users and auth.htpasswd.existingSecret"))]
#[serde(rename_all = "camelCase")]
pub struct HtpasswdSpec {
    /// Users whose passwords the operator reads from Secrets and bcrypt-hashes.
    /// A hash changes only when its password changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::users")]
    pub users: Option<Vec<HtpasswdUser>>,
    /// A Secret key holding a ready htpasswd file (bcrypt lines from `htpasswd -B`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub existing_secret: Option<SecretKeyRef>,
    /// Let anonymous clients pull; pushes and deletes still need credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anonymous_read: Option<bool>,
    /// The Basic auth realm (default "Berth Registry").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub realm: Option<String>,
}

/// One htpasswd user.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct HtpasswdUser {
    #[schemars(length(min = 1, max = 255), regex(pattern = r"^[^:\s]+$"))]
    pub name: String,
    pub password_secret_ref: SecretKeyRef,
}

/// A key of a Secret in the Registry's namespace.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}
