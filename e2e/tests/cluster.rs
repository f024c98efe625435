//! Tests that prove the harness: the control plane, kwok node, storage and GC behave like a cluster.
//!
//! They run against whatever `e2e::Cluster::shared()` finds (see the crate docs); by default it
//! brings up the local control plane with `e2e/cluster up`. Images are real public ones so the same
//! tests pass on kind/k3d; on the local cluster kwok never pulls them.

use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use e2e::{Cluster, wait};
use k8s_openapi::{
    api::{
        apps::v1::Deployment,
        authentication::v1::{TokenRequest, TokenRequestSpec, TokenReview, TokenReviewSpec},
        batch::v1::{CronJob, Job},
        core::v1::{ConfigMap, PersistentVolumeClaim, Pod, ServiceAccount},
    },
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api, ResourceExt,
    api::{ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, PostParams},
    runtime::wait::{Condition as _, conditions},
};
use serde_json::json;

const PAUSE_IMAGE: &str = "registry.k8s.io/pause:3.10";
const BUSYBOX_IMAGE: &str = "busybox:1.36";

fn from_json<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T> {
    serde_json::from_value(value).context("test fixture does not deserialize")
}

async fn setup(test: &str) -> Result<(Cluster, e2e::TestNamespace)> {
    e2e::init_tracing();
    let cluster = Cluster::shared().await?;
    let ns = cluster.namespace(test).await?;
    Ok((cluster, ns))
}

async fn pods_with_label(ns: &e2e::TestNamespace, selector: &str) -> Result<Vec<Pod>> {
    let pods: Api<Pod> = ns.api();
    Ok(pods
        .list(&ListParams::default().labels(selector))
        .await?
        .items)
}

#[tokio::test]
async fn deployment_becomes_available() -> Result<()> {
    let (cluster, ns) = setup("deployment-available").await?;
    let deployments: Api<Deployment> = ns.api();
    let deployment: Deployment = from_json(json!({
        "metadata": { "name": "web" },
        "spec": {
            "replicas": 2,
            "selector": { "matchLabels": { "app": "web" } },
            "template": {
                "metadata": { "labels": { "app": "web" } },
                "spec": { "containers": [{ "name": "web", "image": PAUSE_IMAGE }] }
            }
        }
    }))?;
    deployments
        .create(&PostParams::default(), &deployment)
        .await?;
    wait::wait_for(
        &deployments,
        "web",
        wait::DEFAULT_TIMEOUT,
        wait::deployment_available(),
    )
    .await?;

    let pods = pods_with_label(&ns, "app=web").await?;
    ensure!(pods.len() == 2, "expected 2 pods, found {}", pods.len());
    for pod in &pods {
        let spec = pod.spec.as_ref().context("pod without spec")?;
        if let Some(node) = cluster.kwok_node() {
            ensure!(
                spec.node_name.as_deref() == Some(node),
                "{} is on {:?}",
                pod.name_any(),
                spec.node_name
            );
        }
        // ServiceAccount admission ran: the default SA and its projected token volume.
        ensure!(spec.service_account_name.as_deref() == Some("default"));
        ensure!(
            spec.volumes
                .iter()
                .flatten()
                .any(|v| v.name.starts_with("kube-api-access-")),
            "{} has no projected service account token volume",
            pod.name_any()
        );
        let owner = pod
            .owner_references()
            .first()
            .context("pod without owner")?;
        ensure!(owner.kind == "ReplicaSet", "pod owned by {}", owner.kind);
    }
    Ok(())
}

