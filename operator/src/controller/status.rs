//! status: what the Registry reports, computed from what was observed (pure),
//! then written only when it differs from what the object already says.
//! Transition times move only on real transitions, so a steady reconcile
//! computes the identical status and writes nothing.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::validate::Invalid;
use crate::crd::{
    CONDITION_DEGRADED, CONDITION_PROGRESSING, CONDITION_READY, GcRun, GcStatus, NodeAccessStatus,
    Registry, RegistryStatus, StorageStatus, TlsStatus,
};

/// What a successful render tells the status.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    pub endpoint: String,
    pub image: String,
    pub selector: String,
    pub replicas_wanted: Option<i32>,
    pub storage: StorageStatus,
    pub tls: TlsStatus,
    pub node_access: Option<NodeAccessStatus>,
}

/// The result of the render stages for status purposes.
#[derive(Debug, Clone)]
pub enum Outcome {
    Rendered(Box<Facts>),
    Invalid(Invalid),
    /// Rendered, but applying it failed (the API server refused a child, or
    /// a child's name is taken by an object that is not ours).
    Failed(Invalid),
}

/// Inputs of [`compute`].
#[derive(Debug)]
pub struct Observations<'a> {
    pub deployment: Option<&'a Deployment>,
    pub cronjob: Option<&'a CronJob>,
    pub gc_jobs: &'a [Job],
    pub gc_pods: &'a [Pod],
    pub now: Time,
}

fn condition(
    previous: &[Condition],
    type_: &str,
    status: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
    now: &Time,
) -> Condition {
    let status = if status { "True" } else { "False" };
    let last_transition_time = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map_or_else(|| now.clone(), |c| c.last_transition_time.clone());
    Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message,
        observed_generation: generation,
        last_transition_time,
    }
}

/// Deployment progress: (available, updated, desired, rollout failed, rollout done).
fn rollout(deployment: Option<&Deployment>, wanted: Option<i32>) -> (i32, i32, i32, bool, bool) {
    let Some(deployment) = deployment else {
        return (0, 0, wanted.unwrap_or(1), false, false);
    };
    let status = deployment.status.clone().unwrap_or_default();
    let desired = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .or(wanted)
        .unwrap_or(1);
    let conditions = status.conditions.unwrap_or_default();
    let progressing = conditions.iter().find(|c| c.type_ == "Progressing");
    let failed =
        progressing.is_some_and(|c| c.reason.as_deref() == Some("ProgressDeadlineExceeded"));
    let observed_current = status.observed_generation >= deployment.metadata.generation;
    let updated = status.updated_replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    let done = observed_current
        && updated >= desired
        && available >= desired
        && status.replicas.unwrap_or(0) <= desired;
    (available, updated, desired, failed, done)
}

/// The most recent finished GC Job and its summary.
fn gc_status(observations: &Observations<'_>) -> Option<GcStatus> {
    let cronjob_status = observations.cronjob.and_then(|c| c.status.clone());
    let finished = observations
        .gc_jobs
        .iter()
        .filter_map(|job| {
            let status = job.status.as_ref()?;
            let succeeded = status.succeeded.unwrap_or(0) > 0;
            let failed = status
                .conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "Failed" && c.status == "True");
            let ended = status.completion_time.clone().or_else(|| {
                status
                    .conditions
                    .iter()
                    .flatten()
                    .find(|c| c.type_ == "Failed" && c.status == "True")
                    .and_then(|c| c.last_transition_time.clone())
            })?;
            (succeeded || failed).then_some((job, succeeded, ended))
        })
        .max_by_key(|(_, _, ended)| ended.0);
    let last_run = finished.map(|(job, succeeded, ended)| {
        let job_name = job.metadata.name.clone().unwrap_or_default();
        let summary = observations
            .gc_pods
            .iter()
            .filter(|pod| {
                pod.metadata.labels.as_ref().and_then(|l| l.get("job-name")) == Some(&job_name)
            })
            .flat_map(|pod| {
                pod.status
                    .iter()
                    .flat_map(|s| s.container_statuses.iter().flatten())
            })
            .find_map(|container| {
                container
                    .state
                    .as_ref()?
                    .terminated
                    .as_ref()?
                    .message
                    .clone()
            });
        let parsed: Option<serde_json::Value> = summary
            .as_deref()
            .and_then(|text| serde_json::from_str(text.trim()).ok());
        let number = |key: &str| {
            parsed
                .as_ref()
                .and_then(|v| v.get(key))
                .and_then(serde_json::Value::as_i64)
        };
        GcRun {
            job_name,
            succeeded,
            completion_time: Some(ended),
            manifests_deleted: number("manifests_deleted"),
            blobs_deleted: number("blobs_deleted"),
            bytes_freed: number("bytes_freed"),
            duration_seconds: parsed
                .as_ref()
                .and_then(|v| v.get("duration_seconds"))
                .and_then(serde_json::Value::as_f64),
            message: parsed
                .as_ref()
                .and_then(|v| v.get("error"))
                .and_then(|e| e.as_str().map(str::to_owned))
                .or_else(|| {
                    summary
                        .filter(|_| parsed.is_none())
                        .map(|s| s.chars().take(512).collect())
                }),
        }
    });
    if cronjob_status.is_none() && last_run.is_none() {
        return None;
    }
    Some(GcStatus {
        last_schedule_time: cronjob_status
            .as_ref()
            .and_then(|s| s.last_schedule_time.clone()),
        last_successful_time: cronjob_status
            .as_ref()
            .and_then(|s| s.last_successful_time.clone()),
        last_run,
    })
}

