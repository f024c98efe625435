//! build: the rendered objects of every spec branch, and that re-rendering an
//! unchanged Registry reproduces the same bytes (no churn).

use k8s_openapi::api::core::v1::Secret;

use super::build::{Desired, build, labels::names};
use super::fixtures::*;
use super::model::ValidatedRegistry;
use super::observed::{Observed, SecretData};

fn render(name: &str) -> (ValidatedRegistry, Observed, Desired) {
    let (v, observed) = validated(&example(name));
    let desired = build(&v, &observed).expect("renders");
    (v, observed, desired)
}

/// The rendered config as the registry in the pod reads it: with the pod's
/// `REGISTRY_*` variables (values from Secrets stood in for).
fn registry_config(desired: &Desired) -> registry::config::Config {
    let text = &desired.config.data.as_ref().unwrap()["config.yml"];
    let env = pod_spec(desired).containers[0]
        .env
        .iter()
        .flatten()
        .filter(|e| e.name.starts_with("REGISTRY_"))
        .map(|e| {
            (
                e.name.clone(),
                e.value.clone().unwrap_or_else(|| "from-secret".into()),
            )
        })
        .collect::<Vec<_>>();
    registry::config::parse_config(text, env)
        .unwrap_or_else(|e| panic!("rendered config does not parse: {e}\n{text}"))
        .config
}

fn pod_spec(desired: &Desired) -> &k8s_openapi::api::core::v1::PodSpec {
    desired
        .deployment
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
}

fn secret_data(secret: &Secret) -> SecretData {
    let mut with_meta = secret.clone();
    with_meta.metadata.uid = Some("uid".into());
    with_meta.metadata.resource_version = Some("7".into());
    SecretData::from_secret(&with_meta)
}

#[test]
fn minimal_renders_a_restricted_single_node_registry() {
    let (_, _, d) = render("minimal.yaml");
    let deployment = d.deployment.spec.as_ref().unwrap();
    assert_eq!(deployment.replicas, Some(1));
    assert_eq!(
        deployment.strategy.as_ref().unwrap().type_.as_deref(),
        Some("Recreate")
    );
    let pod = pod_spec(&d);
    assert_eq!(pod.automount_service_account_token, Some(false));
    let container = &pod.containers[0];
    let security = container.security_context.as_ref().unwrap();
    assert_eq!(security.run_as_non_root, Some(true));
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(
        security.capabilities.as_ref().unwrap().drop.as_deref(),
        Some(&["ALL".to_owned()][..])
    );
    assert_eq!(
        security.seccomp_profile.as_ref().unwrap().type_,
        "RuntimeDefault"
    );
    let readiness = container
        .readiness_probe
        .as_ref()
        .unwrap()
        .http_get
        .as_ref()
        .unwrap();
    assert_eq!(readiness.path.as_deref(), Some("/readyz"));
    assert_eq!(readiness.scheme.as_deref(), Some("HTTPS"));
    assert_eq!(
        container.args.as_deref(),
        Some(&["serve".to_owned(), "/etc/berth/config.yml".to_owned()][..])
    );
    let volumes: Vec<&str> = pod
        .volumes
        .as_ref()
        .unwrap()
        .iter()
        .map(|v| v.name.as_str())
        .collect();
    assert_eq!(volumes, ["config", "data", "tls", "tmp"]);

    // The claim outlives the Registry: no owner reference.
    let claim = d.claim.as_ref().unwrap();
    assert_eq!(claim.metadata.name.as_deref(), Some("minimal-data"));
    assert!(claim.metadata.owner_references.is_none());
    // Every other child is owned.
    assert!(d.deployment.metadata.owner_references.is_some());
    assert!(d.service.metadata.owner_references.is_some());

    let config = registry_config(&d);
    assert!(config.storage.delete_enabled());
    assert_eq!(
        config.storage.filesystem.unwrap().rootdirectory.to_str(),
        Some("/var/lib/registry")
    );
    assert!(config.http.tls.is_some());
    assert!(config.auth.is_none());

    let cronjob = d.cronjob.as_ref().unwrap().spec.as_ref().unwrap();
    assert_eq!(cronjob.schedule, "0 3 * * *");
    assert_eq!(cronjob.concurrency_policy.as_deref(), Some("Forbid"));
    let gc_pod = cronjob
        .job_template
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap();
    let affinity = gc_pod
        .affinity
        .as_ref()
        .unwrap()
        .pod_affinity
        .as_ref()
        .unwrap();
    assert!(
        affinity
            .required_during_scheduling_ignored_during_execution
            .is_some(),
        "RWO: same node as the registry"
    );
    assert_eq!(cronjob.suspend, Some(false));
    // With replicas: 0 there is no registry pod to run beside: suspended, not Pending.
    let stopped = example("minimal.yaml").replace("spec:\n", "spec:\n  replicas: 0\n");
    let (v, observed) = validated(&stopped);
    assert_eq!(v.replicas, Some(0), "{stopped}");
    let stopped = build(&v, &observed).unwrap();
    let cronjob = stopped.cronjob.as_ref().unwrap().spec.as_ref().unwrap();
    assert_eq!(cronjob.suspend, Some(true));
    assert_eq!(
        gc_pod.containers[0].args.as_ref().unwrap(),
        &[
            "garbage-collect",
            "--mode",
            "readonly",
            "--quiet",
            "--summary-file",
            "/dev/termination-log",
            "/etc/berth/config.yml"
        ]
    );
    assert!(
        d.pdb.is_none() && d.hpa.is_none() && d.ingress.is_none() && d.network_policy.is_none()
    );
}

