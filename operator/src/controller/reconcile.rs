//! One reconcile: dereference -> validate -> build -> apply -> status.

use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::core::DeserializeGuard;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};

use super::apply::{Applied, Applier};
use super::build::labels::{names, selector_string};
use super::build::{self, Desired, endpoint, service_monitor, tls};
use super::context::{Context, FIELD_MANAGER};
use super::dereference::dereference;
use super::model::{Storage, Tls, ValidatedRegistry};
use super::node_access;
use super::status::{Facts, Observations, Outcome, compute};
use super::validate::{Invalid, validate};
use crate::crd::{Registry, RegistryStatus, StorageStatus, TlsStatus};
use crate::error::{Error, Result};

/// Field manager of the initial replica count of an autoscaled Deployment.
pub const INITIAL_SCALE_MANAGER: &str = "berth-operator-initial-scale";

/// Reconciles one Registry.
pub async fn reconcile(
    guard: Arc<DeserializeGuard<Registry>>,
    ctx: Arc<Context>,
) -> Result<Action> {
    let registry = match &guard.0 {
        Ok(registry) => registry,
        Err(invalid) => {
            // One unreadable object must not stop the others: log it and wait for an edit.
            tracing::warn!(error = %invalid, "skipping a Registry that cannot be read");
            return Ok(Action::await_change());
        }
    };
    if registry.meta().deletion_timestamp.is_some() {
        // Owner references let the garbage collector remove the children.
        return Ok(Action::await_change());
    }
    let started = Instant::now();
    ctx.metrics.reconciles.inc();
    let name = registry.name_any();
    let namespace = registry.namespace().unwrap_or_default();
    let result = reconcile_registry(registry, &ctx, &namespace, &name).await;
    ctx.metrics
        .duration
        .observe(started.elapsed().as_secs_f64());
    if result.is_ok() {
        ctx.reset_failures(&format!("{namespace}/{name}"));
    }
    result
}

/// Transient failures retry with exponential backoff.
pub fn error_policy(
    guard: Arc<DeserializeGuard<Registry>>,
    error: &Error,
    ctx: Arc<Context>,
) -> Action {
    ctx.metrics
        .failures
        .get_or_create(&crate::metrics::FailureLabels {
            reason: error.metric_label(),
        })
        .inc();
    let key = guard
        .0
        .as_ref()
        .map(|r| format!("{}/{}", r.namespace().unwrap_or_default(), r.name_any()))
        .unwrap_or_default();
    let backoff = ctx.failure_backoff(&key);
    tracing::warn!(registry = %key, %error, ?backoff, "reconcile failed; retrying");
    Action::requeue(backoff)
}

async fn reconcile_registry(
    registry: &Registry,
    ctx: &Context,
    namespace: &str,
    name: &str,
) -> Result<Action> {
    let dereferenced = dereference(ctx, registry, namespace, name).await?;
    let observed = dereferenced.observed;
    let (outcome, deployment) = match validate(registry, &observed, &ctx.defaults) {
        Ok(validated) => {
            let built = {
                let (v, o) = (validated.clone(), observed.clone());
                // bcrypt and key generation are CPU work: keep them off the async workers.
                tokio::task::spawn_blocking(move || build::build(&v, &o)).await??
            };
            let applied = match apply_all(ctx, &validated, &built, &observed).await {
                Ok(applied) => applied,
                Err(error) => return Err(report_failure(ctx, registry, &observed, error).await),
            };
            let (deployment, certificate_issued) = (applied.deployment, applied.issued);
            let want = validated.node_access.then(|| {
                node_access::entry(&validated, &applied.service, built.ca.as_ref(), &observed)
            });
            let node_access = node_access::publish(ctx, namespace, name, want).await?;
            if certificate_issued {
                publish(
                    ctx,
                    registry,
                    EventType::Normal,
                    "CertificateIssued",
                    "issued a serving certificate",
                )
                .await;
            }
            let mut facts = facts(&validated, &built);
            facts.node_access = node_access;
            (Outcome::Rendered(Box::new(facts)), Some(deployment))
        }
        Err(invalid) => {
            ctx.metrics.invalid_specs.inc();
            tracing::info!(registry = %name, reason = invalid.reason, message = %invalid.message, "invalid spec");
            (Outcome::Invalid(invalid), observed.deployment.clone())
        }
    };

    let observations = Observations {
        deployment: deployment.as_ref(),
        cronjob: dereferenced.cronjob.as_ref(),
        gc_jobs: &observed.gc_jobs,
        gc_pods: &observed.gc_pods,
        now: Time(jiff::Timestamp::now()),
    };
    let status = compute(registry, &outcome, &observations);
    update_status(ctx, registry, status).await?;
    Ok(match outcome {
        // (`Failed` returned the error to the controller before getting here.)
        Outcome::Rendered(_) | Outcome::Failed(_) => Action::requeue(ctx.resync),
        // Wait for a spec change (or a referenced Secret change, which also triggers).
        Outcome::Invalid(_) => Action::await_change(),
    })
}