#[tokio::test]
async fn job_completes() -> Result<()> {
    let (_cluster, ns) = setup("job-completes").await?;
    let jobs: Api<Job> = ns.api();
    let job: Job = from_json(json!({
        "metadata": { "name": "once" },
        "spec": {
            "backoffLimit": 0,
            "template": { "spec": {
                "restartPolicy": "Never",
                "containers": [{ "name": "main", "image": BUSYBOX_IMAGE, "command": ["true"] }]
            }}
        }
    }))?;
    jobs.create(&PostParams::default(), &job).await?;
    let done = wait::wait_for(&jobs, "once", wait::DEFAULT_TIMEOUT, wait::job_complete()).await?;
    ensure!(
        done.status.and_then(|s| s.succeeded) == Some(1),
        "job did not record one success"
    );

    let pods = pods_with_label(&ns, "batch.kubernetes.io/job-name=once").await?;
    ensure!(
        pods.iter()
            .any(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Succeeded")),
        "no Succeeded pod for the job"
    );
    Ok(())
}

#[tokio::test]
async fn cronjob_runs_a_job_to_completion() -> Result<()> {
    let (_cluster, ns) = setup("cronjob-completes").await?;
    let cronjobs: Api<CronJob> = ns.api();
    let cronjob: CronJob = from_json(json!({
        "metadata": { "name": "every-minute" },
        "spec": {
            "schedule": "* * * * *",
            "concurrencyPolicy": "Forbid",
            "jobTemplate": { "spec": {
                "backoffLimit": 0,
                "template": { "spec": {
                    "restartPolicy": "Never",
                    "containers": [{ "name": "main", "image": BUSYBOX_IMAGE, "command": ["true"] }]
                }}
            }}
        }
    }))?;
    cronjobs.create(&PostParams::default(), &cronjob).await?;
    // The first run starts at the next minute boundary.
    wait::wait_for(
        &cronjobs,
        "every-minute",
        Duration::from_secs(150),
        wait::cronjob_succeeded(),
    )
    .await?;

    let jobs: Api<Job> = ns.api();
    let owned: Vec<Job> = jobs
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|j| {
            j.owner_references()
                .iter()
                .any(|o| o.kind == "CronJob" && o.name == "every-minute")
        })
        .collect();
    ensure!(
        owned
            .iter()
            .any(|j| conditions::is_job_completed().matches_object(Some(j))),
        "no completed Job owned by the CronJob: {:?}",
        owned.iter().map(ResourceExt::name_any).collect::<Vec<_>>()
    );
    Ok(())
}

#[tokio::test]
async fn pvc_binds_and_pod_using_it_runs() -> Result<()> {
    let (cluster, ns) = setup("pvc-binds").await?;
    let pvcs: Api<PersistentVolumeClaim> = ns.api();
    // No storageClassName: the cluster's default StorageClass must kick in.
    let pvc: PersistentVolumeClaim = from_json(json!({
        "metadata": { "name": "data" },
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": { "requests": { "storage": "1Gi" } }
        }
    }))?;
    pvcs.create(&PostParams::default(), &pvc).await?;
    let deployments: Api<Deployment> = ns.api();
    let deployment: Deployment = from_json(json!({
        "metadata": { "name": "stateful" },
        "spec": {
            "replicas": 1,
            "selector": { "matchLabels": { "app": "stateful" } },
            "template": {
                "metadata": { "labels": { "app": "stateful" } },
                "spec": {
                    "containers": [{
                        "name": "main", "image": PAUSE_IMAGE,
                        "volumeMounts": [{ "name": "data", "mountPath": "/data" }]
                    }],
                    "volumes": [{ "name": "data", "persistentVolumeClaim": { "claimName": "data" } }]
                }
            }
        }
    }))?;
    deployments
        .create(&PostParams::default(), &deployment)
        .await?;

    // Pod first: with WaitForFirstConsumer classes (kind, k3d) the claim binds only then.
    wait::wait_for(
        &deployments,
        "stateful",
        wait::DEFAULT_TIMEOUT,
        wait::deployment_available(),
    )
    .await?;
    let bound = wait::wait_for(&pvcs, "data", wait::DEFAULT_TIMEOUT, wait::pvc_bound()).await?;
    let volume = bound
        .spec
        .and_then(|s| s.volume_name)
        .context("bound claim without volume")?;
    tracing::info!(%volume, "claim bound");

    let pods = pods_with_label(&ns, "app=stateful").await?;
    let pod = pods.first().context("no pod")?;
    ensure!(wait::pod_ready().matches_object(Some(pod)), "pod not ready");
    if let Some(node) = cluster.kwok_node() {
        let on = pod.spec.as_ref().and_then(|s| s.node_name.as_deref());
        ensure!(on == Some(node), "pod scheduled on {on:?}");
    }
    Ok(())
}

#[tokio::test]
async fn owner_reference_gc_deletes_child() -> Result<()> {
    let (_cluster, ns) = setup("owner-gc").await?;
    let cms: Api<ConfigMap> = ns.api();
    let parent: ConfigMap = from_json(json!({ "metadata": { "name": "parent" } }))?;
    let parent = cms.create(&PostParams::default(), &parent).await?;
    let child: ConfigMap = from_json(json!({
        "metadata": {
            "name": "child",
            "ownerReferences": [{
                "apiVersion": "v1", "kind": "ConfigMap",
                "name": "parent", "uid": parent.uid().context("parent without uid")?
            }]
        },
        "data": { "k": "v" }
    }))?;
    let child = cms.create(&PostParams::default(), &child).await?;
    let child_uid = child.uid().context("child without uid")?;

    cms.delete("parent", &DeleteParams::background()).await?;
    wait::wait_deleted(&cms, "child", &child_uid, wait::DEFAULT_TIMEOUT).await?;
    Ok(())
}

