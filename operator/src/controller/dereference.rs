//! dereference: reads what a Registry's reconcile depends on (referenced
//! Secrets, the operator's own TLS/htpasswd material, the Deployment, the
//! claim, GC Jobs and their pods). The only reads of the pipeline.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret};
use kube::Api;
use kube::api::ListParams;

use super::build::labels::{COMPONENT_LABEL, GC_COMPONENT, REGISTRY_LABEL, names};
use super::context::Context;
use super::observed::{Observed, SecretData};
use crate::crd::{Registry, TlsMode};
use crate::error::Result;

/// Everything validate/build/status need, read from the API server.
#[derive(Debug, Clone, Default)]
pub struct Dereferenced {
    pub observed: Observed,
    pub cronjob: Option<CronJob>,
}

/// Names of the Secrets a spec points at.
pub fn referenced_secret_names(registry: &Registry) -> BTreeSet<String> {
    let spec = &registry.spec;
    let mut names = BTreeSet::new();
    if let Some(htpasswd) = spec.auth.as_ref().and_then(|a| a.htpasswd.as_ref()) {
        for user in htpasswd.users.iter().flatten() {
            names.insert(user.password_secret_ref.name.clone());
        }
        if let Some(existing) = &htpasswd.existing_secret {
            names.insert(existing.name.clone());
        }
    }
    if let Some(credentials) = spec
        .storage
        .s3
        .as_ref()
        .and_then(|s3| s3.credentials_secret_ref.as_ref())
    {
        names.insert(credentials.name.clone());
    }
    if let Some(oss) = &spec.storage.oss {
        names.insert(oss.credentials_secret_ref.name.clone());
    }
    if let Some(tls) = &spec.tls
        && tls.mode == Some(TlsMode::Secret)
        && let Some(secret) = &tls.secret_name
    {
        names.insert(secret.clone());
    }
    names
}

pub async fn dereference(
    ctx: &Context,
    registry: &Registry,
    namespace: &str,
    name: &str,
) -> Result<Dereferenced> {
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let mut observed = Observed {
        now: jiff::Timestamp::now().as_second(),
        ..Observed::default()
    };
    for secret in referenced_secret_names(registry) {
        let data = secrets
            .get_opt(&secret)
            .await?
            .as_ref()
            .map(SecretData::from_secret);
        observed.referenced_secrets.insert(secret, data);
    }
    let own = |secret: Option<Secret>| secret.as_ref().map(SecretData::from_secret);
    observed.htpasswd_secret = own(secrets.get_opt(&names::htpasswd(name)).await?);
    observed.ca_secret = own(secrets.get_opt(&names::ca(name)).await?);
    observed.tls_secret = own(secrets.get_opt(&names::tls(name)).await?);

    observed.deployment = Api::<Deployment>::namespaced(ctx.client.clone(), namespace)
        .get_opt(name)
        .await?;
    let claim_name = registry.spec.storage.persistent_volume.as_ref().map(|pv| {
        pv.existing_claim
            .clone()
            .unwrap_or_else(|| names::claim(name))
    });
    if let Some(claim_name) = claim_name {
        observed.claim = Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), namespace)
            .get_opt(&claim_name)
            .await?;
    }

    let gc_selector = format!("{REGISTRY_LABEL}={name},{COMPONENT_LABEL}={GC_COMPONENT}");
    let cronjob = Api::<CronJob>::namespaced(ctx.client.clone(), namespace)
        .get_opt(&names::gc(name))
        .await?;
    if cronjob.is_some() {
        let list = ListParams::default().labels(&gc_selector);
        observed.gc_jobs = Api::<Job>::namespaced(ctx.client.clone(), namespace)
            .list(&list)
            .await?
            .items;
        if !observed.gc_jobs.is_empty() {
            observed.gc_pods = Api::<Pod>::namespaced(ctx.client.clone(), namespace)
                .list(&list)
                .await?
                .items;
        }
    }
    observed.service_monitor_available = registry
        .spec
        .metrics
        .as_ref()
        .and_then(|m| m.service_monitor.as_ref())
        .is_some_and(|sm| sm.enabled.unwrap_or(false))
        && ctx
            .kind_available("monitoring.coreos.com/v1", "ServiceMonitor")
            .await;
    observed.cert_manager_available = registry.spec.tls.as_ref().and_then(|t| t.mode)
        == Some(TlsMode::CertManager)
        && ctx
            .kind_available("cert-manager.io/v1", "Certificate")
            .await;
    Ok(Dereferenced { observed, cronjob })
}
