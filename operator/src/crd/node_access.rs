//! Node access: nodes pull from the Registry by its Service name with TLS verified.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Let the cluster's nodes pull from this Registry by `status.endpoint` with TLS verified: the
/// operator publishes the Service address and CA, and the node agent (installed with the chart's
/// `nodeAccess.enabled`) writes them into every node's container runtime configuration
/// (`certs.d/<host:port>/{ca.crt,hosts.toml}`) and hosts file. Needs TLS.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct NodeAccessSpec {
    /// Publish this Registry for nodes (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// What nodes were told about this Registry.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct NodeAccessStatus {
    /// Whether the entry is in the node-access ConfigMap.
    pub published: bool,
    /// `host:port` names nodes trust and resolve.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// The address the names resolve to on nodes (the Service's cluster IP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// `namespace/name` of the ConfigMap the node agent reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<String>,
    /// Why the entry is not published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