#[test]
fn oss_renders_distributions_oss_section_with_the_access_key_pair_from_the_secret() {
    let (_, _, d) = render("aliyun-oss.yaml");
    let env = pod_spec(&d).containers[0].env.clone().unwrap();
    let from = |name: &str| {
        let var = env.iter().find(|e| e.name == name).unwrap();
        let selector = var
            .value_from
            .as_ref()
            .unwrap()
            .secret_key_ref
            .as_ref()
            .unwrap();
        (selector.name.clone(), selector.key.clone())
    };
    assert_eq!(
        from("REGISTRY_STORAGE_OSS_ACCESSKEYID"),
        ("oss-credentials".into(), "accessKeyId".into())
    );
    assert_eq!(
        from("REGISTRY_STORAGE_OSS_ACCESSKEYSECRET"),
        ("oss-credentials".into(), "accessKeySecret".into())
    );
    let config = registry_config(&d);
    assert!(config.storage.s3.is_none());
    let oss = config.storage.oss.clone().unwrap();
    assert_eq!(
        (oss.bucket.as_str(), oss.region.as_str()),
        ("my-images", "oss-cn-hangzhou")
    );
    assert_eq!(oss.internal, Some(true));
    let text = &d.config.data.as_ref().unwrap()["config.yml"];
    assert!(
        !text.contains("accesskey"),
        "keys never land in the ConfigMap: {text}"
    );
    // With the keys the pod gets, the registry serves exactly this section.
    let settings = registry::storage::s3::settings::BucketSettings::from_oss(&oss).unwrap();
    assert_eq!(
        settings.bucket_url(),
        "https://my-images.oss-cn-hangzhou-internal.aliyuncs.com"
    );
}

#[test]
fn s3_renders_a_shared_rolling_registry_with_credentials_from_the_secret() {
    let (_, _, d) = render("s3-seaweedfs.yaml");
    let deployment = d.deployment.spec.as_ref().unwrap();
    assert_eq!(deployment.replicas, Some(2));
    assert_eq!(
        deployment.strategy.as_ref().unwrap().type_.as_deref(),
        Some("RollingUpdate")
    );
    assert!(d.claim.is_none());
    let env = pod_spec(&d).containers[0].env.as_ref().unwrap();
    let access = env
        .iter()
        .find(|e| e.name == "REGISTRY_STORAGE_S3_ACCESSKEY")
        .unwrap();
    let from = access
        .value_from
        .as_ref()
        .unwrap()
        .secret_key_ref
        .as_ref()
        .unwrap();
    assert_eq!(
        (from.name.as_str(), from.key.as_str()),
        ("seaweedfs-credentials", "AWS_ACCESS_KEY_ID")
    );
    let config = registry_config(&d);
    let s3 = config.storage.s3.unwrap();
    assert_eq!(s3.bucket, "registry");
    assert_eq!(
        s3.regionendpoint.as_deref(),
        Some("http://seaweedfs.storage.svc:8333")
    );
    let text = &d.config.data.as_ref().unwrap()["config.yml"];
    assert!(
        !text.contains("accesskey"),
        "keys never land in the ConfigMap: {text}"
    );
    // Blobs stream through the registry unless spec.storage.s3.redirect.
    assert_eq!(config.storage.redirect.map(|r| r.disable), Some(true));
    let pdb = d.pdb.as_ref().unwrap().spec.as_ref().unwrap();
    assert_eq!(
        pdb.unhealthy_pod_eviction_policy.as_deref(),
        Some("AlwaysAllow")
    );
    let gc = d.cronjob.as_ref().unwrap().spec.as_ref().unwrap();
    let args = gc
        .job_template
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
        .args
        .clone()
        .unwrap();
    assert_eq!(&args[1..5], &["--mode", "online", "--min-age", "48h"]);
}