/// An apply the API server refused (or a child that is not ours): Degraded
/// with the reason and the API server's message, a Warning event, and the
/// error back to the controller for a retry with backoff. The Ready
/// condition keeps following the running Deployment.
async fn report_failure(
    ctx: &Context,
    registry: &Registry,
    observed: &super::observed::Observed,
    error: Error,
) -> Error {
    let failed = Invalid {
        reason: error.condition_reason(),
        message: error.to_string(),
    };
    let observations = Observations {
        deployment: observed.deployment.as_ref(),
        cronjob: None,
        gc_jobs: &observed.gc_jobs,
        gc_pods: &observed.gc_pods,
        now: Time(jiff::Timestamp::now()),
    };
    let status = compute(registry, &Outcome::Failed(failed.clone()), &observations);
    if let Err(e) = update_status(ctx, registry, status).await {
        tracing::warn!(error = %e, "could not report the failure in status");
    }
    publish(
        ctx,
        registry,
        EventType::Warning,
        failed.reason,
        &failed.message,
    )
    .await;
    error
}

fn facts(v: &ValidatedRegistry, built: &Desired) -> Facts {
    let (secret_name, ca_secret_name) = match &v.tls {
        Tls::SelfSigned { .. } => (Some(names::tls(&v.name)), Some(names::ca(&v.name))),
        Tls::CertManager { .. } => (Some(names::tls(&v.name)), Some(names::tls(&v.name))),
        Tls::Secret { secret, .. } => (Some(secret.clone()), Some(secret.clone())),
        Tls::Disabled => (None, None),
    };
    Facts {
        endpoint: endpoint(v),
        image: v.image.clone(),
        selector: selector_string(&v.name),
        replicas_wanted: v
            .replicas
            .or(v.autoscaling.as_ref().map(|a| a.min_replicas)),
        storage: StorageStatus {
            type_: v.storage.type_name().to_owned(),
            claim_name: match &v.storage {
                Storage::Claim { claim_name, .. } => Some(claim_name.clone()),
                _ => None,
            },
            bucket: match &v.storage {
                Storage::S3(s3) => Some(s3.bucket().to_owned()),
                _ => None,
            },
        },
        tls: TlsStatus {
            mode: v.tls.mode_name().to_owned(),
            secret_name,
            ca_secret_name,
            not_after: built
                .tls_not_after
                .and_then(|secs| jiff::Timestamp::from_second(secs).ok())
                .map(Time),
        },
        node_access: None,
    }
}

/// What applying produced that later steps need.
struct AppliedChildren {
    deployment: Deployment,
    /// The live Service (its cluster IP is published for nodes).
    service: k8s_openapi::api::core::v1::Service,
    /// Whether a new serving certificate was issued.
    issued: bool,
}