#[tokio::test]
async fn crd_cel_rule_rejects_invalid_object() -> Result<()> {
    let (cluster, ns) = setup("crd-cel").await?;
    let suffix = e2e::random_suffix(6);
    let group = "e2e.berth.dev";
    let plural = format!("ranges{suffix}");
    let kind = format!("Range{suffix}");
    let crd_name = format!("{plural}.{group}");
    let crds: Api<CustomResourceDefinition> = Api::all(cluster.client());
    let crd: CustomResourceDefinition = from_json(json!({
        "metadata": { "name": crd_name, "labels": { "berth.dev/e2e": "true" } },
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": { "plural": plural, "singular": format!("range{suffix}"), "kind": kind },
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": { "openAPIV3Schema": {
                    "type": "object",
                    "properties": { "spec": {
                        "type": "object",
                        "required": ["min", "max"],
                        "properties": { "min": { "type": "integer" }, "max": { "type": "integer" } },
                        "x-kubernetes-validations": [
                            { "rule": "self.min <= self.max", "message": "min must not exceed max" }
                        ]
                    }}
                }}
            }]
        }
    }))?;
    crds.create(&PostParams::default(), &crd).await?;
    let gvk = GroupVersionKind::gvk(group, "v1", &kind);
    let resource = ApiResource::from_gvk_with_plural(&gvk, &plural);
    let result = check_cel_rule(&cluster, &ns, &crds, &resource, &crd_name).await;
    crds.delete(&crd_name, &DeleteParams::default()).await?;
    result
}

async fn check_cel_rule(
    cluster: &Cluster,
    ns: &e2e::TestNamespace,
    crds: &Api<CustomResourceDefinition>,
    resource: &ApiResource,
    crd_name: &str,
) -> Result<()> {
    wait::wait_for(
        crds,
        crd_name,
        Duration::from_secs(30),
        conditions::is_crd_established(),
    )
    .await?;
    let api: Api<DynamicObject> = Api::namespaced_with(cluster.client(), ns.name(), resource);
    let object = |name: &str, min: i64, max: i64| -> Result<DynamicObject> {
        from_json(json!({
            "apiVersion": resource.api_version, "kind": resource.kind,
            "metadata": { "name": name },
            "spec": { "min": min, "max": max }
        }))
    };

    // Right after Established the new resource can briefly 404 while discovery catches up.
    let valid = object("valid", 1, 3)?;
    let mut attempts = 0;
    loop {
        match api.create(&PostParams::default(), &valid).await {
            Ok(_) => break,
            Err(kube::Error::Api(status)) if status.code == 404 && attempts < 50 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(e).context("creating a valid object"),
        }
    }

    match api
        .create(&PostParams::default(), &object("invalid", 5, 2)?)
        .await
    {
        Err(kube::Error::Api(status)) => {
            ensure!(
                status.code == 422,
                "expected 422 Invalid, got {} {}",
                status.code,
                status.message
            );
            ensure!(
                status.message.contains("min must not exceed max"),
                "unexpected message: {}",
                status.message
            );
            Ok(())
        }
        Err(e) => Err(e).context("creating the invalid object"),
        Ok(_) => anyhow::bail!("the CEL rule did not reject min > max"),
    }
}

#[tokio::test]
async fn service_account_tokens_are_issued_and_verified() -> Result<()> {
    let (cluster, ns) = setup("sa-token").await?;
    let sas: Api<ServiceAccount> = ns.api();
    let sa: ServiceAccount = from_json(json!({ "metadata": { "name": "robot" } }))?;
    sas.create(&PostParams::default(), &sa).await?;
    let request = TokenRequest {
        spec: TokenRequestSpec {
            expiration_seconds: Some(600),
            ..TokenRequestSpec::default()
        },
        ..TokenRequest::default()
    };
    let issued = sas
        .create_token_request("robot", &PostParams::default(), &request)
        .await?;
    let token = issued
        .status
        .map(|s| s.token)
        .filter(|t| !t.is_empty())
        .context("empty token")?;

    let reviews: Api<TokenReview> = Api::all(cluster.client());
    let review = TokenReview {
        spec: TokenReviewSpec {
            token: Some(token),
            ..TokenReviewSpec::default()
        },
        ..TokenReview::default()
    };
    let reviewed = reviews.create(&PostParams::default(), &review).await?;
    let status = reviewed.status.context("token review without status")?;
    ensure!(
        status.authenticated == Some(true),
        "token not authenticated: {:?}",
        status.error
    );
    let user = status.user.and_then(|u| u.username).unwrap_or_default();
    let expected = format!("system:serviceaccount:{}:robot", ns.name());
    ensure!(
        user == expected,
        "token authenticates as {user:?}, expected {expected:?}"
    );
    Ok(())
}