#[test]
fn htpasswd_hashes_change_only_when_passwords_change() {
    let (v, mut observed, first) = render("htpasswd-users.yaml");
    let secret = first.htpasswd.as_ref().unwrap();
    let text = String::from_utf8(secret.data.as_ref().unwrap()["htpasswd"].0.clone()).unwrap();
    let hashes: Vec<(&str, &str)> = text.lines().map(|l| l.split_once(':').unwrap()).collect();
    assert_eq!(hashes.len(), 2);
    assert!(bcrypt::verify("change-me-ci", hashes[0].1).unwrap());
    assert!(bcrypt::verify("change-me-admin", hashes[1].1).unwrap());
    assert!(hashes[0].1.starts_with("$2y$10$"));
    let config = registry_config(&first);
    assert!(
        config
            .auth
            .as_ref()
            .unwrap()
            .htpasswd
            .as_ref()
            .unwrap()
            .anonymousread
    );

    // Unchanged: identical bytes.
    observed.htpasswd_secret = Some(secret_data(secret));
    let again = build(&v, &observed).unwrap();
    assert_eq!(again.htpasswd, first.htpasswd);

    // The ci Secret changed (new resourceVersion) but holds the same password: hash kept.
    let (registry, _) = load(&example("htpasswd-users.yaml"));
    let mut touched = observed.clone();
    let mut ci: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "ci-password"}, "stringData": {"password": "change-me-ci"}
    }))
    .unwrap();
    add_secret(&mut touched, &mut ci, "2");
    let v2 = super::validate::validate(&registry, &touched, &defaults()).unwrap();
    let kept = build(&v2, &touched).unwrap();
    assert_eq!(
        kept.htpasswd.as_ref().unwrap().data,
        first.htpasswd.as_ref().unwrap().data,
        "same password, same hash"
    );

    // A new password: only that user's hash changes.
    let mut ci: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "ci-password"}, "stringData": {"password": "rotated"}
    }))
    .unwrap();
    add_secret(&mut touched, &mut ci, "3");
    let v3 = super::validate::validate(&registry, &touched, &defaults()).unwrap();
    let rotated = build(&v3, &touched).unwrap();
    let text = String::from_utf8(
        rotated.htpasswd.unwrap().data.unwrap()["htpasswd"]
            .0
            .clone(),
    )
    .unwrap();
    let new: Vec<(&str, &str)> = text.lines().map(|l| l.split_once(':').unwrap()).collect();
    assert!(bcrypt::verify("rotated", new[0].1).unwrap());
    assert_eq!(new[1], hashes[1]);
}

#[test]
fn self_signed_tls_is_reused_until_renewal_is_due() {
    let (v, mut observed, first) = render("minimal.yaml");
    let ca = first.ca.as_ref().unwrap();
    let tls = first.tls.as_ref().unwrap();
    assert_eq!(tls.type_.as_deref(), Some("kubernetes.io/tls"));
    assert_eq!(first.tls_not_after, Some(NOW + 90 * 86_400));
    observed.ca_secret = Some(secret_data(ca));
    observed.tls_secret = Some(secret_data(tls));

    let again = build(&v, &observed).unwrap();
    assert_eq!(again.ca, first.ca);
    assert_eq!(
        again.tls, first.tls,
        "an unchanged Registry keeps its certificate"
    );

    // 61 days later the serving certificate is within 30 days of expiry: reissued, same CA.
    observed.now = NOW + 61 * 86_400;
    let later = build(&v, &observed).unwrap();
    assert_eq!(later.ca, first.ca);
    assert_ne!(later.tls, first.tls);
    assert_eq!(later.tls_not_after, Some(observed.now + 90 * 86_400));
    let ca_pem = &later.tls.as_ref().unwrap().data.as_ref().unwrap()["ca.crt"];
    assert_eq!(ca_pem, &ca.data.as_ref().unwrap()["ca.crt"]);

    // New DNS names also mean a new certificate.
    observed.now = NOW;
    let (mut registry, _) = load(&example("minimal.yaml"));
    registry.spec.tls = Some(crate::crd::TlsSpec {
        dns_names: Some(vec!["registry.example.com".into()]),
        ..Default::default()
    });
    let v2 = super::validate::validate(&registry, &observed, &defaults()).unwrap();
    let renamed = build(&v2, &observed).unwrap();
    assert_ne!(renamed.tls, first.tls);
    assert_eq!(renamed.ca, first.ca);
}

