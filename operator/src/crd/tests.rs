//! The admission rules evaluated client-side (kube's CEL interpreter) on the
//! examples and on specs the API server must refuse; the same rules are
//! checked against the real API server in the integration tests.

use super::*;

fn registry(yaml: &str) -> Registry {
    let value: serde_yaml::Value = serde_yaml::from_str(yaml).expect("YAML");
    let mut registry: Registry = serde_yaml::from_value(value).expect("a Registry");
    registry.metadata.namespace = Some("tools".into());
    registry
}

fn with_spec(spec: &str) -> Registry {
    registry(&format!(
        "apiVersion: berth.dev/v1alpha1\nkind: Registry\nmetadata:\n  name: r\nspec:\n{spec}"
    ))
}

fn examples() -> Vec<(String, Registry)> {
    let dir = format!("{}/../examples", env!("CARGO_MANIFEST_DIR"));
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for doc in text.split("\n---\n") {
            if doc.contains("kind: Registry") {
                found.push((path.display().to_string(), registry(doc)));
            }
        }
    }
    assert!(found.len() >= 10, "every sample has a Registry");
    found
}

fn refused(spec: &str, message: &str) {
    let errors = with_spec(spec).validate_cel().expect_err(spec);
    let text = format!("{errors:?}");
    assert!(
        text.contains(message),
        "{spec}\n=> {text}\nshould mention {message}"
    );
}

#[test]
fn every_example_passes_the_admission_rules() {
    for (path, registry) in examples() {
        if let Err(e) = registry.validate_cel() {
            panic!("{path}: {e:?}");
        }
    }
}

#[test]
fn invalid_specs_are_refused_with_clear_messages() {
    refused(
        "  storage: {}\n",
        "set exactly one of storage.persistentVolume",
    );
    refused(
        "  storage:\n    emptyDir: {}\n    s3: {bucket: images}\n",
        "set exactly one of storage.persistentVolume",
    );
    refused(
        "  replicas: 3\n  storage:\n    emptyDir: {}\n",
        "replicas > 1 needs shared storage",
    );
    refused(
        "  replicas: 2\n  storage:\n    persistentVolume: {size: 1Gi}\n",
        "replicas > 1 needs shared storage",
    );
    refused(
        "  storage:\n    persistentVolume: {}\n  autoscaling: {minReplicas: 2, maxReplicas: 4}\n",
        "autoscaling needs shared storage",
    );
    refused(
        "  storage:\n    s3: {bucket: images}\n  autoscaling: {minReplicas: 5, maxReplicas: 4}\n",
        "minReplicas must not exceed maxReplicas",
    );
    refused(
        "  storage:\n    emptyDir: {}\n  tls: {mode: Secret}\n",
        "tls.mode Secret needs tls.secretName",
    );
    refused(
        "  storage:\n    emptyDir: {}\n  tls: {secretName: x}\n",
        "only used with tls.mode Secret",
    );
    refused(
        "  storage:\n    emptyDir: {}\n  tls: {mode: CertManager}\n",
        "needs tls.issuerRef",
    );
    refused(
        "  storage:\n    emptyDir: {}\n  auth:\n    htpasswd: {anonymousRead: true}\n",
        "exactly one of auth.htpasswd.users and auth.htpasswd.existingSecret",
    );
    refused(
        "  storage:\n    emptyDir: {}\n  gc: {schedule: daily}\n",
        "five cron fields",
    );
    refused(
        "  storage:\n    emptyDir: {}\n  podDisruptionBudget: {minAvailable: 1, maxUnavailable: 1}\n",
        "at most one of podDisruptionBudget",
    );
    refused(
        "  storage:\n    emptyDir: {}\n  service: {nodePort: 30001}\n",
        "needs service.type NodePort",
    );
    refused(
        "  storage:\n    persistentVolume: {existingClaim: c, size: 1Gi}\n",
        "existingClaim cannot be combined",
    );
}

#[test]
fn accepted_edge_cases() {
    for spec in [
        "  replicas: 3\n  storage:\n    persistentVolume: {accessModes: [ReadWriteMany]}\n",
        "  replicas: 2\n  storage:\n    persistentVolume: {existingClaim: shared-claim}\n",
        "  replicas: 0\n  storage:\n    emptyDir: {}\n",
        "  storage:\n    emptyDir: {}\n  gc: {schedule: \"@weekly\"}\n",
        "  storage:\n    emptyDir: {}\n  service: {type: NodePort, nodePort: 30001}\n",
    ] {
        if let Err(e) = with_spec(spec).validate_cel() {
            panic!("{spec}: {e:?}");
        }
    }
}

#[test]
fn the_storage_backend_cannot_be_switched() {
    let old = with_spec("  storage:\n    persistentVolume: {}\n");
    let new = with_spec("  storage:\n    emptyDir: {}\n");
    let errors = new
        .validate_cel_update(&old)
        .expect_err("switching backends");
    assert!(format!("{errors:?}").contains("cannot be switched in place"));
    let resized = with_spec("  storage:\n    persistentVolume: {size: 20Gi}\n");
    assert!(resized.validate_cel_update(&old).is_ok());
}

#[test]
fn long_names_are_refused() {
    let mut long = with_spec("  storage:\n    emptyDir: {}\n");
    long.metadata.name = Some("a".repeat(46));
    let errors = long.validate_cel().expect_err("46 characters");
    assert!(format!("{errors:?}").contains("at most 45 characters"));
}

#[test]
fn node_access_needs_tls() {
    refused(
        "  storage: {emptyDir: {}}\n  tls: {mode: Disabled}\n  nodeAccess: {enabled: true}\n",
        "nodeAccess needs TLS",
    );
    for spec in [
        "  storage: {emptyDir: {}}\n  nodeAccess: {enabled: true}\n",
        "  storage: {emptyDir: {}}\n  tls: {mode: Disabled}\n  nodeAccess: {enabled: false}\n",
    ] {
        with_spec(spec)
            .validate_cel()
            .unwrap_or_else(|e| panic!("{spec}: {e:?}"));
    }
}
