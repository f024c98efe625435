//! The HorizontalPodAutoscaler; the Deployment is then applied without `replicas`.

use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};

use super::labels::{REGISTRY_COMPONENT, metadata};
use crate::controller::model::ValidatedRegistry;

pub fn hpa(v: &ValidatedRegistry) -> Option<HorizontalPodAutoscaler> {
    let scaling = v.autoscaling.as_ref()?;
    Some(HorizontalPodAutoscaler {
        metadata: metadata(v, v.name.clone(), REGISTRY_COMPONENT),
        spec: Some(HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".into()),
                kind: "Deployment".into(),
                name: v.name.clone(),
            },
            min_replicas: Some(scaling.min_replicas),
            max_replicas: scaling.max_replicas,
            metrics: Some(vec![MetricSpec {
                type_: "Resource".into(),
                resource: Some(ResourceMetricSource {
                    name: "cpu".into(),
                    target: MetricTarget {
                        type_: "Utilization".into(),
                        average_utilization: Some(scaling.target_cpu),
                        ..MetricTarget::default()
                    },
                }),
                ..MetricSpec::default()
            }]),
            behavior: None,
        }),
        status: None,
    })
}