/// Computes the status a Registry should report.
pub fn compute(
    registry: &Registry,
    outcome: &Outcome,
    observations: &Observations<'_>,
) -> RegistryStatus {
    let previous = registry.status.clone().unwrap_or_default();
    let generation = registry.metadata.generation;
    let now = &observations.now;
    let mut status = previous.clone();
    status.observed_generation = generation;

    let wanted = match outcome {
        Outcome::Rendered(facts) => facts.replicas_wanted,
        Outcome::Invalid(_) | Outcome::Failed(_) => registry.spec.replicas,
    };
    let (available, _updated, desired, failed, done) = rollout(observations.deployment, wanted);
    let deployment_status = observations.deployment.and_then(|d| d.status.as_ref());
    status.replicas = Some(deployment_status.and_then(|s| s.replicas).unwrap_or(0));
    status.ready_replicas = Some(
        deployment_status
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0),
    );

    let ready = if desired == 0 {
        condition(
            &previous.conditions,
            CONDITION_READY,
            false,
            "Stopped",
            "spec.replicas is 0".into(),
            generation,
            now,
        )
    } else if available >= desired {
        condition(
            &previous.conditions,
            CONDITION_READY,
            true,
            "Available",
            format!("{available} of {desired} replicas available"),
            generation,
            now,
        )
    } else if available > 0 {
        condition(
            &previous.conditions,
            CONDITION_READY,
            true,
            "MinimumAvailability",
            format!("{available} of {desired} replicas available"),
            generation,
            now,
        )
    } else {
        condition(
            &previous.conditions,
            CONDITION_READY,
            false,
            "Unavailable",
            format!("0 of {desired} replicas available"),
            generation,
            now,
        )
    };

    let (progressing, degraded) = match outcome {
        Outcome::Invalid(problem) | Outcome::Failed(problem) => {
            let (progress_reason, progress_message) = match outcome {
                Outcome::Invalid(_) => (
                    "InvalidSpec",
                    "the spec cannot be applied; the running registry is left as it is",
                ),
                _ => (
                    problem.reason,
                    "applying the spec failed; retrying with backoff",
                ),
            };
            (
                condition(
                    &previous.conditions,
                    CONDITION_PROGRESSING,
                    false,
                    progress_reason,
                    progress_message.into(),
                    generation,
                    now,
                ),
                condition(
                    &previous.conditions,
                    CONDITION_DEGRADED,
                    true,
                    problem.reason,
                    problem.message.clone(),
                    generation,
                    now,
                ),
            )
        }
        Outcome::Rendered(facts) => {
            status.endpoint = Some(facts.endpoint.clone());
            status.image = Some(facts.image.clone());
            status.selector = Some(facts.selector.clone());
            status.storage = Some(facts.storage.clone());
            status.tls = Some(facts.tls.clone());
            status.node_access = facts.node_access.clone();
            let progressing = if failed {
                condition(
                    &previous.conditions,
                    CONDITION_PROGRESSING,
                    false,
                    "ProgressDeadlineExceeded",
                    "the rollout made no progress".into(),
                    generation,
                    now,
                )
            } else if done {
                condition(
                    &previous.conditions,
                    CONDITION_PROGRESSING,
                    false,
                    "Complete",
                    "the registry runs the current spec".into(),
                    generation,
                    now,
                )
            } else {
                condition(
                    &previous.conditions,
                    CONDITION_PROGRESSING,
                    true,
                    "RollingOut",
                    format!("{available} of {desired} replicas available"),
                    generation,
                    now,
                )
            };
            let gc_failed = status_gc_failed(observations);
            let degraded = if failed {
                condition(
                    &previous.conditions,
                    CONDITION_DEGRADED,
                    true,
                    "RolloutFailed",
                    "the Deployment exceeded its progress deadline".into(),
                    generation,
                    now,
                )
            } else if let Some(message) = gc_failed {
                condition(
                    &previous.conditions,
                    CONDITION_DEGRADED,
                    true,
                    "GarbageCollectionFailed",
                    message,
                    generation,
                    now,
                )
            } else {
                condition(
                    &previous.conditions,
                    CONDITION_DEGRADED,
                    false,
                    "AsExpected",
                    "no problems found".into(),
                    generation,
                    now,
                )
            };
            (progressing, degraded)
        }
    };
    status.conditions = vec![ready, progressing, degraded];
    status.gc = gc_status(observations).or(previous.gc);
    status
}

/// A message when the most recent GC run failed.
fn status_gc_failed(observations: &Observations<'_>) -> Option<String> {
    let run = gc_status(observations)?.last_run?;
    (!run.succeeded).then(|| {
        format!(
            "garbage collection Job {} failed{}",
            run.job_name,
            run.message.map(|m| format!(": {m}")).unwrap_or_default()
        )
    })
}
