//! Publishing Registries for nodes: one [`Entry`] per Registry with `spec.nodeAccess.enabled` in
//! the ConfigMap the chart creates beside the node agent (`BERTH_NODE_ACCESS_CONFIGMAP`). The
//! operator only patches that one object's `data` (a JSON merge patch per key, so concurrent
//! reconciles of different Registries never overwrite each other), and only when an entry
//! changes; entries of deleted Registries are pruned from the controller's cache of Registries.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use kube::api::{Api, Patch, PatchParams};

use super::context::Context;
use super::model::{Tls, ValidatedRegistry};
use super::observed::Observed;
use crate::crd::NodeAccessStatus;
use crate::error::Result;
use crate::node_access::{Entry, entry_key};

/// Env var naming the node-access ConfigMap (`name`, in `POD_NAMESPACE`, or `namespace/name`).
pub const CONFIGMAP_ENV: &str = "BERTH_NODE_ACCESS_CONFIGMAP";

/// The ConfigMap the node agent reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub namespace: String,
    pub name: String,
}

impl Target {
    /// From `BERTH_NODE_ACCESS_CONFIGMAP` (empty or unset: node access is not installed).
    pub fn from_env() -> Option<Self> {
        let value = std::env::var(CONFIGMAP_ENV).ok()?;
        let default_ns = std::env::var("POD_NAMESPACE").unwrap_or_else(|_| "default".into());
        Self::parse(&value, &default_ns)
    }

    pub fn parse(value: &str, default_namespace: &str) -> Option<Self> {
        let value = value.trim();
        if value.is_empty() {
            return None;
        }
        let (namespace, name) = value.split_once('/').unwrap_or((default_namespace, value));
        Some(Target {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        })
    }