/// Applies every child in dependency order and removes unwanted optional ones.
async fn apply_all(
    ctx: &Context,
    v: &ValidatedRegistry,
    d: &Desired,
    observed: &super::observed::Observed,
) -> Result<AppliedChildren> {
    let applier = Applier {
        ctx,
        namespace: &v.namespace,
        registry: &v.name,
    };
    let name = v.name.as_str();
    applier.apply(d.service_account.clone()).await?;
    applier.apply(d.config.clone()).await?;
    match &d.htpasswd {
        Some(secret) => {
            applier.apply(secret.clone()).await?;
        }
        None => {
            applier
                .remove::<Secret>(&names::htpasswd(name), name)
                .await?;
        }
    }
    if let Some(ca) = &d.ca {
        applier.apply(ca.clone()).await?;
    }
    let mut issued = false;
    match (&d.tls, &v.tls) {
        (Some(serving), _) => {
            let (_, applied) = applier.apply(serving.clone()).await?;
            issued = applied != Applied::Unchanged
                && observed.tls_secret.as_ref().and_then(tls::not_after) != d.tls_not_after;
        }
        (None, Tls::Secret { .. } | Tls::Disabled) => {
            applier.remove::<Secret>(&names::tls(name), name).await?;
            applier.remove::<Secret>(&names::ca(name), name).await?;
        }
        (None, _) => {}
    }
    if let Some(certificate) = &d.certificate {
        applier
            .apply_dynamic(certificate.clone(), &tls::certificate_resource())
            .await?;
    }
    if let Some(claim) = &d.claim {
        applier.apply(claim.clone()).await?;
    }
    let (service, _) = applier.apply(d.service.clone()).await?;
    let (mut deployment, applied) = applier.apply(d.deployment.clone()).await?;
    if applied == Applied::Created
        && let Some(scaling) = &v.autoscaling
    {
        // The applied Deployment leaves replicas to the autoscaler; start at its minimum.
        // A separate field manager owns this one-off value, so later applies never reset it.
        let patch = serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name}, "spec": {"replicas": scaling.min_replicas},
        });
        let api: Api<Deployment> = Api::namespaced(ctx.client.clone(), &v.namespace);
        deployment = api
            .patch(
                name,
                &PatchParams::apply(INITIAL_SCALE_MANAGER),
                &Patch::Apply(&patch),
            )
            .await?;
        ctx.metrics.write("Deployment");
    }
    match &d.pdb {
        Some(pdb) => {
            applier.apply(pdb.clone()).await?;
        }
        None => {
            applier.remove::<PodDisruptionBudget>(name, name).await?;
        }
    }
    match &d.hpa {
        Some(hpa) => {
            applier.apply(hpa.clone()).await?;
        }
        None => {
            applier
                .remove::<HorizontalPodAutoscaler>(name, name)
                .await?;
        }
    }
    match &d.cronjob {
        Some(cronjob) => {
            applier.apply(cronjob.clone()).await?;
        }
        None => {
            applier.remove::<CronJob>(&names::gc(name), name).await?;
        }
    }
    match &d.ingress {
        Some(ingress) => {
            applier.apply(ingress.clone()).await?;
        }
        None => {
            applier.remove::<Ingress>(name, name).await?;
        }
    }
    match &d.network_policy {
        Some(policy) => {
            applier.apply(policy.clone()).await?;
        }
        None => {
            applier.remove::<NetworkPolicy>(name, name).await?;
        }
    }
    match &d.service_monitor {
        Some(monitor) => {
            applier
                .apply_dynamic(monitor.clone(), &service_monitor::resource())
                .await?;
        }
        None if observed.service_monitor_available => {
            applier
                .remove_dynamic(&service_monitor::resource(), name, name)
                .await?;
        }
        None => {}
    }
    Ok(AppliedChildren {
        deployment,
        service,
        issued,
    })
}

/// Writes status only when it changed.
async fn update_status(ctx: &Context, registry: &Registry, status: RegistryStatus) -> Result<()> {
    let previous: Option<&RegistryStatus> = registry.status.as_ref();
    if previous == Some(&status) {
        return Ok(());
    }
    let transitions = changed_conditions(previous, &status);
    let api: Api<Registry> = Api::namespaced(
        ctx.client.clone(),
        &registry.namespace().unwrap_or_default(),
    );
    let patch = serde_json::json!({
        "apiVersion": "berth.dev/v1alpha1",
        "kind": "Registry",
        "status": status,
    });
    api.patch_status(
        &registry.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    ctx.metrics.write("Registry/status");
    for (type_, condition_status, reason, message) in transitions {
        let warning = (type_ == "Degraded" && condition_status == "True")
            || (type_ == "Ready" && condition_status == "False");
        let kind = if warning {
            EventType::Warning
        } else {
            EventType::Normal
        };
        publish(
            ctx,
            registry,
            kind,
            &reason,
            &format!("{type_}={condition_status}: {message}"),
        )
        .await;
    }
    Ok(())
}

/// Conditions whose status changed (for Events: one per transition, not per reconcile).
fn changed_conditions(
    previous: Option<&RegistryStatus>,
    status: &RegistryStatus,
) -> Vec<(String, String, String, String)> {
    status
        .conditions
        .iter()
        .filter(|c| {
            previous
                .and_then(|p| p.conditions.iter().find(|old| old.type_ == c.type_))
                .is_none_or(|old| old.status != c.status || old.reason != c.reason)
        })
        .map(|c| {
            (
                c.type_.clone(),
                c.status.clone(),
                c.reason.clone(),
                c.message.clone(),
            )
        })
        .collect()
}

async fn publish(ctx: &Context, registry: &Registry, type_: EventType, reason: &str, note: &str) {
    let event = Event {
        type_,
        reason: reason.to_owned(),
        note: Some(note.chars().take(1000).collect()),
        action: "Reconcile".into(),
        secondary: None,
    };
    match ctx
        .recorder
        .publish(&event, &registry.object_ref(&()))
        .await
    {
        Ok(()) => ctx.metrics.write("Event"),
        Err(e) => tracing::warn!(error = %e, "could not publish an event"),
    }
}
