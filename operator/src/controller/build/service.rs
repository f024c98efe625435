//! The Service in front of the registry pods.

use k8s_openapi::api::core::v1::{Service as KubeService, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::labels::{REGISTRY_COMPONENT, metadata, selector};
use crate::controller::model::ValidatedRegistry;
use crate::crd::ServiceType;

pub fn service(v: &ValidatedRegistry) -> KubeService {
    let mut meta = metadata(v, v.name.clone(), REGISTRY_COMPONENT);
    if !v.service.annotations.is_empty() {
        meta.annotations = Some(v.service.annotations.clone());
    }
    if let Some(labels) = meta.labels.as_mut() {
        for (key, value) in &v.service.labels {
            labels.entry(key.clone()).or_insert_with(|| value.clone());
        }
    }
    KubeService {
        metadata: meta,
        spec: Some(ServiceSpec {
            type_: Some(v.service.type_.as_str().into()),
            selector: Some(selector(&v.name, REGISTRY_COMPONENT)),
            ports: Some(vec![ServicePort {
                name: Some("registry".into()),
                port: v.service.port,
                target_port: Some(IntOrString::String("registry".into())),
                protocol: Some("TCP".into()),
                node_port: v
                    .service
                    .node_port
                    .filter(|_| v.service.type_ != ServiceType::ClusterIP),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

/// The in-cluster URL clients use.
pub fn endpoint(v: &ValidatedRegistry) -> String {
    let scheme = if v.tls.enabled() { "https" } else { "http" };
    format!(
        "{scheme}://{}.{}.svc:{}",
        v.name, v.namespace, v.service.port
    )
}