#[test]
fn optional_children_follow_the_spec() {
    let (registry, mut observed) = load(&example("ha-autoscaling.yaml"));
    observed.service_monitor_available = true;
    let v = super::validate::validate(&registry, &observed, &defaults()).unwrap();
    let d = build(&v, &observed).unwrap();
    assert_eq!(
        d.deployment.spec.as_ref().unwrap().replicas,
        None,
        "left to the HPA"
    );
    let hpa = d.hpa.as_ref().unwrap().spec.as_ref().unwrap();
    assert_eq!((hpa.min_replicas, hpa.max_replicas), (Some(2), 6));
    let ingress = d.ingress.as_ref().unwrap();
    assert_eq!(
        ingress.metadata.annotations.as_ref().unwrap()["nginx.ingress.kubernetes.io/proxy-body-size"],
        "0"
    );
    assert_eq!(
        d.network_policy
            .as_ref()
            .unwrap()
            .spec
            .as_ref()
            .unwrap()
            .ingress
            .as_ref()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        d.service.spec.as_ref().unwrap().type_.as_deref(),
        Some("LoadBalancer")
    );
    assert!(d.service_monitor.is_some());
    assert_eq!(
        d.claim
            .as_ref()
            .unwrap()
            .spec
            .as_ref()
            .unwrap()
            .access_modes
            .as_ref()
            .unwrap(),
        &["ReadWriteMany"]
    );

    let (_, _, scratch) = render("emptydir-plain-http.yaml");
    assert!(scratch.cronjob.is_none());
    assert!(scratch.ca.is_none() && scratch.tls.is_none());
    let probe = pod_spec(&scratch).containers[0]
        .readiness_probe
        .as_ref()
        .unwrap();
    assert_eq!(
        probe.http_get.as_ref().unwrap().scheme.as_deref(),
        Some("HTTP")
    );

    let (v, _, cert) = render("cert-manager.yaml");
    let certificate = cert.certificate.unwrap();
    assert_eq!(certificate.data["spec"]["secretName"], names::tls(&v.name));
    assert_eq!(
        certificate.data["spec"]["issuerRef"]["kind"],
        "ClusterIssuer"
    );

    let (_, _, byo) = render("existing-htpasswd.yaml");
    assert!(byo.htpasswd.is_none());
    let auth = pod_spec(&byo)
        .volumes
        .as_ref()
        .unwrap()
        .iter()
        .find(|v| v.name == "auth")
        .unwrap();
    assert_eq!(
        auth.secret.as_ref().unwrap().secret_name.as_deref(),
        Some("registry-htpasswd")
    );
    assert!(
        byo.claim.unwrap().metadata.owner_references.is_some(),
        "retainOnDelete: false"
    );
}

#[test]
fn config_hash_is_stable_and_tracks_config_changes() {
    let (v, observed, first) = render("minimal.yaml");
    let second = build(&v, &observed).unwrap();
    assert_eq!(first.config_hash, second.config_hash);
    assert_eq!(first.config, second.config);
    let mut read_only = v.clone();
    read_only.read_only = true;
    let changed = build(&read_only, &observed).unwrap();
    assert_ne!(changed.config_hash, first.config_hash);
    let annotation = |d: &Desired| {
        d.deployment
            .spec
            .as_ref()
            .unwrap()
            .template
            .metadata
            .as_ref()
            .unwrap()
            .annotations
            .as_ref()
            .unwrap()[super::build::CONFIG_HASH_ANNOTATION]
            .clone()
    };
    assert_eq!(annotation(&changed), changed.config_hash);
    assert!(registry_config(&changed).storage.read_only());
}
