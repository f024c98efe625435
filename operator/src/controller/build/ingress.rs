//! The Ingress, with ingress-nginx's body limit lifted (image layers are large).

use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress as KubeIngress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, IngressTLS, ServiceBackendPort,
};

use super::labels::{REGISTRY_COMPONENT, metadata};
use crate::controller::model::ValidatedRegistry;

pub fn ingress(v: &ValidatedRegistry) -> Option<KubeIngress> {
    let ingress = v.ingress.as_ref()?;
    let mut annotations = std::collections::BTreeMap::from([
        (
            "nginx.ingress.kubernetes.io/proxy-body-size".to_owned(),
            "0".to_owned(),
        ),
        (
            "nginx.ingress.kubernetes.io/proxy-request-buffering".to_owned(),
            "off".to_owned(),
        ),
    ]);
    if v.tls.enabled() {
        annotations.insert(
            "nginx.ingress.kubernetes.io/backend-protocol".into(),
            "HTTPS".into(),
        );
    }
    annotations.extend(ingress.annotations.clone());
    let mut meta = metadata(v, v.name.clone(), REGISTRY_COMPONENT);
    meta.annotations = Some(annotations);
    let backend = IngressBackend {
        service: Some(IngressServiceBackend {
            name: v.name.clone(),
            port: Some(ServiceBackendPort {
                number: Some(v.service.port),
                name: None,
            }),
        }),
        resource: None,
    };
    Some(KubeIngress {
        metadata: meta,
        spec: Some(IngressSpec {
            ingress_class_name: ingress.class_name.clone(),
            rules: Some(
                ingress
                    .hosts
                    .iter()
                    .map(|host| IngressRule {
                        host: Some(host.clone()),
                        http: Some(HTTPIngressRuleValue {
                            paths: vec![HTTPIngressPath {
                                path: Some("/".into()),
                                path_type: "Prefix".into(),
                                backend: backend.clone(),
                            }],
                        }),
                    })
                    .collect(),
            ),
            tls: ingress.tls_secret_name.as_ref().map(|secret| {
                vec![IngressTLS {
                    hosts: Some(ingress.hosts.clone()),
                    secret_name: Some(secret.clone()),
                }]
            }),
            default_backend: None,
        }),
        status: None,
    })
}
