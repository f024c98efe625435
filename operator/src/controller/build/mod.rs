//! build: a validated Registry (plus the TLS and htpasswd material it already
//! has) -> every desired child object, one Kubernetes kind per file. Pure
//! apart from generating keys and bcrypt salts when new material is needed.

mod config;
mod deployment;
mod gc_cronjob;
mod hpa;
mod htpasswd;
mod ingress;
pub mod labels;
mod network_policy;
mod pdb;
mod pod;
mod service;
mod service_account;
pub mod service_monitor;
mod storage;
pub mod tls;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::DynamicObject;

pub use deployment::{CONFIG_HASH_ANNOTATION, pod_selector};
pub use gc_cronjob::{SUMMARY_PATH, gc_args};
pub use htpasswd::{BCRYPT_COST, SOURCES_ANNOTATION};
pub use service::endpoint;

use super::model::{AuthSource, Tls, ValidatedRegistry};
use super::observed::Observed;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("rendering the registry config: {0}")]
    Config(#[from] serde_yaml::Error),
    #[error("hashing a password: {0}")]
    Bcrypt(#[from] bcrypt::BcryptError),
    #[error(transparent)]
    Tls(#[from] tls::TlsBuildError),
}

/// Every object a Registry should have. Optional ones that are `None` are
/// removed if they exist (except the storage claim, which is never deleted).
#[derive(Debug, Clone)]
pub struct Desired {
    pub service_account: ServiceAccount,
    pub config: ConfigMap,
    pub htpasswd: Option<Secret>,
    pub ca: Option<Secret>,
    pub tls: Option<Secret>,
    pub certificate: Option<DynamicObject>,
    pub claim: Option<PersistentVolumeClaim>,
    pub service: Service,
    pub deployment: Deployment,
    pub pdb: Option<PodDisruptionBudget>,
    pub hpa: Option<HorizontalPodAutoscaler>,
    pub cronjob: Option<CronJob>,
    pub ingress: Option<Ingress>,
    pub network_policy: Option<NetworkPolicy>,
    pub service_monitor: Option<DynamicObject>,
    /// Facts for status.
    pub config_hash: String,
    pub tls_not_after: Option<i64>,
}

/// Renders every child of a validated Registry.
pub fn build(v: &ValidatedRegistry, observed: &Observed) -> Result<Desired, BuildError> {
    let (registry_config, config_hash) = config::registry_config(v)?;
    let htpasswd = match v.auth.as_ref().map(|a| &a.source) {
        Some(AuthSource::Users(users)) => Some(htpasswd::htpasswd_secret(
            v,
            users,
            observed.htpasswd_secret.as_ref(),
        )?),
        _ => None,
    };
    let (ca, tls_secret, certificate, mut tls_not_after) = match &v.tls {
        Tls::SelfSigned { dns_names, .. } => {
            let names = tls::dns_names(v, dns_names);
            let material = tls::self_signed(
                v,
                &names,
                observed.ca_secret.as_ref(),
                observed.tls_secret.as_ref(),
                observed.now,
            )?;
            (
                Some(material.ca),
                Some(material.serving),
                None,
                Some(material.not_after),
            )
        }
        Tls::CertManager {
            issuer, dns_names, ..
        } => {
            let names = tls::dns_names(v, dns_names);
            (None, None, Some(tls::certificate(v, issuer, &names)), None)
        }
        Tls::Secret { .. } | Tls::Disabled => (None, None, None, None),
    };
    if tls_not_after.is_none() {
        // Certificates the operator does not issue: report what the Secret holds.
        let served = match &v.tls {
            Tls::Secret { secret, .. } => {
                observed.referenced_secrets.get(secret).cloned().flatten()
            }
            Tls::CertManager { .. } => observed.tls_secret.clone(),
            _ => None,
        };
        tls_not_after = served.as_ref().and_then(tls::not_after);
    }
    Ok(Desired {
        service_account: service_account::service_account(v),
        config: config::config_map(v, &registry_config)?,
        htpasswd,
        ca,
        tls: tls_secret,
        certificate,
        claim: storage::claim(v),
        service: service::service(v),
        deployment: deployment::deployment(v, &config_hash),
        pdb: pdb::pdb(v),
        hpa: hpa::hpa(v),
        cronjob: gc_cronjob::gc_cronjob(v),
        ingress: ingress::ingress(v),
        network_policy: network_policy::network_policy(v),
        service_monitor: service_monitor::service_monitor(v),
        config_hash,
        tls_not_after,
    })
}
