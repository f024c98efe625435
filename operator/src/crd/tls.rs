//! TLS: a certificate from an operator-made CA, an existing Secret, cert-manager, or none.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[x_kube(validation = kube::core::Rule::new("!has(self.mode) || self.mode != 'Secret' || has(self.secretName)")
    .message("tls.mode Secret needs tls.secretName"))]
#[x_kube(validation = kube::core::Rule::new("!has(self.secretName) || (has(self.mode) && self.mode == 'Secret')")
    .message("tls.secretName is only used with tls.mode Secret"))]
#[x_kube(validation = kube::core::Rule::new("!has(self.mode) || self.mode != 'CertManager' || has(self.issuerRef)")
    .message("tls.mode CertManager needs tls.issuerRef"))]
#[serde(rename_all = "camelCase")]
pub struct TlsSpec {
    /// SelfSigned (default), Secret, CertManager or Disabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<TlsMode>,
    /// A `kubernetes.io/tls` Secret (mode Secret); its `ca.crt`, if any, is published as the CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub secret_name: Option<String>,
    /// The cert-manager issuer (mode CertManager).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_ref: Option<IssuerRef>,
    /// Extra DNS names for the certificate, beyond the Service names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    pub dns_names: Option<Vec<String>>,
    /// Lowest TLS version accepted (default TLS12).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_version: Option<TlsVersion>,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TlsMode {
    #[default]
    SelfSigned,
    Secret,
    CertManager,
    Disabled,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsVersion {
    #[serde(rename = "TLS12")]
    Tls12,
    #[serde(rename = "TLS13")]
    Tls13,
}

/// A cert-manager Issuer or ClusterIssuer.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct IssuerRef {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Issuer (default) or ClusterIssuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(Issuer|ClusterIssuer)$"))]
    pub kind: Option<String>,
    /// Default cert-manager.io.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub group: Option<String>,
}
