//! The garbage-collection CronJob: `registry garbage-collect` against the
//! registry's own config and storage, one run at a time, its JSON summary in
//! the pod's termination message (copied into the Registry's status). With
//! single-node storage the GC pod must run on the registry pod's node.

use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, JobSpec, JobTemplateSpec};
use k8s_openapi::api::core::v1::{
    Affinity, Container, PodAffinity, PodAffinityTerm, PodSpec, PodTemplateSpec,
    ResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use super::labels::{GC_COMPONENT, REGISTRY_COMPONENT, labels, metadata, names, selector};
use super::pod::{
    config_volume, container_security, pod_security, s3_env, storage_volume, tmp_volume,
};
use crate::controller::model::*;
use crate::crd::GcMode;

/// Where the GC writes its summary (the default terminationMessagePath).
pub const SUMMARY_PATH: &str = "/dev/termination-log";

/// The command line of a GC run.
pub fn gc_args(gc: &Gc) -> Vec<String> {
    let mut args = vec!["garbage-collect".to_owned()];
    match gc.mode {
        GcMode::ReadOnly => args.extend(["--mode".into(), "readonly".into()]),
        GcMode::Online => args.extend([
            "--mode".into(),
            "online".into(),
            "--min-age".into(),
            gc.min_age.clone(),
        ]),
    }
    if gc.delete_untagged {
        args.push("--delete-untagged".into());
    }
    if gc.dry_run {
        args.push("--dry-run".into());
    }
    args.extend([
        "--quiet".into(),
        "--summary-file".into(),
        SUMMARY_PATH.into(),
    ]);
    args.push(format!("{CONFIG_DIR}/{CONFIG_FILE}"));
    args
}

pub fn gc_cronjob(v: &ValidatedRegistry) -> Option<CronJob> {
    let gc = v.gc.as_ref()?;
    let mut volumes = Vec::new();
    let mut mounts = Vec::new();
    for (volume, mount) in [
        Some(config_volume(v)),
        storage_volume(v),
        Some(tmp_volume()),
    ]
    .into_iter()
    .flatten()
    {
        volumes.push(volume);
        mounts.push(mount);
    }
    let single_node = matches!(
        v.storage,
        Storage::Claim {
            single_node: true,
            ..
        }
    );
    // A single-node volume's GC pod must run beside a registry pod; with
    // `replicas: 0` there is none, and its Jobs would stay Pending: suspended
    // until the registry runs again.
    let no_registry_pod_to_join = single_node && v.replicas == Some(0);
    let affinity = if single_node {
        // A ReadWriteOnce volume is attached to one node: run where the registry runs.
        Some(Affinity {
            pod_affinity: Some(PodAffinity {
                required_during_scheduling_ignored_during_execution: Some(vec![PodAffinityTerm {
                    label_selector: Some(LabelSelector {
                        match_labels: Some(selector(&v.name, REGISTRY_COMPONENT)),
                        ..LabelSelector::default()
                    }),
                    topology_key: "kubernetes.io/hostname".into(),
                    ..PodAffinityTerm::default()
                }]),
                ..PodAffinity::default()
            }),
            ..Affinity::default()
        })
    } else {
        v.pod.affinity.clone()
    };
    let container = Container {
        name: "gc".into(),
        image: Some(v.image.clone()),
        image_pull_policy: v.image_pull_policy.clone(),
        args: Some(gc_args(gc)),
        env: Some(s3_env(v)).filter(|env| !env.is_empty()),
        resources: Some(ResourceRequirements {
            requests: Some(
                [("cpu", "100m"), ("memory", "128Mi")]
                    .into_iter()
                    .map(|(k, q)| (k.to_owned(), Quantity(q.into())))
                    .collect(),
            ),
            limits: Some([("memory".to_owned(), Quantity("1Gi".into()))].into()),
            ..ResourceRequirements::default()
        }),
        security_context: Some(container_security()),
        volume_mounts: Some(mounts),
        termination_message_path: Some(SUMMARY_PATH.into()),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        ..Container::default()
    };
    let job_labels = labels(&v.name, GC_COMPONENT);
    Some(CronJob {
        metadata: metadata(v, names::gc(&v.name), GC_COMPONENT),
        spec: Some(CronJobSpec {
            schedule: gc.schedule.clone(),
            time_zone: gc.time_zone.clone(),
            suspend: Some(gc.suspend || no_registry_pod_to_join),
            concurrency_policy: Some("Forbid".into()),
            starting_deadline_seconds: Some(3600),
            successful_jobs_history_limit: Some(gc.successful_history),
            failed_jobs_history_limit: Some(gc.failed_history),
            job_template: JobTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(job_labels.clone()),
                    ..ObjectMeta::default()
                }),
                spec: Some(JobSpec {
                    // A failed GC is reported, and retried at the next schedule.
                    backoff_limit: Some(0),
                    active_deadline_seconds: Some(6 * 3600),
                    template: PodTemplateSpec {
                        metadata: Some(ObjectMeta {
                            labels: Some(job_labels),
                            ..ObjectMeta::default()
                        }),
                        spec: Some(PodSpec {
                            containers: vec![container],
                            volumes: Some(volumes),
                            restart_policy: Some("Never".into()),
                            service_account_name: Some(v.name.clone()),
                            automount_service_account_token: Some(false),
                            security_context: Some(pod_security()),
                            affinity,
                            node_selector: v.pod.node_selector.clone(),
                            tolerations: v.pod.tolerations.clone(),
                            enable_service_links: Some(false),
                            ..PodSpec::default()
                        }),
                    },
                    ..JobSpec::default()
                }),
            },
        }),
        status: None,
    })
}
