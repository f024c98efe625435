//! Names, labels and metadata shared by every child object.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::controller::model::ValidatedRegistry;

/// Label naming the Registry a child belongs to (also on retained claims and GC Jobs).
pub const REGISTRY_LABEL: &str = "berth.dev/registry";
pub const COMPONENT_LABEL: &str = "app.kubernetes.io/component";
pub const REGISTRY_COMPONENT: &str = "registry";
pub const GC_COMPONENT: &str = "gc";
pub const MANAGED_BY: &str = "berth-operator";

/// Labels selecting one Registry's pods of one component.
pub fn selector(registry: &str, component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "app.kubernetes.io/name".to_owned(),
            "berth-registry".to_owned(),
        ),
        ("app.kubernetes.io/instance".to_owned(), registry.to_owned()),
        (COMPONENT_LABEL.to_owned(), component.to_owned()),
    ])
}

/// The `key=value,...` form of a selector (for status and the scale subresource).
pub fn selector_string(registry: &str) -> String {
    selector(registry, REGISTRY_COMPONENT)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Every label a child carries.
pub fn labels(registry: &str, component: &str) -> BTreeMap<String, String> {
    let mut labels = selector(registry, component);
    labels.insert("app.kubernetes.io/managed-by".into(), MANAGED_BY.into());
    labels.insert(REGISTRY_LABEL.into(), registry.to_owned());
    labels
}

/// Metadata of a child: namespace, labels and the controller owner reference.
pub fn metadata(v: &ValidatedRegistry, name: String, component: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(v.namespace.clone()),
        labels: Some(labels(&v.name, component)),
        owner_references: Some(vec![v.owner.clone()]),
        ..ObjectMeta::default()
    }
}

/// Child object names, derived from the Registry's name (at most 45 characters).
pub mod names {
    pub fn config(registry: &str) -> String {
        format!("{registry}-config")
    }
    pub fn htpasswd(registry: &str) -> String {
        format!("{registry}-htpasswd")
    }
    pub fn ca(registry: &str) -> String {
        format!("{registry}-ca")
    }
    pub fn tls(registry: &str) -> String {
        format!("{registry}-tls")
    }
    pub fn claim(registry: &str) -> String {
        format!("{registry}-data")
    }
    pub fn gc(registry: &str) -> String {
        format!("{registry}-gc")
    }
}
