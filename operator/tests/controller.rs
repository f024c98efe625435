//! The operator against the real local control plane (etcd, kube-apiserver,
//! controller-manager, scheduler, kwok node): samples reconcile to Ready,
//! admission rules, healing, rotation, zero-write steady state, GC results.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use operator::crd::Registry;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_reconcile_to_ready_registries() {
    let env = Env::start("samples").await;
    for sample in [
        "minimal.yaml",
        "emptydir-plain-http.yaml",
        "htpasswd-users.yaml",
        "existing-htpasswd.yaml",
        "s3-seaweedfs.yaml",
        "aliyun-oss.yaml",
        "ha-autoscaling.yaml",
    ] {
        env.apply_yaml(&Env::example(sample)).await;
    }
    let ns = env.ns.name().to_owned();
    for (name, replicas, storage) in [
        ("minimal", 1, "PersistentVolume"),
        ("scratch", 1, "EmptyDir"),
        ("team", 1, "PersistentVolume"),
        ("byo-auth", 1, "PersistentVolume"),
        ("shared", 2, "S3"),
        ("oss", 3, "OSS"),
        ("platform", 2, "PersistentVolume"),
    ] {
        let registry = env.wait_ready(name).await;
        let status = registry.status.unwrap();
        assert_eq!(status.ready_replicas, Some(replicas), "{name}");
        assert_eq!(status.storage.unwrap().type_, storage, "{name}");
        let scheme = if name == "scratch" { "http" } else { "https" };
        assert_eq!(
            status.endpoint.as_deref(),
            Some(format!("{scheme}://{name}.{ns}.svc:5000").as_str())
        );
        assert_eq!(status.image.as_deref(), Some(IMAGE));
        let deployment: Deployment = env.api().get(name).await.unwrap();
        assert_eq!(
            deployment.owner_references()[0].uid,
            registry.metadata.uid.clone().unwrap(),
            "{name}: owned by its Registry"
        );
        assert!(env.api::<Service>().get(name).await.is_ok());
        assert!(
            env.api::<ConfigMap>()
                .get(&format!("{name}-config"))
                .await
                .is_ok()
        );
    }
    // Variant-specific children.
    let claim: PersistentVolumeClaim = env.api().get("minimal-data").await.unwrap();
    assert!(
        claim.owner_references().is_empty(),
        "retained claim has no owner"
    );
    assert_eq!(claim.status.unwrap().phase.as_deref(), Some("Bound"));
    assert!(env.api::<Secret>().get("team-htpasswd").await.is_ok());
    assert!(env.api::<Secret>().get("minimal-tls").await.is_ok());
    assert!(env.api::<PodDisruptionBudget>().get("shared").await.is_ok());
    assert!(
        env.api::<CronJob>().get("scratch-gc").await.is_err(),
        "no GC for emptyDir"
    );
    let platform: Deployment = env.api().get("platform").await.unwrap();
    assert_eq!(
        platform.spec.unwrap().strategy.unwrap().type_.as_deref(),
        Some("RollingUpdate")
    );
    let hpa: Api<k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler> = env.api();
    assert!(hpa.get("platform").await.is_ok());
    let single: Deployment = env.api().get("minimal").await.unwrap();
    assert_eq!(
        single.spec.unwrap().strategy.unwrap().type_.as_deref(),
        Some("Recreate")
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_server_refuses_invalid_specs_with_the_cel_messages() {
    let env = Env::start("cel").await;
    let api: Api<Registry> = env.api();
    let create = |spec: serde_json::Value| {
        let api = api.clone();
        async move {
            let registry: Registry = serde_json::from_value(json!({
                "apiVersion": "berth.dev/v1alpha1", "kind": "Registry",
                "metadata": {"name": "bad"}, "spec": spec,
            }))
            .unwrap();
            match api.create(&PostParams::default(), &registry).await {
                Err(kube::Error::Api(status)) => {
                    assert_eq!(status.code, 422);
                    status.message
                }
                other => panic!("expected a 422, got {other:?}"),
            }
        }
    };
    for (spec, message) in [
        (
            json!({"storage": {}}),
            "set exactly one of storage.persistentVolume",
        ),
        (
            json!({"storage": {"emptyDir": {}, "s3": {"bucket": "images"}}}),
            "set exactly one of storage.persistentVolume",
        ),
        (
            json!({"replicas": 2, "storage": {"persistentVolume": {}}}),
            "replicas > 1 needs shared storage",
        ),
        (
            json!({"storage": {"emptyDir": {}}, "tls": {"mode": "Secret"}}),
            "tls.mode Secret needs tls.secretName",
        ),
        (
            json!({"storage": {"persistentVolume": {"accessModes": ["ReadWriteOncePod"]}}}),
            "so the GC Job could never run",
        ),
        (
            json!({"storage": {"emptyDir": {}}, "gc": {"schedule": "sometimes"}}),
            "five cron fields",
        ),
        (
            json!({"storage": {"emptyDir": {}}, "auth": {"htpasswd": {}}}),
            "exactly one of auth.htpasswd.users",
        ),
        (
            json!({"replicas": 500, "storage": {"s3": {"bucket": "images"}}}),
            "spec.replicas",
        ),
        (
            json!({"storage": {"s3": {"bucket": "images", "endpoint": "ftp://x"}}}),
            "spec.storage.s3.endpoint",
        ),
        (
            json!({"storage": {"s3": {"bucket": "images"}}}),
            "storage.s3.region is required for AWS",
        ),
        (
            json!({"storage": {"oss": {"bucket": "images", "region": "cn-hangzhou", "credentialsSecretRef": {"name": "k"}}}}),
            "spec.storage.oss.region",
        ),
        (
            json!({"storage": {"s3": {"bucket": "images", "region": "r"}, "oss": {"bucket": "images", "region": "oss-cn-hangzhou", "credentialsSecretRef": {"name": "k"}}}}),
            "set exactly one of storage.persistentVolume",
        ),
    ] {
        let got = create(spec.clone()).await;
        assert!(got.contains(message), "{spec}: {got}");
    }
    // Switching the backend of an existing Registry is refused too.
    env.apply_yaml(&Env::example("minimal.yaml")).await;
    let patch = json!({"spec": {"storage": {"persistentVolume": null, "emptyDir": {}}}});
    let err = api
        .patch("minimal", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect_err("switching storage");
    assert!(
        err.to_string().contains("cannot be switched in place"),
        "{err}"
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_secret_degrades_the_registry_until_it_appears() {
    let env = Env::start("missing-secret").await;
    env.apply_yaml(&Env::example("htpasswd-users.yaml")).await;
    env.wait_ready("team").await;
    let before: Deployment = env.api().get("team").await.unwrap();

    // The admin password Secret disappears: Degraded, but the registry keeps running as it was.
    env.api::<Secret>()
        .delete("admin-password", &DeleteParams::default())
        .await
        .unwrap();
    let degraded = env
        .wait_registry("team", "Degraded=SecretNotFound", |r| {
            condition(r, "Degraded")
                .is_some_and(|c| c.status == "True" && c.reason == "SecretNotFound")
        })
        .await;
    assert!(
        condition(&degraded, "Degraded")
            .unwrap()
            .message
            .contains("admin-password")
    );
    assert_eq!(
        condition(&degraded, "Ready").unwrap().status,
        "True",
        "still serving"
    );
    let during: Deployment = env.api().get("team").await.unwrap();
    assert_eq!(
        during.metadata.resource_version,
        before.metadata.resource_version
    );

    // It comes back: healthy again.
    env.apply_yaml("apiVersion: v1\nkind: Secret\nmetadata: {name: admin-password}\nstringData: {password: new-admin}\n")
        .await;
    env.wait_registry("team", "Degraded=False", |r| {
        condition(r, "Degraded").is_some_and(|c| c.status == "False")
    })
    .await;
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_children_are_recreated_and_steady_state_writes_nothing() {
    let env = Env::start("heal").await;
    env.apply_yaml(&Env::example("htpasswd-users.yaml")).await;
    env.wait_ready("team").await;
    // Let the Deployment's own status settle and the controller go quiet.
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Steady state: poke the Registry (an annotation triggers a reconcile) and count writes.
    let versions = |env: &Env| {
        let (deployments, services, secrets, maps, cronjobs) = (
            env.api::<Deployment>(),
            env.api::<Service>(),
            env.api::<Secret>(),
            env.api::<ConfigMap>(),
            env.api::<CronJob>(),
        );
        async move {
            let mut versions = BTreeMap::new();
            versions.insert(
                "deployment",
                deployments.get("team").await.unwrap().resource_version(),
            );
            versions.insert(
                "service",
                services.get("team").await.unwrap().resource_version(),
            );
            versions.insert(
                "htpasswd",
                secrets
                    .get("team-htpasswd")
                    .await
                    .unwrap()
                    .resource_version(),
            );
            versions.insert(
                "tls",
                secrets.get("team-tls").await.unwrap().resource_version(),
            );
            versions.insert(
                "config",
                maps.get("team-config").await.unwrap().resource_version(),
            );
            versions.insert(
                "cronjob",
                cronjobs.get("team-gc").await.unwrap().resource_version(),
            );
            versions
        }
    };
    let before = versions(&env).await;
    let writes_before = env.ctx.metrics.total_writes();
    let reconciles_before = env.ctx.metrics.reconciles.get();
    let registries: Api<Registry> = env.api();
    for i in 0..3 {
        let poke = json!({"metadata": {"annotations": {"test/poke": i.to_string()}}});
        registries
            .patch("team", &PatchParams::default(), &Patch::Merge(&poke))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    assert!(
        env.ctx.metrics.reconciles.get() >= reconciles_before + 3,
        "the pokes triggered reconciles"
    );
    assert_eq!(
        env.ctx.metrics.total_writes(),
        writes_before,
        "steady-state reconciles made API writes"
    );
    assert_eq!(versions(&env).await, before);

    // Deleted children come back.
    let uid = env
        .api::<Deployment>()
        .get("team")
        .await
        .unwrap()
        .uid()
        .unwrap();
    env.api::<Deployment>()
        .delete("team", &DeleteParams::default())
        .await
        .unwrap();
    env.api::<Service>()
        .delete("team", &DeleteParams::default())
        .await
        .unwrap();
    env.api::<Secret>()
        .delete("team-htpasswd", &DeleteParams::default())
        .await
        .unwrap();
    env.api::<ConfigMap>()
        .delete("team-config", &DeleteParams::default())
        .await
        .unwrap();
    eventually("children recreated", Duration::from_secs(60), || async {
        let deployment = env.api::<Deployment>().get("team").await.ok()?;
        (deployment.uid() != Some(uid.clone())
            && env.api::<Service>().get("team").await.is_ok()
            && env.api::<Secret>().get("team-htpasswd").await.is_ok()
            && env.api::<ConfigMap>().get("team-config").await.is_ok())
        .then_some(())
    })
    .await;

    // An out-of-band edit of a managed field is reverted.
    let deployments = env.api::<Deployment>();
    let tamper = json!({"spec": {"template": {"spec": {"containers": [{"name": "registry", "image": "evil/registry:latest"}]}}}});
    deployments.patch("team", &PatchParams::apply("someone-else").force(), &Patch::Apply(&json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "team"}, "spec": tamper["spec"].clone()
    }))).await.unwrap();
    registries
        .patch(
            "team",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"annotations": {"test/poke": "again"}}})),
        )
        .await
        .unwrap();
    eventually("image restored", Duration::from_secs(30), || async {
        let deployment = deployments.get("team").await.ok()?;
        let image = deployment.spec?.template.spec?.containers[0]
            .image
            .clone()?;
        (image == IMAGE).then_some(())
    })
    .await;
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_a_password_rotates_only_that_hash_without_restarting_pods() {
    let env = Env::start("rotate").await;
    env.apply_yaml(&Env::example("htpasswd-users.yaml")).await;
    env.wait_ready("team").await;
    let secrets = env.api::<Secret>();
    let htpasswd = |secret: Secret| -> BTreeMap<String, String> {
        let text = String::from_utf8(secret.data.unwrap()["htpasswd"].0.clone()).unwrap();
        text.lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(u, h)| (u.to_owned(), h.to_owned()))
            .collect()
    };
    let before = htpasswd(secrets.get("team-htpasswd").await.unwrap());
    let template_before = env
        .api::<Deployment>()
        .get("team")
        .await
        .unwrap()
        .spec
        .unwrap()
        .template;

    env.apply_yaml("apiVersion: v1\nkind: Secret\nmetadata: {name: ci-password}\nstringData: {password: rotated-ci}\n").await;
    let after = eventually("the ci hash to change", Duration::from_secs(60), || async {
        let now = htpasswd(secrets.get("team-htpasswd").await.ok()?);
        (now["ci"] != before["ci"]).then_some(now)
    })
    .await;
    assert!(bcrypt::verify("rotated-ci", &after["ci"]).unwrap());
    assert_eq!(
        after["admin"], before["admin"],
        "the other user's hash is untouched"
    );
    let template_after = env
        .api::<Deployment>()
        .get("team")
        .await
        .unwrap()
        .spec
        .unwrap()
        .template;
    assert_eq!(
        template_after, template_before,
        "the registry reloads htpasswd itself: no rollout"
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_cronjob_runs_a_job_whose_summary_lands_in_status() {
    let env = Env::start("gc").await;
    env.apply_yaml(&Env::example("minimal.yaml")).await;
    env.wait_ready("minimal").await;
    // Nothing executes on a kwok node, so the GC pod's termination message is
    // scripted (see e2e/kwok/pod-complete-with-message.yaml); the operator's part —
    // CronJob, Job, reading the pod, status — is real.
    let summary = json!({
        "mode": "readonly", "dry_run": false, "manifests_deleted": 3, "blobs_deleted": 17,
        "bytes_freed": 123456789, "duration_seconds": 4.25
    })
    .to_string();
    let cronjobs = env.api::<CronJob>();
    cronjobs
        .patch(
            "minimal-gc",
            &PatchParams::apply(TEST_MANAGER).force(),
            &Patch::Apply(&json!({
                "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "minimal-gc"},
                "spec": {"jobTemplate": {"spec": {"template": {"metadata": {
                    "labels": {"berthtestmessage": "true"},
                    "annotations": {"berth.dev/test-termination-message": summary},
                }}}}}
            })),
        )
        .await
        .unwrap();
    // Run every minute.
    let registries: Api<Registry> = env.api();
    registries
        .patch(
            "minimal",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"gc": {"schedule": "* * * * *"}}})),
        )
        .await
        .unwrap();
    let registry = env
        .wait_registry("minimal", "a GC run in status", |r| {
            r.status
                .as_ref()
                .and_then(|s| s.gc.as_ref())
                .and_then(|g| g.last_run.as_ref())
                .is_some()
        })
        .await;
    let gc = registry.status.unwrap().gc.unwrap();
    let run = gc.last_run.unwrap();
    assert!(run.succeeded);
    assert!(run.job_name.starts_with("minimal-gc-"));
    assert_eq!(run.manifests_deleted, Some(3));
    assert_eq!(run.blobs_deleted, Some(17));
    assert_eq!(run.bytes_freed, Some(123456789));
    assert_eq!(run.duration_seconds, Some(4.25));
    assert!(gc.last_schedule_time.is_some());
    // The CronJob keeps its safety settings.
    let cronjob = cronjobs.get("minimal-gc").await.unwrap().spec.unwrap();
    assert_eq!(cronjob.concurrency_policy.as_deref(), Some("Forbid"));
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_registry_removes_its_children_but_keeps_a_retained_claim() {
    let env = Env::start("delete").await;
    env.apply_yaml(&Env::example("minimal.yaml")).await;
    env.apply_yaml(&Env::example("existing-htpasswd.yaml"))
        .await;
    env.wait_ready("minimal").await;
    env.wait_ready("byo-auth").await;
    let registries: Api<Registry> = env.api();
    let claims = env.api::<PersistentVolumeClaim>();
    for name in ["minimal", "byo-auth"] {
        let uid = registries.get(name).await.unwrap().uid().unwrap();
        registries
            .delete(name, &DeleteParams::foreground())
            .await
            .unwrap();
        e2e::wait::wait_deleted(&registries, name, &uid, Duration::from_secs(60))
            .await
            .unwrap();
    }
    eventually(
        "children garbage-collected",
        Duration::from_secs(60),
        || async {
            (env.api::<Deployment>().get("minimal").await.is_err()
                && env.api::<Service>().get("minimal").await.is_err())
            .then_some(())
        },
    )
    .await;
    // retainOnDelete defaults to true; byo-auth set it to false.
    assert!(
        claims.get("minimal-data").await.is_ok(),
        "retained claim kept"
    );
    eventually("owned claim removed", Duration::from_secs(60), || async {
        claims.get("byo-auth-data").await.is_err().then_some(())
    })
    .await;

    // A new Registry of the same name adopts the retained claim and its data.
    env.apply_yaml(&Env::example("minimal.yaml")).await;
    env.wait_ready("minimal").await;
    let claim = claims.get("minimal-data").await.unwrap();
    assert!(claim.meta().deletion_timestamp.is_none());
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cert_manager_mode_without_cert_manager_is_reported() {
    let env = Env::start("certmanager").await;
    env.apply_yaml(&Env::example("cert-manager.yaml")).await;
    let registry = env
        .wait_registry("managed-cert", "Degraded=CertManagerNotInstalled", |r| {
            condition(r, "Degraded").is_some_and(|c| c.reason == "CertManagerNotInstalled")
        })
        .await;
    assert_eq!(condition(&registry, "Ready").unwrap().status, "False");
    assert!(
        env.api::<Deployment>().get("managed-cert").await.is_err(),
        "nothing rendered from an invalid spec"
    );
    env.finish().await;
}

/// An object that is not Berth's under a child's name is never taken over:
/// the Registry says so (Degraded=NameConflict naming it, a Warning event),
/// the object stays byte-identical, and once it is gone the Registry heals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_berth_does_not_own_is_never_taken_over() {
    let env = Env::start("name-conflict").await;
    // Someone's own Service, named as the Registry's will be.
    env.apply_yaml(
        "apiVersion: v1\nkind: Service\nmetadata: {name: minimal, labels: {team: theirs}}\nspec: {ports: [{port: 80}], selector: {app: theirs}}\n",
    )
    .await;
    let theirs: Service = env.api().get("minimal").await.unwrap();
    env.apply_yaml(&Env::example("minimal.yaml")).await;
    let degraded = env
        .wait_registry("minimal", "Degraded=NameConflict", |r| {
            condition(r, "Degraded")
                .is_some_and(|c| c.status == "True" && c.reason == "NameConflict")
        })
        .await;
    let message = &condition(&degraded, "Degraded").unwrap().message;
    assert!(message.contains("Service minimal"), "{message}");
    let after: Service = env.api().get("minimal").await.unwrap();
    assert_eq!(
        after.metadata.resource_version,
        theirs.metadata.resource_version
    );
    assert_eq!(after.spec, theirs.spec);
    assert!(after.metadata.owner_references.is_none());
    let events: Api<k8s_openapi::api::events::v1::Event> = env.api();
    let warned = eventually(
        "a NameConflict Warning event",
        Duration::from_secs(30),
        || {
            let events = events.clone();
            async move {
                let list = events.list(&Default::default()).await.ok()?;
                list.items.into_iter().find(|e| {
                    e.reason.as_deref() == Some("NameConflict")
                        && e.type_.as_deref() == Some("Warning")
                })
            }
        },
    )
    .await;
    assert!(warned.note.unwrap_or_default().contains("minimal"));

    // Their Service goes away: the next attempt renders Berth's own (a retry
    // with backoff would too; an edit of the Registry makes it immediate).
    env.api::<Service>()
        .delete("minimal", &DeleteParams::default())
        .await
        .unwrap();
    env.api::<Registry>()
        .patch(
            "minimal",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"test/nudge": "1"}}})),
        )
        .await
        .unwrap();
    env.wait_ready("minimal").await;
    let ours: Service = env.api().get("minimal").await.unwrap();
    assert!(
        ours.metadata
            .labels
            .unwrap()
            .contains_key("berth.dev/registry")
    );
    env.finish().await;
}
