//! Test support: Registries and the Secrets they reference, read from the
//! YAML samples in `examples/`, turned into what validate/build consume.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::{ByteString, api::core::v1::PersistentVolumeClaim};
use serde::Deserialize;

use super::model::ValidatedRegistry;
use super::observed::{Observed, SecretData};
use super::validate::{Defaults, Invalid, validate};
use crate::crd::Registry;

/// A fixed "now" so certificate decisions are reproducible (2026-11-22).
pub const NOW: i64 = 1_795_392_000;
pub const NAMESPACE: &str = "tools";

pub fn defaults() -> Defaults {
    Defaults {
        image: "registry.example/berth/registry:test".into(),
    }
}

/// An example file from `examples/`, by name.
pub fn example(name: &str) -> String {
    let path = format!("{}/../examples/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The Registry of a multi-document YAML, with server-set metadata filled in,
/// and an `Observed` holding every Secret of the same document.
pub fn load(yaml: &str) -> (Registry, Observed) {
    let mut registry = None;
    let mut observed = Observed {
        now: NOW,
        cert_manager_available: true,
        ..Observed::default()
    };
    for document in serde_yaml::Deserializer::from_str(yaml) {
        let value = serde_yaml::Value::deserialize(document).expect("valid YAML");
        match value.get("kind").and_then(|k| k.as_str()) {
            Some("Registry") => {
                registry = Some(serde_yaml::from_value::<Registry>(value).expect("a Registry"))
            }
            Some("Secret") => {
                let mut secret: Secret = serde_yaml::from_value(value).expect("a Secret");
                add_secret(&mut observed, &mut secret, "1");
            }
            _ => {}
        }
    }
    let mut registry = registry.expect("the YAML has a Registry");
    registry.metadata.namespace = Some(NAMESPACE.into());
    registry.metadata.uid = Some("0f8e2a51-7a6e-4b5f-9d3c-4c1d1b2e3f40".into());
    registry.metadata.generation = Some(1);
    (registry, observed)
}

/// Records a Secret (string data folded into data, as the API server does).
pub fn add_secret(observed: &mut Observed, secret: &mut Secret, resource_version: &str) {
    let mut data: BTreeMap<String, ByteString> = secret.data.take().unwrap_or_default();
    for (key, value) in secret.string_data.take().unwrap_or_default() {
        data.insert(key, ByteString(value.into_bytes()));
    }
    secret.data = Some(data);
    let name = secret.metadata.name.clone().expect("named Secret");
    secret.metadata.uid = Some(format!("uid-{name}"));
    secret.metadata.resource_version = Some(resource_version.into());
    observed
        .referenced_secrets
        .insert(name, Some(SecretData::from_secret(secret)));
}

/// A claim as the API server would return it.
pub fn claim(access_modes: &[&str], size: &str) -> PersistentVolumeClaim {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": "claim", "namespace": NAMESPACE},
        "spec": {
            "accessModes": access_modes,
            "resources": {"requests": {"storage": size}},
        }
    }))
    .unwrap()
}

pub fn validated(yaml: &str) -> (ValidatedRegistry, Observed) {
    let (registry, observed) = load(yaml);
    let validated = validate(&registry, &observed, &defaults()).expect("the example validates");
    (validated, observed)
}

pub fn invalid(registry: &Registry, observed: &Observed) -> Invalid {
    validate(registry, observed, &defaults()).expect_err("validation should fail")
}
