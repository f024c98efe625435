//! Wires the controller: the Registry watch, owned children, referenced
//! Secrets, GC Jobs and retained claims, each mapped back to its Registry.

use std::collections::BTreeSet;
use std::sync::Arc;

use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::ListParams;
use kube::core::DeserializeGuard;
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::Config;
use kube::{Api, Client, ResourceExt};

use super::build::labels::{MANAGED_BY, REGISTRY_LABEL};
use super::context::Context;
use super::dereference::referenced_secret_names;
use super::node_access;
use super::{error_policy, reconcile};
use crate::crd::Registry;
use crate::node_access::entry_key;

/// Where the controller watches: one namespace, or all.
fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Objects carrying the operator's labels.
fn managed() -> Config {
    Config::default().labels(&format!("app.kubernetes.io/managed-by={MANAGED_BY}"))
}

/// The Registry a labelled object belongs to.
fn by_label<K: ResourceExt>(object: &K) -> Option<ObjectRef<DeserializeGuard<Registry>>> {
    let registry = object.labels().get(REGISTRY_LABEL)?;
    Some(ObjectRef::new(registry).within(&object.namespace()?))
}

/// Registries in the Secret's namespace that reference it by name.
fn referencing(
    store: &Store<DeserializeGuard<Registry>>,
    secret: &Secret,
) -> Vec<ObjectRef<DeserializeGuard<Registry>>> {
    let (Some(namespace), name) = (secret.namespace(), secret.name_any()) else {
        return Vec::new();
    };
    let mut found: Vec<_> = store
        .state()
        .iter()
        .filter_map(|guard| guard.0.as_ref().ok())
        .filter(|registry| registry.namespace().as_deref() == Some(namespace.as_str()))
        .filter(|registry| referenced_secret_names(registry).contains(&name))
        .map(|registry| ObjectRef::new(&registry.name_any()).within(&namespace))
        .collect();
    found.extend(by_label(secret));
    found
}

/// Runs the controller until `shutdown` resolves.
pub async fn run(
    ctx: Arc<Context>,
    namespace: Option<String>,
    concurrency: u16,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let client = ctx.client.clone();
    let ns = namespace.as_deref();
    let registries: Api<DeserializeGuard<Registry>> = api(&client, ns);
    let controller = Controller::new(registries, Config::default().any_semantic())
        .with_config(ControllerConfig::default().concurrency(concurrency));
    let store = controller.store();
    let pruning = ctx
        .node_access
        .is_some()
        .then(|| tokio::spawn(prune_node_access(ctx.clone(), namespace.clone())));
    controller
        .owns(api::<Deployment>(&client, ns), managed())
        .owns(api::<Service>(&client, ns), managed())
        .owns(api::<ConfigMap>(&client, ns), managed())
        .owns(api::<ServiceAccount>(&client, ns), managed())
        .owns(api::<CronJob>(&client, ns), managed())
        .owns(api::<PodDisruptionBudget>(&client, ns), managed())
        .owns(api::<HorizontalPodAutoscaler>(&client, ns), managed())
        .owns(api::<Ingress>(&client, ns), managed())
        .owns(api::<NetworkPolicy>(&client, ns), managed())
        // Own Secrets (htpasswd, TLS) and the user's referenced ones (passwords, keys).
        .watches(
            api::<Secret>(&client, ns),
            Config::default(),
            move |secret| referencing(&store, &secret),
        )
        .watches(api::<Job>(&client, ns), managed(), |job| by_label(&job))
        // Retained claims carry no owner reference, only the label.
        .watches(
            api::<PersistentVolumeClaim>(&client, ns),
            managed(),
            |claim| by_label(&claim),
        )
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "controller event");
            }
        })
        .await;
    if let Some(task) = pruning {
        task.abort();
    }
}

/// Every 30 seconds, drops node-access entries whose Registry is gone or no longer asks for it
/// (deleted Registries are never reconciled, so their entries need this sweep). Reads the
/// Registries with one LIST per pass rather than from the controller's cache, which is never
/// reported ready to other tasks.
async fn prune_node_access(ctx: Arc<Context>, namespace: Option<String>) {
    let registries: Api<DeserializeGuard<Registry>> = api(&ctx.client, namespace.as_deref());
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
        let list = match registries.list(&ListParams::default()).await {
            Ok(list) => list,
            Err(e) => {
                tracing::warn!(error = %e, "listing Registries to prune node access failed");
                continue;
            }
        };
        let live: BTreeSet<String> = list
            .items
            .iter()
            .filter_map(|guard| guard.0.as_ref().ok())
            .filter(|r| r.metadata.deletion_timestamp.is_none())
            .filter(|r| r.spec.node_access.as_ref().and_then(|n| n.enabled) == Some(true))
            .map(|r| entry_key(&r.namespace().unwrap_or_default(), &r.name_any()))
            .collect();
        if let Err(e) = node_access::prune(&ctx, &live).await {
            tracing::warn!(error = %e, "pruning node-access entries failed; retrying");
        }
    }
}