    fn display(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// The CA nodes must trust for this Registry's serving certificate.
fn ca_pem(v: &ValidatedRegistry, built_ca: Option<&Secret>, observed: &Observed) -> Option<String> {
    let from_data = |data: Option<&Vec<u8>>| data.and_then(|b| String::from_utf8(b.clone()).ok());
    match &v.tls {
        Tls::SelfSigned { .. } => from_data(
            built_ca
                .and_then(|s| s.data.as_ref())
                .and_then(|d| d.get("ca.crt"))
                .map(|b| &b.0),
        ),
        Tls::Secret { secret, .. } => from_data(
            observed
                .referenced_secrets
                .get(secret)
                .and_then(Option::as_ref)
                .and_then(|s| s.data.get("ca.crt")),
        ),
        Tls::CertManager { .. } => from_data(
            observed
                .tls_secret
                .as_ref()
                .and_then(|s| s.data.get("ca.crt")),
        ),
        Tls::Disabled => None,
    }
    .filter(|pem| pem.contains("-----BEGIN CERTIFICATE-----"))
}

/// The entry a rendered Registry publishes, or why it cannot.
pub fn entry(
    v: &ValidatedRegistry,
    service: &Service,
    built_ca: Option<&Secret>,
    observed: &Observed,
) -> Result<Entry, String> {
    let address = service
        .spec
        .as_ref()
        .and_then(|s| s.cluster_ip.clone())
        .filter(|ip| !ip.is_empty() && ip != "None")
        .ok_or("the Service has no cluster IP yet")?;
    let ca_pem = ca_pem(v, built_ca, observed).ok_or(match v.tls {
        Tls::Disabled => "node access needs TLS",
        _ => "no CA for the serving certificate yet (a `ca.crt` in the TLS Secret)",
    })?;
    let svc = format!("{}.{}.svc", v.name, v.namespace);
    Ok(Entry {
        registry: format!("{}/{}", v.namespace, v.name),
        hosts: vec![svc.clone(), format!("{svc}.cluster.local")],
        port: v.service.port,
        address,
        ca_pem,
    })
}

/// Makes the ConfigMap hold `want` for this Registry (or nothing) and reports the outcome.
pub async fn publish(
    ctx: &Context,
    namespace: &str,
    name: &str,
    want: Option<Result<Entry, String>>,
) -> Result<Option<NodeAccessStatus>> {
    let Some(target) = &ctx.node_access else {
        return Ok(want.map(|_| NodeAccessStatus {
            message: Some(
                "the operator runs without node access (install the chart with nodeAccess.enabled=true)"
                    .into(),
            ),
            ..NodeAccessStatus::default()
        }));
    };
    let key = entry_key(namespace, name);
    let (value, status) = match want {
        None => (None, None),
        Some(Err(why)) => (
            None,
            Some(NodeAccessStatus {
                config_map: Some(target.display()),
                message: Some(why),
                ..NodeAccessStatus::default()
            }),
        ),
        Some(Ok(entry)) => (
            Some(serde_json::to_string(&entry)?),
            Some(NodeAccessStatus {
                published: true,
                hosts: entry.directories(),
                address: Some(entry.address.clone()),
                config_map: Some(target.display()),
                message: None,
            }),
        ),
    };
    set_keys(ctx, target, BTreeMap::from([(key, value)])).await?;
    Ok(status)
}

/// Removes the entries of Registries that no longer ask for node access (`live`: keys that do).
pub async fn prune(ctx: &Context, live: &BTreeSet<String>) -> Result<usize> {
    let Some(target) = &ctx.node_access else {
        return Ok(0);
    };
    let stale: BTreeMap<String, Option<String>> = cached(ctx, target)
        .await?
        .into_keys()
        .filter(|key| !live.contains(key))
        .map(|key| (key, None))
        .collect();
    let count = stale.len();
    if count > 0 {
        tracing::info!(keys = ?stale.keys().collect::<Vec<_>>(), "removing node-access entries of deleted Registries");
        set_keys(ctx, target, stale).await?;
    }
    Ok(count)
}

async fn cached(ctx: &Context, target: &Target) -> Result<BTreeMap<String, String>> {
    let mut cache = ctx.node_access_data.lock().await;
    if let Some(data) = cache.as_ref() {
        return Ok(data.clone());
    }
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &target.namespace);
    let data = api.get(&target.name).await?.data.unwrap_or_default();
    *cache = Some(data.clone());
    Ok(data)
}

/// Patches the given keys (`None` removes one) when they differ from what the ConfigMap holds.
async fn set_keys(
    ctx: &Context,
    target: &Target,
    keys: BTreeMap<String, Option<String>>,
) -> Result<()> {
    let current = cached(ctx, target).await?;
    let changes: serde_json::Map<String, serde_json::Value> = keys
        .into_iter()
        .filter(|(key, value)| current.get(key) != value.as_ref())
        .map(|(key, value)| (key, value.map_or(serde_json::Value::Null, Into::into)))
        .collect();
    if changes.is_empty() {
        return Ok(());
    }
    let mut cache = ctx.node_access_data.lock().await;
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &target.namespace);
    let patch = serde_json::json!({ "data": changes });
    match api
        .patch(&target.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(updated) => {
            *cache = Some(updated.data.unwrap_or_default());
            ctx.metrics.write("ConfigMap");
            Ok(())
        }
        Err(e) => {
            // Re-read next time: the cache may be stale.
            *cache = None;
            Err(e.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::build::build;
    use crate::controller::fixtures::validated;

    const WITH_NODE_ACCESS: &str = "apiVersion: berth.dev/v1alpha1\nkind: Registry\n\
        metadata: {name: main}\nspec:\n  storage: {emptyDir: {}}\n  nodeAccess: {enabled: true}\n";

    fn service(ip: Option<&str>) -> Service {
        serde_json::from_value(serde_json::json!({"spec": {"clusterIP": ip}})).unwrap()
    }

    #[test]
    fn entry_names_the_service_address_and_the_operator_ca() {
        let (v, observed) = validated(WITH_NODE_ACCESS);
        assert!(v.node_access);
        let built = build(&v, &observed).unwrap();
        let entry = entry(&v, &service(Some("10.0.4.2")), built.ca.as_ref(), &observed).unwrap();
        let ns = &v.namespace;
        assert_eq!(entry.registry, format!("{ns}/main"));
        assert_eq!(
            entry.hosts,
            [
                format!("main.{ns}.svc"),
                format!("main.{ns}.svc.cluster.local")
            ]
        );
        assert_eq!((entry.port, entry.address.as_str()), (5000, "10.0.4.2"));
        // The CA nodes trust is the one that signed the serving certificate.
        let ca = built.ca.as_ref().unwrap().data.as_ref().unwrap()["ca.crt"]
            .0
            .clone();
        assert_eq!(entry.ca_pem.as_bytes(), ca.as_slice());
        let tls = built.tls.as_ref().unwrap().data.as_ref().unwrap();
        assert_eq!(tls["ca.crt"].0, ca);
        // The endpoint pods name is one of the hosts nodes trust.
        let host = super::super::build::endpoint(&v)
            .trim_start_matches("https://")
            .to_owned();
        assert!(entry.directories().contains(&host), "{host}");
    }

    #[test]
    fn no_entry_without_an_address_or_a_ca() {
        let (v, observed) = validated(WITH_NODE_ACCESS);
        let built = build(&v, &observed).unwrap();
        assert!(entry(&v, &service(None), built.ca.as_ref(), &observed).is_err());
        assert!(entry(&v, &service(Some("None")), built.ca.as_ref(), &observed).is_err());
        let why = entry(&v, &service(Some("10.0.4.2")), None, &observed).unwrap_err();
        assert!(why.contains("CA"), "{why}");
    }

    #[test]
    fn target_from_name_or_namespaced_name() {
        assert_eq!(
            Target::parse("berth-node-access", "berth-system"),
            Some(Target {
                namespace: "berth-system".into(),
                name: "berth-node-access".into()
            })
        );
        assert_eq!(
            Target::parse("ops/x", "berth-system").map(|t| t.display()),
            Some("ops/x".into())
        );
        assert_eq!(Target::parse(" ", "berth-system"), None);
    }
}
