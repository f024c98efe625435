//! validate: every example, the defaults, and each reason a spec is refused.

use super::fixtures::*;
use super::model::*;
use crate::crd::{GcMode, ServiceType};

#[test]
fn every_self_contained_example_validates() {
    for name in [
        "minimal.yaml",
        "emptydir-plain-http.yaml",
        "htpasswd-users.yaml",
        "existing-htpasswd.yaml",
        "s3-seaweedfs.yaml",
        "aliyun-oss.yaml",
        "cert-manager.yaml",
        "ha-autoscaling.yaml",
    ] {
        let (registry, observed) = load(&example(name));
        if let Err(e) = super::validate::validate(&registry, &observed, &defaults()) {
            panic!("{name}: {e:?}");
        }
    }
}

#[test]
fn minimal_gets_safe_defaults() {
    let (v, _) = validated(&example("minimal.yaml"));
    assert_eq!(v.replicas, Some(1));
    assert_eq!(v.image, defaults().image);
    assert_eq!(
        v.storage,
        Storage::Claim {
            claim_name: "minimal-data".into(),
            create: Some(ClaimSpec {
                size: "10Gi".into(),
                storage_class_name: None,
                access_modes: vec!["ReadWriteOnce".into()],
            }),
            retain: true,
            single_node: true,
        }
    );
    assert!(matches!(
        v.tls,
        Tls::SelfSigned {
            tls13_only: false,
            ..
        }
    ));
    assert!(v.delete_enabled);
    assert!(!v.read_only);
    let gc = v.gc.expect("GC is on by default");
    assert_eq!(gc.schedule, "0 3 * * *");
    assert_eq!(gc.mode, GcMode::ReadOnly);
    assert!(!gc.delete_untagged);
    assert_eq!(v.service.type_, ServiceType::ClusterIP);
    assert_eq!(v.service.port, 5000);
    assert!(v.pdb.is_none(), "no budget for a single replica");
    assert!(v.upload_purging.enabled);
    assert_eq!(v.owner.kind, "Registry");
    assert_eq!(v.owner.controller, Some(true));
}

#[test]
fn variants_resolve_as_specified() {
    let (v, _) = validated(&example("s3-seaweedfs.yaml"));
    assert!(v.storage.shared());
    let Storage::S3(s3) = &v.storage else {
        panic!("s3")
    };
    assert_eq!(
        s3.credentials,
        Some((
            "seaweedfs-credentials".into(),
            "AWS_ACCESS_KEY_ID".into(),
            "AWS_SECRET_ACCESS_KEY".into()
        ))
    );
    assert_eq!(v.storage.type_name(), "S3");

    let (o, _) = validated(&example("aliyun-oss.yaml"));
    let Storage::S3(oss) = &o.storage else {
        panic!("oss")
    };
    assert_eq!(o.storage.type_name(), "OSS");
    assert_eq!(
        oss.credential_variables(),
        (
            "REGISTRY_STORAGE_OSS_ACCESSKEYID",
            "REGISTRY_STORAGE_OSS_ACCESSKEYSECRET"
        )
    );
    assert!(!oss.redirect);
    assert_eq!(
        v.pdb,
        Some(Pdb::MinAvailable(
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1)
        ))
    );
    assert_eq!(v.gc.unwrap().mode, GcMode::Online);

    let (v, _) = validated(&example("emptydir-plain-http.yaml"));
    assert!(v.gc.is_none(), "a GC pod cannot reach an emptyDir");
    assert_eq!(v.tls, Tls::Disabled);

    let (v, _) = validated(&example("ha-autoscaling.yaml"));
    assert_eq!(v.replicas, None, "the autoscaler owns the replica count");
    assert!(v.pdb.is_some(), "two or more pods get a budget");
    assert!(
        v.service_monitor.is_none(),
        "no ServiceMonitor without the Prometheus Operator"
    );

    let (registry, mut observed) = load(&example("ha-autoscaling.yaml"));
    observed.service_monitor_available = true;
    let v = super::validate::validate(&registry, &observed, &defaults()).unwrap();
    assert_eq!(v.service_monitor.unwrap().labels["release"], "prometheus");

    let (v, _) = validated(&example("htpasswd-users.yaml"));
    let auth = v.auth.unwrap();
    assert!(auth.anonymous_read);
    let AuthSource::Users(users) = auth.source else {
        panic!("users")
    };
    assert_eq!(users[0].name, "ci");
    assert_eq!(users[0].password, "change-me-ci");
    assert_eq!(users[0].source, "uid-ci-password/1/password");
}

