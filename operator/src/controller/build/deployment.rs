//! The registry Deployment: restricted pods, probes on /readyz and /healthz,
//! a config-hash annotation that rolls pods when the config changes, and
//! Recreate rollouts for single-node storage (RollingUpdate would deadlock on
//! Multi-Attach of a ReadWriteOnce volume).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, HTTPGetAction, PodSpec, PodTemplateSpec, Probe,
    TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::labels::{REGISTRY_COMPONENT, labels, metadata, selector};
use super::pod::{
    auth_volume, config_volume, container_security, default_resources, pod_security, s3_env,
    storage_volume, tls_volume, tmp_volume,
};
use crate::controller::model::*;

/// Pod template annotation carrying the config hash.
pub const CONFIG_HASH_ANNOTATION: &str = "berth.dev/config-hash";

fn probe(path: &str, tls: bool, period: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String("registry".into()),
            scheme: Some(if tls { "HTTPS" } else { "HTTP" }.into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        timeout_seconds: Some(3),
        ..Probe::default()
    }
}

/// Renders the Deployment; `config_hash` comes from the rendered config.
pub fn deployment(v: &ValidatedRegistry, config_hash: &str) -> Deployment {
    let mut volumes = Vec::new();
    let mut mounts = Vec::new();
    for (volume, mount) in [
        Some(config_volume(v)),
        storage_volume(v),
        auth_volume(v),
        tls_volume(v),
        Some(tmp_volume()),
    ]
    .into_iter()
    .flatten()
    {
        volumes.push(volume);
        mounts.push(mount);
    }
    let tls = v.tls.enabled();
    let container = Container {
        name: "registry".into(),
        image: Some(v.image.clone()),
        image_pull_policy: v.image_pull_policy.clone(),
        args: Some(vec!["serve".into(), format!("{CONFIG_DIR}/{CONFIG_FILE}")]),
        ports: Some(vec![ContainerPort {
            name: Some("registry".into()),
            container_port: REGISTRY_PORT,
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        }]),
        env: Some(s3_env(v)).filter(|env| !env.is_empty()),
        readiness_probe: Some(probe("/readyz", tls, 5, 3)),
        liveness_probe: Some(probe("/healthz", tls, 10, 6)),
        resources: Some(v.pod.resources.clone().unwrap_or_else(default_resources)),
        security_context: Some(container_security()),
        volume_mounts: Some(mounts),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        ..Container::default()
    };

    let mut pod_labels = v.pod.labels.clone();
    pod_labels.extend(labels(&v.name, REGISTRY_COMPONENT));
    let mut pod_annotations = v.pod.annotations.clone();
    pod_annotations.insert(CONFIG_HASH_ANNOTATION.into(), config_hash.to_owned());

    let spread_by_default = v.replicas.is_none_or(|r| r > 1);
    let topology_spread_constraints = v.pod.topology_spread_constraints.clone().or_else(|| {
        spread_by_default.then(|| {
            vec![TopologySpreadConstraint {
                max_skew: 1,
                topology_key: "kubernetes.io/hostname".into(),
                when_unsatisfiable: "ScheduleAnyway".into(),
                label_selector: Some(LabelSelector {
                    match_labels: Some(selector(&v.name, REGISTRY_COMPONENT)),
                    ..LabelSelector::default()
                }),
                ..TopologySpreadConstraint::default()
            }]
        })
    });

    let strategy = if v.storage.shared() {
        DeploymentStrategy {
            type_: Some("RollingUpdate".into()),
            ..DeploymentStrategy::default()
        }
    } else {
        DeploymentStrategy {
            type_: Some("Recreate".into()),
            rolling_update: None,
        }
    };

    Deployment {
        metadata: metadata(v, v.name.clone(), REGISTRY_COMPONENT),
        spec: Some(DeploymentSpec {
            // Left out when an autoscaler owns the count, so applying never fights it.
            replicas: v.replicas,
            selector: LabelSelector {
                match_labels: Some(selector(&v.name, REGISTRY_COMPONENT)),
                ..LabelSelector::default()
            },
            strategy: Some(strategy),
            revision_history_limit: Some(5),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    annotations: Some(pod_annotations),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    volumes: Some(volumes),
                    service_account_name: Some(v.name.clone()),
                    automount_service_account_token: Some(false),
                    security_context: Some(pod_security()),
                    termination_grace_period_seconds: Some(45),
                    node_selector: v.pod.node_selector.clone(),
                    tolerations: v.pod.tolerations.clone(),
                    affinity: v.pod.affinity.clone(),
                    topology_spread_constraints,
                    priority_class_name: v.pod.priority_class_name.clone(),
                    enable_service_links: Some(false),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        status: None,
    }
}

/// Labels for the pod template, exposed for tests and the GC affinity.
pub fn pod_selector(v: &ValidatedRegistry) -> BTreeMap<String, String> {
    selector(&v.name, REGISTRY_COMPONENT)
}
