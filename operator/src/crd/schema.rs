//! Schema fragments schemars cannot express: list semantics for server-side apply.

use schemars::{Schema, SchemaGenerator, json_schema};

/// Conditions: a list map keyed by `type`, so SSA merges them per type.
pub fn conditions(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
        "items": {
            "type": "object",
            "required": ["type", "status", "lastTransitionTime", "reason", "message"],
            "properties": {
                "type": {"type": "string"},
                "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
                "lastTransitionTime": {"type": "string", "format": "date-time"},
                "observedGeneration": {"type": "integer", "format": "int64"},
                "reason": {"type": "string"},
                "message": {"type": "string"}
            }
        }
    })
}

/// htpasswd users: a list map keyed by `name` (names are unique).
pub fn users(generator: &mut SchemaGenerator) -> Schema {
    let mut schema = generator.subschema_for::<Vec<super::HtpasswdUser>>();
    list_map(&mut schema, "name", 256);
    schema
}

pub fn atomic_tolerations(generator: &mut SchemaGenerator) -> Schema {
    atomic::<k8s_openapi::api::core::v1::Toleration>(generator, 64)
}

pub fn atomic_spread(generator: &mut SchemaGenerator) -> Schema {
    atomic::<k8s_openapi::api::core::v1::TopologySpreadConstraint>(generator, 16)
}

pub fn atomic_peers(generator: &mut SchemaGenerator) -> Schema {
    atomic::<k8s_openapi::api::networking::v1::NetworkPolicyPeer>(generator, 64)
}

/// A list replaced as a whole by server-side apply, with a size bound for CEL cost estimates.
fn atomic<T: schemars::JsonSchema>(generator: &mut SchemaGenerator, max_items: u64) -> Schema {
    let mut schema = generator.subschema_for::<Vec<T>>();
    if let Some(object) = schema.as_object_mut() {
        object.insert("x-kubernetes-list-type".into(), "atomic".into());
        object.insert("maxItems".into(), max_items.into());
    }
    schema
}

fn list_map(schema: &mut Schema, key: &str, max_items: u64) {
    if let Some(object) = schema.as_object_mut() {
        object.insert("x-kubernetes-list-type".into(), "map".into());
        object.insert(
            "x-kubernetes-list-map-keys".into(),
            serde_json::json!([key]),
        );
        object.insert("maxItems".into(), max_items.into());
    }
}