#[test]
fn missing_or_broken_references_are_reported() {
    let (registry, observed) = load(&example("tls-secret.yaml"));
    assert_eq!(invalid(&registry, &observed).reason, "SecretNotFound");

    let (registry, mut observed) = load(&example("cert-manager.yaml"));
    observed.cert_manager_available = false;
    assert_eq!(
        invalid(&registry, &observed).reason,
        "CertManagerNotInstalled"
    );

    let (registry, observed) = load(&example("existing-claim.yaml"));
    assert_eq!(invalid(&registry, &observed).reason, "ClaimNotFound");
    let mut with_claim = observed.clone();
    with_claim.claim = Some(claim(&["ReadWriteMany"], "1Ti"));
    let v = super::validate::validate(&registry, &with_claim, &defaults()).unwrap();
    assert!(v.storage.shared(), "an existing RWX claim is shared");
    assert!(v.read_only);

    let yaml = example("htpasswd-users.yaml").replace(
        "key: password}\n        - name: admin",
        "key: wrong}\n        - name: admin",
    );
    let (registry, observed) = load(&yaml);
    let error = invalid(&registry, &observed);
    assert_eq!(error.reason, "PasswordKeyMissing");
    assert!(error.message.contains("ci-password") && error.message.contains("wrong"));

    let yaml = example("existing-htpasswd.yaml").replace("admin:$2y$", "admin:$apr1$");
    let (registry, observed) = load(&yaml);
    assert_eq!(invalid(&registry, &observed).reason, "InvalidHtpasswd");

    let yaml =
        example("s3-seaweedfs.yaml").replace("AWS_SECRET_ACCESS_KEY: berth-secret-key", "other: x");
    let (registry, observed) = load(&yaml);
    assert_eq!(invalid(&registry, &observed).reason, "SecretKeyMissing");

    // What the registry would refuse at startup is refused here, by the same rules.
    let yaml = example("s3-seaweedfs.yaml").replace(
        "http://seaweedfs.storage.svc:8333",
        "http://seaweedfs.storage.svc:8333/some/path",
    );
    let (registry, observed) = load(&yaml);
    let refused = invalid(&registry, &observed);
    assert_eq!(refused.reason, "InvalidStorage");
    assert!(
        refused.message.contains("storage.s3.regionendpoint"),
        "{}",
        refused.message
    );
}

#[test]
fn checks_the_api_server_cannot_make_are_done_here() {
    // CEL only checks the schedule's shape; the controller parses it.
    let yaml = example("htpasswd-users.yaml").replace("\"30 2 * * 0\"", "\"61 2 * * 0\"");
    let (registry, observed) = load(&yaml);
    assert_eq!(invalid(&registry, &observed).reason, "InvalidSchedule");

    let yaml = example("htpasswd-users.yaml").replace("Europe/Berlin", "Mars/Olympus_Mons");
    let (registry, observed) = load(&yaml);
    assert_eq!(invalid(&registry, &observed).reason, "InvalidTimeZone");

    let (registry, mut observed) = load(&example("minimal.yaml"));
    observed.claim = Some(claim(&["ReadWriteOnce"], "20Gi"));
    let error = invalid(&registry, &observed);
    assert_eq!(error.reason, "ClaimCannotShrink");

    // Objects admitted before a rule existed still cannot get two pods on one RWO volume.
    let (mut registry, observed) = load(&example("minimal.yaml"));
    registry.spec.replicas = Some(2);
    assert_eq!(invalid(&registry, &observed).reason, "StorageNotShared");
}
