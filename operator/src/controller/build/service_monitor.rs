//! A Prometheus Operator ServiceMonitor (only when that CRD is installed).

use kube::api::{ApiResource, DynamicObject, GroupVersionKind};

use super::labels::{REGISTRY_COMPONENT, metadata, names, selector};
use crate::controller::model::{Tls, ValidatedRegistry};

pub fn resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        "monitoring.coreos.com",
        "v1",
        "ServiceMonitor",
    ))
}

pub fn service_monitor(v: &ValidatedRegistry) -> Option<DynamicObject> {
    let monitor = v.service_monitor.as_ref()?;
    let mut object = DynamicObject::new(&v.name, &resource());
    let mut meta = metadata(v, v.name.clone(), REGISTRY_COMPONENT);
    if let Some(labels) = meta.labels.as_mut() {
        labels.extend(monitor.labels.clone());
    }
    object.metadata = meta;
    let scheme = if v.tls.enabled() { "https" } else { "http" };
    // Verify the operator's own CA; other certificates' issuers are unknown here.
    let tls_config = match &v.tls {
        Tls::SelfSigned { .. } => serde_json::json!({
            "ca": {"secret": {"name": names::ca(&v.name), "key": "ca.crt"}},
            "serverName": format!("{}.{}.svc", v.name, v.namespace),
        }),
        _ => serde_json::json!({"insecureSkipVerify": true}),
    };
    object.data = serde_json::json!({
        "spec": {
            "selector": {"matchLabels": selector(&v.name, REGISTRY_COMPONENT)},
            "endpoints": [{
                "port": "registry",
                "path": "/metrics",
                "scheme": scheme,
                "interval": monitor.interval,
                "tlsConfig": tls_config,
            }],
        }
    });
    Some(object)
}
